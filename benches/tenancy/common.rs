//! Shared pieces: the context (pool, sizes), the result table, timing helpers, the `Guard`
//! model, server-side helper functions (the "floor" loops and fast bulk setup), fleets of
//! registered tenants, and cleanup of everything the run creates.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, Connection, SqlSafeStr};
use tenancy::{TenantModel, Tenants};

use crate::report::Results;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type BoxResult<T> = Result<T, BoxError>;

/// Connections of every pool the benchmark opens ("a handful").
pub const POOL_SIZE: u32 = 4;

/// The model of workloads 1 and 2: the tests' `Guard`.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards")]
pub struct Guard {
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

impl Guard {
    pub fn new(name: &str, position: &str) -> Self {
        Guard {
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
pub struct GuardRow {
    pub id: i64,
    pub name: String,
    pub position: String,
    #[allow(dead_code)]
    pub age: Option<i32>,
    #[allow(dead_code)]
    pub inserted_at: OffsetDateTime,
}

/// The `guards` table of the tests (unqualified: run with the tenant on the `search_path`).
pub const GUARDS_DDL: &str = "CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
)";

/// A migrator of one migration, version 1: [`GUARDS_DDL`].
pub fn guards_migrator() -> Migrator {
    let v1 = Migration::new(
        1,
        "guards".into(),
        MigrationType::Simple,
        AssertSqlSafe(GUARDS_DDL).into_sql_str(),
        false,
    );
    Migrator::with_migrations(vec![v1])
}

/// Workload 5's pending migration.
pub const V2_SQL: &str = "ALTER TABLE guards ADD COLUMN badge text";

/// The example tenant migrations (`examples/migrations/tenant`).
pub async fn example_migrations() -> BoxResult<Vec<Migration>> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/tenant"
    ));
    let migrator = Migrator::new(dir).await?;
    Ok(migrator.migrations.to_vec())
}

/// The example migrations plus version 2 (`V2_SQL`, reversible).
pub async fn v2_migrations() -> BoxResult<Vec<Migration>> {
    let mut all = example_migrations().await?;
    let sql = |s: &'static str| AssertSqlSafe(s).into_sql_str();
    all.push(Migration::new(
        2,
        "badge".into(),
        MigrationType::ReversibleUp,
        sql(V2_SQL),
        false,
    ));
    all.push(Migration::new(
        2,
        "badge".into(),
        MigrationType::ReversibleDown,
        sql("ALTER TABLE guards DROP COLUMN badge"),
        false,
    ));
    Ok(all)
}

pub fn ups(migrations: &[Migration]) -> Vec<&Migration> {
    migrations
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect()
}

/// Leaks a string so a hand-written baseline can pass it to sqlx as `&'static str` with no
/// per-call allocation (the most favourable baseline).
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub fn fmt_rate(ops_per_sec: f64) -> String {
    format!("{} op/s", thousands(ops_per_sec.round() as u64))
}

pub fn fmt_secs(d: f64) -> String {
    if d < 1.0 {
        format!("{:.1} ms", d * 1000.0)
    } else {
        format!("{d:.2} s")
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the run creates: schemas (dropped at the end of each workload) and one database per
/// workload (dropped when the workload ends). `Drop` (on its own thread and runtime) drops the
/// databases left over if a workload failed or panicked before it cleaned up; every schema
/// lives in one of them.
pub struct Cleanup {
    /// The server's URL (`tenancy_testdb::database_url()`), to drop databases from.
    url: String,
    schemas: Mutex<Vec<String>>,
    databases: Mutex<Vec<String>>,
}

impl Cleanup {
    pub fn new(url: String) -> Self {
        Cleanup {
            url,
            schemas: Mutex::new(Vec::new()),
            databases: Mutex::new(Vec::new()),
        }
    }

    /// Remembers schemas to drop; call before creating them.
    pub fn track<I: IntoIterator<Item = String>>(&self, names: I) {
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(names);
    }

    fn untrack(&self, names: &[String]) {
        let drop: std::collections::HashSet<&String> = names.iter().collect();
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| !drop.contains(n));
    }

    /// Drops `names` (and forgets them).
    pub async fn drop_schemas(&self, pool: &PgPool, names: &[String]) -> BoxResult<()> {
        drop_schemas(pool, names).await?;
        self.untrack(names);
        Ok(())
    }

    /// Creates database `name` from `template0` (remembered until [`Cleanup::drop_database`]).
    pub async fn create_database(&self, admin: &PgPool, name: &str) -> BoxResult<()> {
        self.databases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
        let sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
        Ok(())
    }

    /// Drops database `name`, with every schema in it (which are forgotten).
    pub async fn drop_database(&self, admin: &PgPool, name: &str) -> BoxResult<()> {
        drop_database(admin, name).await?;
        self.databases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| n != name);
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.databases.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        eprintln!("cleanup: dropping leftover databases {names:?}");
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                    for name in &names {
                        if let Err(e) = drop_database(&pool, name).await {
                            eprintln!("cleanup of database {name} failed: {e}");
                        }
                    }
                    pool.close().await;
                }
            })
        })
        .join();
    }
}

/// `DROP DATABASE … WITH (FORCE)`: also ends connections a failed workload left open.
async fn drop_database(admin: &PgPool, name: &str) -> BoxResult<()> {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await?;
    Ok(())
}

/// `DROP SCHEMA … CASCADE`, 100 schemas per transaction (one transaction for thousands of
/// schemas runs out of lock slots).
async fn drop_schemas(pool: &PgPool, names: &[String]) -> BoxResult<()> {
    for chunk in names.chunks(100) {
        let list: Vec<String> = chunk.iter().map(|n| quote_ident(n)).collect();
        let sql = format!(
            "SET LOCAL lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
            list.join(", ")
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await?;
    }
    Ok(())
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Server-side helpers, created as `pg_temp` functions on one dedicated connection.
///
/// `bench_apply` is the floor of workloads 3 and 5 and the fast setup of fleets: for each name,
/// the same statements `Tenants::create` / `migrate` send (register the tenant, create its
/// schema, point the transaction's `search_path` at it, run the migration SQL verbatim, record
/// the migration in the registry), in one PL/pgSQL loop and one transaction.
pub struct Server {
    conn: PgConnection,
}

const SERVER_FUNCTIONS: &str = r#"
CREATE FUNCTION pg_temp.bench_apply(
    names text[], create_schema boolean, ddl text, registry text,
    version bigint, description text, checksum bytea, guard_rows int
) RETURNS void LANGUAGE plpgsql AS $bench$
DECLARE n text;
BEGIN
    FOREACH n IN ARRAY names LOOP
        IF create_schema AND registry IS NOT NULL THEN
            EXECUTE format('INSERT INTO %I.tenants (name) VALUES ($1)', registry) USING n;
        END IF;
        IF create_schema THEN
            EXECUTE format('CREATE SCHEMA %I', n);
        END IF;
        PERFORM set_config('search_path', format('%I, public', n), true);
        EXECUTE ddl;
        IF registry IS NOT NULL THEN
            EXECUTE format('INSERT INTO %I.migrations (tenant, version, description, checksum, execution_ms) VALUES ($1, $2, $3, $4, 0)', registry)
                USING n, version, description, checksum;
        END IF;
        IF guard_rows > 0 THEN
            EXECUTE format('INSERT INTO %I.guards (name, position) SELECT ''guard '' || i, CASE WHEN i %% 5 = 0 THEN ''Captain'' ELSE ''Guard'' END FROM generate_series(1, $1) i', n)
                USING guard_rows;
        END IF;
    END LOOP;
END
$bench$;

CREATE FUNCTION pg_temp.bench_lookups(names text[], n int, k int, rows_per int)
RETURNS void LANGUAGE plpgsql AS $bench$
DECLARE r record;
BEGIN
    FOR i IN 1..k LOOP
        EXECUTE format('SELECT * FROM %I.guards WHERE id = $1', names[1 + floor(random() * n)::int])
            INTO r USING 1 + floor(random() * rows_per)::int;
    END LOOP;
END
$bench$;

CREATE PROCEDURE pg_temp.bench_apply_each(
    names text[], create_schema boolean, ddl text, registry text,
    version bigint, description text, checksum bytea
) LANGUAGE plpgsql AS $bench$
DECLARE n text;
BEGIN
    FOREACH n IN ARRAY names LOOP
        PERFORM pg_temp.bench_apply(ARRAY[n], create_schema, ddl, registry, version, description, checksum, 0);
        COMMIT;
    END LOOP;
END
$bench$;
"#;

/// What `bench_apply` runs per tenant.
pub struct Apply<'a> {
    pub create_schema: bool,
    pub ddl: &'a str,
    pub registry: Option<&'a str>,
    pub migration: Option<&'a Migration>,
    pub guard_rows: i32,
}

impl Server {
    pub async fn connect(options: &PgConnectOptions) -> BoxResult<Self> {
        let mut conn = PgConnection::connect_with(options).await?;
        sqlx::raw_sql(SERVER_FUNCTIONS).execute(&mut conn).await?;
        Ok(Server { conn })
    }

    /// One call (one transaction) for all `names`.
    pub async fn apply(&mut self, names: &[String], a: &Apply<'_>) -> BoxResult<()> {
        sqlx::query("SELECT pg_temp.bench_apply($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(names)
            .bind(a.create_schema)
            .bind(a.ddl)
            .bind(a.registry)
            .bind(a.migration.map(|m| m.version))
            .bind(a.migration.map(|m| m.description.to_string()))
            .bind(a.migration.map(|m| m.checksum.to_vec()))
            .bind(a.guard_rows)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// `k` point lookups by one server-side loop (`EXECUTE`: parsed and planned every time)
    /// over the first `n` of `names`; lookups per second.
    pub async fn lookups(
        &mut self,
        names: &[String],
        n: usize,
        k: usize,
        rows_per: i32,
    ) -> BoxResult<f64> {
        let start = Instant::now();
        sqlx::query("SELECT pg_temp.bench_lookups($1, $2, $3, $4)")
            .bind(names)
            .bind(n as i32)
            .bind(k as i32)
            .bind(rows_per)
            .execute(&mut self.conn)
            .await?;
        Ok(k as f64 / start.elapsed().as_secs_f64())
    }

    /// `apply` in chunks (one transaction each), for setups of thousands of tenants.
    pub async fn apply_chunked(&mut self, names: &[String], a: &Apply<'_>) -> BoxResult<()> {
        for chunk in names.chunks(250) {
            self.apply(chunk, a).await?;
        }
        Ok(())
    }

    /// The same loop in a procedure that commits after each tenant (the durability the library
    /// has: one transaction per tenant). A reference, not the floor.
    pub async fn apply_each(&mut self, names: &[String], a: &Apply<'_>) -> BoxResult<()> {
        // CALL with transaction control must not run inside a transaction block; with the
        // extended protocol sqlx sends it outside one.
        sqlx::query("CALL pg_temp.bench_apply_each($1, $2, $3, $4, $5, $6, $7)")
            .bind(names)
            .bind(a.create_schema)
            .bind(a.ddl)
            .bind(a.registry)
            .bind(a.migration.map(|m| m.version))
            .bind(a.migration.map(|m| m.description.to_string()))
            .bind(a.migration.map(|m| m.checksum.to_vec()))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// A registry and `n` tenants at the example migrations' version, set up fast (server-side
/// loop writing what `Tenants::create` writes) and checked with `Tenants::status`.
pub struct Fleet {
    pub registry: String,
    pub names: Vec<String>,
    pub tenants: Tenants,
}

/// The run's context. Each workload runs in a database of its own, created from `template0`
/// by [`Ctx::enter_database`] and dropped by [`Ctx::leave_database`], so what one workload
/// leaves in the catalog (the server may run with autovacuum off: dead rows of dropped
/// schemas stay) cannot slow the next. `pool`, `options`, `server` and `database` point at
/// that database while a workload runs.
pub struct Ctx {
    /// The server's URL, as `tenancy_testdb::database_url()` gave it.
    pub url: String,
    /// A one-connection pool on `url`'s own database: creates and drops the workloads'.
    pub admin: PgPool,
    /// The current workload's database.
    pub database: String,
    pub options: PgConnectOptions,
    pub pool: PgPool,
    pub quick: bool,
    pub cleanup: Arc<Cleanup>,
    pub server: Server,
    /// The current workload's rows and notes.
    pub out: Results,
    fleets: HashMap<usize, Fleet>,
}

impl Ctx {
    /// Connects to the server and enters a first fresh database.
    pub async fn new(url: String, quick: bool) -> BoxResult<Self> {
        let admin = pool_with(&url.parse()?, 1).await?;
        let cleanup = Arc::new(Cleanup::new(url.clone()));
        let (database, options, pool, server) = fresh_database(&url, &admin, &cleanup).await?;
        Ok(Ctx {
            cleanup,
            url,
            admin,
            database,
            options,
            pool,
            quick,
            server,
            out: Results::default(),
            fleets: HashMap::new(),
        })
    }

    /// Switches to a freshly created database (the previous one must have been left).
    pub async fn enter_database(&mut self) -> BoxResult<()> {
        (self.database, self.options, self.pool, self.server) =
            fresh_database(&self.url, &self.admin, &self.cleanup).await?;
        Ok(())
    }

    /// Closes every connection to the current database and drops it, with everything in it.
    pub async fn leave_database(&mut self) -> BoxResult<()> {
        self.fleets.clear();
        self.pool.close().await;
        self.cleanup
            .drop_database(&self.admin, &self.database)
            .await
    }

    /// `n` fresh schema names sharing one unique prefix, tracked for cleanup.
    pub fn names(&self, prefix: &str, n: usize) -> Vec<String> {
        let head = tenancy_testdb::unique_name(prefix);
        let names: Vec<String> = (0..n).map(|i| format!("{head}_{i}")).collect();
        self.cleanup.track(names.clone());
        names
    }

    /// `n` fresh schemas (names from [`names`](Self::names)) holding the tests' `guards` table
    /// with `rows` rows each, created by the server-side loop.
    pub async fn guard_tenants(
        &mut self,
        prefix: &str,
        n: usize,
        rows: i32,
    ) -> BoxResult<Vec<String>> {
        let names = self.names(prefix, n);
        self.server
            .apply_chunked(
                &names,
                &Apply {
                    create_schema: true,
                    ddl: GUARDS_DDL,
                    registry: None,
                    migration: None,
                    guard_rows: rows,
                },
            )
            .await?;
        Ok(names)
    }

    /// A fresh registry schema name, tracked for cleanup.
    pub fn registry_name(&self) -> String {
        let name = tenancy_testdb::unique_name("bench");
        self.cleanup.track([name.clone()]);
        name
    }

    /// Creates a fleet of `n` tenants (see [`Fleet`]).
    pub async fn make_fleet(&mut self, n: usize) -> BoxResult<Fleet> {
        let migrations = example_migrations().await?;
        let registry = self.registry_name();
        let tenants = Tenants::new(self.pool.clone(), Migrator::with_migrations(migrations))?
            .with_registry(&registry)?;
        tenants.list().await?; // creates the registry
        let names = self.names("bt", n);
        let started = Instant::now();
        let all = example_migrations().await?;
        let ups = ups(&all);
        assert_eq!(ups.len(), 1, "the example has one migration");
        self.server
            .apply_chunked(
                &names,
                &Apply {
                    create_schema: true,
                    ddl: ups[0].sql.as_str(),
                    registry: Some(&registry),
                    migration: Some(ups[0]),
                    guard_rows: 0,
                },
            )
            .await?;
        let status = tenants.status().await?;
        let ok = status.len() == n
            && status
                .iter()
                .all(|s| s.pending.is_empty() && s.changed.is_empty() && s.applied == [1]);
        if !ok {
            return Err(
                format!("fleet of {n}: Tenants::status does not see them up to date").into(),
            );
        }
        println!(
            "  (set up {n} tenants in {:.1} s; Tenants::status sees all {n} up to date)",
            started.elapsed().as_secs_f64()
        );
        Ok(Fleet {
            registry,
            names,
            tenants,
        })
    }

    /// A fleet of `n` to read (kept for later workloads).
    pub async fn fleet(&mut self, n: usize) -> BoxResult<&Fleet> {
        if !self.fleets.contains_key(&n) {
            let fleet = self.make_fleet(n).await?;
            self.fleets.insert(n, fleet);
        }
        Ok(&self.fleets[&n])
    }

    /// A fleet of `n` to change (taken from the cache if a previous workload made one).
    pub async fn take_fleet(&mut self, n: usize) -> BoxResult<Fleet> {
        match self.fleets.remove(&n) {
            Some(f) => Ok(f),
            None => self.make_fleet(n).await,
        }
    }

    /// Drops a fleet's tenants and registry.
    pub async fn drop_fleet(&self, fleet: Fleet) -> BoxResult<()> {
        let mut all = fleet.names;
        all.push(fleet.registry);
        self.cleanup.drop_schemas(&self.pool, &all).await
    }
}

/// Creates a database from `template0` on the server of `url` and connects to it: its name,
/// connect options, a pool and the server-side helpers.
async fn fresh_database(
    url: &str,
    admin: &PgPool,
    cleanup: &Cleanup,
) -> BoxResult<(String, PgConnectOptions, PgPool, Server)> {
    let database = tenancy_testdb::unique_name("bench_db");
    cleanup.create_database(admin, &database).await?;
    let options = url.parse::<PgConnectOptions>()?.database(&database);
    let pool = pool_with(&options, POOL_SIZE).await?;
    let server = Server::connect(&options).await?;
    Ok((database, options, pool, server))
}

pub async fn pool_with(options: &PgConnectOptions, size: u32) -> BoxResult<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .connect_with(options.clone())
        .await?)
}

/// Runs `f(name)` for every name with `workers` concurrent workers.
pub async fn each_concurrent<F, Fut>(names: &[String], workers: usize, f: F) -> BoxResult<()>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = BoxResult<()>> + Send,
{
    let names = Arc::new(names.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (names, next, f) = (Arc::clone(&names), Arc::clone(&next), Arc::clone(&f));
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else {
                    return Ok::<(), BoxError>(());
                };
                f(name.clone()).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// This process's peak resident set (`VmHWM`), in kB.
pub fn vm_hwm_kb() -> u64 {
    proc_status("VmHWM")
}

/// A number in this process's `/proc/self/status` (`VmRSS` and `VmHWM` in kB, `Threads`), 0
/// where there is none.
pub fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
