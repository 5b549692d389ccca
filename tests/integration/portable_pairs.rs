//! Tenant archives between every pair of backends, both ways and each onto itself: a source
//! tenant whose migration makes a table of every column type the pair maps (integers, floats,
//! decimal, boolean, text, bytes, uuid, JSON, timestamps with and without time zone, date,
//! time, an enum), rows written with sqlx's own types (edge values and `NULL`s), exported to
//! bytes, imported into the target backend, and read back there with sqlx: each value as it
//! was inserted. And for each pair of backends, a column whose types cannot map is refused with
//! [`Error::Unmappable`] naming it, nothing left on the target.

use serde_json::json;
use sqlx::migrate::{Migration, MigrationType};
use sqlx::types::time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use sqlx::types::{JsonValue, Uuid};
use sqlx::Row;
use tenancy::{Error, Tenant};

use crate::assert_err;
use crate::backends::{mysql, sqlite};
use crate::lifecycle_support::migration;

/// A backend an archive leaves or enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Postgres,
    Mysql,
    Sqlite,
}

use Side::{Mysql, Postgres, Sqlite};

/// `things` in each backend's types: one column per type sqlx (and the derive) stores, an enum
/// as the backend makes one.
fn things_ddl(side: Side) -> &'static str {
    match side {
        Postgres => {
            "CREATE TYPE mood AS ENUM ('on', 'off');
            CREATE TABLE things (
                id bigint PRIMARY KEY, small smallint, medium integer, large bigint, ratio real,
                precise double precision, flag boolean, label text, photo bytea, uid uuid,
                doc jsonb, at timestamptz, naive timestamp, day date, t time, price numeric,
                mood mood
            )"
        }
        Mysql => {
            "CREATE TABLE things (
                id BIGINT PRIMARY KEY, small SMALLINT, medium INT, large BIGINT, ratio FLOAT,
                precise DOUBLE, flag BOOLEAN, label TEXT, photo BLOB, uid BINARY(16), doc JSON,
                at TIMESTAMP(6) NULL, naive DATETIME(6), day DATE, t TIME(6),
                price DECIMAL(40, 12), mood ENUM('on', 'off')
            )"
        }
        Sqlite => {
            "CREATE TABLE things (
                id INTEGER PRIMARY KEY, small SMALLINT, medium INTEGER, large BIGINT, ratio REAL,
                precise DOUBLE, flag BOOLEAN, label TEXT, photo BLOB, uid UUID, doc JSON,
                at TIMESTAMPTZ, naive DATETIME, day DATE, t TIME, price NUMERIC,
                mood TEXT CHECK (mood IN ('on', 'off'))
            )"
        }
    }
}

const COLUMNS: &str =
    "id, small, medium, large, ratio, precise, flag, label, photo, uid, doc, at, naive, day, t, price, mood";

/// A row of `things` as sqlx reads and writes it (the decimal as its text without trailing
/// zeros, the time zone's instant in UTC).
#[derive(Debug, Clone, PartialEq, Default)]
struct Thing {
    id: i64,
    small: Option<i16>,
    medium: Option<i32>,
    large: Option<i64>,
    ratio: Option<f32>,
    precise: Option<f64>,
    flag: Option<bool>,
    label: Option<String>,
    photo: Option<Vec<u8>>,
    uid: Option<Uuid>,
    doc: Option<JsonValue>,
    at: Option<OffsetDateTime>,
    naive: Option<PrimitiveDateTime>,
    day: Option<Date>,
    t: Option<Time>,
    price: Option<String>,
    mood: Option<String>,
}

impl Thing {
    /// Each column's name and value, to compare (and see) a row column by column; floats by
    /// their bits' text, so `NaN` equals itself.
    fn cells(&self) -> Vec<(&'static str, String)> {
        let utc = Thing {
            at: self.at.map(|a| a.to_offset(UtcOffset::UTC)),
            ..self.clone()
        };
        macro_rules! cells {
            ($($f:ident),*) => { vec![$((stringify!($f), format!("{:?}", utc.$f))),*] };
        }
        cells!(
            id, small, medium, large, ratio, precise, flag, label, photo, uid, doc, at, naive, day,
            t, price, mood
        )
    }
}

/// A decimal's text without trailing zeros after its point (`12.50` → `12.5`, `3.000` → `3`).
fn decimal(text: &str) -> String {
    let text = text.trim();
    let trimmed = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => text,
    };
    match trimmed {
        "-0" | "" => "0".into(),
        t => t.into(),
    }
}

fn date(year: i32, month: u8, day: u8) -> Date {
    Date::from_calendar_date(year, month.try_into().unwrap(), day).unwrap()
}

fn time(hour: u8, minute: u8, second: u8, micro: u32) -> Time {
    Time::from_hms_micro(hour, minute, second, micro).unwrap()
}

/// Reads a row of the `SELECT`s of [`Handle::read`] (the JSON, decimal and enum as text).
macro_rules! thing {
    ($r:expr) => {{
        let r = $r;
        Thing {
            id: r.get(0),
            small: r.get(1),
            medium: r.get(2),
            large: r.get(3),
            ratio: r.get(4),
            precise: r.get(5),
            flag: r.get(6),
            label: r.get(7),
            photo: r.get(8),
            uid: r.get(9),
            doc: r
                .get::<Option<String>, _>(10)
                .map(|d| serde_json::from_str(&d).unwrap()),
            at: r
                .get::<Option<OffsetDateTime>, _>(11)
                .map(|a| a.to_offset(UtcOffset::UTC)),
            naive: r.get(12),
            day: r.get(13),
            t: r.get(14),
            price: r.get::<Option<String>, _>(15).map(|p| decimal(&p)),
            mood: r.get(16),
        }
    }};
}

/// Binds a [`Thing`]'s values in [`COLUMNS`]' order.
macro_rules! bind_thing {
    ($query:expr, $t:expr) => {{
        let t = $t;
        $query
            .bind(t.id)
            .bind(t.small)
            .bind(t.medium)
            .bind(t.large)
            .bind(t.ratio)
            .bind(t.precise)
            .bind(t.flag)
            .bind(t.label.clone())
            .bind(t.photo.clone())
            .bind(t.uid)
            .bind(t.doc.clone())
            .bind(t.at)
            .bind(t.naive)
            .bind(t.day)
            .bind(t.t)
            .bind(t.price.clone())
            .bind(t.mood.clone())
    }};
}

/// The rows a tenant moving from `from` to `to` holds: edge values every backend of the pair
/// stores (MySQL's `TIMESTAMP` from 1970 to 2038, SQLite's decimals as 64-bit floats, float
/// infinities and NaN only where both sides have them), `NULL`s, empty text and bytes, unicode, JSON `null`
/// (not SQL `NULL`).
fn rows(from: Side, to: Side) -> Vec<Thing> {
    let either = |side| from == side || to == side;
    let leap = PrimitiveDateTime::new(date(2024, 2, 29), time(23, 59, 59, 999_999));
    // SQLite keeps the offset an app gave (the others store the instant in UTC).
    let east = UtcOffset::from_hms(5, 30, 0).unwrap();
    let big_decimal = match either(Sqlite) {
        true => "-12345.678",
        false => "-12345678901234567890.123456789",
    };
    let mut all = vec![
        Thing {
            id: 1,
            small: Some(i16::MIN),
            medium: Some(i32::MAX),
            large: Some(i64::MIN),
            ratio: Some(-1.5),
            precise: Some(1e300),
            flag: Some(true),
            label: Some("it's \"quoted\" \\ tab\t newline\n ✓ 🦀 \\N".into()),
            photo: Some(vec![0, 1, b'\\', b'\n', b'\t', 0xff]),
            uid: Some(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)),
            doc: Some(json!({"a": [1, 2.5, {"b": null}], "s": "ü \"q\" \\"})),
            at: Some(leap.assume_offset(east)),
            naive: Some(leap),
            day: Some(date(2024, 2, 29)),
            t: Some(time(23, 59, 59, 999_999)),
            price: Some(big_decimal.into()),
            mood: Some("off".into()),
        },
        Thing {
            id: 2,
            ..Thing::default()
        },
        Thing {
            id: 3,
            small: Some(0),
            medium: Some(-1),
            large: Some(i64::MAX),
            ratio: Some(0.0),
            precise: Some(-0.1),
            flag: Some(false),
            label: Some(String::new()),
            photo: Some(Vec::new()),
            uid: Some(Uuid::nil()),
            doc: Some(JsonValue::Null),
            at: Some(OffsetDateTime::UNIX_EPOCH + std::time::Duration::from_secs(1)),
            naive: Some(PrimitiveDateTime::new(date(1000, 1, 1), Time::MIDNIGHT)),
            day: Some(date(1000, 1, 1)),
            t: Some(Time::MIDNIGHT),
            price: Some("0".into()),
            mood: Some("on".into()),
        },
        Thing {
            id: 4,
            small: Some(i16::MAX),
            medium: Some(i32::MIN),
            large: Some(-1),
            ratio: Some(0.1),
            precise: Some(f64::MIN_POSITIVE),
            flag: Some(true),
            label: Some("ünïcödé 日本語 ".into()),
            photo: Some(vec![0; 3]),
            uid: Some(Uuid::max()),
            doc: Some(json!(["x", 1e-7, -3, true])),
            at: Some(PrimitiveDateTime::new(date(2038, 1, 19), time(3, 14, 7, 1)).assume_utc()),
            naive: Some(PrimitiveDateTime::new(
                date(9999, 12, 31),
                time(23, 59, 59, 999_999),
            )),
            day: Some(date(9999, 12, 31)),
            t: Some(time(12, 0, 0, 500_000)),
            price: Some("0.1".into()),
            mood: Some("on".into()),
        },
    ];
    // Infinities where both sides store them (MySQL none), NaN only in PostgreSQL (SQLite
    // stores NULL for it: refused, below).
    if !either(Mysql) {
        all.push(Thing {
            id: 5,
            ratio: Some(f32::INFINITY),
            precise: Some(f64::NEG_INFINITY),
            ..Thing::default()
        });
    }
    if (from, to) == (Postgres, Postgres) {
        all.push(Thing {
            id: 6,
            ratio: Some(f32::NAN),
            precise: Some(f64::NAN),
            ..Thing::default()
        });
    }
    all
}

/// A `Tenants` handle on one backend with [`things_ddl`]'s migration (or another), on a
/// private registry.
enum Handle {
    Postgres(sqlx::PgPool, crate::lifecycle_support::Lifecycle),
    Mysql(mysql::Pool, mysql::Lifecycle),
    Sqlite(sqlite::Pool, sqlite::Lifecycle),
}

impl Handle {
    async fn new(side: Side, ddl: &str) -> Handle {
        let migrations: Vec<Migration> = vec![migration(1, MigrationType::Simple, ddl)];
        match side {
            Postgres => {
                let pool = crate::support::pool().await;
                let l = crate::lifecycle_support::Lifecycle::new(&pool, migrations).await;
                Handle::Postgres(pool, l)
            }
            Mysql => {
                let pool = mysql::pool().await;
                let l = mysql::Lifecycle::new(&pool, migrations).await;
                Handle::Mysql(pool, l)
            }
            Sqlite => {
                let folder = sqlite::pool().await;
                let l = sqlite::Lifecycle::new(&folder, migrations).await;
                Handle::Sqlite(folder, l)
            }
        }
    }

    async fn create(&self, prefix: &str) -> Tenant {
        let name = tenancy_testdb::unique_name(prefix);
        match self {
            Handle::Postgres(_, l) => l.tenants.create(name).await.unwrap(),
            Handle::Mysql(_, l) => l.tenants.create(name).await.unwrap(),
            Handle::Sqlite(_, l) => l.tenants.create(name).await.unwrap(),
        }
    }

    /// Writes `rows` into `t`'s `things` with plain sqlx, each value bound as its Rust type.
    async fn insert(&self, t: &Tenant, rows: &[Thing]) {
        let marks =
            |mark: &dyn Fn(usize) -> String| (1..=17).map(mark).collect::<Vec<_>>().join(", ");
        match self {
            Handle::Postgres(pool, _) => {
                let q = t.quoted();
                let values = marks(&|i| match i {
                    16 => "$16::numeric".into(),
                    17 => format!("$17::text::{q}.mood"),
                    i => format!("${i}"),
                });
                let sql = format!("INSERT INTO {q}.things ({COLUMNS}) VALUES ({values})");
                for row in rows {
                    bind_thing!(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), row)
                        .execute(pool)
                        .await
                        .unwrap();
                }
            }
            Handle::Mysql(pool, _) => {
                let values = marks(&|_| "?".into());
                let sql = format!(
                    "INSERT INTO {}.things ({COLUMNS}) VALUES ({values})",
                    mysql::q(t)
                );
                for row in rows {
                    bind_thing!(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), row)
                        .execute(pool)
                        .await
                        .unwrap();
                }
            }
            Handle::Sqlite(_, l) => {
                let values = marks(&|i| format!("?{i}"));
                let sql = format!("INSERT INTO things ({COLUMNS}) VALUES ({values})");
                let pool = l.tenants.pool_for(t).await.unwrap();
                let mut tx = pool.begin().await.unwrap();
                for row in rows {
                    bind_thing!(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), row)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
    }

    /// `t`'s `things`, read with plain sqlx, by id.
    async fn read(&self, t: &Tenant) -> Vec<Thing> {
        let textual = "id, small, medium, large, ratio, precise, flag, label, photo, uid";
        let times = "at, naive, day, t";
        match self {
            Handle::Postgres(pool, _) => {
                let sql = format!(
                    "SELECT {textual}, doc::text, {times}, price::text, mood::text \
                     FROM {}.things ORDER BY id",
                    t.quoted()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                rows.iter().map(|r| thing!(r)).collect()
            }
            Handle::Mysql(pool, _) => {
                let sql = format!(
                    "SELECT {textual}, CAST(doc AS CHAR), {times}, CAST(price AS CHAR), \
                     CAST(mood AS CHAR) FROM {}.things ORDER BY id",
                    mysql::q(t)
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                rows.iter().map(|r| thing!(r)).collect()
            }
            Handle::Sqlite(_, l) => {
                let sql = format!(
                    "SELECT {textual}, CAST(doc AS TEXT), {times}, CAST(price AS TEXT), mood \
                     FROM things ORDER BY id"
                );
                let pool = l.tenants.pool_for(t).await.unwrap();
                let mut tx = pool.begin().await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
                rows.iter().map(|r| thing!(r)).collect()
            }
        }
    }

    async fn export(&self, t: &Tenant) -> Vec<u8> {
        let mut bytes = Vec::new();
        match self {
            Handle::Postgres(_, l) => l.tenants.export(t, &mut bytes).await.unwrap(),
            Handle::Mysql(_, l) => l.tenants.export(t, &mut bytes).await.unwrap(),
            Handle::Sqlite(_, l) => l.tenants.export(t, &mut bytes).await.unwrap(),
        };
        bytes
    }

    async fn import(&self, archive: &[u8], name: &str) -> Result<Tenant, Error> {
        match self {
            Handle::Postgres(_, l) => l.tenants.import(archive, name).await,
            Handle::Mysql(_, l) => l.tenants.import(archive, name).await,
            Handle::Sqlite(_, l) => l.tenants.import(archive, name).await,
        }
    }

    /// Whether nothing of tenant `name` is there: no schema, database or file, not registered.
    async fn absent(&self, name: &str) -> bool {
        let (container, registered) = match self {
            Handle::Postgres(pool, l) => (
                crate::lifecycle_support::schema_exists(pool, name).await,
                l.tenants.exists(name).await.unwrap(),
            ),
            Handle::Mysql(pool, l) => (
                mysql::container_exists(pool, name).await,
                l.tenants.exists(name).await.unwrap(),
            ),
            Handle::Sqlite(folder, l) => (
                sqlite::container_exists(folder, name).await,
                l.tenants.exists(name).await.unwrap(),
            ),
        };
        !container && !registered
    }
}

/// Moves a tenant holding [`rows`] from `from` to `to` through an archive in memory and
/// checks every value of every row as the target's sqlx reads it against what was inserted.
async fn round_trip(from: Side, to: Side) {
    let rows = rows(from, to);
    let source = Handle::new(from, things_ddl(from)).await;
    let t = source.create("src").await;
    source.insert(&t, &rows).await;
    // The source stores what was inserted (else the test's values are not the pair's).
    let stored: Vec<_> = source.read(&t).await.iter().map(Thing::cells).collect();
    let given: Vec<_> = rows.iter().map(Thing::cells).collect();
    assert_eq!(stored, given, "{from:?} did not store the rows as given");
    let archive = source.export(&t).await;

    let target = Handle::new(to, things_ddl(to)).await;
    let moved = target
        .import(&archive, &tenancy_testdb::unique_name("moved"))
        .await
        .unwrap_or_else(|e| panic!("{from:?} to {to:?}: {e} ({e:?})"));
    let read = target.read(&moved).await;
    assert_eq!(read.len(), rows.len(), "{from:?} to {to:?}: {read:#?}");
    for (got, want) in read.iter().zip(&rows) {
        assert_eq!(
            got.cells(),
            want.cells(),
            "{from:?} to {to:?}: row {}",
            want.id
        );
    }
}

#[tokio::test]
async fn postgresql_to_postgresql_keeps_every_value() {
    round_trip(Postgres, Postgres).await;
}

#[tokio::test]
async fn mysql_to_mysql_keeps_every_value() {
    round_trip(Mysql, Mysql).await;
}

#[tokio::test]
async fn sqlite_to_sqlite_keeps_every_value() {
    round_trip(Sqlite, Sqlite).await;
}

#[tokio::test]
async fn sqlite_to_postgresql_keeps_every_value() {
    round_trip(Sqlite, Postgres).await;
}

#[tokio::test]
async fn postgresql_to_sqlite_keeps_every_value() {
    round_trip(Postgres, Sqlite).await;
}

#[tokio::test]
async fn mysql_to_postgresql_keeps_every_value() {
    round_trip(Mysql, Postgres).await;
}

#[tokio::test]
async fn postgresql_to_mysql_keeps_every_value() {
    round_trip(Postgres, Mysql).await;
}

#[tokio::test]
async fn mysql_to_sqlite_keeps_every_value() {
    round_trip(Mysql, Sqlite).await;
}

#[tokio::test]
async fn sqlite_to_mysql_keeps_every_value() {
    round_trip(Sqlite, Mysql).await;
}

/// A column of type `from_type` on `from` (holding `value`) refused on `to`, where it is
/// `to_type`: [`Error::Unmappable`] names the table, the column and both types as the
/// backends declare them (`from_declared`, `to_declared`), and nothing of the tenant is left.
async fn refused(
    (from, from_type, value, from_declared): (Side, &str, &str, &str),
    (to, to_type, to_declared): (Side, &str, &str),
) {
    let ddl = |side: Side, ty: &str| {
        let id = if side == Sqlite { "INTEGER" } else { "bigint" };
        format!("CREATE TABLE things (id {id} PRIMARY KEY, x {ty})")
    };
    let source = Handle::new(from, &ddl(from, from_type)).await;
    let t = source.create("src").await;
    let insert = |q: String| format!("INSERT INTO {q}.things (id, x) VALUES (1, {value})");
    match &source {
        Handle::Postgres(pool, _) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(insert(t.quoted())))
                .execute(pool)
                .await
                .unwrap();
        }
        Handle::Mysql(pool, _) => mysql::exec(pool, insert(mysql::q(&t))).await,
        Handle::Sqlite(folder, _) => sqlite::exec(folder, insert(t.quoted())).await,
    }
    let archive = source.export(&t).await;

    let target = Handle::new(to, &ddl(to, to_type)).await;
    let name = tenancy_testdb::unique_name("to");
    assert_err!(
        target.import(&archive, &name).await,
        Error::Unmappable(ref u)
            if u.table == "things" && u.column == "x" && u.from == from_declared && u.to == to_declared
    );
    assert!(target.absent(&name).await, "{name} is left on {to:?}");
}

#[tokio::test]
async fn postgresql_to_mysql_refuses_a_type_that_cannot_map() {
    refused(
        (Postgres, "interval", "'1 day'", "interval (other)"),
        (Mysql, "TIME", "time (time)"),
    )
    .await;
}

#[tokio::test]
async fn postgresql_to_sqlite_refuses_a_type_that_cannot_map() {
    refused(
        (Postgres, "jsonb", "'{\"a\": 1}'", "jsonb (json)"),
        (Sqlite, "INTEGER", "INTEGER (int)"),
    )
    .await;
}

#[tokio::test]
async fn mysql_to_postgresql_refuses_a_type_that_cannot_map() {
    refused(
        (Mysql, "BLOB", "X'00ff'", "blob (bytes)"),
        (Postgres, "integer", "integer (int)"),
    )
    .await;
}

#[tokio::test]
async fn mysql_to_sqlite_refuses_a_type_that_cannot_map() {
    refused(
        (Mysql, "DATE", "'2024-02-29'", "date (date)"),
        (Sqlite, "BLOB", "BLOB (bytes)"),
    )
    .await;
}

#[tokio::test]
async fn sqlite_to_mysql_refuses_a_type_that_cannot_map() {
    refused(
        (Sqlite, "REAL", "0.5", "REAL (float)"),
        (Mysql, "BINARY(16)", "binary(16) (bytes)"),
    )
    .await;
}

#[tokio::test]
async fn sqlite_to_postgresql_refuses_a_type_that_cannot_map() {
    refused(
        (Sqlite, "BOOLEAN", "1", "BOOLEAN (bool)"),
        (Postgres, "date", "date (date)"),
    )
    .await;
}

/// A float SQLite or MySQL cannot store is refused, nothing left: SQLite would store `NULL`
/// for a NaN (the import refuses it), MySQL has neither NaN nor infinities (the server
/// refuses them).
#[tokio::test]
async fn postgresql_nan_and_infinity_are_refused_by_sqlite_and_mysql() {
    let source = Handle::new(Postgres, things_ddl(Postgres)).await;
    let nan = Thing {
        id: 1,
        precise: Some(f64::NAN),
        ..Thing::default()
    };
    let infinite = Thing {
        id: 1,
        ratio: Some(f32::NEG_INFINITY),
        ..Thing::default()
    };
    for (to, row) in [(Sqlite, nan), (Mysql, infinite)] {
        let t = source.create("src").await;
        source.insert(&t, &[row]).await;
        let archive = source.export(&t).await;
        let target = Handle::new(to, things_ddl(to)).await;
        let name = tenancy_testdb::unique_name("to");
        match (to, target.import(&archive, &name).await) {
            (Sqlite, Err(Error::Unsupported { reason, .. })) => assert!(
                reason.contains("column \"precise\" of table \"things\" holds NaN"),
                "{reason}"
            ),
            (Mysql, Err(Error::Database { source, .. })) => {
                assert!(source.to_string().contains("'ratio'"), "{source}")
            }
            (_, other) => panic!("{to:?}: {other:?}"),
        }
        assert!(target.absent(&name).await, "{name} is left on {to:?}");
    }
}

/// PostgreSQL's dates before year 1 and its infinities have no form SQLite's readers take:
/// an import into SQLite refuses them, naming the column, and leaves nothing.
#[tokio::test]
async fn postgresql_dates_before_year_one_and_infinities_are_refused_by_sqlite() {
    let source = Handle::new(Postgres, things_ddl(Postgres)).await;
    let Handle::Postgres(pool, _) = &source else {
        unreachable!()
    };
    for (column, value) in [
        ("day", "0044-03-15 BC"),
        ("at", "infinity"),
        ("naive", "-infinity"),
    ] {
        let t = source.create("src").await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {}.things (id, {column}) VALUES (1, '{value}')",
            t.quoted()
        )))
        .execute(pool)
        .await
        .unwrap();
        let archive = source.export(&t).await;
        let target = Handle::new(Sqlite, things_ddl(Sqlite)).await;
        let name = tenancy_testdb::unique_name("to");
        match target.import(&archive, &name).await {
            Err(Error::Unsupported { reason, .. }) => assert!(
                reason.contains(&format!("column \"{column}\" of table \"things\" holds")),
                "{reason}"
            ),
            other => panic!("{column} = {value}: {other:?}"),
        }
        assert!(target.absent(&name).await, "{name} is left on SQLite");
    }
}

/// Between timestamps with and without time zone: an instant with an offset (SQLite keeps the
/// one an app gave; PostgreSQL and MySQL export theirs in UTC) enters a column without time
/// zone as its time in UTC, and a time without zone enters a column with one as that time in
/// UTC (the zone sqlx's sessions use). (Into SQLite only the same migrations, so the same
/// columns, import a SQLite archive.)
#[tokio::test]
async fn sqlite_instants_enter_postgresql_and_mysql_columns_without_time_zone_in_utc() {
    let given = |h, offset: (i8, i8)| {
        PrimitiveDateTime::new(date(2024, 2, 29), time(h, 15, 0, 250_000))
            .assume_offset(UtcOffset::from_hms(offset.0, offset.1, 0).unwrap())
    };
    // Across midnight both ways, and the leap day's end.
    let instants = [
        given(1, (5, 30)),
        given(20, (-8, 0)),
        given(23, (0, 0)),
        given(12, (-3, -30)),
    ];
    let naive = PrimitiveDateTime::new(date(2024, 12, 31), time(23, 30, 0, 1));
    let source = Handle::new(
        Sqlite,
        "CREATE TABLE stamps (id INTEGER PRIMARY KEY, at TIMESTAMPTZ, naive DATETIME)",
    )
    .await;
    let t = source.create("src").await;
    let Handle::Sqlite(_, l) = &source else {
        unreachable!()
    };
    let pool = l.tenants.pool_for(&t).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for (i, at) in instants.iter().enumerate() {
        sqlx::query("INSERT INTO stamps (id, at, naive) VALUES (?1, ?2, ?3)")
            .bind(i as i64 + 1)
            .bind(at)
            .bind(naive)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO stamps (id) VALUES (5)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let archive = source.export(&t).await;

    let utc = |at: &OffsetDateTime| {
        let at = at.to_offset(UtcOffset::UTC);
        Some(PrimitiveDateTime::new(at.date(), at.time()))
    };
    let mut expected: Vec<_> = instants
        .iter()
        .map(|at| (utc(at), Some(naive.assume_utc())))
        .collect();
    expected.push((None, None));
    for (to, ddl, select) in [
        (
            Postgres,
            "CREATE TABLE stamps (id bigint PRIMARY KEY, at timestamp, naive timestamptz)",
            "SELECT at, naive FROM {t}.stamps ORDER BY id",
        ),
        (
            Mysql,
            "CREATE TABLE stamps (id BIGINT PRIMARY KEY, at DATETIME(6), naive TIMESTAMP(6) NULL)",
            "SELECT at, naive FROM {t}.stamps ORDER BY id",
        ),
    ] {
        let target = Handle::new(to, ddl).await;
        let moved = target
            .import(&archive, &tenancy_testdb::unique_name("moved"))
            .await
            .unwrap_or_else(|e| panic!("{to:?}: {e} ({e:?})"));
        type Stamps = Vec<(Option<PrimitiveDateTime>, Option<OffsetDateTime>)>;
        let read: Stamps = match &target {
            Handle::Postgres(pool, _) => {
                let sql = select.replace("{t}", &moved.quoted());
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Handle::Mysql(pool, _) => {
                let sql = select.replace("{t}", &mysql::q(&moved));
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Handle::Sqlite(..) => unreachable!("an archive from SQLite has its checksums"),
        };
        assert_eq!(read, expected, "into {to:?}");
    }
}
