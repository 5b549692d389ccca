//! Workload 2: random point lookups (`Guard::find`) spread over 1, 100 and 1,000 tenants on a
//! pool of a few connections, and the statement strategies for many tenants:
//!
//! - the library on a default pool (persistent prepared statements, sqlx's per-connection LRU
//!   cache of 100, keyed by SQL text: one entry per tenant and statement);
//! - the library on the pool the README tells users to build (`tenancy::postgres::PoolSettings` with the
//!   expected tenants and models: a statement cache for every tenant, connections retired
//!   after 10 minutes);
//! - the same SQL hand-written with `.persistent(false)` (the unnamed statement: parse and
//!   describe on every call, nothing cached) on a default pool.

use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::AssertSqlSafe;
use tenancy::internals as sql;
use tenancy::postgres::PoolSettings;
use tenancy::{Tenant, TenantModel};

use crate::common::*;
use crate::method::paired;
use crate::report::{Row, Target};

const ROWS_PER_TENANT: i32 = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    Library,
    Unnamed,
}

struct Variant {
    label: String,
    strategy: Strategy,
    pool: PgPool,
}

/// `total` lookups by `POOL_SIZE` tasks over the first `n` tenants; lookups per second.
async fn lookups(
    pool: &PgPool,
    strategy: Strategy,
    tenants: &Arc<Vec<Tenant>>,
    sqls: &Arc<Vec<&'static str>>,
    n: usize,
    total: usize,
    seed: u64,
) -> BoxResult<f64> {
    let tasks = POOL_SIZE as usize;
    let per_task = total / tasks;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let pool = pool.clone();
        let tenants = Arc::clone(tenants);
        let sqls = Arc::clone(sqls);
        set.spawn(async move {
            let mut rng = Rng::new(seed ^ (task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..per_task {
                let t = rng.below(n);
                let id = 1 + rng.below(ROWS_PER_TENANT as usize) as i64;
                match strategy {
                    Strategy::Library => {
                        let found = Guard::find(&pool, &tenants[t], id).await?;
                        assert!(found.is_some());
                    }
                    Strategy::Unnamed => {
                        let found: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(sqls[t]))
                            .bind(id)
                            .persistent(false)
                            .fetch_optional(&pool)
                            .await?;
                        assert!(found.is_some());
                    }
                }
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok((per_task * tasks) as f64 / start.elapsed().as_secs_f64())
}

/// Runs 6 lookups per tenant on every connection of `pool` (each connection held by one task).
async fn warm(
    pool: &PgPool,
    strategy: Strategy,
    tenants: &Arc<Vec<Tenant>>,
    sqls: &Arc<Vec<&'static str>>,
    n: usize,
) -> BoxResult<()> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..POOL_SIZE {
        let mut conn = pool.acquire().await?;
        let tenants = Arc::clone(tenants);
        let sqls = Arc::clone(sqls);
        set.spawn(async move {
            for round in 0..6 {
                for t in 0..n {
                    let id = 1 + ((t + round) % ROWS_PER_TENANT as usize) as i64;
                    match strategy {
                        Strategy::Library => {
                            Guard::find(&mut *conn, &tenants[t], id).await?;
                        }
                        Strategy::Unnamed => {
                            let _: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(sqls[t]))
                                .bind(id)
                                .persistent(false)
                                .fetch_optional(&mut *conn)
                                .await?;
                        }
                    }
                }
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// `VmRSS` and `RssAnon` (kB), summed over the server processes of all of the pool's
/// connections (held at once, so each is a different one), from `/proc` (the server runs on
/// this machine). `None` if they cannot be read.
async fn backend_rss(pool: &PgPool) -> Option<(u64, u64)> {
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.ok()?);
    }
    let (mut rss, mut anon) = (0, 0);
    for conn in &mut held {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        rss += kb("VmRSS:")?;
        anon += kb("RssAnon:")?;
    }
    Some((rss, anon))
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let sizes: [usize; 3] = if ctx.quick { [1, 3, 5] } else { [1, 100, 1000] };
    let max = sizes[2];
    let names = ctx.guard_tenants("lk", max, ROWS_PER_TENANT).await?;
    let result = measure(ctx, &names, &sizes).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure(ctx: &mut Ctx, names: &[String], sizes: &[usize; 3]) -> BoxResult<()> {
    let (total, reps) = if ctx.quick { (400, 1) } else { (2_000, 25) };
    let max = sizes[2];
    let settings = PoolSettings::new()
        .expected_tenants(max)
        .models(1)
        .max_connections(POOL_SIZE);
    let capacity = settings.statement_cache_capacity();
    let tenants: Arc<Vec<Tenant>> =
        Arc::new(names.iter().map(Tenant::new).collect::<Result<_, _>>()?);
    let sqls: Arc<Vec<&'static str>> = Arc::new(
        tenants
            .iter()
            .map(|t| leak(sql::select_by_pk::<Guard>(t)))
            .collect(),
    );
    let fresh = || {
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(ctx.options.clone())
    };
    let variants = [
        Variant {
            label: "library, default pool (statement cache 100)".into(),
            strategy: Strategy::Library,
            pool: fresh().await?,
        },
        Variant {
            label: format!(
                "library, PoolSettings::new().expected_tenants({max}).models(1) (statement cache {capacity})"
            ),
            strategy: Strategy::Library,
            pool: settings
                .pool_options()
                .connect_with(settings.connect_options(ctx.options.clone()))
                .await?,
        },
        Variant {
            label: "same SQL, .persistent(false) (unnamed statements)".into(),
            strategy: Strategy::Unnamed,
            pool: fresh().await?,
        },
    ];
    println!(
        "  {total} lookups per measurement by {POOL_SIZE} tasks, {ROWS_PER_TENANT} rows per \
         tenant; {reps} repetitions, each measuring every variant's four cells back to back"
    );
    // rates[size][variant], and the 1-tenant cell of each variant measured twice: the A/A
    // control (size index 3).
    let mut rates = vec![vec![Vec::new(); variants.len()]; sizes.len() + 1];
    // Warm every connection on every tenant: 6 lookups each, so PostgreSQL has settled on the
    // generic plan of every cached statement (it plans the first 5 executions).
    for v in &variants {
        warm(&v.pool, v.strategy, &tenants, &sqls, max).await?;
    }
    // Per repetition, each variant's cells (1, 100, 1,000 tenants, 1 tenant again) back to
    // back, so a variant's ratios compare measurements seconds apart; the order of variants
    // and of cells rotating.
    for rep in 0..reps {
        for k in 0..variants.len() {
            let vi = (k + rep) % variants.len();
            let v = &variants[vi];
            for j in 0..=sizes.len() {
                let si = (j + rep) % (sizes.len() + 1);
                let n = if si == sizes.len() {
                    sizes[0]
                } else {
                    sizes[si]
                };
                if vi == 0 && n <= 100 {
                    // Re-warm what a run over more tenants evicted from the default cache.
                    warm(&v.pool, v.strategy, &tenants, &sqls, n).await?;
                }
                let seed = 1000 + (si * 10 + rep) as u64;
                let rate = lookups(&v.pool, v.strategy, &tenants, &sqls, n, total, seed).await?;
                rates[si][vi].push(rate);
            }
        }
    }
    // Server-side reference: the same lookups by one PL/pgSQL loop, no client, no network.
    let mut server = vec![Vec::new(); sizes.len()];
    for rep in 0..reps.min(5) {
        for k in 0..sizes.len() {
            let si = (k + rep) % sizes.len();
            let rate = ctx
                .server
                .lookups(names, sizes[si], total, ROWS_PER_TENANT)
                .await?;
            server[si].push(rate);
        }
    }
    let server: Vec<f64> = server.iter_mut().map(|r| median(r)).collect();
    ctx.out.note(format!(
        "server-side reference (one PL/pgSQL loop, EXECUTE, no client): {} lookups/s at 1 tenant, \
         {} at {} ({:.3}), {} at {} ({:.3})",
        thousands(server[0] as u64),
        thousands(server[1] as u64),
        sizes[1],
        server[1] / server[0],
        thousands(server[2] as u64),
        sizes[2],
        server[2] / server[0],
    ));
    let med: Vec<Vec<f64>> = rates
        .iter()
        .map(|per_v| per_v.iter().map(|r| median(&mut r.clone())).collect())
        .collect();
    // Each variant against its own 1-tenant rate, per repetition (median of the per-repetition
    // ratios), gated by its own 1-tenant rate measured twice. The target (issue 27: lookups
    // over 1,000 tenants with the README's pool at >= 0.90 of one tenant) is on 2b.
    for (vi, v) in variants.iter().enumerate() {
        let code = ["2", "2b", "2c"][vi];
        let target = if vi == 1 {
            Target::AtLeast(0.90)
        } else {
            Target::None
        };
        let aa = paired(&rates[sizes.len()][vi], &rates[0][vi]).0;
        for (si, &n) in sizes.iter().enumerate().skip(1) {
            let (ratio, interval) = paired(&rates[si][vi], &rates[0][vi]);
            ctx.out.row(
                Row::new(
                    format!("{code} lookups over {n} tenants: {}", v.label),
                    fmt_rate(med[si][vi]),
                    format!("{} (the same pool, 1 tenant)", fmt_rate(med[0][vi])),
                    Some(ratio),
                    target,
                )
                .interval(interval)
                .aa(aa),
            );
        }
    }
    let mut memory = Vec::new();
    for v in &variants {
        if let Some((rss, anon)) = backend_rss(&v.pool).await {
            memory.push(format!(
                "{}: {:.1} MB RSS, {:.1} MB private",
                ["2", "2b", "2c"][memory.len()],
                rss as f64 / 1e3 / f64::from(POOL_SIZE),
                anon as f64 / 1e3 / f64::from(POOL_SIZE),
            ));
        }
        v.pool.close().await;
    }
    if !memory.is_empty() {
        ctx.out.note(format!(
            "server process of a connection after {max} tenants, average of the {POOL_SIZE}: {}",
            memory.join("; ")
        ));
    }
    Ok(())
}
