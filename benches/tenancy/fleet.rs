//! Workload 31: `Fleet::move_tenant` of a tenant of 1,000,000 `guards` rows between two
//! PostgreSQL databases (the workload's and `<it>_to`, on one server) while 8 tasks insert rows
//! for it through `&fleet` (an insert that fails with `Error::UnknownTenant`, because the tenant
//! moved under it, forgets its route and is sent again), against the floor of its copy: the
//! same tenant's `export` piped into `import` on the other database (two tasks, a 256 KiB
//! pipe, as the move's), timed alone, twice (the second the A/A control, order rotating); each
//! floor copy is dropped untimed. Each round moves the tenant to the other database. Each
//! insert's latency before and during the move is reported (its pause: the move holds the
//! tenant's writes for the whole copy); afterwards every acknowledged insert must be in the
//! tenant's new database exactly once, with every seeded row, and none in the old: a failed
//! check fails the run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool};
use tenancy::{Error, Lifecycle, Tenant, TenantModel, Tenants};

use crate::common::*;
use crate::method::Rounds;
use crate::report::Target;
use crate::tiers::spread_text;

/// Tasks inserting for the tenant being moved.
const WRITERS: usize = 8;

/// One insert: its name, when it started and ended (seconds from the round's start), whether
/// it was acknowledged.
struct Write {
    name: String,
    start: f64,
    end: f64,
    acked: bool,
}

/// Inserts `Guard`s named `<prefix>-<i>` for `tenant` through `fleet` until `stop`; an
/// `UnknownTenant` (the tenant moved under it) forgets the route and sends the same row again.
async fn writer(
    fleet: tenancy::Fleet,
    tenant: Tenant,
    prefix: String,
    stop: Arc<AtomicBool>,
    origin: Instant,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("{prefix}-{i}");
        i += 1;
        let start = origin.elapsed().as_secs_f64();
        let acked = loop {
            match Guard::new(&name, "Guard").insert(&fleet, &tenant).await {
                Ok(_) => break true,
                Err(Error::UnknownTenant { .. }) => {
                    fleet.forget_route(&tenant);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(_) => break false,
            }
        };
        writes.push(Write {
            name,
            start,
            end: origin.elapsed().as_secs_f64(),
            acked,
        });
    }
    writes
}

/// `export | import` of `name` from `from` into `to` under a scratch name (dropped after):
/// seconds.
async fn floor(from: &Tenants, to: &Tenants, name: &str, scratch: &str) -> BoxResult<f64> {
    let start = Instant::now();
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (source, n) = (from.clone(), name.to_owned());
    let export = tokio::spawn(async move { source.export(&n, writer).await });
    let imported = to.import(tokio::io::BufReader::new(reader), scratch).await;
    export.await??;
    imported?;
    let secs = start.elapsed().as_secs_f64();
    to.drop(scratch).await?;
    Ok(secs)
}

/// How many times each name starting with `w` is in `schema`.guards on `pool`, and the rows
/// named `guard %`; `None` if there is no such schema.
async fn stored(pool: &PgPool, schema: &str) -> BoxResult<Option<(HashMap<String, i64>, i64)>> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(None);
    }
    let s = quote_ident(schema);
    let counts: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT name, count(*) FROM {s}.guards WHERE name LIKE 'w%' GROUP BY name"
    )))
    .fetch_all(pool)
    .await?;
    let seeded: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {s}.guards WHERE name LIKE 'guard %'"
    )))
    .fetch_one(pool)
    .await?;
    Ok(Some((counts.into_iter().collect(), seeded)))
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let rows: i64 = if ctx.quick { 1_000 } else { 1_000_000 };
    let (rounds, before, after) = if ctx.quick {
        (1, 0.2, 0.1)
    } else {
        (4, 1.0, 0.5)
    };
    let registry = ctx.registry_name();
    let handle = |pool: &PgPool| -> BoxResult<Tenants> {
        Ok(Tenants::new(pool.clone(), guards_migrator())?.with_registry(&registry)?)
    };
    let other_db = format!("{}_to", ctx.database);
    ctx.cleanup.create_database(&ctx.admin, &other_db).await?;
    let other_pool = pool_with(&ctx.options.clone().database(&other_db), 8).await?;
    let home_pool = pool_with(&ctx.options, 8).await?;
    let pools = [home_pool.clone(), other_pool.clone()];
    let names = ["home", "other"];
    let handles = [handle(&home_pool)?, handle(&other_pool)?];
    let fleet = tenancy::Fleet::new([
        (names[0], handles[0].clone()),
        (names[1], handles[1].clone()),
    ])
    .await?;
    let name = ctx.names("mv", 1).remove(0);
    let tenant = fleet.create_on(&name, "home").await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {s}.guards (name, position) \
         SELECT 'guard ' || i, CASE WHEN i % 2 = 0 THEN 'Guard' ELSE 'Captain' END \
         FROM generate_series(1, {rows}) i",
        s = quote_ident(&name)
    )))
    .execute(&home_pool)
    .await?;
    let vacuum = format!("VACUUM ANALYZE {}.guards", quote_ident(&name));
    sqlx::raw_sql(AssertSqlSafe(vacuum))
        .execute(&home_pool)
        .await?;
    println!(
        "  tenant {name}: {} rows; {rounds} rounds, each moving it to the other database while \
         {WRITERS} tasks insert for it ({before} s before, {after} s after), after 2 floor copies",
        thousands(rows as u64)
    );
    // Variants: the move, the floor, the floor again.
    let mut times = Rounds::new(3);
    let (mut during, mut steady, mut held) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0;
    for round in 0..rounds {
        let to = 1 - at;
        for k in 0..2 {
            let which = 1 + (k + round) % 2;
            let secs = floor(&handles[at], &handles[to], &name, &format!("{name}_f")).await?;
            times.push(which, secs);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let origin = Instant::now();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    fleet.clone(),
                    tenant.clone(),
                    format!("w{round}-{w}"),
                    Arc::clone(&stop),
                    origin,
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(before)).await;
        let m0 = origin.elapsed().as_secs_f64();
        let moved = fleet.move_tenant(&name, names[to]).await;
        let m1 = origin.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(after)).await;
        stop.store(true, Ordering::Relaxed);
        let mut writes = Vec::new();
        for w in writers {
            writes.extend(w.await?);
        }
        let moved = moved?;
        times.push(0, m1 - m0);
        held.push(moved.held.as_secs_f64());
        for w in &writes {
            let secs = w.end - w.start;
            match w.start < m1 && w.end > m0 {
                true => during.push(secs),
                false if w.end < m0 => steady.push(secs),
                false => {}
            }
        }
        // Every acknowledged insert in the new database exactly once, every seeded row, none
        // left in the old.
        let acked: HashSet<&str> = writes
            .iter()
            .filter(|w| w.acked)
            .map(|w| w.name.as_str())
            .collect();
        match stored(&pools[to], &name).await? {
            Some((counts, seeded)) => {
                let lost = acked.iter().filter(|n| !counts.contains_key(**n)).count();
                let twice = counts.values().filter(|n| **n > 1).count();
                if lost > 0 || twice > 0 || seeded != rows {
                    ctx.out.fail(format!(
                        "round {round}: {lost} acknowledged inserts lost, {twice} stored twice, \
                         {seeded} of {rows} seeded rows"
                    ));
                }
            }
            None => ctx
                .out
                .fail(format!("round {round}: the tenant is not in {}", names[to])),
        }
        if stored(&pools[at], &name).await?.is_some() {
            ctx.out
                .fail(format!("round {round}: a copy left in {}", names[at]));
        }
        if fleet.database_of(&name).await? != names[to] {
            ctx.out.fail(format!(
                "round {round}: the map does not name {}",
                names[to]
            ));
        }
        // The acknowledged rows stay: the next round moves them too.
        at = to;
    }
    ctx.out.row(times.row(
        format!(
            "31 move_tenant of {} rows to another database under {WRITERS} writers",
            thousands(rows as u64)
        ),
        0,
        1,
        Some(2),
        "export | import of the same rows, alone",
        Target::AtMost(1.5),
    ));
    held.sort_by(|a, b| a.total_cmp(b));
    ctx.out.note(format!(
        "the writers' inserts before the moves: {}; during the moves: {} (the move holds the \
         tenant's writes for its whole copy: no catch-up phase); writes held per move \
         (TenantMoved::held): {}",
        spread_text(steady),
        spread_text(during),
        held.iter()
            .map(|s| fmt_secs(*s))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    fleet.drop_tenant(&name).await?;
    other_pool.close().await;
    home_pool.close().await;
    ctx.cleanup.drop_database(&ctx.admin, &other_db).await?;
    ctx.cleanup.drop_schemas(&ctx.pool, &[registry]).await?;
    Ok(())
}
