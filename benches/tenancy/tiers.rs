//! Workload 30: a row-level tenant moved to a schema of its own under load, PostgreSQL's
//! row-level security per call, and the registry read with 100,000 row-level tenants.
//!
//! - 30a `Tenants::promote` of a row-level tenant holding 100,000 `guards` rows while 8 tasks
//!   insert rows for it through the model API (`RowGuard::insert` on a handle of their own
//!   pool; an insert refused with `Error::NotPlaced` resolves the tenant again with
//!   `Tenants::tenant` and is sent again), against the floor of its copy: one server-side
//!   `INSERT INTO <schema>.guards … SELECT … FROM ONLY <container>.guards WHERE tenant_id = $1`
//!   of the same rows into a schema made by `Tenants::create` with the same migration, timed
//!   alone. Each round promotes a fresh tenant out of the same container (the first round also
//!   installs the placement guard on its table): two floor copies first (the second the A/A
//!   control, order rotating), then the writers, the promote after a second of them, half a
//!   second more of them. Each insert's latency before and during the promote; afterwards,
//!   every acknowledged insert must be in the tenant's own schema exactly once, none of its
//!   rows in the container, a second row-level tenant's rows untouched: a failed check fails
//!   the run. One more task inserts for a third row-level tenant of the container all along:
//!   whether a promote holds back its neighbours' writes. Two rows against the floor: the
//!   promote's copy statements (`Relocated::copying`, the "copy time ≤ 1.5×"), and
//!   the whole promote (which also makes and migrates the schema, waits for the writers'
//!   locks, deletes the shared rows and switches the registry).
//! - 30b A find by key of a row-level tenant through a handle `with_row_security()` (each call
//!   in a transaction of its own: `BEGIN`, the registry's `enter_rows`, the find, `COMMIT`)
//!   against the same find through a handle without it, on the same role (made for the run:
//!   no SUPERUSER, no BYPASSRLS; dropped at the end), the same table under the same policies
//!   (`enable_row_security`, run as the administrator) and a pool of one connection alike:
//!   the baseline's connections say the tenant once, at connect (`set_config(…, false)`), so
//!   the policies let its rows through and only the per-call transaction differs. The same
//!   finds inside one `begin_rows` transaction against a plain transaction of the baseline's
//!   pool. Round trips per call counted by a relay between pool and server.
//! - 30c `Tenants::list` and `Tenants::status` with 100,000 row-level tenants in one container
//!   (registered by one `INSERT … SELECT` into the registry's `row_tenants`, the row
//!   `create_in` writes: 100,000 `create_in`, each committed durably, would take tens of
//!   seconds), against the registry's names read alone with sqlx.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tenancy::{Error, Tenant, TenantModel, Tenants};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;
use crate::crud::{crud_budget, plans_note};
use crate::method::{calibrated, fmt_op, paired, Compared, Op, Side};
use crate::report::{Row, Target};
use crate::rowlevel::{container, handle, vacuum, RowGuard, ROW_GUARDS_DDL};

/// Tasks inserting for the tenant being promoted.
const WRITERS: usize = 8;

/// Workload 29's container table, its tenant column defaulting to `''`: the library sets it
/// for a row-level tenant only, and the promoted tenant's inserts go to its own schema's
/// table of the same migration.
fn tier_ddl() -> BoxResult<String> {
    let (from, to) = (
        "tenant_id text NOT NULL,",
        "tenant_id text NOT NULL DEFAULT '',",
    );
    if !ROW_GUARDS_DDL.contains(from) {
        return Err(format!("workload 29's table no longer has `{from}`").into());
    }
    Ok(ROW_GUARDS_DDL.replacen(from, to, 1))
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let registry = ctx.registry_name();
    let tenants = handle(&ctx.pool, &registry, tier_ddl()?)?;
    promotes(ctx, &tenants, &registry).await?;
    security(ctx, &tenants, &registry).await?;
    registry_reads(ctx, &tenants, &registry).await?;
    ctx.out.note(format!(
        "a machine of {} CPUs shared with other work (see the load before and after): the \
         promote's and the writers' times include waiting for a CPU",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    // The workload's database is dropped with every schema in it.
    Ok(())
}

/// `rows` rows of row-level `tenant` in `container`'s `guards`, by one server-side statement;
/// names `guard <i>`.
async fn fill(ctx: &Ctx, container: &Tenant, tenant: &Tenant, rows: i64) -> BoxResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {}.guards (tenant_id, name, position) \
         SELECT $1, 'guard ' || i, CASE WHEN i % 5 = 0 THEN 'Captain' ELSE 'Guard' END \
         FROM generate_series(1, $2) i",
        container.quoted()
    )))
    .bind(tenant.as_str())
    .bind(rows)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

async fn scalar(ctx: &Ctx, sql: String, bound: &str) -> BoxResult<i64> {
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(bound)
        .fetch_one(&ctx.pool)
        .await?)
}

/// One insert of a writer: its name, when it started and ended (seconds from the round's
/// start), whether it was acknowledged, how often it was refused as stale, what failed it.
struct Write {
    name: String,
    start: f64,
    end: f64,
    acked: bool,
    refused: u32,
    error: Option<String>,
}

impl Write {
    fn secs(&self) -> f64 {
        self.end - self.start
    }

    /// Whether it ran while the promote did (`window`: its start and end).
    fn during(&self, window: (f64, f64)) -> bool {
        self.start < window.1 && self.end > window.0
    }
}

/// Inserts rows `<prefix>-<i>` for `tenant` until `stop`; a refusal as stale resolves the
/// tenant again and sends the same row again (at most 3 times).
async fn writer(
    db: Tenants,
    mut tenant: Tenant,
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
        let mut refused = 0;
        let outcome = loop {
            match RowGuard::new(&name, "Guard").insert(&db, &tenant).await {
                Ok(_) => break Ok(()),
                Err(Error::NotPlaced { .. }) if refused < 3 => {
                    refused += 1;
                    match db.tenant(tenant.as_str()).await {
                        Ok(again) => tenant = again,
                        Err(e) => break Err(format!("resolving it again: {e}")),
                    }
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        let failed = outcome.is_err();
        writes.push(Write {
            name,
            start,
            end: origin.elapsed().as_secs_f64(),
            acked: !failed,
            refused,
            error: outcome.err(),
        });
        if failed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    writes
}

/// p50, p99 and the maximum of `secs`.
fn spread(mut secs: Vec<f64>) -> (f64, f64, f64) {
    if secs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    secs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| secs[((secs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), secs[secs.len() - 1])
}

/// p50, p99 and the maximum of `secs` (an operation's latencies), and how many, as text.
pub fn spread_text(secs: Vec<f64>) -> String {
    let n = secs.len();
    if n == 0 {
        return "no inserts".into();
    }
    let (p50, p99, max) = spread(secs);
    format!(
        "p50 {}, p99 {}, max {} ({} inserts)",
        fmt_op(p50),
        fmt_op(p99),
        fmt_op(max),
        thousands(n as u64)
    )
}

/// The floor of a promote's copy: the tenant's rows by one server-side `INSERT … SELECT` into
/// a fresh schema of the same migration (made and dropped untimed); seconds and rows.
async fn copy_floor(
    ctx: &Ctx,
    tenants: &Tenants,
    container: &Tenant,
    tenant: &Tenant,
) -> BoxResult<(f64, u64)> {
    let name = ctx.names("tfl", 1).remove(0);
    let schema = tenants.create(&name).await?;
    let columns = "id, tenant_id, name, position, age, inserted_at";
    let sql = format!(
        "INSERT INTO {}.guards ({columns}) SELECT {columns} FROM ONLY {}.guards \
         WHERE tenant_id = $1",
        schema.quoted(),
        container.quoted()
    );
    let start = Instant::now();
    let copied = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .execute(&ctx.pool)
        .await?
        .rows_affected();
    let secs = start.elapsed().as_secs_f64();
    tenants.drop(&name).await?;
    Ok((secs, copied))
}

/// What one round of 30a saw.
struct Round {
    promote: f64,
    /// Of the promote, its copy statements (`Relocated::copying`).
    copying: f64,
    /// The floor, then the floor again (the A/A control).
    floor: [f64; 2],
    copied: u64,
    moved: u64,
    /// The promote's start and end, seconds from the round's start.
    window: (f64, f64),
    writes: Vec<Write>,
    neighbour: Vec<Write>,
    checked: Checked,
}

/// What the checks after a promote counted (see [`check`]).
struct Checked {
    acked: u64,
    present: u64,
    lost: u64,
    twice: u64,
    unacked: u64,
    seeded: i64,
    left: i64,
    other: i64,
}

/// Whether every acknowledged insert of `writes` is in `own`'s schema exactly once, no row of
/// the tenant left in `container`, its seeded rows all there, and the other tenant's `other`
/// rows untouched.
async fn check(
    ctx: &Ctx,
    container: &Tenant,
    own: &Tenant,
    writes: &[Write],
    other: &Tenant,
) -> BoxResult<Checked> {
    let o = own.quoted();
    let counts: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT name, count(*) FROM {o}.guards WHERE name LIKE 'w%' GROUP BY name"
    )))
    .fetch_all(&ctx.pool)
    .await?;
    let present: HashMap<String, i64> = counts.into_iter().collect();
    let acked: HashSet<&str> = writes
        .iter()
        .filter(|w| w.acked)
        .map(|w| w.name.as_str())
        .collect();
    let c = container.quoted();
    Ok(Checked {
        acked: acked.len() as u64,
        present: acked
            .iter()
            .filter(|n| present.get(**n) == Some(&1))
            .count() as u64,
        lost: acked.iter().filter(|n| !present.contains_key(**n)).count() as u64,
        twice: present.values().filter(|n| **n > 1).count() as u64,
        unacked: present
            .keys()
            .filter(|n| !acked.contains(n.as_str()))
            .count() as u64,
        seeded: scalar(
            ctx,
            format!("SELECT count(*) FROM {o}.guards WHERE name LIKE $1"),
            "guard %",
        )
        .await?,
        left: scalar(
            ctx,
            format!("SELECT count(*) FROM {c}.guards WHERE tenant_id = $1"),
            own.as_str(),
        )
        .await?,
        other: scalar(
            ctx,
            format!("SELECT count(*) FROM {c}.guards WHERE tenant_id = $1"),
            other.as_str(),
        )
        .await?,
    })
}

/// Part 30a (see the module documentation).
async fn promotes(ctx: &mut Ctx, tenants: &Tenants, registry: &str) -> BoxResult<()> {
    let (rounds, rows, other_rows, before, after) = if ctx.quick {
        (1, 1_000, 10, 0.2, 0.1)
    } else {
        (9, 100_000, 1_000, 1.0, 0.5)
    };
    let shared = container(ctx, tenants, "tier").await?;
    let other = tenants
        .create_in(ctx.names("tother", 1).remove(0), &shared)
        .await?;
    let neighbour = tenants
        .create_in(ctx.names("tnb", 1).remove(0), &shared)
        .await?;
    fill(ctx, &shared, &other, other_rows).await?;
    // The writers' own pool and handle: the promote's connections are not theirs to wait for.
    let writers_pool = pool_with(&ctx.options, WRITERS as u32 + 2).await?;
    let writers_db = handle(&writers_pool, registry, tier_ddl()?)?;
    println!(
        "  container {}: {rounds} rounds, each a fresh row-level tenant of {} rows promoted \
         while {WRITERS} tasks insert for it ({before} s before, {after} s after); 2 floor \
         copies per round first",
        shared.as_str(),
        thousands(rows as u64)
    );
    let mut done = Vec::new();
    for r in 0..rounds {
        let big = tenants
            .create_in(ctx.names("tbig", 1).remove(0), &shared)
            .await?;
        fill(ctx, &shared, &big, rows).await?;
        vacuum(ctx, &shared).await?;
        let mut floor = [0.0; 2];
        let mut copied = 0;
        for k in 0..2 {
            let which = (k + r) % 2;
            (floor[which], copied) = copy_floor(ctx, tenants, &shared, &big).await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let origin = Instant::now();
        let spawn = |tenant: &Tenant, prefix: String| {
            tokio::spawn(writer(
                writers_db.clone(),
                tenant.clone(),
                prefix,
                Arc::clone(&stop),
                origin,
            ))
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| spawn(&big, format!("w{r}-{w}")))
            .collect();
        let nb = spawn(&neighbour, format!("n{r}"));
        tokio::time::sleep(Duration::from_secs_f64(before)).await;
        let p0 = origin.elapsed().as_secs_f64();
        let moved = tenants.promote(big.as_str()).await;
        let p1 = origin.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(after)).await;
        stop.store(true, Ordering::Relaxed);
        let mut writes = Vec::new();
        for w in writers {
            writes.extend(w.await?);
        }
        let neighbour_writes = nb.await?;
        let moved = moved?;
        let c = check(ctx, &shared, &moved.tenant, &writes, &other).await?;
        if c.seeded != rows {
            ctx.out.fail(format!(
                "round {r}: {} of {rows} seeded rows in {}",
                c.seeded,
                moved.tenant.as_str()
            ));
        }
        if c.other != other_rows {
            ctx.out.fail(format!(
                "round {r}: the other tenant holds {} rows, not {other_rows}",
                c.other
            ));
        }
        done.push(Round {
            checked: c,
            promote: p1 - p0,
            copying: moved.copying.as_secs_f64(),
            floor,
            copied,
            moved: moved.rows,
            window: (p0, p1),
            writes,
            neighbour: neighbour_writes,
        });
    }
    writers_pool.close().await;
    report_promotes(ctx, &done, rows, other_rows);
    Ok(())
}

/// The latencies of the writers' inserts (or the neighbour's) during the promotes, or before
/// them, over every round.
fn latencies(done: &[Round], neighbour: bool, during: bool) -> Vec<f64> {
    done.iter()
        .flat_map(|r| {
            let writes = if neighbour { &r.neighbour } else { &r.writes };
            writes
                .iter()
                .filter(move |w| match during {
                    true => w.during(r.window),
                    false => w.end < r.window.0,
                })
                .map(Write::secs)
        })
        .collect()
}

fn report_promotes(ctx: &mut Ctx, done: &[Round], rows: i64, other_rows: i64) {
    let promote: Vec<f64> = done.iter().map(|r| r.promote).collect();
    let copying: Vec<f64> = done.iter().map(|r| r.copying).collect();
    let floor: Vec<f64> = done.iter().map(|r| r.floor[0]).collect();
    let again: Vec<f64> = done.iter().map(|r| r.floor[1]).collect();
    let aa = paired(&again, &floor).0;
    let floor_text = format!(
        "{} (floor: one server-side INSERT … SELECT of its rows into a schema of the same \
         migration)",
        fmt_secs(median(&mut floor.clone()))
    );
    // The target: the copy, under the writers, against the copy alone, per row (the
    // promote also moves what the writers inserted before it: about a tenth more rows).
    let per_row = |secs: &[f64], rows: &dyn Fn(&Round) -> u64| -> Vec<f64> {
        secs.iter()
            .zip(done)
            .map(|(s, r)| s / rows(r).max(1) as f64)
            .collect()
    };
    let copying_per_row = per_row(&copying, &|r| r.moved);
    let floor_per_row = per_row(&floor, &|r| r.copied);
    let (ratio, interval) = paired(&copying_per_row, &floor_per_row);
    ctx.out.row(
        Row::new(
            format!(
                "30a the promote's copy under {WRITERS} writers, per row (Relocated::copying: its \
                 copy statements, first pass and catch-up, over the rows it moved)",
            ),
            format!(
                "{:.2} µs per row ({} for {} rows)",
                1e6 * median(&mut copying_per_row.clone()),
                fmt_secs(median(&mut copying.clone())),
                thousands(median_u64(done.iter().map(|r| r.moved)))
            ),
            format!(
                "{:.2} µs per row ({floor_text})",
                1e6 * median(&mut floor_per_row.clone())
            ),
            Some(ratio),
            Target::AtMost(1.5),
        )
        .interval(interval)
        .aa(aa),
    );
    let (ratio, interval) = paired(&promote, &floor);
    ctx.out.row(
        Row::new(
            format!(
                "30a promote a row-level tenant of {} rows under {WRITERS} writers: \
                 Tenants::promote",
                thousands(rows as u64)
            ),
            fmt_secs(median(&mut promote.clone())),
            floor_text,
            Some(ratio),
            Target::None,
        )
        .interval(interval)
        .aa(aa),
    );
    let (during, before) = (latencies(done, false, true), latencies(done, false, false));
    let ratio = spread(during.clone()).1 / spread(before.clone()).1;
    ctx.out.row(Row::new(
        "30a a writer's insert while the promote runs (its tenant's)",
        spread_text(during),
        format!(
            "{} (the same writers before the promote)",
            spread_text(before)
        ),
        Some(ratio),
        Target::None,
    ));
    let first: Vec<f64> = done[0]
        .neighbour
        .iter()
        .filter(|w| w.during(done[0].window))
        .map(Write::secs)
        .collect();
    let later: Vec<f64> = done[1..]
        .iter()
        .flat_map(|r| {
            r.neighbour
                .iter()
                .filter(|w| w.during(r.window))
                .map(Write::secs)
        })
        .collect();
    let before = latencies(done, true, false);
    let ratio = spread(latencies(done, true, true)).2 / spread(before.clone()).1;
    ctx.out.row(Row::new(
        "30a a neighbour's insert (another row-level tenant of the container) while a promote \
         runs: the first promote out of the container (it installs the guard); the later ones",
        format!("{}; {}", spread_text(first), spread_text(later)),
        format!(
            "{} (the same task before the promotes)",
            spread_text(before)
        ),
        Some(ratio),
        Target::None,
    ));
    let sum = |count: fn(&Checked) -> u64| -> u64 { done.iter().map(|r| count(&r.checked)).sum() };
    let (acked, present) = (sum(|c| c.acked), sum(|c| c.present));
    let (lost, twice, unacked) = (sum(|c| c.lost), sum(|c| c.twice), sum(|c| c.unacked));
    let left = sum(|c| c.left as u64);
    let other = done.last().map_or(0, |r| r.checked.other);
    let bad = lost + twice + unacked + left;
    ctx.out.row(
        Row::new(
            "30a after each promote: every acknowledged insert in the tenant's own schema \
             exactly once, none of its rows left in the container",
            format!(
                "{} acknowledged: {} there once, {} lost, {} there more than once, {} there \
                 unacknowledged; {} left in the container; the other tenant {} of {other_rows} \
                 rows",
                thousands(acked),
                thousands(present),
                lost,
                twice,
                unacked,
                left,
                other
            ),
            "0 (rows lost, doubled, unacknowledged or left behind)",
            None,
            Target::Under(0.0, "rows"),
        )
        .value(bad as f64),
    );
    if bad > 0 {
        ctx.out.fail(format!(
            "{} acknowledged insert(s) lost, {} doubled, {} present unacknowledged, {} left in \
             the container",
            lost, twice, unacked, left
        ));
    }
    let mut each = Vec::new();
    for (i, r) in done.iter().enumerate() {
        let refused: u32 = r.writes.iter().map(|w| w.refused).sum();
        let errors: Vec<&str> = r
            .writes
            .iter()
            .chain(&r.neighbour)
            .filter_map(|w| w.error.as_deref())
            .collect();
        let longest = r
            .writes
            .iter()
            .filter(|w| w.during(r.window))
            .map(Write::secs)
            .fold(0.0, f64::max);
        // Acknowledged while the promote still ran: started after its first tenth, ended
        // before its last twentieth (none: the tenant's writes wait for the whole move).
        let (p0, p1) = r.window;
        let inside = r
            .writes
            .iter()
            .filter(|w| w.acked && w.start > p0 + 0.1 * r.promote && w.end < p1 - 0.05 * r.promote)
            .count();
        each.push(format!(
            "round {}: promote {} (copying {}; {} rows moved, {} written by the writers before \
             it), floor {} and {} ({} rows); {refused} insert(s) refused NotPlaced and resolved again; \
             {} other error(s){}; longest insert during it {}; {inside} insert(s) began after \
             its first tenth and were acknowledged before its last twentieth",
            i + 1,
            fmt_secs(r.promote),
            fmt_secs(r.copying),
            thousands(r.moved),
            thousands(r.moved.saturating_sub(rows as u64)),
            fmt_secs(r.floor[0]),
            fmt_secs(r.floor[1]),
            thousands(r.copied),
            errors.len(),
            errors
                .first()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            fmt_secs(longest),
        ));
    }
    ctx.out.note(format!(
        "30a: {} rounds; ratios are medians of the per-round ratios (promote / floor; A/A: the \
         floor again / the floor); the promote also moves what the writers inserted before it \
         and makes and migrates the schema, which the floor does not; an insert \"during\" \
         overlaps the promote's call; {}",
        done.len(),
        each.join("; ")
    ));
}

/// A role for the application, made for the run: login, no SUPERUSER, no BYPASSRLS, reading
/// the registry and reading and writing `container`'s tables. [`AppRole::drop`] removes it.
struct AppRole {
    name: String,
}

impl AppRole {
    async fn create(ctx: &Ctx, registry: &str, container: &Tenant) -> BoxResult<Self> {
        let name = tenancy_testdb::unique_name("bench_app");
        let (r, c) = (quote_ident(registry), container.quoted());
        let role = AppRole { name };
        let n = quote_ident(&role.name);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {n} LOGIN NOSUPERUSER NOBYPASSRLS;
             GRANT USAGE ON SCHEMA {r}, {c} TO {n};
             GRANT SELECT ON ALL TABLES IN SCHEMA {r} TO {n};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {c} TO {n};
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA {c} TO {n};"
        )))
        .execute(&ctx.pool)
        .await?;
        Ok(role)
    }

    /// Its connections ended, its grants and the role dropped.
    async fn drop(self, ctx: &Ctx) -> BoxResult<()> {
        let n = quote_ident(&self.name);
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(&self.name)
            .execute(&ctx.pool)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP OWNED BY {n}; DROP ROLE {n}")))
            .execute(&ctx.pool)
            .await?;
        Ok(())
    }

    fn options(&self, ctx: &Ctx) -> PgConnectOptions {
        ctx.options.clone().username(&self.name)
    }
}

/// A pool of one connection of `options`, each connection setting `settings` (name, value)
/// for its whole session (`set_config(…, false)`).
async fn one_connection(
    options: PgConnectOptions,
    settings: Vec<(&'static str, String)>,
) -> BoxResult<PgPool> {
    let settings = Arc::new(settings);
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            let settings = Arc::clone(&settings);
            Box::pin(async move {
                for (name, value) in settings.iter() {
                    sqlx::query("SELECT set_config($1, $2, false)")
                        .bind(*name)
                        .bind(value)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// The two handles of 30b on pools of `options`: with row security (its connection not
/// waiting for the disk at commit if `quick_commits`), and without it on a pool whose
/// connection says `tenant` once.
async fn handles(
    options: &PgConnectOptions,
    registry: &str,
    tenant: &Tenant,
    quick_commits: bool,
) -> BoxResult<(Tenants, Tenants, PgPool)> {
    let none = || Migrator::with_migrations(Vec::new());
    let commits = match quick_commits {
        true => vec![("synchronous_commit", "off".to_owned())],
        false => Vec::new(),
    };
    let secured = Tenants::new(one_connection(options.clone(), commits).await?, none())?
        .with_registry(registry)?
        .with_row_security()
        .await?;
    let said = vec![("tenancy.tenant", tenant.as_str().to_owned())];
    let plain_pool = one_connection(options.clone(), said).await?;
    let plain = Tenants::new(plain_pool.clone(), none())?.with_registry(registry)?;
    Ok((secured, plain, plain_pool))
}

/// Find by key: the library side through the handle with row security, the others through
/// the one without.
struct Secured<'a> {
    secured: &'a Tenants,
    plain: &'a Tenants,
    tenant: &'a Tenant,
    ids: &'a [i64],
}

impl Op for Secured<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = self.ids[i % self.ids.len()];
        let db = match side {
            Side::Library => self.secured,
            Side::Hand | Side::Again => self.plain,
        };
        let found = RowGuard::find(db, self.tenant, id).await?;
        assert!(found.is_some(), "row {id} not seen");
        std::hint::black_box(found);
        Ok(())
    }
}

/// The same find inside transactions open for a triple: the library side's from `begin_rows`,
/// the others' a plain transaction of the pool whose connection says the tenant.
struct InTransaction<'a> {
    secured: &'a Tenants,
    plain: &'a PgPool,
    tenant: &'a Tenant,
    ids: &'a [i64],
    open: Option<(
        Transaction<'static, Postgres>,
        Transaction<'static, Postgres>,
    )>,
}

impl Op for InTransaction<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = self.ids[i % self.ids.len()];
        let (rows, plain) = self.open.as_mut().ok_or("no transaction open")?;
        let tx = match side {
            Side::Library => rows,
            Side::Hand | Side::Again => plain,
        };
        let found = RowGuard::find(&mut **tx, self.tenant, id).await?;
        assert!(found.is_some(), "row {id} not seen");
        std::hint::black_box(found);
        Ok(())
    }

    async fn before_triple(&mut self) -> BoxResult<()> {
        let rows = self.secured.begin_rows(self.tenant).await?;
        self.open = Some((rows, self.plain.begin().await?));
        Ok(())
    }

    async fn after_triple(&mut self) -> BoxResult<()> {
        if let Some((rows, plain)) = self.open.take() {
            rows.commit().await?;
            plain.commit().await?;
        }
        Ok(())
    }
}

/// Part 30b (see the module documentation).
async fn security(ctx: &mut Ctx, tenants: &Tenants, registry: &str) -> BoxResult<()> {
    let shared = container(ctx, tenants, "trls").await?;
    let acme = tenants
        .create_in(ctx.names("tacme", 1).remove(0), &shared)
        .await?;
    // acme's 1,000 rows among 100 other tenants' 10 each, interleaved.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {}.guards (tenant_id, name, position) \
         SELECT t, 'guard ' || i, 'Guard' \
         FROM (SELECT $1::text AS t, i FROM generate_series(1, 1000) i \
               UNION ALL SELECT 'rl_' || n, i FROM generate_series(1, 100) n, \
               generate_series(1, 10) i) r ORDER BY md5(t || ':' || i)",
        shared.quoted()
    )))
    .bind(acme.as_str())
    .execute(&ctx.pool)
    .await?;
    vacuum(ctx, &shared).await?;
    let covered = tenants.enable_row_security(&shared).await?;
    let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {}.guards WHERE tenant_id = $1 ORDER BY id",
        shared.quoted()
    )))
    .bind(acme.as_str())
    .fetch_all(&ctx.pool)
    .await?;
    let role = AppRole::create(ctx, registry, &shared).await?;
    let result = secured_calls(ctx, &role, registry, &shared, &acme, &ids, &covered).await;
    role.drop(ctx).await?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn secured_calls(
    ctx: &mut Ctx,
    role: &AppRole,
    registry: &str,
    shared: &Tenant,
    acme: &Tenant,
    ids: &[i64],
    covered: &[String],
) -> BoxResult<()> {
    let options = role.options(ctx);
    let (secured, plain, plain_pool) = handles(&options, registry, acme, false).await?;
    // The role is held to the policies: without the setting it sees no row.
    let unsaid = one_connection(options.clone(), Vec::new()).await?;
    let seen: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.guards",
        shared.quoted()
    )))
    .fetch_one(&unsaid)
    .await?;
    unsaid.close().await;
    if seen != 0 {
        return Err(format!("role {} sees {seen} rows without a tenant said", role.name).into());
    }
    let (budget, quick) = (crud_budget(ctx.quick), ctx.quick);
    println!(
        "  role {} (no SUPERUSER, no BYPASSRLS), policies on {covered:?} of {}; one task, a \
         pool of one connection per handle; about {budget:?} of recorded operations each",
        role.name,
        shared.as_str()
    );
    let mut single = Secured {
        secured: &secured,
        plain: &plain,
        tenant: acme,
        ids,
    };
    let mut ops: Vec<(&str, Compared)> =
        vec![("single", calibrated(&mut single, budget, quick).await?)];
    let mut inside = InTransaction {
        secured: &secured,
        plain: &plain_pool,
        tenant: acme,
        ids,
        open: None,
    };
    ops.push((
        "in a transaction",
        calibrated(&mut inside, budget, quick).await?,
    ));
    let (quick_secured, _, quick_plain) = handles(&options, registry, acme, true).await?;
    quick_plain.close().await;
    let mut unflushed = Secured {
        secured: &quick_secured,
        plain: &plain,
        tenant: acme,
        ids,
    };
    ops.push((
        "single, synchronous_commit off",
        calibrated(&mut unflushed, budget, quick).await?,
    ));
    quick_secured.pool().close().await;
    let baseline = "the same role, table, policies, statement and pool, the tenant said once \
                    per connection: no transaction per call";
    ctx.out.row(ops[0].1.row(
        "30b find by key of a row-level tenant, one call: handle with_row_security()",
        baseline,
        Target::None,
    ));
    ctx.out.row(ops[2].1.row(
        "30b the same, the secured handle's connection with synchronous_commit = off",
        baseline,
        Target::None,
    ));
    ctx.out.row(ops[1].1.row(
        "30b the same find inside one begin_rows transaction",
        "the same finds in a plain transaction of the pool that says the tenant",
        Target::AtLeast(0.98),
    ));
    // What one round trip costs on this path: `SELECT 1` through the baseline's pool.
    let n = if quick { 100 } else { 5_000 };
    let start = Instant::now();
    for _ in 0..n {
        sqlx::query("SELECT 1").execute(&plain_pool).await?;
    }
    let trip = start.elapsed().as_secs_f64() / n as f64;
    let extra = ops[0].1.library - ops[0].1.hand;
    // Whether the secured find's transaction writes (its KEY SHARE on the registry row): a
    // transaction with an id waits at commit for its WAL to reach the disk.
    let xid = "SELECT txid_current_if_assigned()";
    let mut tx = secured.begin_rows(acme).await?;
    RowGuard::find(&mut *tx, acme, ids[0]).await?;
    let secured_xid: Option<i64> = sqlx::query_scalar(xid).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    let mut tx = plain_pool.begin().await?;
    RowGuard::find(&mut *tx, acme, ids[0]).await?;
    let plain_xid: Option<i64> = sqlx::query_scalar(xid).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    let writes = |x: Option<i64>| match x {
        Some(_) => "has a transaction id (it writes: its commit waits for the WAL flush)",
        None => "has no transaction id (read-only)",
    };
    let counted = round_trips(&options, registry, acme, ids).await?;
    ctx.out.note(format!(
        "30b: {}; a `SELECT 1` through the baseline's pool takes {}: the secured call's extra \
         {} is {:.1} of those; round trips counted by a relay between pool and server \
         (client messages sent after an answer, 200 calls each; sqlx's pool pings a connection \
         when it is taken and when it is given back): {counted}; after begin_rows and a \
         find, the transaction {}; a plain transaction after the same find {}",
        plans_note(&ops),
        fmt_op(trip),
        fmt_op(extra),
        extra / trip,
        writes(secured_xid),
        writes(plain_xid),
    ));
    secured.pool().close().await;
    plain_pool.close().await;
    Ok(())
}

/// A TCP relay to the server that counts round trips: the times the client sends after the
/// server has answered. Ends with the task it runs in.
pub(crate) struct Relay {
    port: u16,
    turns: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub(crate) async fn start(host: String, port: u16) -> BoxResult<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?.port();
        let turns = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&turns);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect((host.as_str(), port)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, Arc::clone(&counted)));
            }
        });
        Ok(Relay {
            port: local,
            turns,
            task,
        })
    }

    pub(crate) fn turns(&self) -> u64 {
        self.turns.load(Ordering::SeqCst)
    }

    /// `options` pointed at this relay.
    pub(crate) fn options(&self, options: &PgConnectOptions) -> PgConnectOptions {
        options.clone().host("127.0.0.1").port(self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, turns: Arc<AtomicU64>) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let answered = Arc::new(AtomicBool::new(true));
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let up = pipe(from_client, to_server, || {
        if answered.swap(false, Ordering::SeqCst) {
            turns.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Before the client can read the answer, so its next message counts.
    let down = pipe(from_server, to_client, || {
        answered.store(true, Ordering::SeqCst)
    });
    let _ = tokio::join!(up, down);
}

/// Copies `from` to `to` until `from` ends, calling `on_read` before passing on what it read.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    on_read: impl Fn(),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        on_read();
        to.write_all(&buf[..n]).await?;
    }
}

/// Round trips per call of 30b's sides, through a [`Relay`]: a text for the note.
async fn round_trips(
    options: &PgConnectOptions,
    registry: &str,
    tenant: &Tenant,
    ids: &[i64],
) -> BoxResult<String> {
    let host = options.get_host().to_owned();
    if host.starts_with('/') {
        return Ok("not counted (the server is reached by a Unix socket)".into());
    }
    let relay = Relay::start(host, options.get_port()).await?;
    let relayed = relay.options(options);
    let (secured, plain, plain_pool) = handles(&relayed, registry, tenant, false).await?;
    let calls = 200;
    let mut per = Vec::new();
    for db in [&secured, &plain] {
        for &id in ids.iter().take(20) {
            RowGuard::find(db, tenant, id).await?;
        }
        let before = relay.turns();
        for &id in ids.iter().cycle().take(calls) {
            RowGuard::find(db, tenant, id).await?;
        }
        per.push((relay.turns() - before) as f64 / calls as f64);
    }
    let before = relay.turns();
    let mut tx = secured.begin_rows(tenant).await?;
    let opened = relay.turns() - before;
    let before = relay.turns();
    for &id in ids.iter().cycle().take(calls) {
        RowGuard::find(&mut *tx, tenant, id).await?;
    }
    let inside = (relay.turns() - before) as f64 / calls as f64;
    let before = relay.turns();
    tx.commit().await?;
    let closed = relay.turns() - before;
    let before = relay.turns();
    for _ in 0..calls {
        sqlx::query("SELECT 1").execute(&plain_pool).await?;
    }
    let bare = (relay.turns() - before) as f64 / calls as f64;
    let mut held = plain_pool.acquire().await?;
    let before = relay.turns();
    for _ in 0..calls {
        sqlx::query("SELECT 1").execute(&mut *held).await?;
    }
    let alone = (relay.turns() - before) as f64 / calls as f64;
    drop(held);
    secured.pool().close().await;
    plain_pool.close().await;
    Ok(format!(
        "with_row_security() {:.2} per find, without {:.2}, a bare `SELECT 1` through a pool \
         {bare:.2}, on a connection held {alone:.2}; begin_rows {opened}, each find inside \
         it {inside:.2}, its commit {closed}",
        per[0], per[1]
    ))
}

/// Part 30c (see the module documentation).
async fn registry_reads(ctx: &mut Ctx, tenants: &Tenants, registry: &str) -> BoxResult<()> {
    let (n, reps) = if ctx.quick { (1_000, 2) } else { (100_000, 7) };
    let crowd = container(ctx, tenants, "tcrowd").await?;
    let r = quote_ident(registry);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {r}.row_tenants (name, container) \
         SELECT 'crowd_' || i, $1 FROM generate_series(1, $2) i"
    )))
    .bind(crowd.as_str())
    .bind(n as i64)
    .execute(&ctx.pool)
    .await?;
    sqlx::raw_sql(AssertSqlSafe(format!("VACUUM (ANALYZE) {r}.row_tenants")))
        .execute(&ctx.pool)
        .await?;
    let last = tenants.tenant(format!("crowd_{n}")).await?;
    if !last.is_row_level() || last.container() != crowd.as_str() {
        return Err(format!("crowd_{n} resolves to {last:?}").into());
    }
    let names = format!("SELECT name FROM {r}.row_tenants");
    // [list, status, names, names again][rep]
    let mut secs = vec![Vec::new(); 4];
    let mut seen = [0; 3];
    for rep in 0..reps {
        for k in 0..4 {
            let which = (k + rep) % 4;
            let start = Instant::now();
            let got = match which {
                0 => tenants.list().await?.len(),
                1 => tenants.status().await?.len(),
                _ => sqlx::query_scalar::<_, String>(AssertSqlSafe(names.clone()))
                    .fetch_all(&ctx.pool)
                    .await?
                    .len(),
            };
            secs[which].push(start.elapsed().as_secs_f64());
            seen[which.min(2)] = got;
        }
    }
    if seen[0] < n || seen[1] < n {
        return Err(format!(
            "list saw {}, status {}, of {n} row-level tenants",
            seen[0], seen[1]
        )
        .into());
    }
    let base = median(&mut secs[2].clone());
    let aa = paired(&secs[3], &secs[2]).0;
    for (which, what) in [(0, "Tenants::list"), (1, "Tenants::status")] {
        let value = median(&mut secs[which].clone());
        ctx.out.row(
            Row::new(
                format!(
                    "30c {what} with {} row-level tenants in one container",
                    thousands(n as u64)
                ),
                fmt_secs(value),
                format!(
                    "{} (the registry's row_tenants names alone, one sqlx query)",
                    fmt_secs(base)
                ),
                Some(paired(&secs[which], &secs[2]).0),
                Target::Under(1.0, "s"),
            )
            .value(value),
        );
    }
    ctx.out.note(format!(
        "30c: {n} row-level tenants registered by one INSERT … SELECT into row_tenants (the \
         row create_in writes; workload 29d times one create_in); {reps} \
         repetitions, order rotating; medians; list returned {} tenants, status {}; the \
         names query twice per repetition: A/A {aa:.3}",
        thousands(seen[0] as u64),
        thousands(seen[1] as u64)
    ));
    Ok(())
}

/// The median of `values` (the lower middle of an even count).
fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    let mut all: Vec<u64> = values.collect();
    all.sort_unstable();
    all.get(all.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}
