//! Names as properties.
//!
//! - Tenant names: for arbitrary strings (any Unicode, control characters, quotes, backticks,
//!   path separators, reserved words and prefixes, lengths around and far beyond the limit),
//!   `Tenant::new` accepts exactly the language the docs describe (`tenancy::tenant`'s module
//!   docs and the README), checked against a predicate written here from the docs alone; and
//!   every accepted name round-trips through create, insert, find, update, rename, query,
//!   delete and drop on PostgreSQL, MariaDB and SQLite.
//! - Table and column names: the derive's own check (`tenancy-derive/src/check.rs`,
//!   `check_identifier`: non-empty, at most 63 bytes, no NUL) is private to the proc-macro
//!   crate and runs at compile time, so it cannot be called from a property. What is tested
//!   instead: (1) for arbitrary names in that language, the quoting the library renders with
//!   (its dialect's `quote_ident`, see `quoted_by_library`) makes PostgreSQL create and then
//!   report exactly that table and column name, and MariaDB too, or refuse it as documented;
//!   (2) a model whose table and column names hold quotes, backticks,
//!   semicolons, comment markers and non-ASCII letters round-trips through CRUD on all three
//!   backends.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tenancy::{Tenant, TenantModel};

/// The documented rule, written from the docs without looking at the validator: 1 to 63 bytes
/// of ASCII `a-z`, `0-9`, `_`, not starting with a digit, not starting with `pg_`, and not one
/// of the five server names.
fn documented(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alphabet = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes.iter().all(alphabet)
        && !name.starts_with("pg_")
        && !matches!(
            name,
            "public" | "information_schema" | "mysql" | "sys" | "performance_schema"
        )
}

/// Characters that break identifiers, paths or parsers, and letters that look like `a-z`.
const HOSTILE: &[char] = &[
    '"',
    '\'',
    '`',
    ';',
    '/',
    '\\',
    '.',
    ' ',
    '\t',
    '\n',
    '\r',
    '\0',
    '\u{7f}',
    '-',
    '$',
    '%',
    '*',
    '?',
    '[',
    ']',
    '(',
    ')',
    '{',
    '}',
    ':',
    '=',
    'A',
    'Z',
    'é',
    'ß',
    'ı',
    'ſ',
    'K',
    'ａ',
    '\u{200b}',
    '\u{feff}',
    '\u{301}',
    'я',
    '😀',
    '\u{10ffff}',
];

/// Mostly near the language's border: valid names, names one character away, reserved words
/// with variations, ASCII with control characters, arbitrary Unicode, and very long input.
fn any_name() -> impl Strategy<Value = String> {
    let reserved = prop::sample::select(vec![
        "public",
        "information_schema",
        "mysql",
        "sys",
        "performance_schema",
        "pg_",
        "pg_catalog",
        "pg",
        "pgx",
        "_pg_",
        "_tenancy",
    ]);
    prop_oneof![
        // Valid or too long (the limit is 63 bytes).
        "[a-z_][a-z0-9_]{0,70}",
        // One hostile character somewhere.
        (
            "[a-z_]{0,30}",
            prop::sample::select(HOSTILE),
            "[a-z0-9_]{0,40}"
        )
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        // Reserved words and prefixes, alone or with a suffix, or upper-cased.
        (reserved, "[a-z0-9_]{0,3}", any::<bool>(), any::<bool>()).prop_map(
            |(r, s, suffix, upper)| {
                let name = if suffix {
                    format!("{r}{s}")
                } else {
                    r.to_owned()
                };
                if upper {
                    name.to_uppercase()
                } else {
                    name
                }
            }
        ),
        // Starting with a digit.
        "[0-9][a-z0-9_]{0,10}",
        // Any ASCII, control characters included.
        "[\\x00-\\x7f]{0,80}",
        // Any Unicode scalar values.
        any::<String>(),
        // Very long.
        "[a-z_]{60,70}",
        ".{100,1000}",
        Just(String::new()),
    ]
}

/// Valid tenant names: short and long (up to the 63-byte limit), leading `_` included.
fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,12}",
        "[a-z_][a-z0-9_]{50,62}",
        "_[a-z0-9_]{0,5}",
    ]
    .prop_filter("documented", |n| documented(n))
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        // Rejections (a name the server already holds) are rare: allow many before giving up.
        max_global_rejects: cases * 4,
        ..Config::default()
    }
}

#[test]
fn tenant_new_accepts_exactly_the_documented_language() {
    let mut runner = TestRunner::new(config(20_000));
    let seen = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&any_name(), |name| {
            let expected = documented(&name);
            let got = Tenant::new(&name);
            prop_assert_eq!(got.is_ok(), expected, "{:?}: {:?}", name, got);
            let (yes, no) = seen.get();
            match got {
                Ok(tenant) => {
                    seen.set((yes + 1, no));
                    prop_assert_eq!(tenant.as_str(), name.as_str());
                    prop_assert_eq!(tenant.quoted(), format!("\"{name}\""));
                    // Every other constructor agrees.
                    prop_assert_eq!(name.parse::<Tenant>().ok(), Some(tenant.clone()));
                    prop_assert_eq!(Tenant::try_from(name.clone()).ok(), Some(tenant));
                }
                Err(e) => {
                    seen.set((yes, no + 1));
                    prop_assert!(name.parse::<Tenant>().is_err());
                    // The message never echoes a control character raw.
                    let text = e.to_string();
                    prop_assert!(!text.contains('\0') && !text.contains('\n'), "{:?}", text);
                }
            }
            Ok(())
        })
        .unwrap();
    let (yes, no) = seen.get();
    eprintln!("tenant names: {yes} accepted, {no} refused, all as documented");
    // The strategy reaches both sides of the border (a property that only ever saw refusals
    // would prove little).
    assert!(yes >= 2_000 && no >= 2_000, "accepted {yes}, refused {no}");
}

/// One tenant name round trip on a backend of the harness: create `a`, write a row that
/// carries the tenant's name, read, update, rename to `c`, query, delete, drop.
macro_rules! round_trip {
    ($backend:ident, $test:ident, $cases:expr) => {
        #[test]
        fn $test() {
            use crate::backends::$backend as b;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let pool = rt.block_on(b::pool());
            let l = rt.block_on(b::Lifecycle::new(&pool, b::v1()));
            let ran = std::cell::Cell::new(0u32);
            let mut runner = TestRunner::new(config($cases));
            let strategy = (valid_name(), valid_name()).prop_filter("distinct", |(a, c)| a != c);
            runner
                .run(&strategy, |(a, c)| {
                    rt.block_on(async {
                        // A name the server already holds (MariaDB's `test`, a leftover) is
                        // another test's, not this property's.
                        if b::container_exists(&pool, &a).await
                            || b::container_exists(&pool, &c).await
                        {
                            return Err(TestCaseError::reject("name taken on the server"));
                        }
                        let fail = |what: &str, e: tenancy::Error| {
                            TestCaseError::fail(format!("{what} ({a:?} -> {c:?}): {e}"))
                        };
                        let t = l.tenants.create(&a).await.map_err(|e| fail("create", e))?;
                        prop_assert_eq!(t.as_str(), a.as_str());
                        prop_assert!(b::container_exists(&pool, &a).await);
                        let mut g = b::Guard::new("row", &a)
                            .insert(&l.tenants, &t)
                            .await
                            .map_err(|e| fail("insert", e))?;
                        let found = b::Guard::find(&l.tenants, &t, g.id)
                            .await
                            .map_err(|e| fail("find", e))?;
                        prop_assert_eq!(found.map(|f| f.position.clone()), Some(a.clone()));
                        g.name = "updated".into();
                        g.update(&l.tenants, &t)
                            .await
                            .map_err(|e| fail("update", e))?;
                        prop_assert_eq!(
                            b::raw_guards(&pool, &t).await,
                            vec![("updated".to_owned(), a.clone())]
                        );
                        let r = l
                            .tenants
                            .rename(&a, &c)
                            .await
                            .map_err(|e| fail("rename", e))?;
                        prop_assert_eq!(r.as_str(), c.as_str());
                        prop_assert!(!b::container_exists(&pool, &a).await);
                        prop_assert!(b::container_exists(&pool, &c).await);
                        let mut rows = b::Guard::query(&r)
                            .fetch_all(&l.tenants)
                            .await
                            .map_err(|e| fail("query", e))?;
                        prop_assert_eq!(rows.len(), 1);
                        prop_assert_eq!(&rows[0].position, &a);
                        prop_assert_eq!(rows[0].tenant(), &r);
                        rows.remove(0)
                            .delete(&l.tenants, &r)
                            .await
                            .map_err(|e| fail("delete", e))?;
                        prop_assert_eq!(b::raw_guards(&pool, &r).await, vec![]);
                        l.tenants.drop(&c).await.map_err(|e| fail("drop", e))?;
                        prop_assert!(!b::container_exists(&pool, &c).await);
                        prop_assert!(!l.tenants.exists(&c).await.map_err(|e| fail("exists", e))?);
                        prop_assert_eq!(
                            l.tenants.list().await.map_err(|e| fail("list", e))?,
                            vec![]
                        );
                        ran.set(ran.get() + 1);
                        Ok(())
                    })
                })
                .unwrap();
            assert_eq!(ran.get(), $cases);
            drop(l);
        }
    };
}

round_trip!(pg, accepted_names_round_trip_on_postgres, 48);
round_trip!(mysql, accepted_names_round_trip_on_mariadb, 48);
round_trip!(sqlite, accepted_names_round_trip_on_sqlite, 48);

/// The derive's identifier language (`check_identifier`): non-empty, at most 63 bytes, no NUL.
fn derive_accepts(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && !name.contains('\0')
}

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,20}",
        (
            "[a-z]{0,10}",
            prop::sample::select(HOSTILE),
            "[a-zA-Z0-9_ ]{0,10}"
        )
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        "[\\x01-\\x7f]{1,40}",
        any::<String>(),
    ]
    .prop_filter("the derive accepts it", |n| derive_accepts(n))
}

/// `name` as the library quotes an identifier for backend `B` (its dialect's `quote_ident`,
/// which every statement it builds uses for table and column names). The one place these tests
/// reach `tenancy::internals` (test support, not a stable API): the names are generated at run
/// time, so no derived model can carry them.
fn quoted_by_library<B: tenancy::Backend>(name: &str) -> String {
    tenancy::internals::quote_ident::<B>(name)
}

#[tokio::test]
async fn identifiers_the_derive_accepts_keep_their_name_on_postgres() {
    let pool = crate::support::pool().await;
    let schema = crate::support::Tenants::with(&pool, 1, &[]).await;
    let t = schema.get(0).clone();
    // Generated first (the runner is synchronous), then each created and read back.
    let mut runner = TestRunner::new(config(300));
    let mut names = Vec::new();
    for _ in 0..300 {
        let tree = identifier().new_tree(&mut runner).unwrap();
        names.push(tree.current());
    }
    for (i, name) in names.iter().map(String::as_str).enumerate() {
        let table = quoted_by_library::<sqlx::Postgres>(name);
        let sql = format!(
            "CREATE TABLE {}.{table} ({table} int); INSERT INTO {}.{table} ({table}) VALUES ({i})",
            t.quoted(),
            t.quoted()
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let (relname, attname): (String, String) = sqlx::query_as(
            "SELECT c.relname::text, a.attname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1 \
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(t.as_str())
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{name:?} not found as written: {e}"));
        assert_eq!((relname.as_str(), attname.as_str()), (name, name));
        let sql = format!("DROP TABLE {}.{table}", t.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
}

/// A model whose names hold everything that breaks naive SQL building, derived per backend.
macro_rules! weird_model {
    ($name:ident $(, $backend:literal)?) => {
        #[derive(TenantModel, Debug, Clone, PartialEq)]
        #[tenancy(table = "we\"ird `ta;ble' -- ü" $(, backend = $backend)?)]
        struct $name {
            #[tenancy(id, generated)]
            id: i64,
            #[tenancy(rename = "se\"lect `x`; /* ü */")]
            value: String,
        }
    };
}

weird_model!(WeirdPg);
weird_model!(WeirdMy, "mysql");
weird_model!(WeirdLite, "sqlite");

macro_rules! weird_round_trip {
    ($backend:ident, $model:ident, $test:ident, $ddl:expr) => {
        #[tokio::test]
        async fn $test() {
            use crate::backends::$backend as b;
            use sqlx::migrate::MigrationType;
            let pool = b::pool().await;
            let l = b::Lifecycle::new(
                &pool,
                vec![crate::lifecycle_support::migration(
                    1,
                    MigrationType::Simple,
                    $ddl,
                )],
            )
            .await;
            let a = l
                .tenants
                .create(tenancy_testdb::unique_name("weird"))
                .await
                .unwrap();
            let other = l
                .tenants
                .create(tenancy_testdb::unique_name("weird"))
                .await
                .unwrap();
            let mut w = $model {
                id: 0,
                value: "one".into(),
            }
            .insert(&l.tenants, &a)
            .await
            .unwrap();
            w.value = "two".into();
            w.update(&l.tenants, &a).await.unwrap();
            let found = $model::find(&l.tenants, &a, w.id).await.unwrap().unwrap();
            assert_eq!(found.value, "two");
            assert_eq!($model::query(&other).count(&l.tenants).await.unwrap(), 0);
            let renamed = l
                .tenants
                .rename(a.as_str(), tenancy_testdb::unique_name("weird"))
                .await
                .unwrap();
            let all = $model::query(&renamed).fetch_all(&l.tenants).await.unwrap();
            assert_eq!(all.len(), 1);
            all.into_iter()
                .next()
                .unwrap()
                .delete(&l.tenants, &renamed)
                .await
                .unwrap();
            assert_eq!($model::query(&renamed).count(&l.tenants).await.unwrap(), 0);
            l.tenants.drop(renamed.as_str()).await.unwrap();
            l.tenants.drop(other.as_str()).await.unwrap();
        }
    };
}

weird_round_trip!(
    pg,
    WeirdPg,
    a_model_with_hostile_identifiers_round_trips_on_postgres,
    "CREATE TABLE \"we\"\"ird `ta;ble' -- ü\" (id bigserial PRIMARY KEY, \"se\"\"lect `x`; /* ü */\" text NOT NULL)"
);
weird_round_trip!(
    mysql,
    WeirdMy,
    a_model_with_hostile_identifiers_round_trips_on_mariadb,
    "CREATE TABLE `we\"ird ``ta;ble' -- ü` (id BIGINT PRIMARY KEY AUTO_INCREMENT, `se\"lect ``x``; /* ü */` TEXT NOT NULL)"
);
weird_round_trip!(
    sqlite,
    WeirdLite,
    a_model_with_hostile_identifiers_round_trips_on_sqlite,
    "CREATE TABLE \"we\"\"ird `ta;ble' -- ü\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \"se\"\"lect `x`; /* ü */\" TEXT NOT NULL)"
);

/// What MariaDB keeps of the derive's language, as found here: not a name ending with ASCII
/// white space (space, tab, line feed, vertical tab, form feed, carriage return: errors
/// 1103/1166), nor one holding a character outside the Basic Multilingual Plane (error 1300:
/// identifiers are utf8mb3). The derive refuses both for `backend = "mysql"` (since this test
/// found them; tests/ui/fail/names/mysql_identifiers.rs).
fn mariadb_keeps(name: &str) -> bool {
    !name.ends_with([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        && name.chars().all(|c| (c as u32) <= 0xFFFF)
}

#[tokio::test]
async fn identifiers_the_derive_accepts_on_mariadb_keep_their_name_or_are_refused_as_documented() {
    use crate::backends::mysql as my;
    let pool = my::pool().await;
    let l = my::Lifecycle::new(&pool, vec![]).await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("myid"))
        .await
        .unwrap();
    let mut runner = TestRunner::new(config(300));
    let mut names = Vec::new();
    for _ in 0..300 {
        names.push(identifier().new_tree(&mut runner).unwrap().current());
    }
    let quote = quoted_by_library::<sqlx::MySql>;
    let (mut kept, mut refused) = (0, 0);
    for name in &names {
        let sql = format!(
            "CREATE TABLE {}.{} ({} INT)",
            quote(t.as_str()),
            quote(name),
            quote(name)
        );
        let created = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
        assert_eq!(
            created.is_ok(),
            mariadb_keeps(name),
            "{name:?}: {:?}",
            created.err()
        );
        if created.is_err() {
            refused += 1;
            continue;
        }
        kept += 1;
        let (table, column): (String, String) = sqlx::query_as(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND BINARY TABLE_NAME = ?",
        )
        .bind(t.as_str())
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{name:?} not found as written: {e}"));
        assert_eq!(
            (table.as_str(), column.as_str()),
            (name.as_str(), name.as_str())
        );
        let sql = format!("DROP TABLE {}.{}", quote(t.as_str()), quote(name));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    eprintln!("MariaDB identifiers: {kept} kept as written, {refused} refused as predicted");
    assert!(kept > 100 && refused > 0, "kept {kept}, refused {refused}");
}
