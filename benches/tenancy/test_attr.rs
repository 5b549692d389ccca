//! Workload 13: what one `#[tenancy::test]` costs in setup and teardown against one
//! `#[sqlx::test]`, each run exactly as its attribute expands for a test with an empty body,
//! with the same migrations, in the same run:
//!
//! - **`#[sqlx::test(migrations = …)]`**: `sqlx::testing::TestFn::run_test(f, args)` with
//!   `f: fn(PgPool) -> _`, which is sqlx 0.9's expansion (`sqlx-macros-core/src/test_attr.rs`):
//!   a current-thread runtime; on its master pool (the database of `DATABASE_URL`) the
//!   advisory-locked bookkeeping of `_sqlx_test` and `CREATE DATABASE`; sqlx's migrator on
//!   the new database (its `_sqlx_migrations` table, a transaction per migration); the test's
//!   pool closed, `DROP DATABASE`. The only difference from a compiled `#[sqlx::test]`: the
//!   macro embeds the migrations at compile time, here they are read from the folder once,
//!   before the timing.
//! - **`#[tenancy::test(migrations = …)]`**: `tenancy::testing::__run::<Postgres, _, _>`, the
//!   attribute's expansion: a current-thread runtime, a pool of up to 4 connections,
//!   `TestTenant` created (the migrations folder read, one round trip creating and migrating
//!   the tenant in the test registry), dropped after the body.
//! - **`#[tenancy::test(rollback, …)]`**: `tenancy::testing::__run_rollback`: one connection,
//!   `BEGIN`, the same create batch inside the transaction, `ROLLBACK`.
//!
//! `#[sqlx::test]` runs twice per round (the A/A control). Sequential, one test at a time
//! (`cargo test` runs several at once, which this does not measure), for the example
//! migrations (1) and a generated history of 60 (tables, columns, indexes, a view, a function
//! and a trigger, in the proportions of an app's history). Both attributes read
//! `DATABASE_URL`, so this workload needs it set.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::migrate::Migrator;
use sqlx::testing::{TestArgs, TestFn};
use sqlx::PgPool;

use crate::common::*;
use crate::method::Rounds;
use crate::report::Target;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Sqlx,
    /// `#[sqlx::test]` again: the A/A control.
    SqlxAgain,
    Committed,
    Rollback,
}

const VARIANTS: [Variant; 4] = [
    Variant::Sqlx,
    Variant::SqlxAgain,
    Variant::Committed,
    Variant::Rollback,
];

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    if std::env::var("DATABASE_URL").map_or(true, |u| u.trim().is_empty()) {
        return Err(
            "workload 13 needs DATABASE_URL: #[sqlx::test] and #[tenancy::test] both read it"
                .into(),
        );
    }
    let n = if ctx.quick { 1 } else { 20 };
    let examples = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/tenant"
    ));
    let long = std::env::temp_dir().join(format!("tenancy-bench-60-{}", std::process::id()));
    write_history(&long, 60)?;
    let result = async {
        measure(ctx, "1 migration (the example's)", &examples, n).await?;
        measure(ctx, "60 migrations", &long, n).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&long);
    result
}

/// `n` tests of each variant with the migrations of `dir`, in rounds of rotating order.
async fn measure(ctx: &mut Ctx, label: &str, dir: &Path, n: usize) -> BoxResult<()> {
    // `#[sqlx::test]` takes a `&'static Migrator` (the macro's `sqlx::migrate!` is a static).
    let migrator: &'static Migrator = Box::leak(Box::new(Migrator::new(dir).await?));
    let dir = dir.to_str().ok_or("the migrations folder is not UTF-8")?;
    let dir: &'static str = leak(dir.to_owned());
    // One test per variant and round: the most rounds, for the median of their ratios.
    let (rounds, per_round) = (n, 1);
    println!(
        "  {label}: one unrecorded test per variant, then {rounds} rounds of {per_round} tests \
         per variant (order rotating), sequential"
    );
    for v in VARIANTS {
        one_test(v, dir, migrator).await?;
    }
    let mut times = Rounds::new(VARIANTS.len());
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let start = Instant::now();
            for _ in 0..per_round {
                one_test(VARIANTS[vi], dir, migrator).await?;
            }
            times.push(vi, start.elapsed().as_secs_f64() / per_round as f64);
        }
    }
    for (v, mode) in [
        (Variant::Committed, "#[tenancy::test]"),
        (Variant::Rollback, "#[tenancy::test(rollback)]"),
    ] {
        let mut row = times.row(
            format!("13 setup + teardown, {label}: {mode}"),
            v as usize,
            Variant::Sqlx as usize,
            Some(Variant::SqlxAgain as usize),
            "#[sqlx::test], its expansion run as is",
            Target::AtMost(0.5),
        );
        // Per test, not the sum of the rounds.
        let per_test = |v: Variant| fmt_secs(times.total(v as usize) / rounds as f64);
        row.measured = format!("{} per test", per_test(v));
        row.baseline = format!(
            "{} per test (#[sqlx::test], its expansion run as is)",
            per_test(Variant::Sqlx)
        );
        ctx.out.row(row);
    }
    Ok(())
}

/// One test of `variant` with an empty body, as its attribute expands, on a thread of its own
/// (each builds its own runtime, as a `#[test]` function does).
async fn one_test(
    variant: Variant,
    dir: &'static str,
    migrator: &'static Migrator,
) -> BoxResult<()> {
    let test = move || match variant {
        Variant::Sqlx | Variant::SqlxAgain => {
            let mut args = TestArgs::new("tenancy_bench::test_attr::sqlx_test");
            args.migrator(migrator);
            let f: fn(PgPool) -> _ = empty_body;
            TestFn::run_test(f, args);
        }
        Variant::Committed => tenancy::testing::__run::<sqlx::Postgres, _, _>(
            "tenancy_bench::test_attr::committed",
            dir,
            &[],
            false,
            |_: &tenancy::testing::TestTenant<sqlx::Postgres>| async {},
        ),
        Variant::Rollback => tenancy::postgres::__run_rollback(
            "tenancy_bench::test_attr::rollback",
            dir,
            &[],
            |_: &mut tenancy::postgres::RollbackTenant| Box::pin(async {}),
        ),
    };
    tokio::task::spawn_blocking(move || std::thread::spawn(test).join())
        .await?
        .map_err(|_| format!("a {variant:?} test panicked (its message is above)"))?;
    Ok(())
}

async fn empty_body(pool: PgPool) {
    drop(pool);
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
