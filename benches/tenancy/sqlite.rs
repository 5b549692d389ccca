//! Workloads 14–17: the SQLite backend (a database file per tenant), in a temporary folder per
//! workload (removed when it ends). No server.
//!
//! - 14 `sqlite-crud`: generated insert / find / update / delete / filtered query on one
//!   tenant's `TenantPool` vs hand-written sqlx with the same SQL text on the same sqlx pool.
//! - 15 `sqlite-lookups`: point lookups by id through the `Tenants` handle (which routes each
//!   to its tenant's pool) over 1,000 tenants with the default `PoolBudget`, vs the same over
//!   one tenant; the process's RSS, descriptors and threads with the tenants' pools open.
//! - 16 `sqlite-pending`: `migrate_all` with one pending `ADD COLUMN` over 1,000 tenant files
//!   vs the loop a user would write: per file, open a connection, `BEGIN IMMEDIATE`, the
//!   `ALTER`, the bookkeeping row, `COMMIT`, close — one file after the other, and the same
//!   loop on 4 tasks.
//! - 17 `sqlite-memory`: peak RSS and open file descriptors of the process while `migrate_all`
//!   (one pending `ADD COLUMN`) runs over 10,000 tenant files, sampled every 2 ms.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, Connection, SqlSafeStr, Sqlite};
use tenancy::internals as sql;
use tenancy::sqlite::PoolBudget;
use tenancy::{MigrateOptions, Outcome, Record, Tenant, TenantModel, TenantPool, Tenants};

use crate::common::*;
use crate::method::{calibrated, compare, paired, Compared, Op, Plan, Rounds, Side};
use crate::report::{Results, Row, Target};

/// The integration tests' `Guard`, in a SQLite file per tenant.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "sqlite")]
pub struct LiteGuard {
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required, length(max = 50))]
    pub name: String,
    #[tenancy(required)]
    pub position: String,
    #[tenancy(range(min = 16, max = 120))]
    pub age: Option<i32>,
    #[tenancy(generated)]
    pub inserted_at: OffsetDateTime,
}

impl LiteGuard {
    fn new(name: &str, position: &str) -> Self {
        LiteGuard {
            id: 0,
            name: name.into(),
            position: position.into(),
            age: None,
            inserted_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// The same row for hand-written sqlx.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct LiteGuardRow {
    pub id: i64,
    pub name: String,
    pub position: String,
    #[allow(dead_code)]
    pub age: Option<i32>,
    #[allow(dead_code)]
    pub inserted_at: OffsetDateTime,
}

const LITE_V1: &str = "CREATE TABLE guards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    position TEXT NOT NULL,
    age INTEGER NULL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX guards_position ON guards (position, id)";

fn migration(version: i64, description: &str, sql: String) -> Migration {
    Migration::new(
        version,
        description.to_owned().into(),
        MigrationType::Simple,
        AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}

/// Version 1, plus `ALTER TABLE guards ADD COLUMN badge{v} TEXT NULL` for 2..=`upto`.
pub fn migrations_upto(upto: i64) -> Vec<Migration> {
    let mut all = vec![migration(1, "guards", LITE_V1.to_owned())];
    for v in 2..=upto {
        all.push(migration(
            v,
            &format!("badge{v}"),
            format!("ALTER TABLE guards ADD COLUMN badge{v} TEXT NULL"),
        ));
    }
    all
}

/// A temporary folder, removed when dropped.
pub struct Folder(pub PathBuf);

impl Folder {
    pub fn new(prefix: &str) -> BoxResult<Self> {
        let path = std::env::temp_dir().join(tenancy_testdb::unique_name(prefix));
        std::fs::create_dir_all(&path)?;
        Ok(Folder(path))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SQLite workloads' context: the results.
pub struct LiteCtx {
    pub quick: bool,
    /// The current workload's rows and notes.
    pub out: Results,
}

impl LiteCtx {
    pub fn new(quick: bool) -> Self {
        LiteCtx {
            quick,
            out: Results::default(),
        }
    }
}

/// A handle on a fresh registry in `folder` with `migrations`.
pub async fn tenants(folder: &Folder, migrations: Vec<Migration>) -> BoxResult<Tenants<Sqlite>> {
    let registry = tenancy::sqlite::open(&folder.url()).await?;
    Ok(Tenants::new(
        registry,
        Migrator::with_migrations(migrations),
    )?)
}

/// `n` tenants: the first created by the library (with `seed_rows` guards), the others copies
/// of its file registered in one transaction (what `create` would make, without its cost).
async fn fleet(tenants: &Tenants<Sqlite>, n: usize, seed_rows: usize) -> BoxResult<Vec<Tenant>> {
    let names: Vec<Tenant> = (0..n)
        .map(|i| Tenant::new(format!("t{i:05}")))
        .collect::<Result<_, _>>()?;
    let first = tenants.create(names[0].as_str()).await?;
    let db = tenants.pool_for(&first).await?;
    sqlx::query(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?1) \
         INSERT INTO guards (name, position) \
         SELECT 'guard ' || n, CASE WHEN n % 5 = 0 THEN 'Captain' ELSE 'Guard' END \
         FROM seq WHERE ?1 > 0",
    )
    .bind(seed_rows as i64)
    .execute(db.sqlx_pool())
    .await?;
    // Everything into the main file, so a copy of it is the whole tenant.
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(db.sqlx_pool())
        .await?;
    let src = tenants.folder().join(format!("{first}.db"));
    for name in &names[1..] {
        std::fs::copy(&src, tenants.folder().join(format!("{name}.db")))?;
    }
    let mut tx = tenants.pool().begin().await?;
    for name in &names[1..] {
        sqlx::query("INSERT INTO tenants (name) VALUES (?1)")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(names)
}

async fn connect(path: &Path) -> BoxResult<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    Ok(SqliteConnection::connect_with(&options).await?)
}

// ---------------------------------------------------------------------------------------------
// 14: CRUD.

struct Insert<'a> {
    db: &'a TenantPool<Sqlite>,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<LiteGuard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<LiteGuardRow>,
}

impl Op for Insert<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let name = format!("new {i}");
        match side {
            Side::Library => {
                let stored = LiteGuard::new(&name, "Guard")
                    .insert(self.db, self.tenant)
                    .await?;
                self.records.push(stored);
            }
            Side::Hand | Side::Again => {
                let row: LiteGuardRow = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(&name)
                    .bind("Guard")
                    .bind(None::<i32>)
                    .fetch_one(self.db.sqlx_pool())
                    .await?;
                self.rows.push(row);
            }
        }
        Ok(())
    }
}

struct Find<'a> {
    db: &'a TenantPool<Sqlite>,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Find<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = 1 + (i % 1000) as i64;
        match side {
            Side::Library => {
                let found = LiteGuard::find(self.db, self.tenant, id).await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
            Side::Hand | Side::Again => {
                let found: Option<LiteGuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(id)
                    .fetch_optional(self.db.sqlx_pool())
                    .await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
        }
        Ok(())
    }
}

/// `Record::update` vs the same `UPDATE … RETURNING`, each side on 200 rows of its own.
struct Update<'a> {
    db: &'a TenantPool<Sqlite>,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<LiteGuard>>,
    /// The rows of the hand-written side and of its A/A twin.
    rows: [Vec<LiteGuardRow>; 2],
}

impl Op for Update<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let position = if i.is_multiple_of(2) {
            "Captain"
        } else {
            "Guard"
        };
        match side {
            Side::Library => {
                let n = self.records.len();
                let record = &mut self.records[i % n];
                record.position = position.into();
                record.update(self.db, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let rows = &mut self.rows[side.index() - 1];
                let n = rows.len();
                let row = &mut rows[i % n];
                row.position = position.into();
                let stored: LiteGuardRow = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(&row.name)
                    .bind(&row.position)
                    .bind(row.age)
                    .bind(row.id)
                    .fetch_one(self.db.sqlx_pool())
                    .await?;
                *row = stored;
            }
        }
        Ok(())
    }
}

struct Delete<'a> {
    db: &'a TenantPool<Sqlite>,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<LiteGuard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<LiteGuardRow>,
}

impl Op for Delete<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let mut record = self.records.pop().ok_or("no record left to delete")?;
                record.delete(self.db, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let row = self.rows.pop().ok_or("no row left to delete")?;
                let done = sqlx::query(AssertSqlSafe(self.sql))
                    .bind(row.id)
                    .execute(self.db.sqlx_pool())
                    .await?;
                assert_eq!(done.rows_affected(), 1);
            }
        }
        Ok(())
    }
}

struct Filtered<'a> {
    db: &'a TenantPool<Sqlite>,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Filtered<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let rows = LiteGuard::query(self.tenant)
                    .filter(LiteGuard::POSITION.eq("Captain"))
                    .order_by(LiteGuard::ID.asc())
                    .limit(10)
                    .fetch_all(self.db)
                    .await?;
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let rows: Vec<LiteGuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(self.db.sqlx_pool())
                    .await?;
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

pub async fn crud(ctx: &mut LiteCtx) -> BoxResult<()> {
    let folder = Folder::new("bench-sqlite-crud")?;
    // One connection per tenant pool: both sides acquire the same connection for every
    // operation (the library's SQLite executor is the tenant's pool, not a bare connection).
    let tenants = tenants(&folder, migrations_upto(1))
        .await?
        .with_pool_budget(PoolBudget::default().connections_per_pool(1));
    let names = fleet(&tenants, 1, 1000).await?;
    let db = tenants.pool_for(&names[0]).await?;
    let tenant = db.tenant().clone();
    let table = &LiteGuard::TABLE;
    let updatable: Vec<usize> = table.updatable_indexes().collect();
    let mut records = Vec::new();
    for id in 1..=200 {
        records.push(
            LiteGuard::find(&db, &tenant, id)
                .await?
                .ok_or("seeded row")?,
        );
    }
    let mut rows = [Vec::new(), Vec::new()];
    for (k, rows) in rows.iter_mut().enumerate() {
        *rows = sqlx::query_as("SELECT * FROM guards WHERE id > ?1 AND id <= ?1 + 200 ORDER BY id")
            .bind(200 * (k as i64 + 1))
            .fetch_all(db.sqlx_pool())
            .await?;
    }
    let (budget, quick) = (crate::crud::crud_budget(ctx.quick), ctx.quick);
    println!(
        "  one task, the tenant's pool of one connection; about {budget:?} of recorded \
         operations each"
    );
    let mut ops: Vec<(&str, Compared)> = Vec::new();
    let mut insert = Insert {
        db: &db,
        tenant: &tenant,
        sql: leak(sql::insert::<LiteGuard>(&tenant, 1)),
        records: Vec::new(),
        rows: Vec::new(),
    };
    let insert_plan = Plan::calibrate(&mut insert, budget, quick).await?;
    ops.push((
        "insert … RETURNING",
        compare(&mut insert, insert_plan).await?,
    ));
    let insert_run = ops[0].1.plan;
    let (inserted, inserted_rows) = (insert.records, insert.rows);
    let mut find = Find {
        db: &db,
        tenant: &tenant,
        sql: leak(sql::select_by_pk::<LiteGuard>(&tenant)),
    };
    ops.push(("find by id", calibrated(&mut find, budget, quick).await?));
    let mut update = Update {
        db: &db,
        tenant: &tenant,
        sql: leak(sql::update::<LiteGuard>(&tenant, &updatable)),
        records,
        rows,
    };
    ops.push((
        "update … RETURNING",
        calibrated(&mut update, budget, quick).await?,
    ));
    let mut delete = Delete {
        db: &db,
        tenant: &tenant,
        sql: leak(sql::delete_by_pk::<LiteGuard>(&tenant)),
        records: inserted,
        rows: inserted_rows,
    };
    ops.push(("delete by id", compare(&mut delete, insert_run).await?));
    let query_sql = LiteGuard::query(&tenant)
        .filter(LiteGuard::POSITION.eq("Captain"))
        .order_by(LiteGuard::ID.asc())
        .limit(10)
        .to_sql();
    let mut filtered = Filtered {
        db: &db,
        tenant: &tenant,
        sql: leak(query_sql),
    };
    ops.push((
        "filtered query",
        calibrated(&mut filtered, budget, quick).await?,
    ));
    for (op, c) in &ops {
        ctx.out.row(c.row(
            format!("14 {op}"),
            "hand-written sqlx, same SQL, the same one-connection pool",
            Target::AtLeast(0.98),
        ));
    }
    ctx.out.note(crate::crud::plans_note(&ops));
    drop(db);
    tenants.pool().close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 15: lookups over many tenants.

/// Point lookups by id through the handle, on `tenants` picked at random, for `secs`, from
/// `tasks` tasks: operations per second.
async fn lookups_for(
    handle: &Tenants<Sqlite>,
    names: &[Tenant],
    tasks: usize,
    duration: Duration,
) -> BoxResult<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let names = Arc::new(names.to_vec());
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (handle, names, done, stop) = (
            handle.clone(),
            Arc::clone(&names),
            Arc::clone(&done),
            Arc::clone(&stop),
        );
        set.spawn(async move {
            let mut rng = Rng::new(7 + task as u64);
            while !stop.load(Ordering::Relaxed) {
                let tenant = &names[rng.below(names.len())];
                let id = 1 + rng.below(100) as i64;
                let found = LiteGuard::find(&handle, tenant, id).await?;
                assert!(found.is_some());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, tenancy::Error>(())
        });
    }
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

pub async fn lookups(ctx: &mut LiteCtx) -> BoxResult<()> {
    let (n, millis) = if ctx.quick { (20, 300) } else { (1000, 1500) };
    let folder = Folder::new("bench-sqlite-lookups")?;
    let budget = PoolBudget::default();
    let handle = tenants(&folder, migrations_upto(1))
        .await?
        .with_pool_budget(budget);
    let names = fleet(&handle, n, 100).await?;
    let tasks = 4;
    let (connections, per_pool) = (
        budget.get_max_connections(),
        budget.get_connections_per_pool(),
    );
    println!("  {n} tenants of 100 rows, the default budget ({connections} connections, {per_pool} per tenant), {tasks} tasks, {millis} ms per measurement");
    let before = (rss_and_fds(), proc_status("Threads"));
    let duration = Duration::from_millis(millis);
    // Warm both, then one tenant, one tenant again (the A/A control) and all of them in
    // rotating order.
    lookups_for(&handle, &names[..1], tasks, Duration::from_millis(300)).await?;
    lookups_for(&handle, &names, tasks, Duration::from_millis(300)).await?;
    let reps = if ctx.quick { 1 } else { 10 };
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for rep in 0..reps {
        for k in 0..3 {
            let v = (k + rep) % 3;
            let spread = if v == 2 { &names[..] } else { &names[..1] };
            rates[v].push(lookups_for(&handle, spread, tasks, duration).await?);
        }
    }
    let (ratio, interval) = paired(&rates[2], &rates[0]);
    let aa = paired(&rates[1], &rates[0]).0;
    ctx.out.row(
        Row::new(
            format!("15 point lookups over {n} tenants, default budget"),
            fmt_rate(median(&mut rates[2].clone())),
            format!("{} (one tenant)", fmt_rate(median(&mut rates[0].clone()))),
            Some(ratio),
            Target::AtLeast(0.50),
        )
        .interval(interval)
        .aa(aa),
    );
    let ((rss, fds), threads) = (rss_and_fds(), proc_status("Threads"));
    let (((rss0, fds0), threads0), open) = (before, handle.open_connections());
    ctx.out.note(format!(
        "default budget: {connections} connections (from the descriptor limit), {per_pool} per tenant; \
         open at the end: {} pools, {open} connections; the process then: RSS {:.1} MiB \
         ({:.1} MiB with no tenant pool open, {:.0} KiB more per connection), {fds} descriptors \
         ({fds0}), {threads} threads ({threads0})",
        handle.open_pools(),
        rss as f64 / 1024.0,
        rss0 as f64 / 1024.0,
        rss.saturating_sub(rss0) as f64 / open.max(1) as f64,
    ));
    handle.pool().close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 15, 16: migrate_all with one pending ADD COLUMN.

/// What a user's loop does per tenant file: the ALTER and the record, in one transaction.
async fn user_migrates(path: &Path, m: &Migration) -> BoxResult<()> {
    let mut conn = connect(path).await?;
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await?;
    sqlx::raw_sql(AssertSqlSafe(m.sql.as_str().to_owned()))
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "INSERT INTO _tenancy_migrations (version, description, checksum, execution_ms) \
         VALUES (?1, ?2, ?3, 0)",
    )
    .bind(m.version)
    .bind(m.description.as_ref())
    .bind(m.checksum.as_ref())
    .execute(&mut conn)
    .await?;
    sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// The user's loop over `names` on `tasks` tasks.
async fn user_loop(folder: &Path, names: &[Tenant], m: &Migration, tasks: usize) -> BoxResult<()> {
    let names = Arc::new(names.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (names, next, m, folder) = (
            Arc::clone(&names),
            Arc::clone(&next),
            m.clone(),
            folder.to_owned(),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                user_migrates(&folder.join(format!("{name}.db")), &m).await?;
            }
            Ok::<_, BoxError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

pub async fn pending(ctx: &mut LiteCtx) -> BoxResult<()> {
    let n = if ctx.quick { 20 } else { 1000 };
    let rounds = 3;
    // 0 the library, 1 the loop on 4 tasks, 2 the same again (the A/A control), 3 the loop on
    // one task; in rotating order, each on a fresh fleet.
    let mut times = Rounds::new(4);
    for round in 0..rounds {
        for k in 0..4 {
            let variant = (k + round) % 4;
            let folder = Folder::new("bench-sqlite-pending")?;
            let v1 = tenants(&folder, migrations_upto(1)).await?;
            let names = fleet(&v1, n, 0).await?;
            v1.pool().close().await;
            let v2 = tenants(&folder, migrations_upto(2)).await?;
            let m = migrations_upto(2).pop().ok_or("v2")?;
            let start = Instant::now();
            match variant {
                0 => {
                    let report = v2.migrate_all(MigrateOptions::default()).await?;
                    let migrated = report
                        .tenants
                        .iter()
                        .filter(|t| matches!(t.result, Ok(Outcome::Migrated(_))))
                        .count();
                    assert_eq!(migrated, n, "round {round}");
                }
                1 | 2 => user_loop(&folder.0, &names, &m, 4).await?,
                _ => user_loop(&folder.0, &names, &m, 1).await?,
            }
            times.push(variant, start.elapsed().as_secs_f64());
            v2.pool().close().await;
        }
    }
    ctx.out.row(times.row(
        format!("16 migrate_all, one pending ADD COLUMN, {n} tenant files"),
        0,
        1,
        Some(2),
        "a user's loop on 4 tasks: per file connect, BEGIN IMMEDIATE, ALTER, record, COMMIT",
        Target::None,
    ));
    ctx.out.row(times.row(
        format!("16b migrate_all, {n} tenant files, against one file after the other"),
        0,
        3,
        None,
        "the same loop on one task",
        Target::None,
    ));
    ctx.out.note(format!(
        "{rounds} rounds in rotating order; migrate_all at its default concurrency (4)"
    ));
    Ok(())
}

/// The process's resident set size in KiB and its open file descriptors.
fn rss_and_fds() -> (u64, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (proc_status("VmRSS"), fds)
}

pub async fn memory(ctx: &mut LiteCtx) -> BoxResult<()> {
    let n = if ctx.quick { 50 } else { 10_000 };
    let folder = Folder::new("bench-sqlite-memory")?;
    let v1 = tenants(&folder, migrations_upto(1)).await?;
    fleet(&v1, n, 0).await?;
    v1.pool().close().await;
    let v2 = tenants(&folder, migrations_upto(2)).await?;
    let (rss0, fds0) = rss_and_fds();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut peak = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let (rss, fds) = rss_and_fds();
                peak = (peak.0.max(rss), peak.1.max(fds));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            peak
        })
    };
    let start = Instant::now();
    let report = v2.migrate_all(MigrateOptions::default()).await?;
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (peak_rss, peak_fds) = sampler.await?;
    let failed = report.tenants.iter().filter(|t| t.result.is_err()).count();
    assert_eq!(failed, 0);
    ctx.out.row(
        Row::new(
            format!("17 peak RSS of migrate_all over {n} tenant files"),
            format!("{:.1} MiB", peak_rss as f64 / 1024.0),
            format!(
                "{:.1} MiB (the process before migrate_all)",
                rss0 as f64 / 1024.0
            ),
            Some(peak_rss as f64 / rss0.max(1) as f64),
            Target::None,
        )
        .value(peak_rss as f64 / 1024.0),
    );
    ctx.out.row(Row::new(
        format!("17 open file descriptors during migrate_all over {n} tenant files"),
        format!("{peak_fds} at most"),
        format!("{fds0} (the process before migrate_all)"),
        None,
        Target::None,
    ));
    ctx.out.note(format!(
        "migrate_all over {n} files took {}; RSS and descriptors sampled every 2 ms",
        fmt_secs(secs)
    ));
    v2.pool().close().await;
    Ok(())
}
