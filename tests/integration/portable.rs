//! Tenant archives across backends and across the column types: SQLite to PostgreSQL and back,
//! PostgreSQL and MariaDB types through their own round trips, each value compared as the
//! target stores it; a type that cannot map is refused before anything is written.

use sqlx::migrate::{Migration, MigrationType};
use sqlx::Row;
use tenancy::{Error, Tenant};

use crate::assert_err;
use crate::lifecycle_support::migration;

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

fn one(sql: &str) -> Vec<Migration> {
    vec![migration(1, MigrationType::Simple, sql)]
}

const SQLITE_THINGS: &str = "CREATE TABLE things (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid UUID NOT NULL,
    doc JSON,
    at TIMESTAMPTZ,
    day DATE,
    price NUMERIC,
    photo BLOB,
    flag BOOLEAN,
    ratio REAL,
    status TEXT,
    note TEXT
)";

const PG_THINGS: &str = "CREATE TYPE mood AS ENUM ('on', 'off');
CREATE TABLE things (
    id bigserial PRIMARY KEY,
    uid uuid NOT NULL,
    doc jsonb,
    at timestamptz,
    day date,
    price numeric(10, 2),
    photo bytea,
    flag boolean,
    ratio double precision,
    status mood,
    note text
)";

const UID: &str = "0123456789abcdef0123456789abcdef";

async fn export<B: tenancy::Backend>(tenants: &tenancy::Tenants<B>, t: &Tenant) -> String {
    let mut bytes = Vec::new();
    tenants.export(t, &mut bytes).await.unwrap();
    String::from_utf8(bytes).unwrap()
}

/// `archive` imported as a new tenant named `copy…`.
async fn import_copy<B: tenancy::Backend>(tenants: &tenancy::Tenants<B>, archive: &str) -> Tenant {
    tenants
        .import(archive.as_bytes(), name("copy"))
        .await
        .unwrap()
}

/// Every row of the SQLite tenant `t`'s `things`, each value as SQLite stores it (its type and
/// text), by id.
async fn sqlite_things(pool: &tenancy::Tenants<sqlx::Sqlite>, t: &Tenant) -> Vec<Vec<String>> {
    let tenant_pool = pool.pool_for(t).await.unwrap();
    let mut tx = tenant_pool.begin().await.unwrap();
    let rows = sqlx::query(
        "SELECT id, typeof(uid) || ':' || hex(uid), doc, at, day, typeof(price) || ':' || price, \
         hex(photo), flag, ratio, status, note FROM things ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let v: Option<String> = r
                        .try_get::<Option<String>, _>(i)
                        .or_else(|_| {
                            r.try_get::<Option<i64>, _>(i)
                                .map(|v| v.map(|v| v.to_string()))
                        })
                        .or_else(|_| {
                            r.try_get::<Option<f64>, _>(i)
                                .map(|v| v.map(|v| v.to_string()))
                        })
                        .unwrap();
                    v.unwrap_or_else(|| "NULL".into())
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn sqlite_tenants_move_to_postgresql_and_back_value_by_value() {
    let folder = crate::backends::sqlite::pool().await;
    let lite = crate::backends::sqlite::Lifecycle::new(&folder, one(SQLITE_THINGS)).await;
    let t = lite.tenants.create(name("lite")).await.unwrap();
    crate::backends::sqlite::exec(
        &folder,
        format!(
            "INSERT INTO {q}.things (uid, doc, at, day, price, photo, flag, ratio, status, note) VALUES \
             (x'{UID}', '{{\"a\":[1,2]}}', '2024-01-02 03:04:05.123456+00:00', '2024-01-02', 12.5, \
              x'00ff10', 1, 0.25, 'on', 'it''s \"quoted\" ✓'), \
             (x'{UID}', NULL, NULL, NULL, NULL, NULL, 0, NULL, 'off', NULL)",
            q = t.quoted()
        ),
    )
    .await;
    let before = sqlite_things(&lite.tenants, &t).await;
    let archive = export(&lite.tenants, &t).await;

    // Into PostgreSQL, whose columns have the types SQLite's only declare.
    let pg = crate::support::pool().await;
    let l = crate::lifecycle_support::Lifecycle::new(&pg, one(PG_THINGS)).await;
    let moved = l
        .tenants
        .import(archive.as_bytes(), name("moved"))
        .await
        .unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id::text, uid::text, doc::text, (at = '2024-01-02 03:04:05.123456+00')::text, \
         day::text, price::text, encode(photo, 'hex'), flag::text, ratio::text, status::text, note \
         FROM {}.things ORDER BY id",
        moved.quoted()
    )))
    .fetch_all(&pg)
    .await
    .unwrap();
    let stored: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<Option<String>, _>(i))
                .collect()
        })
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        stored,
        [
            vec![
                s("1"),
                s("01234567-89ab-cdef-0123-456789abcdef"),
                s("{\"a\": [1, 2]}"),
                s("true"),
                s("2024-01-02"),
                s("12.50"),
                s("00ff10"),
                s("true"),
                s("0.25"),
                s("on"),
                s("it's \"quoted\" ✓"),
            ],
            vec![
                s("2"),
                s("01234567-89ab-cdef-0123-456789abcdef"),
                None,
                None,
                None,
                None,
                None,
                s("false"),
                None,
                s("off"),
                None,
            ],
        ]
    );

    // And back into another SQLite folder: the same values as stored at first (the uuid a
    // 16-byte blob again, the time in ISO form, the decimal as PostgreSQL kept it).
    let again = export(&l.tenants, &moved).await;
    let folder2 = crate::backends::sqlite::pool().await;
    let lite2 = crate::backends::sqlite::Lifecycle::new(&folder2, one(SQLITE_THINGS)).await;
    let back = lite2
        .tenants
        .import(again.as_bytes(), name("back"))
        .await
        .unwrap();
    let after = sqlite_things(&lite2.tenants, &back).await;
    let mut expected = before.clone();
    expected[0][2] = "{\"a\": [1, 2]}".into(); // jsonb's own spacing
    expected[0][3] = "2024-01-02T03:04:05.123456+00:00".into();
    assert_eq!(after, expected);
    assert_eq!(before[0][1], format!("blob:{}", UID.to_uppercase()));
    assert_eq!(before[0][5], "real:12.5");
}

#[tokio::test]
async fn a_type_that_cannot_map_is_refused_before_anything_is_written() {
    let folder = crate::backends::sqlite::pool().await;
    let lite = crate::backends::sqlite::Lifecycle::new(
        &folder,
        one("CREATE TABLE things (id INTEGER PRIMARY KEY, photo BLOB)"),
    )
    .await;
    let t = lite.tenants.create(name("lite")).await.unwrap();
    crate::backends::sqlite::exec(
        &folder,
        format!("INSERT INTO {}.things (photo) VALUES (x'00')", t.quoted()),
    )
    .await;
    let archive = export(&lite.tenants, &t).await;

    let pg = crate::support::pool().await;
    let l = crate::lifecycle_support::Lifecycle::new(
        &pg,
        one("CREATE TABLE things (id bigint PRIMARY KEY, photo bigint)"),
    )
    .await;
    let to = name("to");
    assert_err!(
        l.tenants.import(archive.as_bytes(), &to).await,
        Error::Unmappable(ref u)
            if u.table == "things" && u.column == "photo" && u.from == "BLOB (bytes)" && u.to == "bigint (int)"
    );
    assert!(!crate::lifecycle_support::schema_exists(&pg, &to).await);
    assert!(!l.tenants.exists(&to).await.unwrap());
}

#[tokio::test]
async fn postgresql_types_survive_a_round_trip_and_a_clone() {
    let pg = crate::support::pool().await;
    let ddl = "CREATE TYPE mood AS ENUM ('on', 'off');
        CREATE TABLE things (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            uid uuid, doc json, docb jsonb, at timestamptz, naive timestamp, day date, t time, tt timetz,
            price numeric, photo bytea, flag boolean, ratio real, big double precision,
            status mood, tags text[], span interval, addr inet, small smallint, name varchar(20),
            twice integer GENERATED ALWAYS AS (small * 2) STORED,
            UNIQUE (name, small)
        );
        CREATE INDEX things_day ON things (day DESC) WHERE day IS NOT NULL;
        CREATE TABLE notes (
            id serial PRIMARY KEY,
            thing integer NOT NULL REFERENCES things (id) ON DELETE CASCADE,
            body text
        )";
    let l = crate::lifecycle_support::Lifecycle::new(&pg, one(ddl)).await;
    let t = l.tenants.create(name("src")).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {q}.things (uid, doc, docb, at, naive, day, t, tt, price, photo, flag, ratio, big, \
         status, tags, span, addr, small, name) VALUES \
         (gen_random_uuid(), '{{\"k\": \"v\",  \"n\": 1.50}}', '[1, {{\"x\": null}}]', now(), \
          '2024-02-29 23:59:59.999999', '0044-03-15 BC', '12:34:56.789', '23:00:00.5-02:30', 12345678901234567890.123456789, \
          '\\x000102ff', true, 1.5, 'NaN', 'off', ARRAY['a', 'b,c', NULL], '1 day 02:03:04', \
          '10.1.2.3/8', -32768, 'ünïcode'), \
         (NULL, NULL, NULL, NULL, 'infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, \
          '{{}}', NULL, NULL, NULL, NULL)",
        q = t.quoted()
    )))
    .execute(&pg)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {q}.notes (thing, body) SELECT id, 'a note' FROM {q}.things",
        q = t.quoted()
    )))
    .execute(&pg)
    .await
    .unwrap();
    let archive = export(&l.tenants, &t).await;
    let copy = l
        .tenants
        .import(archive.as_bytes(), name("copy"))
        .await
        .unwrap();
    // The same indexes and constraints as the source (an import may drop them while it
    // writes the rows, and makes them again).
    let catalog = async |t: &Tenant| -> Vec<(String, String)> {
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT indexname::text, replace(indexdef, schemaname, 'S') FROM pg_indexes \
             WHERE schemaname = $1 ORDER BY 1",
        )
        .bind(t.as_str())
        .fetch_all(&pg)
        .await
        .unwrap();
        let constraints: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, contype::text || ' ' || replace(pg_get_constraintdef(c.oid), $1, 'S') \
             FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = $1 ORDER BY 1",
        )
        .bind(t.as_str())
        .fetch_all(&pg)
        .await
        .unwrap();
        [indexes, constraints].concat()
    };
    let source_catalog = catalog(&t).await;
    assert_eq!(source_catalog.len(), 8, "{source_catalog:?}");
    assert_eq!(catalog(&copy).await, source_catalog);
    // A clone drops and makes them again the same way.
    let cloned = l.tenants.clone_tenant(&t, name("cl")).await.unwrap();
    assert_eq!(catalog(&cloned).await, source_catalog);
    let notes = format!("SELECT count(*) FROM {}.notes", copy.quoted());
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(notes))
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let all = |t: &Tenant| {
        format!(
            "SELECT row_to_json(x)::text FROM (SELECT * FROM {}.things ORDER BY id) x",
            t.quoted()
        )
    };
    let source: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(all(&t)))
        .fetch_all(&pg)
        .await
        .unwrap();
    let copied: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(all(&copy)))
        .fetch_all(&pg)
        .await
        .unwrap();
    assert_eq!(source.len(), 2);
    assert_eq!(copied, source);
    let cloned_rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(all(&cloned)))
        .fetch_all(&pg)
        .await
        .unwrap();
    assert_eq!(cloned_rows, source);
    // The identity continues after the imported keys.
    let id: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.things (small) VALUES (1) RETURNING id",
        copy.quoted()
    )))
    .fetch_one(&pg)
    .await
    .unwrap();
    assert_eq!(id, 3);
}

/// A PostgreSQL table of many rows: its lines reach the archive in many chunks (an export
/// hands on 64 KiB of lines at a time, read from many `COPY` messages), every row arrives
/// whole in the copy, and the archive reads back whole (each table's count and hash run over
/// all its chunks), however the reader it comes from is buffered.
#[tokio::test]
async fn a_postgresql_table_of_many_chunks_moves_whole() {
    let pg = crate::support::pool().await;
    let ddl = "CREATE TABLE guards (id bigserial PRIMARY KEY, name text NOT NULL, born date,
        at timestamptz, photo bytea, ratio real)";
    let l = crate::lifecycle_support::Lifecycle::new(&pg, one(ddl)).await;
    let t = l.tenants.create(name("many")).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {q}.guards (name, born, at, photo, ratio)
         SELECT 'guard ' || i || chr(9) || chr(34) || 'q' || chr(34) || chr(92) || chr(10) || ' ü', CASE WHEN i % 3 > 0 THEN date '1999-12-31' + i END,
                timestamptz '2024-02-29 23:59:59.5+00' - i * interval '1.000001 s',
                CASE WHEN i % 2 = 0 THEN decode(md5(i::text), 'hex') END, i / 7.0
         FROM generate_series(1, 5000) i",
        q = t.quoted()
    )))
    .execute(&pg)
    .await
    .unwrap();
    let archive = export(&l.tenants, &t).await;
    assert!(archive.len() > 6 * 64 * 1024, "{} bytes", archive.len());
    assert_eq!(archive.lines().filter(|l| l.starts_with('[')).count(), 5000);
    let copy = import_copy(&l.tenants, &archive).await;
    let all = |t: &Tenant| {
        format!(
            "SELECT row_to_json(x)::text FROM (SELECT * FROM {}.guards ORDER BY id) x",
            t.quoted()
        )
    };
    let read = async |t: &Tenant| -> Vec<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(all(t)))
            .fetch_all(&pg)
            .await
            .unwrap()
    };
    let source = read(&t).await;
    assert_eq!(source.len(), 5000);
    assert_eq!(read(&copy).await, source);
    // Read through a buffer shorter than many lines: a line split between reads arrives whole.
    let small = tokio::io::BufReader::with_capacity(100, archive.as_bytes());
    let copy = l.tenants.import(small, name("small")).await.unwrap();
    assert_eq!(read(&copy).await, source);
}

#[tokio::test]
async fn mariadb_types_survive_a_round_trip() {
    let my = crate::backends::mysql::pool().await;
    let ddl = "CREATE TABLE things (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            uid BINARY(16), doc JSON, at DATETIME(6), ts TIMESTAMP(6) NULL, day DATE, t TIME(3),
            price DECIMAL(30, 9), photo BLOB, flag TINYINT(1), ratio DOUBLE, mood ENUM('on', 'off'),
            name VARCHAR(20), big BIGINT UNSIGNED, small SMALLINT,
            twice INT GENERATED ALWAYS AS (small * 2) STORED
        )";
    let l = crate::backends::mysql::Lifecycle::new(&my, one(ddl)).await;
    let t = l.tenants.create(name("src")).await.unwrap();
    crate::backends::mysql::exec(
        &my,
        format!(
            "INSERT INTO {q}.things (uid, doc, at, ts, day, t, price, photo, flag, ratio, mood, name, \
             big, small) VALUES \
             (UNHEX('{UID}'), '{{\"k\": [1, 2]}}', '2024-02-29 23:59:59.999999', \
              '2024-01-02 03:04:05.5', '1000-01-01', '-838:59:59', 12345678901234567890.123456789, \
              X'000102FF', 1, 0.1, 'off', 'ünïcode \\\\ \"q\"', 18446744073709551615, -32768), \
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL)",
            q = crate::backends::mysql::q(&t)
        ),
    )
    .await;
    let archive = export(&l.tenants, &t).await;
    let copy = import_copy(&l.tenants, &archive).await;
    let all = |t: &Tenant| {
        format!(
            "SELECT CONCAT_WS('|', id, IFNULL(HEX(uid), 'N'), IFNULL(doc, 'N'), IFNULL(at, 'N'), \
             IFNULL(ts, 'N'), IFNULL(day, 'N'), IFNULL(t, 'N'), IFNULL(price, 'N'), \
             IFNULL(HEX(photo), 'N'), IFNULL(flag, 'N'), IFNULL(ratio, 'N'), IFNULL(mood, 'N'), \
             IFNULL(name, 'N'), IFNULL(big, 'N'), IFNULL(small, 'N'), IFNULL(twice, 'N')) \
             FROM {}.things ORDER BY id",
            crate::backends::mysql::q(t)
        )
    };
    let read = |sql: String| {
        let my = my.clone();
        async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .fetch_all(&my)
                .await
                .unwrap()
        }
    };
    let source = read(all(&t)).await;
    assert_eq!(source.len(), 2);
    assert!(source[0].contains("18446744073709551615"), "{source:?}");
    assert_eq!(read(all(&copy)).await, source);
    let _ = crate::backends::mysql::drop_container;
}
