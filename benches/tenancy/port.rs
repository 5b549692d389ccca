//! Workload 28: a tenant of 1,000,000 `guards` rows moved to another PostgreSQL database with
//! `Tenants::export` piped into `Tenants::import` (one process, two tasks, a 64 KiB pipe
//! between them) vs
//! `pg_dump --schema=<tenant> | psql` into that database (the server's own COPY streams).
//!
//! Both variants run in rounds with rotating order, the baseline twice (the A/A control); each
//! round's copy is checked to hold the source's row count and dropped before the next. The
//! process's peak resident set is reset (`/proc/self/clear_refs`) before each tenancy round and
//! read after it: memory stays flat if it does not grow with the rows.

use std::process::Stdio;
use std::time::Instant;

use sqlx::{AssertSqlSafe, PgPool};
use tenancy::Tenants;

use crate::common::*;
use crate::method::Rounds;
use crate::report::Target;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `pg_dump | psql`.
    Baseline,
    /// The baseline again: the A/A control.
    BaselineAgain,
    ExportImport,
}

const VARIANTS: [Variant; 3] = [
    Variant::Baseline,
    Variant::BaselineAgain,
    Variant::ExportImport,
];

/// `url` (a libpq URL) pointing at database `database`.
fn url_of(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = match main.rsplit_once('/') {
        Some((p, _)) if p.contains("://") && p.len() > p.find("://").unwrap_or(0) + 3 => p,
        _ => main,
    };
    format!("{prefix}/{database}{query}")
}

/// `pg_dump --schema=<schema> <from> | psql <to>`; an error if either fails.
async fn dump_and_restore(from: &str, to: &str, schema: &str) -> BoxResult<()> {
    let mut dump = tokio::process::Command::new("pg_dump")
        .args([
            "--no-owner",
            "--no-privileges",
            "--schema",
            schema,
            "--dbname",
            from,
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout: Stdio = dump
        .stdout
        .take()
        .ok_or("pg_dump has no stdout")?
        .try_into()?;
    let restore = tokio::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", to])
        .stdin(stdout)
        .stdout(Stdio::null())
        .status();
    let (dumped, restored) = tokio::join!(dump.wait(), restore);
    if !dumped?.success() || !restored?.success() {
        return Err("pg_dump | psql failed".into());
    }
    Ok(())
}

async fn count(pool: &PgPool, schema: &str) -> BoxResult<i64> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.guards",
        quote_ident(schema)
    )))
    .fetch_one(pool)
    .await?)
}

/// Resets this process's peak resident set to its current one (Linux 4.0 and later), so
/// that `VmHWM` read afterwards is the peak since now.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    for tool in ["pg_dump", "psql"] {
        if std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_err()
        {
            ctx.out.note(format!("skipped: {tool} is not installed"));
            return Ok(());
        }
    }
    let rows: i32 = if ctx.quick { 1_000 } else { 1_000_000 };
    let rounds = if ctx.quick { 1 } else { 5 };
    let registry = ctx.registry_name();
    let source = Tenants::new(ctx.pool.clone(), guards_migrator())?.with_registry(&registry)?;
    let name = ctx.names("src", 1).remove(0);
    source.create(&name).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {s}.guards (name, position) \
         SELECT 'guard ' || i, CASE WHEN i % 2 = 0 THEN 'Guard' ELSE 'Captain' END \
         FROM generate_series(1, {rows}) i",
        s = quote_ident(&name)
    )))
    .execute(&ctx.pool)
    .await?;
    let vacuum = format!("VACUUM ANALYZE {}.guards", quote_ident(&name));
    sqlx::raw_sql(AssertSqlSafe(vacuum))
        .execute(&ctx.pool)
        .await?;

    // The other database, and a handle on it with the same migrations and registry name.
    let target_db = format!("{}_to", ctx.database);
    ctx.cleanup.create_database(&ctx.admin, &target_db).await?;
    let target_options = ctx.options.clone().database(&target_db);
    let target_pool = pool_with(&target_options, 4).await?;
    let target = Tenants::new(target_pool.clone(), guards_migrator())?.with_registry(&registry)?;
    let (from_url, to_url) = (
        url_of(&ctx.url, &ctx.database),
        url_of(&ctx.url, &target_db),
    );
    println!(
        "  tenant {name}: {} rows; {rounds} rounds, each variant copies it once a round into \
         database {target_db} (order rotating), dropped before the next",
        thousands(rows as u64)
    );

    let mut times = Rounds::new(VARIANTS.len());
    let mut peaks = Vec::new();
    let mut result = Ok(());
    'rounds: for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let start = Instant::now();
            let made: BoxResult<()> = match VARIANTS[vi] {
                Variant::ExportImport => {
                    let reset = reset_peak();
                    let before = proc_status("VmRSS");
                    let (writer, reader) = tokio::io::duplex(64 * 1024);
                    // Two tasks, as the two ends of a shell pipe are two processes.
                    let (from, n) = (source.clone(), name.clone());
                    let export = tokio::spawn(async move { from.export(&n, writer).await });
                    let imported = target
                        .import(tokio::io::BufReader::new(reader), &name)
                        .await;
                    let exported = export.await?;
                    if reset {
                        peaks.push((vm_hwm_kb(), vm_hwm_kb().saturating_sub(before)));
                    }
                    exported
                        .map(drop)
                        .and(imported.map(drop))
                        .map_err(Into::into)
                }
                _ => dump_and_restore(&from_url, &to_url, &name).await,
            };
            times.push(vi, start.elapsed().as_secs_f64());
            let counted = match made {
                Ok(()) => count(&target_pool, &name).await,
                Err(e) => Err(e),
            };
            match VARIANTS[vi] {
                Variant::ExportImport => drop(target.drop(&name).await),
                _ => {
                    let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&name));
                    sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&target_pool)
                        .await?;
                }
            }
            match counted {
                Ok(n) if n == i64::from(rows) => {}
                Ok(n) => {
                    result = Err(format!("the copy holds {n} rows, not {rows}").into());
                    break 'rounds;
                }
                Err(e) => {
                    result = Err(e);
                    break 'rounds;
                }
            }
        }
    }
    target_pool.close().await;
    ctx.cleanup.drop_database(&ctx.admin, &target_db).await?;
    source.drop(&name).await?;
    ctx.cleanup.drop_schemas(&ctx.pool, &[registry]).await?;
    result?;
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    ctx.out.row(times.row(
        format!(
            "28 a tenant of {} rows to another database: export | import",
            thousands(rows as u64)
        ),
        at(Variant::ExportImport),
        at(Variant::Baseline),
        Some(at(Variant::BaselineAgain)),
        "pg_dump --schema | psql",
        Target::AtMost(1.0),
    ));
    // The peak counts what the process held before the round too (other workloads' memory
    // when several run in one process), so the growth during the round is given beside it.
    let peak = peaks.iter().copied().max().map_or_else(
        || "not read (no /proc/self/clear_refs)".to_owned(),
        |(kb, grew)| {
            format!(
                "{:.1} MB, {:.1} MB above its resident set before the round",
                kb as f64 / 1e3,
                grew as f64 / 1e3
            )
        },
    );
    ctx.out.note(format!(
        "{rounds} rounds of one copy per variant; ratios are medians of the per-round ratios \
         (<= 1.00x: at least as fast as pg_dump | psql); this process's peak resident set during \
         an export | import round: {peak}"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_points_at_another_database() {
        assert_eq!(
            super::url_of("postgres://u@h:5432/test?sslmode=disable", "b"),
            "postgres://u@h:5432/b?sslmode=disable"
        );
        assert_eq!(
            super::url_of("postgres://u@h/test", "b"),
            "postgres://u@h/b"
        );
    }
}
