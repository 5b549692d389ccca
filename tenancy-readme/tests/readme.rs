//! The README's Rust code, run against the test database (`tenancy_testdb::database_url()`),
//! each block in a database of its own (the README uses fixed tenant names such as `acme`).
//! `build.rs` copies the blocks out of README.md; a README example that does not compile, or
//! whose `assert!` or `?` fails, fails here. Before the tests start, the binary says which
//! servers they run on (see `tenancy_testdb::select`).

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::AssertSqlSafe;
use tenancy_testdb::select::Backend;

/// The servers each test needs, by its name.
fn needs(test: &str) -> &'static [Backend] {
    if test.starts_with("mysql::") {
        &[Backend::Mysql]
    } else if test.starts_with("sqlite::") {
        &[Backend::Sqlite]
    } else if test == "every_rust_block_of_the_readme_is_included_here" {
        &[]
    } else {
        &[Backend::Postgres]
    }
}

tenancy_testdb::select_tests!(needs);

include!(concat!(env!("OUT_DIR"), "/readme_blocks.rs"));

/// A database created for one test, dropped when it ends (also when it fails).
struct Database {
    admin: String,
    name: String,
    pool: PgPool,
}

impl Database {
    async fn new() -> Self {
        let admin = tenancy_testdb::database_url().unwrap_or_else(|e| panic!("{e}"));
        let name = tenancy_testdb::unique_name("readme");
        let mut conn = {
            use sqlx::Connection;
            sqlx::PgConnection::connect(&admin).await.unwrap()
        };
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let options = admin.parse::<PgConnectOptions>().unwrap().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        Database { admin, name, pool }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Its own thread and runtime: this runs inside the test's runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
                    }
                })
        })
        .join();
    }
}

#[test]
fn every_rust_block_of_the_readme_is_included_here() {
    // readme_1, readme_2, readme_3 (clone a tenant), readme_4 (export and import) and
    // readme_5 (a fleet over two databases) run below; readme_6 (axum), readme_7 (jobs,
    // `for_each`, `query_across`; needs the `serde` feature), readme_8 (a pool for many
    // tenants) and readme_9 (PgBouncer) are compiled by the crate's doctests (8 and 9 connect
    // to the deployment URLs they show; the library paths they use run in tests/integration);
    // readme_10 (MySQL) runs below against MariaDB; readme_11 (SQLite) runs below in a
    // temporary folder; readme_12 (`#[tenancy::test]`) is a test of its own below; readme_13
    // (Citus placement and moves) is compiled by the doctests, and what it calls runs against a
    // Citus cluster in tests/integration/backends/citus.rs; readme_14 (queries for real apps)
    // runs below.
    assert_eq!(
        BLOCKS, 14,
        "a README block was added or removed: update this file"
    );
}

/// "Usage": a model, insert, changeset, query (`fn demo`).
mod usage {
    include!(concat!(env!("OUT_DIR"), "/readme_1.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_usage_example_runs() {
        let db = Database::new().await;
        // The table the example's `Guard` maps, in the tenant the example uses.
        sqlx::raw_sql(
            "CREATE SCHEMA acme;
             CREATE TABLE acme.guards (id bigserial PRIMARY KEY, name text NOT NULL, position text NOT NULL)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        demo(&db.pool).await.unwrap();
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, position FROM acme.guards")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(rows, [(1, "Abu".to_owned(), "Captain".to_owned())]);
    }
}

/// "Tenants: create, clone, drop, rename, migrate" (`fn lifecycle`).
mod lifecycle {
    include!(concat!(env!("OUT_DIR"), "/readme_2.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_lifecycle_example_runs() {
        let db = Database::new().await;
        // The example reads `migrations/tenant` relative to the working directory: the
        // workspace's examples folder has it. (The only test here that depends on it.)
        std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).unwrap();
        lifecycle(db.pool.clone()).await.unwrap();
        // It created acme, renamed it to acme_corp, migrated and dropped it: no tenant is left.
        let left: Vec<String> = sqlx::query_scalar("SELECT name FROM _tenancy.tenants")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let schemas: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('acme', 'acme_corp')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(schemas, 0);
    }
}

/// "Clone a tenant" (`fn onboard`): a template with a seed row, cloned.
mod clone {
    include!(concat!(env!("OUT_DIR"), "/readme_3.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_clone_example_runs() {
        let db = Database::new().await;
        let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/migrations/tenant"
        )))
        .await
        .unwrap();
        let tenants = Tenants::new(db.pool.clone(), migrator).unwrap();
        onboard(&tenants).await.unwrap();
        // The clone holds the template's row, read from its table.
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, position FROM acme.guards")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(rows, [(1, "Abu".to_owned(), "Captain".to_owned())]);
        assert_eq!(tenants.list().await.unwrap().len(), 2);
    }
}

/// "Export and import a tenant" (`fn backup_and_restore`): acme with a row, exported to a
/// file and imported under another name.
mod portable {
    include!(concat!(env!("OUT_DIR"), "/readme_4.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_export_and_import_example_runs() {
        let db = Database::new().await;
        let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/migrations/tenant"
        )))
        .await
        .unwrap();
        let tenants = Tenants::new(db.pool.clone(), migrator).unwrap();
        tenants.create("acme").await.unwrap();
        sqlx::query("INSERT INTO acme.guards (name, position) VALUES ('Abu', 'Captain')")
            .execute(&db.pool)
            .await
            .unwrap();
        let folder = tenancy_testdb::sqlite::folder("readme").unwrap();
        backup_and_restore(&tenants, &folder.join("acme.tenant"))
            .await
            .unwrap();
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, position FROM acme_restored.guards")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(rows, [(1, "Abu".to_owned(), "Captain".to_owned())]);
    }
}

/// "Tenants over several databases" (`fn spread`): a fleet over two fresh databases.
mod fleet {
    include!(concat!(env!("OUT_DIR"), "/readme_5.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_fleet_example_runs() {
        let (eu1, eu2) = (Database::new().await, Database::new().await);
        let migrator = || async {
            sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/migrations/tenant"
            )))
            .await
            .unwrap()
        };
        let a = Tenants::new(eu1.pool.clone(), migrator().await).unwrap();
        let b = Tenants::new(eu2.pool.clone(), migrator().await).unwrap();
        spread(a, b).await.unwrap();
        // acme was made in eu1 (both empty), moved to eu2 with its row; big was made in eu2.
        let schemas = |pool: sqlx::PgPool| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('acme', 'big') ORDER BY 1",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        };
        assert!(schemas(eu1.pool.clone()).await.is_empty());
        assert_eq!(schemas(eu2.pool.clone()).await, ["acme", "big"]);
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, position FROM acme.guards")
            .fetch_all(&eu2.pool)
            .await
            .unwrap();
        assert_eq!(rows, [("Ann".to_owned(), "Guard".to_owned())]);
    }
}

/// "MySQL and MariaDB" (`fn on_mysql`), against `MYSQL_URL` (or a private server).
mod mysql {
    include!(concat!(env!("OUT_DIR"), "/readme_10.rs"));

    #[tokio::test]
    async fn the_mysql_example_runs() {
        let url = tenancy_testdb::mysql_url().unwrap_or_else(|e| panic!("{e}"));
        let pool = MySqlPool::connect(&url).await.unwrap_or_else(|e| {
            panic!("cannot reach MySQL/MariaDB at {url} ({e}): start one or set MYSQL_URL")
        });
        // The example reads `migrations/mysql/tenant` relative to the working directory.
        std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).unwrap();
        on_mysql(pool.clone()).await.unwrap();
        let left: Vec<String> =
            sqlx::query_scalar("SELECT name FROM _tenancy.tenants WHERE name = 'globex'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let databases: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'globex'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(databases, 0);
    }
}

/// "SQLite" (`fn on_sqlite`), in a temporary folder with the example migrations
/// (`migrations` here links to `../examples/migrations`). No server.
mod sqlite {
    include!(concat!(env!("OUT_DIR"), "/readme_11.rs"));

    #[tokio::test]
    async fn the_sqlite_example_runs() {
        let folder = std::env::temp_dir().join(tenancy_testdb::unique_name("readme"));
        let url = format!("sqlite://{}", folder.display());
        on_sqlite(&url).await.unwrap();
        let left: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("acme"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&folder).unwrap();
    }
}

/// "Testing your code": the block's `#[tenancy::test]` functions (committed and rollback, with a
/// fixture, and row-level) are tests of this binary, with the example migrations and fixtures (`migrations`
/// here links to `../examples/migrations`). On `DATABASE_URL`, or the private cluster, as the
/// attribute does.
mod testing {
    include!(concat!(env!("OUT_DIR"), "/readme_12.rs"));
}

/// "Queries for real apps" (`fn queries`): OR/NOT, update_all, aggregates, join, preload,
/// upsert, stream, shared model, raw SQL.
mod queries {
    include!(concat!(env!("OUT_DIR"), "/readme_14.rs"));

    use super::Database;

    #[tokio::test]
    async fn the_queries_example_runs() {
        let db = Database::new().await;
        sqlx::raw_sql(
            "CREATE SCHEMA acme;
             CREATE TABLE acme.sites (id bigint PRIMARY KEY, city text NOT NULL);
             CREATE TABLE acme.guards (id bigserial PRIMARY KEY, name text NOT NULL,
                 position text NOT NULL, site_id bigint REFERENCES acme.sites, hours integer NOT NULL);
             CREATE TABLE public.plans (code text PRIMARY KEY, seats integer NOT NULL)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        queries(&db.pool).await.unwrap();
        let city: String = sqlx::query_scalar("SELECT city FROM acme.sites WHERE id = 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(city, "Lyon");
        let plans: i64 = sqlx::query_scalar("SELECT count(*) FROM public.plans")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(plans, 1);
    }
}

/// The README's benchmark numbers: every ratio it quotes (a number written `0.812×`) stands in
/// BENCHMARKS.md's summary table, on the line of a workload the same paragraph cites
/// ("workload 2"), as that line's ratio. BENCHMARKS.md is written by the benchmark program
/// (`cargo bench --bench tenancy -- --write`), so a rerun that changes a number makes this fail
/// until the README quotes the new one. No database.
mod benchmark_numbers {
    const README: &str = include_str!("../../README.md");
    const BENCHMARKS: &str = include_str!("../../BENCHMARKS.md");

    /// Workload number → the ratio cell's number, from the summary table.
    fn summary() -> Vec<(u32, String)> {
        let begin = BENCHMARKS
            .find("<!-- summary:begin -->")
            .expect("BENCHMARKS.md has a <!-- summary:begin --> marker");
        let end = BENCHMARKS
            .find("<!-- summary:end -->")
            .expect("BENCHMARKS.md has a <!-- summary:end --> marker");
        BENCHMARKS[begin..end]
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                let number = cells.first()?.trim_start_matches("| ");
                let number: u32 = number.split(' ').next()?.parse().ok()?;
                let ratio = cells.get(2)?.split(' ').next()?.to_owned();
                Some((number, ratio))
            })
            .collect()
    }

    /// The README's paragraphs outside code blocks.
    fn paragraphs() -> Vec<String> {
        let (mut out, mut current, mut code) = (Vec::new(), String::new(), false);
        for line in README.lines() {
            if line.trim_start().starts_with("```") {
                code = !code;
                continue;
            }
            if code {
                continue;
            }
            if line.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        out.push(current);
        out.retain(|p| !p.is_empty());
        out
    }

    /// The numbers directly before a `×` (`0.812×`), and whether each is the end of a range
    /// (`0.80–0.85×`).
    fn ratios(text: &str) -> Vec<(String, bool)> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            if *c != '×' {
                continue;
            }
            let mut start = i;
            while start > 0 && (chars[start - 1].is_ascii_digit() || chars[start - 1] == '.') {
                start -= 1;
            }
            let number: String = chars[start..i].iter().collect();
            if number.contains('.') && number.starts_with(|c: char| c.is_ascii_digit()) {
                let range = start > 0 && matches!(chars[start - 1], '–' | '-');
                out.push((number, range));
            }
        }
        out
    }

    /// The workload numbers a paragraph cites: "workload 2", "workloads 2 and 15".
    fn cited(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, _) in text.match_indices("workload") {
            let rest = text[i + "workload".len()..].trim_start_matches('s');
            for word in rest.split_whitespace() {
                let trimmed = word.trim_end_matches([',', ')', '.', ';', ':']);
                if trimmed == "and" {
                    continue;
                }
                match trimmed.parse() {
                    Ok(n) => out.push(n),
                    Err(_) => break,
                }
                if word.ends_with([')', '.', ';', ':']) {
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn every_ratio_the_readme_quotes_stands_in_the_benchmark_summary() {
        let summary = summary();
        assert!(
            !summary.is_empty(),
            "BENCHMARKS.md's summary table has no workload line"
        );
        let mut wrong = Vec::new();
        let mut quoted = 0;
        for paragraph in paragraphs() {
            let workloads = cited(&paragraph);
            for (ratio, range) in ratios(&paragraph) {
                quoted += 1;
                let first_line = paragraph.lines().next().unwrap_or("");
                if range {
                    wrong.push(format!(
                        "{ratio}× ends a range: quote the one number of the summary ({first_line:?})"
                    ));
                } else if workloads.is_empty() {
                    wrong.push(format!(
                        "{ratio}× cites no workload: say \"(BENCHMARKS.md, workload N)\" ({first_line:?})"
                    ));
                } else if !summary
                    .iter()
                    .any(|(n, r)| workloads.contains(n) && *r == ratio)
                {
                    let lines: Vec<String> = summary
                        .iter()
                        .filter(|(n, _)| workloads.contains(n))
                        .map(|(n, r)| format!("workload {n}: {r}"))
                        .collect();
                    wrong.push(format!(
                        "{ratio}× is not the summary's ratio of workload {workloads:?} (the summary \
                         says {}) ({first_line:?})",
                        if lines.is_empty() {
                            "nothing".to_owned()
                        } else {
                            lines.join(", ")
                        }
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "README.md quotes benchmark ratios that BENCHMARKS.md's summary does not hold \
             ({quoted} quoted):\n  {}",
            wrong.join("\n  ")
        );
    }

    #[test]
    fn the_parsers_find_what_they_look_for() {
        assert_eq!(
            ratios("ran at 0.812× of one, 0.80–0.85× and 1,000 × 3"),
            [("0.812".to_owned(), false), ("0.85".to_owned(), true)]
        );
        assert_eq!(cited("(BENCHMARKS.md, workload 2)"), [2]);
        assert_eq!(cited("workloads 3 and 5, then"), [3, 5]);
    }
}
