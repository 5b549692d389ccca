//! The runtime side of `#[tenancy::test]` (feature `testing`): a fresh, migrated tenant for
//! one test, gone when the test ends, also when it panics.
//!
//! Two modes:
//! - **committed** (`#[tenancy::test]`, [`TestTenant`]): the tenant is created and committed
//!   like any other, so every connection sees it (pools, `Tenants`, `migrate_all`, a web
//!   layer); it is dropped after the test, with every tenant the test created through its
//!   [`Tenants`] argument. PostgreSQL or Citus (`DATABASE_URL`; a Citus coordinator is
//!   detected, and the tenant is a distributed schema) or, with `backend = "mysql"`, MySQL /
//!   MariaDB (`MYSQL_URL`); with the variable unset, a private throwaway server started from
//!   the installed PostgreSQL or MariaDB / MySQL programs, once per test process, in a
//!   temporary folder on a free port, removed when the process exits (`tenancy-testdb`; on
//!   Unix). With `backend = "sqlite"` (feature `sqlite`), no server: a temporary folder of
//!   its own per test (in [`std::env::temp_dir`]), removed after the test.
//! - **rollback** (`#[tenancy::test(rollback)]`, `tenancy::postgres::RollbackTenant`,
//!   PostgreSQL only): one
//!   connection, one transaction holding the tenant's registration, `CREATE SCHEMA`, the
//!   migrations, the fixtures and the test's body, rolled back at the end. Nothing is ever
//!   committed, so nothing can be left behind, and nothing but that connection can see the
//!   tenant: the test asks for `&mut PgConnection` or `&mut Transaction`, never a pool.
//!
//! Test tenants live in their own registry, [`TEST_REGISTRY`] (`_tenancy_test`), so they never
//! show up in the application's registry, and every test gets a uniquely named one
//! (`t_<test>_<pid>_<counter>_<clock>`), so tests run in parallel, in one process
//! (`cargo test`) or in many (`cargo nextest`), against one database.
//!
//! **Row-level** (`#[tenancy::test(row_level)]`, [`TestTenant::into_row_level`]): committed
//! mode, on every backend, where the test's tenant is a row-level tenant
//! ([`Tenants::create_in`]) in a container made for the test alone (a fresh, migrated tenant
//! of its own, also uniquely named). The fixtures run in the container, in its creating
//! operation after its migrations, as for an ordinary test tenant; the rows they write with
//! the tenant column (`tenant_id`) set to [`FIXTURE_TENANT`] are then given to the test's
//! tenant (as a rename of a row-level tenant rewrites its rows), so a fixture need not know
//! the unique name. Other rows stay the container's. The row-level tenant is dropped before
//! its container, after the test and in the sweep.
//!
//! **Leftovers.** A committed test tenant outlives its test only if the process dies before the
//! teardown (`kill -9`, a nextest timeout). The first committed test of every process sweeps
//! the registry: it drops each tenant of [`TEST_REGISTRY`] whose name says it is older than
//! [`SWEEP_AFTER`] and whose process is not running on this machine (on systems without
//! `/proc`, the age alone decides). On PostgreSQL one process sweeps at a time (an advisory
//! lock; a process that finds it taken does not wait and does not sweep). Tenants the test
//! created through its `Tenants` argument under names of its own carry no process id and are
//! not swept; they are dropped by the teardown like the test's tenant.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolOptions;
use sqlx::{Pool, Postgres};

use crate::backend::Backend;
use crate::error::Error;
use crate::lifecycle::store::{CreateHook, Operation, Place, Rewrite, Store};
use crate::lifecycle::{TenantEvent, Tenants};
use crate::tenant::{Tenant, MAX_TENANT_NAME_LEN};
use crate::tenant_pool::TenantPool;

/// The registry of the tenants made for tests.
pub const TEST_REGISTRY: &str = "_tenancy_test";

/// The environment variable naming the PostgreSQL test database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The environment variable naming the MySQL / MariaDB test server (`backend = "mysql"`).
pub const MYSQL_URL_ENV: &str = "MYSQL_URL";

/// The environment variable naming the folder in which `backend = "sqlite"` makes each test's
/// temporary folder (the system's temporary folder, [`std::env::temp_dir`]).
pub const SQLITE_TMPDIR_ENV: &str = "TMPDIR";

/// The name a fixture of a `#[tenancy::test(row_level)]` test writes in the tenant column
/// (`tenant_id`) of a row that is to be the test tenant's: once the row-level tenant is
/// registered, such rows take its (unique) name. See the [module](self) documentation.
pub const FIXTURE_TENANT: &str = "test_tenant";

/// How many connections the pool of one committed `#[tenancy::test]` opens at most.
pub const TEST_POOL_CONNECTIONS: u32 = 4;

/// How old a test tenant of a process that is gone must be before the next run drops it.
pub const SWEEP_AFTER: Duration = Duration::from_secs(10 * 60);

/// A database `#[tenancy::test]` runs on: PostgreSQL (and Citus), MySQL / MariaDB with the
/// `mysql` feature, SQLite with the `sqlite` feature. Sealed by [`Backend`].
pub trait TestBackend: Backend + RunSql {
    /// The environment variable naming the test database (SQLite: the folder in which each
    /// test's temporary folder is made, [`SQLITE_TMPDIR_ENV`]).
    const URL_ENV: &'static str;

    /// An example value of [`URL_ENV`](Self::URL_ENV), for the message when it is unset.
    const EXAMPLE_URL: &'static str;

    /// The URL of a private throwaway server for the tests when [`URL_ENV`](Self::URL_ENV) is
    /// unset, started from the installed programs on first use; why there is none otherwise
    /// (by default: none, as where private servers are not started, off Unix).
    #[doc(hidden)]
    fn private_server_url() -> Result<String, String> {
        Err(no_private_server::<Self>())
    }

    /// The database of one committed test named `test`: by default a pool on the server of
    /// [`URL_ENV`](Self::URL_ENV) (or the private server); why there is none otherwise.
    #[doc(hidden)]
    fn test_database(test: &str) -> BoxFuture<'static, Result<TestDatabase<Self>, String>> {
        let _ = test;
        Box::pin(async move {
            let url = database_url::<Self>();
            let pool = PoolOptions::<Self>::new()
                .max_connections(TEST_POOL_CONNECTIONS)
                .connect(&url)
                .await
                .map_err(|e| {
                    format!(
                        "cannot connect to {} ({url}): {}",
                        Self::URL_ENV,
                        causes(&e)
                    )
                })?;
            Ok(TestDatabase {
                pool,
                place: format!("{} ({url})", Self::URL_ENV),
                folder: None,
            })
        })
    }

    /// The handle on `pool` in [`TEST_REGISTRY`] with `migrations`.
    #[doc(hidden)]
    fn handle(pool: Pool<Self>, migrator: Migrator) -> Result<Tenants<Self>, Error> {
        Tenants::new(pool, migrator)?.with_registry(TEST_REGISTRY)
    }

    /// Drops the leftovers of killed runs in `tenants`' registry (see the module
    /// documentation); how many it dropped. Each drop takes the tenant's lock, and a tenant
    /// another process dropped first is skipped: concurrent sweeps repeat one listing, nothing
    /// more.
    #[doc(hidden)]
    fn sweep(tenants: &Tenants<Self>) -> BoxFuture<'_, Result<usize, Error>> {
        Box::pin(drop_stale(tenants))
    }

    /// Learns that `tenants` created a tenant (`true`) or failed to (`false`).
    #[doc(hidden)]
    fn created(tenants: &Tenants<Self>, created: bool) {
        let _ = (tenants, created);
    }
}

/// Runs fixtures: implemented for every database whose connections run SQL text as sqlx's
/// `raw_sql` does (every [`TestBackend`]).
#[doc(hidden)]
pub trait RunSql: sqlx::Database {
    /// Runs the statements of `sql` (a fixture) on `conn`.
    fn run_sql(conn: &mut Self::Connection, sql: String) -> BoxFuture<'_, Result<(), sqlx::Error>>;
}

impl<B: sqlx::Database> RunSql for B
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
{
    fn run_sql(conn: &mut B::Connection, sql: String) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

/// Where one committed test runs (see [`TestBackend::test_database`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct TestDatabase<B: Backend> {
    /// The pool the test's [`Tenants`] is built on.
    pub pool: Pool<B>,
    /// Where that is, for messages.
    pub place: String,
    /// A temporary folder holding the database, removed when the test's tenant is gone.
    pub folder: Option<TempFolder>,
}

/// A folder made for one test, removed (with everything in it) when this is dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct TempFolder(pub std::path::PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "#[tenancy::test]: cannot remove the test's folder {}: {e}",
                    self.0.display()
                );
            }
        }
    }
}

/// `error`'s message followed by each of its causes (every [`source`](std::error::Error::source)
/// in turn, `: `-separated), skipping a cause whose text the message already holds.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Creates `name` and runs `fixtures` in it after its migrations, in the creating operation
/// (with the tenant as its default schema, database or file): all or nothing.
async fn create_seeded<B: TestBackend>(
    tenants: &Tenants<B>,
    name: String,
    fixtures: Vec<String>,
) -> Result<Tenant, Error> {
    let created = if fixtures.is_empty() {
        tenants.create(name).await
    } else {
        let hook: CreateHook<B> = Box::new(move |conn, _tenant| {
            Box::pin(async move {
                for fixture in fixtures {
                    B::run_sql(&mut *conn, fixture).await?;
                }
                Ok(())
            })
        });
        tenants.create_with(name, hook).await
    };
    B::created(tenants, created.is_ok());
    created
}

/// Gives the rows of row-level `tenant`'s container whose tenant column holds
/// [`FIXTURE_TENANT`] to `tenant` (under its lock): what the fixtures wrote for the test's
/// tenant. How many rows it changed.
async fn claim_fixture_rows<B: TestBackend>(
    tenants: &Tenants<B>,
    tenant: &Tenant,
) -> Result<u64, Error> {
    let container = Tenant::new(tenant.container())?;
    let written = Tenant::new(FIXTURE_TENANT)?.rows_in(&container);
    let column = tenants.tenant_column().to_owned();
    tenants
        .operation(Operation::Rename, tenant, async |op| {
            let store = tenants.store();
            store.lock(op, &tenant.own()).await?;
            let rows = Rewrite {
                tenant: &written,
                column: &column,
                to: Some(tenant),
            };
            store.rewrite_rows(op, rows).await
        })
        .await
}

/// Drops `made`, row-level tenants before the containers holding them (a container holding
/// some cannot be dropped); a tenant already gone is skipped. The first error stops it,
/// naming its tenant.
async fn drop_all<B: TestBackend>(
    tenants: &Tenants<B>,
    mut made: Vec<Tenant>,
) -> Result<(), (Tenant, Error)> {
    made.sort_by_key(|t| !t.is_row_level());
    for tenant in made {
        match tenants.drop(&tenant).await {
            Ok(_) | Err(Error::NotATenant { .. }) => {}
            Err(e) => return Err((tenant, e)),
        }
    }
    Ok(())
}

/// Drops the tenants of `tenants`' registry that [`is_stale`]; how many it dropped.
pub(crate) async fn drop_stale<B: TestBackend>(tenants: &Tenants<B>) -> Result<usize, Error> {
    let now = unix_secs();
    let mut swept = 0;
    let mut all = tenants.list().await?;
    // Row-level tenants first: a container holding some cannot be dropped.
    all.sort_by_key(|t| !t.is_row_level());
    for tenant in all {
        if is_stale(tenant.as_str(), now, process_running) {
            match tenants.drop(&tenant).await {
                Ok(_) => swept += 1,
                Err(Error::NotATenant { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(swept)
}

/// Whether test tenant `name` is a leftover: its name says it was made more than
/// [`SWEEP_AFTER`] before `now` (Unix seconds) by a process `running` says is gone. Names that
/// do not parse as a test tenant's are never stale.
pub(crate) fn is_stale(name: &str, now: u64, running: impl Fn(u32) -> Option<bool>) -> bool {
    let Some((pid, made)) = parse_name(name) else {
        return false;
    };
    now.saturating_sub(made) > SWEEP_AFTER.as_secs() && running(pid) != Some(true)
}

/// Whether process `pid` is running on this machine (`None`: cannot tell here).
pub(crate) fn process_running(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A tenant name for `test` (its last path segment), unique across threads and processes:
/// `t_<test>_<pid>_<counter>_<seconds><nanos>` (seconds since the epoch in 8 hex digits, the
/// clock's nanoseconds in 4).
pub(crate) fn unique_name(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let suffix = format!(
        "_{}_{}_{:08x}{:04x}",
        std::process::id(),
        counter,
        now.as_secs() as u32,
        (now.subsec_nanos() >> 8) & 0xffff
    );
    let name = test.rsplit("::").next().unwrap_or(test);
    let mut head: String = "t_".to_owned();
    head.extend(name.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        }
    }));
    // `head` is ASCII, so truncating at any byte index is valid.
    head.truncate(MAX_TENANT_NAME_LEN - suffix.len());
    head + &suffix
}

/// The process id and creation time (Unix seconds) in a name made by [`unique_name`].
fn parse_name(name: &str) -> Option<(u32, u64)> {
    if !name.starts_with("t_") {
        return None;
    }
    let mut parts = name.rsplitn(4, '_');
    let clock = parts.next()?;
    let counter = parts.next()?;
    let pid = parts.next()?;
    if clock.len() != 12 || counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let made = u64::from_str_radix(&clock[..8], 16).ok()?;
    Some((pid.parse().ok()?, made))
}

/// The tenants a handle created (and still has) since [`track`] was called.
type Made = Arc<Mutex<BTreeSet<Tenant>>>;

fn track<B: TestBackend>(tenants: &Tenants<B>) -> Made {
    let made: Made = Arc::default();
    let seen = Arc::clone(&made);
    tenants.subscribe(move |event: &TenantEvent| {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            TenantEvent::Created(t) => {
                seen.insert(t.clone());
            }
            TenantEvent::Dropped(t) => {
                seen.remove(t);
            }
            TenantEvent::Renamed { old, new } => {
                if seen.remove(old) {
                    seen.insert(new.clone());
                }
            }
            // Still the same tenant (by name), now placed elsewhere.
            TenantEvent::Moved(t) => {
                if seen.remove(t) {
                    seen.insert(t.clone());
                }
            }
        }
    });
    made
}

/// A fresh tenant, with every tenant migration applied (and fixtures, if any), committed, made
/// for one test: the committed mode of `#[tenancy::test]`.
///
/// [`run`](Self::run) runs the test and drops the tenant afterwards, also when the test
/// panics, together with every tenant created through [`tenants`](Self::tenants) (or a clone
/// of it) and not dropped by the test; [`drop_tenant`](Self::drop_tenant) does the same by
/// hand. A `TestTenant` dropped without either leaves its tenant behind until the sweep of a
/// later run (see the [module](self) documentation).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), tenancy_core::Error> {
/// use tenancy_core::testing::TestTenant;
/// let test = TestTenant::create(pool, "migrations/tenant", "hires_a_guard").await?;
/// let (tenant, pool) = (test.tenant().clone(), test.pool().clone());
/// test.run(async move {
///     let sql = format!("SELECT count(*) FROM {}.guards", tenant.quoted());
///     let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap();
///     assert_eq!(n, 0);
/// })
/// .await; // the tenant is dropped here, also if the body panicked
/// # Ok(()) }
/// ```
pub struct TestTenant<B: Backend = Postgres> {
    tenant: Tenant,
    tenants: Tenants<B>,
    tenant_pool: TenantPool<B>,
    /// The container of a row-level test tenant ([`into_row_level`](Self::into_row_level)).
    container: Option<Tenant>,
    made: Made,
    /// The test's temporary folder (SQLite), removed with the last clone.
    folder: Option<Arc<TempFolder>>,
}

impl<B: Backend> Clone for TestTenant<B> {
    fn clone(&self) -> Self {
        TestTenant {
            tenant: self.tenant.clone(),
            tenants: self.tenants.clone(),
            tenant_pool: self.tenant_pool.clone(),
            container: self.container.clone(),
            made: Arc::clone(&self.made),
            folder: self.folder.clone(),
        }
    }
}

debug_fields!(TestTenant<B: Backend> { tenant, container, tenants, .. });

/// The migrations in the folder `migrations`.
pub(crate) async fn migrator(migrations: impl AsRef<Path>) -> Result<Migrator, Error> {
    Ok(Migrator::new(migrations.as_ref())
        .await
        .map_err(sqlx::Error::from)?)
}

impl<B: TestBackend> TestTenant<B> {
    /// Creates a tenant named after `test` (made unique), with the migrations in the folder
    /// `migrations`, in the registry [`TEST_REGISTRY`] of `pool`'s database.
    pub async fn create(
        pool: Pool<B>,
        migrations: impl AsRef<Path>,
        test: &str,
    ) -> Result<Self, Error> {
        Self::create_with_fixtures(pool, migrations, test, &[]).await
    }

    /// [`create`](Self::create), then runs the SQL of each of `fixtures` in the tenant (on
    /// PostgreSQL in the creating transaction, with the tenant's schema as `search_path`; on
    /// MySQL after it, with the tenant as the default database). A failing fixture leaves no
    /// tenant.
    pub async fn create_with_fixtures(
        pool: Pool<B>,
        migrations: impl AsRef<Path>,
        test: &str,
        fixtures: &[&str],
    ) -> Result<Self, Error> {
        let migrator = migrator(migrations).await?;
        let tenants = B::handle(pool, migrator)?;
        sweep_once(&tenants).await;
        let fixtures = fixtures.iter().map(|f| (*f).to_owned()).collect();
        let tenant = create_seeded(&tenants, unique_name(test), fixtures).await?;
        let tenant_pool = match tenants.pool_for(&tenant).await {
            Ok(pool) => pool,
            Err(e) => {
                let _ = tenants.drop(&tenant).await;
                return Err(e);
            }
        };
        let made = track(&tenants);
        Ok(TestTenant {
            tenant,
            tenants,
            tenant_pool,
            container: None,
            made,
            folder: None,
        })
    }

    /// Makes this test's tenant the container of a new row-level tenant
    /// ([`Tenants::create_in`], named after `test`, made unique), which becomes the test's
    /// tenant (`#[tenancy::test(row_level)]`): the rows the fixtures wrote in the container
    /// with [`FIXTURE_TENANT`] in the tenant column are given to it, and
    /// [`drop_tenant`](Self::drop_tenant) drops it, then the container. On an error neither is
    /// left. [`Error::Unsupported`] if the test's tenant is row-level already.
    pub async fn into_row_level(mut self, test: &str) -> Result<Self, Error> {
        if self.tenant.is_row_level() {
            return Err(Error::Unsupported {
                operation: "into_row_level",
                reason: format!("test tenant \"{}\" is row-level already", self.tenant),
            });
        }
        let placed = async {
            let tenant = self
                .tenants
                .create_in(unique_name(test), &self.tenant)
                .await?;
            let set_up = async {
                claim_fixture_rows(&self.tenants, &tenant).await?;
                self.tenants.pool_for(&tenant).await
            };
            match set_up.await {
                Ok(pool) => Ok((tenant, pool)),
                Err(e) => {
                    let _ = self.tenants.drop(&tenant).await;
                    Err(e)
                }
            }
        };
        match placed.await {
            Ok((tenant, pool)) => {
                // Dropped as the test's tenant, not as one the test made.
                self.lock_made().remove(&tenant);
                self.container = Some(std::mem::replace(&mut self.tenant, tenant));
                self.tenant_pool = pool;
                Ok(self)
            }
            Err(e) => {
                let _ = self.drop_tenant().await;
                Err(e)
            }
        }
    }

    /// The tenants the test made through [`tenants`](Self::tenants) and did not drop.
    fn lock_made(&self) -> std::sync::MutexGuard<'_, BTreeSet<Tenant>> {
        self.made.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The test's tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The container of the test's row-level tenant ([`into_row_level`](Self::into_row_level));
    /// `None` for a tenant of its own.
    pub fn container(&self) -> Option<&Tenant> {
        self.container.as_ref()
    }

    /// The handle that created the tenant (registry [`TEST_REGISTRY`]). Tenants created
    /// through it are dropped with the test's tenant.
    pub fn tenants(&self) -> &Tenants<B> {
        &self.tenants
    }

    /// The pool on the test database (on SQLite, the registry's file: use
    /// [`tenant_pool`](Self::tenant_pool) for the tenant's tables).
    pub fn pool(&self) -> &Pool<B> {
        self.tenants.pool()
    }

    /// The tenant's own executor ([`Tenants::pool_for`]), the same on every backend.
    pub fn tenant_pool(&self) -> &TenantPool<B> {
        &self.tenant_pool
    }

    /// Runs `body`, then drops the tenant (see [`drop_tenant`](Self::drop_tenant)), whether
    /// `body` returned or panicked; a panic of `body` is resumed after the drop. Panics if the
    /// tenant cannot be dropped after `body` returned (after a panic of `body`, the drop's
    /// error is printed and the panic resumed).
    pub async fn run<F: Future>(self, body: F) -> F::Output {
        let result = AssertUnwindSafe(body).catch_unwind().await;
        let dropped = self.drop_tenant().await;
        match (result, dropped) {
            (Ok(output), Ok(())) => output,
            (Ok(_), Err((tenant, e))) => {
                panic!(
                    "#[tenancy::test]: cannot drop the test tenant {tenant}: {}",
                    causes(&e)
                )
            }
            (Err(panic), dropped) => {
                if let Err((tenant, e)) = dropped {
                    eprintln!(
                        "#[tenancy::test]: cannot drop the test tenant {tenant}: {}",
                        causes(&e)
                    );
                }
                resume_unwind(panic)
            }
        }
    }

    /// Drops the tenant (its schema or database and everything in it; a row-level one's rows,
    /// then its container), and every tenant created through [`tenants`](Self::tenants) that
    /// still exists, row-level ones before the containers. The first error stops it, naming
    /// its tenant.
    pub async fn drop_tenant(self) -> Result<(), (Tenant, Error)> {
        let made = std::mem::take(&mut *self.lock_made());
        let all = std::iter::once(self.tenant.clone())
            .chain(self.container.clone())
            .chain(made)
            .collect();
        drop_all(&self.tenants, all).await
    }
}

/// Drops the leftovers of killed runs from [`TEST_REGISTRY`] on `pool`'s database now: every
/// test tenant whose name says it is older than [`SWEEP_AFTER`] and whose process is not
/// running on this machine. How many it dropped (0 when another process is sweeping on
/// PostgreSQL). `#[tenancy::test]` does this once per process by itself.
pub async fn sweep<B: TestBackend>(pool: Pool<B>) -> Result<usize, Error> {
    let tenants = B::handle(pool, Migrator::DEFAULT)?;
    B::sweep(&tenants).await
}

/// Sweeps the leftovers of killed runs, once per process and backend; a failure is printed,
/// not fatal.
async fn sweep_once<B: TestBackend>(tenants: &Tenants<B>) {
    static SWEPT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.contains(&B::DB_SYSTEM) {
            return;
        }
        swept.push(B::DB_SYSTEM);
    }
    if let Err(e) = B::sweep(tenants).await {
        eprintln!(
            "#[tenancy::test]: cannot sweep the leftovers of earlier runs: {}",
            causes(&e)
        );
    }
}

/// A value a `#[tenancy::test]` function can take as an argument (committed mode) on backend
/// `B`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a `#[tenancy::test]` function",
    label = "not an argument a test can ask for",
    note = "a `#[tenancy::test]` function takes any of: `tenancy::Tenant` (its tenant), `tenancy::TenantPool` (its executor), `sqlx::PgPool` (a pool on the test database), `tenancy::Tenants` (the handle that created the tenant); with `backend = \"mysql\"`, `tenancy::TenantPool<sqlx::MySql>`, `sqlx::MySqlPool` and `tenancy::Tenants<sqlx::MySql>`; with `backend = \"sqlite\"`, `tenancy::TenantPool<sqlx::Sqlite>` and `tenancy::Tenants<sqlx::Sqlite>` (a `SqlitePool` is not one: it has no tenant's file open); a connection (`&mut PgConnection`, `&mut Transaction`) only with `#[tenancy::test(rollback)]`"
)]
pub trait TestArg<B: Backend = Postgres>: Sized {
    /// The value for the test of `test`.
    fn from_test(test: &TestTenant<B>) -> Self;
}

impl<B: Backend> TestArg<B> for Tenant {
    fn from_test(test: &TestTenant<B>) -> Self {
        test.tenant.clone()
    }
}

impl<B: Backend> TestArg<B> for TenantPool<B> {
    fn from_test(test: &TestTenant<B>) -> Self {
        test.tenant_pool.clone()
    }
}

impl<B: Backend> TestArg<B> for Tenants<B> {
    fn from_test(test: &TestTenant<B>) -> Self {
        test.tenants.clone()
    }
}

/// What a `#[tenancy::test]` function can return: `()`, or a `Result<(), E>` that fails the
/// test when it is an `Err`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of a `#[tenancy::test]` function",
    note = "a `#[tenancy::test]` function returns `()` or `Result<(), E>` with `E: Debug`"
)]
pub trait TestOutput {
    /// `Err` with the message to fail the test with.
    fn into_result(self) -> Result<(), String>;
}

impl TestOutput for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestOutput for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }
}

/// A tokio runtime for one test.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("#[tenancy::test]: cannot build a tokio runtime")
}

/// The body of the `#[test]` function `#[tenancy::test]` generates (committed mode): on a
/// current-thread tokio runtime, connects to `B`'s test database, creates the test's tenant
/// with the migrations in the folder `migrations` and the SQL of `fixtures` (with `row_level`,
/// a row-level tenant in a container of its own: [`TestTenant::into_row_level`]), runs
/// `body` with it and drops the tenant.
#[doc(hidden)]
pub fn __run<B, F, Fut>(test: &str, migrations: &str, fixtures: &[&str], row_level: bool, body: F)
where
    B: TestBackend,
    F: FnOnce(&TestTenant<B>) -> Fut,
    Fut: Future,
    Fut::Output: TestOutput,
{
    let output = runtime().block_on(async move {
        let database = B::test_database(test)
            .await
            .unwrap_or_else(|e| panic!("#[tenancy::test]: {e}"));
        let place = database.place;
        let folder = database.folder.map(Arc::new);
        let mut made =
            TestTenant::create_with_fixtures(database.pool, migrations, test, fixtures).await;
        if row_level {
            made = match made {
                Ok(container) => container.into_row_level(test).await,
                Err(e) => Err(e),
            };
        }
        let mut test_tenant = made.unwrap_or_else(|e| {
            panic!(
                "#[tenancy::test]: cannot create the tenant of {test} \
                 with the migrations of {migrations} on {place}: {}",
                causes(&e)
            )
        });
        test_tenant.folder = folder;
        let future = body(&test_tenant);
        test_tenant.run(future).await
    });
    if let Err(message) = output.into_result() {
        panic!("{message}");
    }
}

/// `B`'s test database URL: its variable, or else a private server (see the module
/// documentation); a panic saying how to provide one if neither is there.
pub(crate) fn database_url<B: TestBackend>() -> String {
    match std::env::var(B::URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => B::private_server_url().unwrap_or_else(|e| panic!("#[tenancy::test]: {e}")),
    }
}

/// Why there is no private server where they cannot be started.
fn no_private_server<B: TestBackend>() -> String {
    format!(
        "{env} is not set (private servers are started on Unix only): set it to a database the \
         tests may create {container}s in, e.g. {env}={example}",
        env = B::URL_ENV,
        container = B::CONTAINER,
        example = B::EXAMPLE_URL,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_unique() {
        let long = format!("tests::{}", "x".repeat(100));
        for test in [
            "a::b::creates_a_guard",
            "Ünïcode-Name",
            "",
            &long,
            "a_1_2_3",
        ] {
            let (a, b) = (unique_name(test), unique_name(test));
            assert_ne!(a, b);
            Tenant::new(&a).unwrap_or_else(|e| panic!("{test:?} -> {a:?}: {e}"));
            let (pid, made) = parse_name(&a).unwrap_or_else(|| panic!("{a}"));
            assert_eq!(pid, std::process::id());
            assert!(unix_secs().abs_diff(made) < 5, "{a}");
        }
        assert!(unique_name("m::creates_a_guard").starts_with("t_creates_a_guard_"));
    }

    #[test]
    fn causes_follow_every_source_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let root = E("relation \"x\" does not exist", None);
        // The middle one already says its cause: it is not repeated.
        let middle = E(
            "database error: relation \"x\" does not exist",
            Some(Box::new(root)),
        );
        let top = E("migration 1 failed", Some(Box::new(middle)));
        assert_eq!(
            causes(&top),
            "migration 1 failed: database error: relation \"x\" does not exist"
        );
        assert_eq!(causes(&E("alone", None)), "alone");
    }

    #[test]
    fn only_old_tenants_of_gone_processes_are_stale() {
        let name = unique_name("m::old");
        let now = unix_secs();
        let later = now + SWEEP_AFTER.as_secs() + 1;
        let gone = |_| Some(false);
        let alive = |_| Some(true);
        let unknown = |_| None;
        assert!(!is_stale(&name, now, gone), "too young");
        assert!(is_stale(&name, later, gone));
        assert!(!is_stale(&name, later, alive), "its process runs");
        assert!(
            is_stale(&name, later, unknown),
            "cannot tell: the age decides"
        );
        for other in [
            "acme",
            "t_acme",
            "t_x_1_2_zzzzzzzzzzzz",
            "t_x_1_a_0000000000000",
        ] {
            assert!(!is_stale(other, later, gone), "{other}");
        }
        assert_eq!(process_running(std::process::id()), Some(true));
    }
}
