//! Workload 13: what one `#[tenancy::test]` costs in setup and teardown, in each mode, against
//! what `#[sqlx::test]` does for one test, with the same migrations in the same run.
//!
//! Per test, sequentially (each test of a suite pays it; `cargo test` runs several at once,
//! which this does not measure):
//! - **sqlx::test**: `#[sqlx::test]`'s steps for PostgreSQL, reimplemented with sqlx calls
//!   (sqlx's `TestSupport` is behind its unstable `_unstable-testing` feature), statement for
//!   statement from sqlx-postgres 0.9's `testing/mod.rs`: on a kept "master" connection, the
//!   advisory-locked `CREATE SCHEMA/TABLE/INDEX/SEQUENCE IF NOT EXISTS` of its registry, `DROP
//!   DATABASE IF EXISTS` + `DELETE` of a stale row, `INSERT` of the database's row, `CREATE
//!   DATABASE`; then a pool on the new database, `Migrator::run` (sqlx's migrator: its
//!   `_sqlx_migrations` table, a transaction per migration); then the pool closed, `DROP
//!   DATABASE` and the row deleted. The registry schema is `_tenancy_bench_sqlx_test`
//!   instead of `_sqlx_test`, and the migrations are read once, as `sqlx::migrate!` embeds
//!   them (the tenancy variants read the folder every test, as the attribute does).
//! - **committed**: what `#[tenancy::test]` runs around the body: a pool of up to 4
//!   connections on the database, `TestTenant::create` (reads the migrations folder, one
//!   round trip creating and migrating the tenant in the test registry), `drop_tenant`, the
//!   pool closed.
//! - **rollback**: what `#[tenancy::test(rollback)]` runs: `RollbackTenant::begin` (one
//!   connection, `BEGIN`, the same create batch inside the transaction), `rollback` (and the
//!   connection closed).
//!
//! - **clone** (to decide between replaying the migrations and cloning a migrated schema):
//!   the rollback mode with, instead of the migrations, the `pg_dump --schema-only` of a
//!   tenant migrated once (the template's name replaced by the test's), plus the registry and
//!   bookkeeping rows, in one round trip. PostgreSQL has no schema clone; replaying a dump in
//!   one batch is the cheapest clone a client can send. Skipped (with a note) without
//!   `pg_dump`; the dump itself is made once, outside the timing.
//!
//! For the example migrations (1) and a generated history of 60 (tables, columns, indexes, a
//! view, a function and a trigger, in the proportions of an app's history).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool};
use tenancy::postgres::RollbackTenant;
use tenancy::testing::{TestTenant, TEST_POOL_CONNECTIONS};

use crate::common::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Sqlx,
    Committed,
    Rollback,
    Clone,
}

const VARIANTS: [Variant; 4] = [
    Variant::Sqlx,
    Variant::Committed,
    Variant::Rollback,
    Variant::Clone,
];

/// sqlx's registry of test databases, under a name of this benchmark's.
const SQLX_REGISTRY: &str = "_tenancy_bench_sqlx_test";

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let n = if ctx.quick { 1 } else { 40 };
    let examples = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/tenant"
    ));
    let long = std::env::temp_dir().join(format!("tenancy-bench-60-{}", std::process::id()));
    write_history(&long, 60)?;
    let result = async {
        measure(ctx, "example migrations (1)", &examples, n).await?;
        measure(ctx, "60 migrations", &long, n).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&long);
    let registry = format!("DROP SCHEMA IF EXISTS {SQLX_REGISTRY} CASCADE");
    sqlx::raw_sql(AssertSqlSafe(registry))
        .execute(&ctx.admin)
        .await?;
    result
}

/// `n` tests of each variant with the migrations of `dir`, in rounds of rotating order.
async fn measure(ctx: &mut Ctx, label: &str, dir: &Path, n: usize) -> BoxResult<()> {
    let migrator = Migrator::new(dir).await?;
    let url = database_url(&ctx.url, &ctx.database);
    let dump = match template_dump(ctx, dir, &url).await {
        Ok(dump) => Some(dump),
        Err(e) => {
            ctx.note(format!("13 clone variant skipped ({label}): {e}"));
            None
        }
    };
    let rounds = if n >= 10 { 5 } else { 1 };
    let per_round = n / rounds;
    println!(
        "  {label}: {rounds} rounds of {per_round} tests per variant (order rotating), \
         sequential"
    );
    let mut totals = [Duration::ZERO; VARIANTS.len()];
    let mut seq = 0;
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            if VARIANTS[vi] == Variant::Clone && dump.is_none() {
                continue;
            }
            let start = Instant::now();
            for _ in 0..per_round {
                seq += 1;
                let dump = dump.as_deref();
                one_test(ctx, VARIANTS[vi], dir, &migrator, &url, dump, seq).await?;
            }
            totals[vi] += start.elapsed();
        }
    }
    let per_test = |v: Variant| {
        totals[VARIANTS.iter().position(|x| *x == v).unwrap()].as_secs_f64()
            / (rounds * per_round) as f64
    };
    let sqlx = per_test(Variant::Sqlx);
    let baseline = format!("{} per test (#[sqlx::test]'s steps)", fmt_secs(sqlx));
    for (v, mode) in [
        (Variant::Committed, "#[tenancy::test]"),
        (Variant::Rollback, "#[tenancy::test(rollback)]"),
    ] {
        let d = per_test(v);
        ctx.row(Row::new(
            format!("13 setup+teardown per test, {label}: {mode}"),
            format!("{} per test", fmt_secs(d)),
            baseline.clone(),
            Some(d / sqlx),
            Target::AtMost(0.5),
        ));
    }
    if dump.is_some() {
        let (clone, replay) = (per_test(Variant::Clone), per_test(Variant::Rollback));
        ctx.row(Row::new(
            format!("13c rollback mode, {label}: cloning a migrated template (pg_dump replayed)"),
            format!("{} per test", fmt_secs(clone)),
            format!("{} per test (replaying the migrations)", fmt_secs(replay)),
            Some(clone / replay),
            Target::None,
        ));
    }
    Ok(())
}

/// The schema-only dump of a tenant migrated with `dir` (named [`TEMPLATE`] in it), without
/// psql's meta-commands, and the rows recording its migrations.
async fn template_dump(ctx: &Ctx, dir: &Path, url: &str) -> BoxResult<String> {
    let test = TestTenant::create(ctx.pool.clone(), dir, "bench::template").await?;
    let template = test.tenant().as_str().to_owned();
    let output = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", "--no-privileges", "--schema"])
        .arg(&template)
        .arg(url)
        .output();
    test.drop_tenant().await.map_err(|(_, e)| e)?;
    let output = output.map_err(|e| format!("cannot run pg_dump: {e}"))?;
    if !output.status.success() {
        return Err(format!("pg_dump: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let text = String::from_utf8(output.stdout)?;
    let mut dump: String = text
        .lines()
        .filter(|l| !l.starts_with('\\') && !l.starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    dump = dump.replace(&template, TEMPLATE);
    let migrator = Migrator::new(dir).await?;
    let mut rows = Vec::new();
    for m in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        let checksum: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
        rows.push(format!(
            "('{TEMPLATE}', {}, 'm{}', decode('{checksum}', 'hex'), 0)",
            m.version, m.version
        ));
    }
    dump.push_str(&format!(
        ";\nINSERT INTO _tenancy_test.migrations (tenant, version, description, checksum, \
         execution_ms) VALUES {};\n",
        rows.join(", ")
    ));
    Ok(dump)
}

/// The placeholder for the test tenant's name in the template's dump.
const TEMPLATE: &str = "__tenancy_template__";

async fn one_test(
    ctx: &Ctx,
    variant: Variant,
    dir: &Path,
    migrator: &Migrator,
    url: &str,
    dump: Option<&str>,
    seq: usize,
) -> BoxResult<()> {
    match variant {
        Variant::Sqlx => sqlx_test(&ctx.admin, &ctx.options, migrator, seq).await,
        Variant::Committed => {
            let pool = PgPoolOptions::new()
                .max_connections(TEST_POOL_CONNECTIONS)
                .connect_with(ctx.options.clone())
                .await?;
            let test = TestTenant::create(pool.clone(), dir, "bench::committed").await?;
            test.drop_tenant().await.map_err(|(_, e)| e)?;
            pool.close().await;
            Ok(())
        }
        Variant::Rollback => {
            let test = RollbackTenant::begin(url, dir, "bench::rollback", &[]).await?;
            test.rollback().await?;
            Ok(())
        }
        Variant::Clone => {
            let name = format!("t_bench_clone_{}_{seq}", std::process::id());
            let batch = format!(
                "INSERT INTO _tenancy_test.tenants (name) VALUES ('{name}');\n{}",
                dump.expect("the clone variant runs with a dump")
                    .replace(TEMPLATE, &name)
            );
            let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
            let mut tx = pool.begin().await?;
            sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(&mut *tx)
                .await?;
            tx.rollback().await?;
            pool.close().await;
            Ok(())
        }
    }
}

/// One `#[sqlx::test]`'s setup and teardown (see the module documentation).
async fn sqlx_test(
    master: &PgPool,
    options: &PgConnectOptions,
    migrator: &Migrator,
    seq: usize,
) -> BoxResult<()> {
    let db_name = format!("_sqlx_test_bench_{}_{seq}", std::process::id());
    let mut conn = master.acquire().await?;
    conn.execute(AssertSqlSafe(format!(
        "select pg_advisory_xact_lock(8318549251334697844);
        create schema if not exists {SQLX_REGISTRY};
        create table if not exists {SQLX_REGISTRY}.databases (
            db_name text primary key,
            test_path text not null,
            created_at timestamptz not null default now()
        );
        create index if not exists databases_created_at
            on {SQLX_REGISTRY}.databases(created_at);
        create sequence if not exists {SQLX_REGISTRY}.database_ids;"
    )))
    .await?;
    cleanup(&mut conn, &db_name).await?;
    sqlx::query(AssertSqlSafe(format!(
        "insert into {SQLX_REGISTRY}.databases(db_name, test_path) values ($1, $2)"
    )))
    .bind(&db_name)
    .bind("bench::sqlx_test")
    .execute(&mut *conn)
    .await?;
    conn.execute(AssertSqlSafe(format!("create database {db_name:?}")))
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .idle_timeout(Some(Duration::from_secs(1)))
        .connect_with(options.clone().database(&db_name))
        .await?;
    let migrated = migrator.run(&pool).await;
    pool.close().await;
    cleanup(&mut conn, &db_name).await?;
    migrated?;
    Ok(())
}

async fn cleanup(conn: &mut sqlx::PgConnection, db_name: &str) -> BoxResult<()> {
    conn.execute(AssertSqlSafe(format!(
        "drop database if exists {db_name:?};"
    )))
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "delete from {SQLX_REGISTRY}.databases where db_name = $1::text"
    )))
    .bind(db_name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `url` with its database replaced by `database`.
fn database_url(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    format!("{base}/{database}{query}")
}

/// Writes a history of `n` PostgreSQL migrations to `dir`: the examples' `guards` first, then
/// a mix of what an application's history holds (new tables with indexes, added columns, a
/// view, a function with its trigger), each one a file `<version>_<name>.sql`.
fn write_history(dir: &Path, n: usize) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let first = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/tenant/1_guards.sql"
    ))?;
    std::fs::write(dir.join("1_guards.sql"), first)?;
    for v in 2..=n {
        let sql = match v % 5 {
            0 => format!(
                "CREATE TABLE items_{v} (\n    id bigserial PRIMARY KEY,\n    guard_id bigint \
                 NOT NULL REFERENCES guards (id),\n    label text NOT NULL,\n    amount \
                 numeric(12, 2) NOT NULL DEFAULT 0,\n    created_at timestamptz NOT NULL \
                 DEFAULT now()\n);\nCREATE INDEX items_{v}_guard ON items_{v} (guard_id);\n"
            ),
            1 => format!("ALTER TABLE guards ADD COLUMN note_{v} text;\n"),
            2 => format!(
                "CREATE INDEX guards_name_{v} ON guards (lower(name)) WHERE position <> \
                 'x{v}';\n"
            ),
            3 => format!(
                "CREATE OR REPLACE VIEW roster_{v} AS SELECT id, name, position FROM guards \
                 WHERE position <> 'retired';\n"
            ),
            _ => format!(
                "CREATE FUNCTION audit_{v}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    \
                 NEW.updated_at := clock_timestamp();\n    RETURN NEW;\nEND\n$$;\nCREATE \
                 TRIGGER audit_{v} BEFORE UPDATE ON guards FOR EACH ROW EXECUTE FUNCTION \
                 audit_{v}();\n"
            ),
        };
        std::fs::write(dir.join(format!("{v}_step_{v}.sql")), sql)?;
    }
    Ok(())
}
