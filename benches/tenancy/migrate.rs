//! Workloads 4, 5 and 6: `migrate_all` with nothing pending over 1,000 and 10,000 tenants;
//! with one pending `ALTER TABLE … ADD COLUMN` over 1,000 tenants vs the same ALTERs in one
//! server-side loop; and the peak memory of `migrate_all` over 10,000 tenants, measured in a
//! child process (this binary re-run with a hidden flag) so the parent's memory does not count.

use std::process::Command;
use std::time::Instant;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use tenancy::{MigrateOptions, Outcome, Tenant, Tenants};

use crate::common::*;
use crate::method::Rounds;
use crate::report::{Row, Target};

const LIMIT_1K: f64 = 0.5;
const LIMIT_10K: f64 = 3.0;
const LIMIT_MB: f64 = 100.0;

/// Workload 4. Baseline: the one catalog query a no-op run needs (`sql::lifecycle::behind`),
/// hand-written with sqlx on the same pool, runs interleaved with `migrate_all`'s.
pub async fn noop(ctx: &mut Ctx) -> BoxResult<()> {
    let (sizes, runs): ([usize; 2], usize) = if ctx.quick {
        ([5, 10], 3)
    } else {
        ([1000, 10_000], 9)
    };
    let all = example_migrations().await?;
    let ups = ups(&all);
    let versions: Vec<i64> = ups.iter().map(|m| m.version).collect();
    let checksums: Vec<Vec<u8>> = ups.iter().map(|m| m.checksum.to_vec()).collect();
    for (n, limit) in sizes.into_iter().zip([LIMIT_1K, LIMIT_10K]) {
        let pool = ctx.pool.clone();
        let fleet = ctx.fleet(n).await?;
        let tenants = fleet.tenants.clone();
        let behind = tenancy::internals::postgres_lifecycle::behind(&Tenant::new(&fleet.registry)?);
        let (mut lib, mut raw) = (Vec::new(), Vec::new());
        // The two sides alternate, and which one goes first alternates with every run.
        for run in 0..runs {
            for side in [run % 2, 1 - run % 2] {
                let start = Instant::now();
                if side == 0 {
                    let report = tenants.migrate_all(MigrateOptions::default()).await?;
                    lib.push(start.elapsed().as_secs_f64());
                    if report.up_to_date() != n || !report.is_success() {
                        return Err(
                            format!("no-op migrate_all over {n}: not all up to date").into()
                        );
                    }
                } else {
                    let rows: Vec<(String, bool)> = sqlx::query_as(AssertSqlSafe(behind.clone()))
                        .bind(&versions)
                        .bind(&checksums)
                        .fetch_all(&pool)
                        .await?;
                    raw.push(start.elapsed().as_secs_f64());
                    if rows.len() != n || rows.iter().any(|r| r.1) {
                        return Err("catalog query disagrees".into());
                    }
                }
            }
        }
        let spread = lib
            .iter()
            .map(|s| fmt_secs(*s))
            .collect::<Vec<_>>()
            .join(", ");
        let (lib, raw) = (median(&mut lib), median(&mut raw));
        ctx.out.row(
            Row::new(
                format!("4 migrate_all, nothing pending, {n} tenants (median of {runs} runs)"),
                fmt_secs(lib),
                format!("{} (its catalog query alone)", fmt_secs(raw)),
                Some(lib / raw),
                Target::Under(limit, "s"),
            )
            .value(lib),
        );
        ctx.out
            .note(format!("{n} tenants, migrate_all runs: {spread}"));
    }
    Ok(())
}

/// The example migrations plus `ALTER TABLE guards ADD COLUMN badge{v} text` for every
/// version 2..=`upto`.
pub async fn migrations_upto(upto: i64) -> BoxResult<Vec<Migration>> {
    let mut all = example_migrations().await?;
    for v in 2..=upto {
        all.push(Migration::new(
            v,
            format!("badge{v}").into(),
            MigrationType::Simple,
            AssertSqlSafe(format!("ALTER TABLE guards ADD COLUMN badge{v} text")).into_sql_str(),
            false,
        ));
    }
    Ok(all)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    Floor,
    /// The floor again, on a fleet of its own: the A/A control.
    FloorAgain,
    CommitEach,
    Library,
}

const PENDING_VARIANTS: [Pending; 4] = [
    Pending::Floor,
    Pending::FloorAgain,
    Pending::CommitEach,
    Pending::Library,
];

/// Workload 5. Each round adds one pending `ADD COLUMN` migration (version 2, 3, …) and every
/// variant applies it to its own fleet of tenants, in rotating order.
pub async fn pending(ctx: &mut Ctx) -> BoxResult<()> {
    let n = if ctx.quick { 5 } else { 1000 };
    let mut fleets = Vec::new();
    for v in PENDING_VARIANTS {
        let fleet = if v == Pending::Library {
            ctx.take_fleet(n).await
        } else {
            ctx.make_fleet(n).await
        };
        match fleet {
            Ok(f) => fleets.push(f),
            Err(e) => {
                for f in fleets {
                    ctx.drop_fleet(f).await?;
                }
                return Err(e);
            }
        }
    }
    let result = pending_measure(ctx, &fleets, n).await;
    for f in fleets {
        ctx.drop_fleet(f).await?;
    }
    result
}

async fn pending_variant(
    ctx: &mut Ctx,
    variant: Pending,
    fleet: &Fleet,
    version: i64,
) -> BoxResult<()> {
    let all = migrations_upto(version).await?;
    let ups: Vec<Migration> = ups(&all).into_iter().cloned().collect();
    let last = ups.last().expect("migrations");
    match variant {
        Pending::Floor | Pending::FloorAgain | Pending::CommitEach => {
            let apply = Apply {
                create_schema: false,
                ddl: last.sql.as_str(),
                registry: Some(&fleet.registry),
                migration: Some(last),
                guard_rows: 0,
            };
            if variant != Pending::CommitEach {
                ctx.server.apply(&fleet.names, &apply).await
            } else {
                ctx.server.apply_each(&fleet.names, &apply).await
            }
        }
        Pending::Library => {
            let handle = Tenants::new(ctx.pool.clone(), Migrator::with_migrations(all))?
                .with_registry(&fleet.registry)?;
            let report = handle.migrate_all(MigrateOptions::default()).await?;
            let migrated = report
                .tenants
                .iter()
                .filter(|t| matches!(&t.result, Ok(Outcome::Migrated(v)) if v == &[version]))
                .count();
            if migrated != fleet.names.len() {
                let first = report.failed().next().map(|(t, e)| format!("{t}: {e}"));
                return Err(format!("migrate_all migrated {migrated}; {first:?}").into());
            }
            Ok(())
        }
    }
}

async fn pending_measure(ctx: &mut Ctx, fleets: &[Fleet], n: usize) -> BoxResult<()> {
    let rounds = if ctx.quick { 1 } else { 7 };
    println!(
        "  {rounds} rounds; each adds one pending ADD COLUMN that every variant applies to its \
         own {n} tenants (order rotating)"
    );
    let mut times = Rounds::new(PENDING_VARIANTS.len());
    for round in 0..rounds {
        let version = 2 + round as i64;
        for k in 0..PENDING_VARIANTS.len() {
            let vi = (k + round) % PENDING_VARIANTS.len();
            let start = Instant::now();
            pending_variant(ctx, PENDING_VARIANTS[vi], &fleets[vi], version).await?;
            times.push(vi, start.elapsed().as_secs_f64());
        }
    }
    // Every variant's fleet must now be at the last version.
    for (vi, fleet) in fleets.iter().enumerate() {
        let versions: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {}.migrations GROUP BY tenant HAVING max(version) = $1",
            quote_ident(&fleet.registry)
        )))
        .bind(1 + rounds as i64)
        .fetch_all(&ctx.pool)
        .await?;
        if versions.len() != n {
            return Err(format!(
                "{:?}: {} of {n} tenants at version {}",
                PENDING_VARIANTS[vi],
                versions.len(),
                1 + rounds
            )
            .into());
        }
    }
    let at = |v: Pending| PENDING_VARIANTS.iter().position(|x| *x == v).unwrap();
    let rows = [
        (
            Pending::Library,
            format!("5 migrate_all, 1 pending ADD COLUMN, {n} tenants (concurrency {POOL_SIZE})"),
            Target::AtMost(2.0),
        ),
        (
            Pending::CommitEach,
            format!(
                "5b the same ALTERs, server-side loop, COMMIT per tenant (reference), {n} tenants"
            ),
            Target::None,
        ),
    ];
    for (v, label, target) in rows {
        ctx.out.row(times.row(
            label,
            at(v),
            at(Pending::Floor),
            Some(at(Pending::FloorAgain)),
            "floor: one server-side loop, one transaction",
            target,
        ));
    }
    ctx.out.note(format!(
        "{rounds} rounds; migrate_all per round: {}",
        times.each(at(Pending::Library))
    ));
    Ok(())
}

/// Workload 6: runs the child for a no-op and a one-pending `migrate_all` over one fleet.
pub async fn memory(ctx: &mut Ctx) -> BoxResult<()> {
    let n = if ctx.quick { 10 } else { 10_000 };
    let fleet = ctx.take_fleet(n).await?;
    let result = memory_measure(ctx, &fleet, n).await;
    ctx.drop_fleet(fleet).await?;
    result
}

async fn memory_measure(ctx: &mut Ctx, fleet: &Fleet, n: usize) -> BoxResult<()> {
    for mode in ["noop", "pending"] {
        let exe = std::env::current_exe()?;
        let (url, database) = (ctx.url.clone(), ctx.database.clone());
        let registry = fleet.registry.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(exe)
                .args(["--child-rss", &url, &database, &registry, mode])
                .output()
        })
        .await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "child ({mode}) failed: {}\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let line = stdout
            .lines()
            .find(|l| l.starts_with("CHILD "))
            .ok_or("child printed no result")?;
        let field = |key: &str| -> BoxResult<f64> {
            let v = line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("no {key} in {line:?}"))?;
            Ok(v.parse()?)
        };
        let (before_kb, peak_kb, secs) = (field("before_kb")?, field("peak_kb")?, field("secs")?);
        let peak_mb = peak_kb / 1024.0;
        let what = if mode == "noop" {
            "nothing pending"
        } else {
            "1 pending ADD COLUMN"
        };
        ctx.out.row(
            Row::new(
                format!(
                    "6{} peak RSS of migrate_all, {what}, {n} tenants",
                    if mode == "noop" { "" } else { "b" }
                ),
                format!("{peak_mb:.1} MB"),
                format!("{:.1} MB (before the call)", before_kb / 1024.0),
                Some(peak_kb / before_kb),
                Target::Under(LIMIT_MB, "MB"),
            )
            .value(peak_mb),
        );
        ctx.out.note(format!(
            "{mode}: child VmHWM {:.1} MB before migrate_all (runtime + pool), {peak_mb:.1} MB after; the run took {}",
            before_kb / 1024.0,
            fmt_secs(secs)
        ));
    }
    Ok(())
}

/// The child of workload 6: `--child-rss <url> <database> <registry> <noop|pending>`. Prints one line
/// `CHILD before_kb=… peak_kb=… secs=… tenants=…`.
pub fn child_main(args: &[String]) -> i32 {
    let [url, database, registry, mode] = args else {
        eprintln!("usage: --child-rss <url> <database> <registry> <noop|pending>");
        return 2;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result: BoxResult<()> = rt.block_on(async {
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()?
            .database(database);
        let pool = pool_with(&options, POOL_SIZE).await?;
        let migrations = if mode == "pending" {
            v2_migrations().await?
        } else {
            example_migrations().await?
        };
        let tenants = Tenants::new(pool.clone(), Migrator::with_migrations(migrations))?
            .with_registry(registry)?;
        // Open every connection first, so the baseline includes the whole pool.
        let mut held = Vec::new();
        for _ in 0..POOL_SIZE {
            held.push(pool.acquire().await?);
        }
        drop(held);
        let before = vm_hwm_kb();
        let start = Instant::now();
        let report = tenants.migrate_all(MigrateOptions::default()).await?;
        let secs = start.elapsed().as_secs_f64();
        let peak = vm_hwm_kb();
        if !report.is_success() {
            return Err("migrate_all failed for some tenants".into());
        }
        println!(
            "CHILD before_kb={before} peak_kb={peak} secs={secs:.3} tenants={}",
            report.tenants.len()
        );
        pool.close().await;
        Ok(())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child: {e}");
            1
        }
    }
}
