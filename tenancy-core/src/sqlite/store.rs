//! The SQLite tenant store: tenant files in a folder, a registry file beside them, the LRU of
//! per-tenant pools, and the lifecycle operations on files.
//!
//! - **Registry** (`<folder>/<registry>.db`, table `tenants`): which files are tenants. A file
//!   not in it is never opened as a tenant.
//! - **Migrations** are recorded in each tenant's own file (`_tenancy_migrations`), in the same
//!   transaction as the migration: SQLite's DDL is transactional, so a tenant is migrated
//!   wholly or not at all, with no dirty state.
//! - **Locks**: a lifecycle operation holds the tenant's lock in this process (an async mutex
//!   per tenant) and, for a migration, the file's write lock (`BEGIN IMMEDIATE`), which
//!   another process's migration waits for. Dedicated connections run lifecycle statements and
//!   are closed afterwards: nothing a migration sets (a `PRAGMA`) reaches a pooled connection.
//! - **Create** builds the migrated file under a temporary name and links it into place
//!   (`link`, which never replaces an existing file), so a failed or interrupted create leaves
//!   no `<tenant>.db`.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use sqlx::migrate::Migration;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Executor as _};

use super::{file_options, is_busy, is_cantopen, is_unique_violation, PoolBudget};
use crate::error::Error;
use crate::lifecycle::Dropped;
use crate::plan::{Applied, Migrations};
use crate::report::{Outcome, TenantStatus};
use crate::tenant::{InvalidTenantName, NameRule, Tenant};

/// The table of applied migrations inside each tenant's file.
const MIGRATIONS_TABLE: &str = "_tenancy_migrations";

/// Names a file system may treat as devices (Windows), refused as tenant file names.
const DEVICE_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// How many tenant files `status` reads at once.
const STATUS_CONCURRENCY: usize = 8;

/// The direction of a migration run.
#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down(i64),
}

/// The SQLite store of one [`Tenants`](crate::Tenants) handle.
pub struct SqliteStore {
    folder: PathBuf,
    registry_file: PathBuf,
    registry_pool: SqlitePool,
    registry: Tenant,
    lock_timeout: Option<Duration>,
    budget: PoolBudget,
    pools: Mutex<Lru>,
    locks: Mutex<HashMap<Tenant, Arc<tokio::sync::Mutex<()>>>>,
    registry_ready: AtomicBool,
    temp_counter: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("folder", &self.folder)
            .field("registry", &self.registry)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The open tenant pools, least recently used first out.
#[derive(Default)]
struct Lru {
    pools: HashMap<Tenant, (SqlitePool, u64)>,
    tick: u64,
}

impl Lru {
    fn get(&mut self, tenant: &Tenant) -> Option<SqlitePool> {
        self.tick += 1;
        let tick = self.tick;
        self.pools.get_mut(tenant).map(|(pool, used)| {
            *used = tick;
            pool.clone()
        })
    }

    /// Keeps `pool` for `tenant` (or the one another task put there first, which is returned),
    /// letting the least recently used pools go beyond `max`.
    fn insert(&mut self, tenant: &Tenant, pool: SqlitePool, max: usize) -> SqlitePool {
        if let Some(existing) = self.get(tenant) {
            return existing;
        }
        while self.pools.len() >= max {
            let Some(oldest) = self
                .pools
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(t, _)| t.clone())
            else {
                break;
            };
            // Dropped, not closed: a caller still holding it keeps working; its connections
            // close when the last handle goes (and idle ones after the idle timeout).
            self.pools.remove(&oldest);
        }
        self.tick += 1;
        self.pools.insert(tenant.clone(), (pool.clone(), self.tick));
        pool
    }

    fn remove(&mut self, tenant: &Tenant) -> Option<SqlitePool> {
        self.pools.remove(tenant).map(|(pool, _)| pool)
    }
}

fn io_error(tenant: Option<&Tenant>, err: io::Error) -> Error {
    Error::Database {
        tenant: tenant.cloned(),
        source: sqlx::Error::Io(err).into(),
    }
}

fn migration_failed(tenant: &Tenant, m: &Migration, source: sqlx::Error) -> Error {
    Error::Migration {
        tenant: tenant.clone(),
        version: m.version,
        description: m.description.to_string(),
        source: source.into(),
    }
}

/// Removes `path` and the files SQLite keeps beside it; a file already gone is fine.
fn remove_with_sidecars(path: &Path) -> io::Result<bool> {
    let mut existed = false;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => existed |= suffix.is_empty(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(existed)
}

impl SqliteStore {
    pub(crate) fn new(
        folder: PathBuf,
        registry_file: PathBuf,
        registry_pool: SqlitePool,
        registry: Tenant,
        lock_timeout: Option<Duration>,
        budget: PoolBudget,
    ) -> Self {
        SqliteStore {
            folder,
            registry_file,
            registry_pool,
            registry,
            lock_timeout,
            budget,
            pools: Mutex::new(Lru::default()),
            locks: Mutex::new(HashMap::new()),
            registry_ready: AtomicBool::new(false),
            temp_counter: AtomicU64::new(0),
        }
    }

    /// The folder holding the tenant files.
    pub(crate) fn folder(&self) -> &Path {
        &self.folder
    }

    /// The handle's pool budget.
    pub(crate) fn budget(&self) -> &PoolBudget {
        &self.budget
    }

    /// The file of `tenant`.
    pub(crate) fn path(&self, tenant: &Tenant) -> PathBuf {
        self.folder.join(format!("{tenant}.db"))
    }

    /// Refuses names that must not become a file here: a device name, or the registry's own
    /// file. Checked before the file system is touched.
    fn check_name(&self, tenant: &Tenant) -> Result<(), Error> {
        if DEVICE_NAMES.contains(&tenant.as_str()) || self.path(tenant) == self.registry_file {
            return Err(Error::InvalidTenantName(InvalidTenantName {
                name: tenant.as_str().to_owned(),
                rule: NameRule::Reserved,
            }));
        }
        Ok(())
    }

    fn mutex(&self, tenant: &Tenant) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(tenant.clone()).or_default())
    }

    /// Takes `tenant`'s lock in this process, waiting at most the handle's lock timeout.
    async fn lock(&self, tenant: &Tenant) -> Result<tokio::sync::OwnedMutexGuard<()>, Error> {
        let mutex = self.mutex(tenant);
        match self.lock_timeout {
            None => Ok(mutex.lock_owned().await),
            Some(timeout) => tokio::time::timeout(timeout, mutex.lock_owned())
                .await
                .map_err(|_| Error::LockTimeout {
                    tenant: tenant.clone(),
                    waited: timeout,
                    holders: Vec::new(),
                }),
        }
    }

    /// How long a lifecycle connection waits for another process's write lock on a file.
    fn busy_timeout(&self) -> Duration {
        self.lock_timeout.unwrap_or(self.budget.busy_timeout)
    }

    /// A dedicated connection to `tenant`'s file (never from a pool; the caller closes it).
    async fn connect(&self, tenant: &Tenant) -> Result<SqliteConnection, Error> {
        let options = file_options(&self.path(tenant), self.busy_timeout());
        SqliteConnection::connect_with(&options).await.map_err(|e| {
            if is_cantopen(&e) {
                Error::SchemaMissing {
                    tenant: tenant.clone(),
                }
            } else {
                Error::from(e).about(tenant)
            }
        })
    }

    /// Maps a busy file to the handle's lock timeout.
    fn locked(&self, tenant: &Tenant, err: sqlx::Error) -> Error {
        if is_busy(&err) {
            Error::LockTimeout {
                tenant: tenant.clone(),
                waited: self.busy_timeout(),
                holders: Vec::new(),
            }
        } else {
            Error::from(err).about(tenant)
        }
    }

    /// Creates the registry table if this handle has not yet.
    pub(crate) async fn ensure_registry(&self) -> Result<(), Error> {
        if self.registry_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.registry_pool
            .execute(
                "CREATE TABLE IF NOT EXISTS tenants (\
                 name TEXT PRIMARY KEY NOT NULL, \
                 created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            )
            .await?;
        self.registry_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether `tenant` is registered.
    pub(crate) async fn exists(&self, tenant: &Tenant) -> Result<bool, Error> {
        self.ensure_registry().await?;
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE name = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&self.registry_pool)
            .await?;
        Ok(found.is_some())
    }

    /// Every registered tenant, by name.
    pub(crate) async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM tenants ORDER BY name")
            .fetch_all(&self.registry_pool)
            .await?;
        names
            .into_iter()
            .map(|n| Tenant::new(n).map_err(Error::from))
            .collect()
    }

    /// `tenant`'s pool, from the LRU or opened now. [`Error::NotATenant`] if it is not
    /// registered, [`Error::SchemaMissing`] if its file is gone.
    pub(crate) async fn pool(&self, tenant: &Tenant) -> Result<SqlitePool, Error> {
        if let Some(pool) = self.lru().get(tenant) {
            return Ok(pool);
        }
        self.check_name(tenant)?;
        // Opened under the tenant's lock, so never between a drop's or rename's check and its
        // removal of the file.
        let _guard = self.lock(tenant).await?;
        if let Some(pool) = self.lru().get(tenant) {
            return Ok(pool);
        }
        if !self.exists(tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        let options = file_options(&self.path(tenant), self.budget.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.budget.connections_per_pool)
            .min_connections(0)
            .idle_timeout(self.budget.idle_timeout)
            .connect_with(options)
            .await
            .map_err(|e| {
                if is_cantopen(&e) {
                    Error::SchemaMissing {
                        tenant: tenant.clone(),
                    }
                } else {
                    Error::from(e).about(tenant)
                }
            })?;
        Ok(self.lru().insert(tenant, pool, self.budget.max_pools))
    }

    /// How many tenant pools the LRU holds.
    pub(crate) fn open_pools(&self) -> usize {
        self.lru().pools.len()
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes `tenant`'s pool if it is open: waits for its connections to come back, then
    /// closes them; a holder of the pool gets [`Error::UnknownTenant`] from then on. Called
    /// under the tenant's lock, which [`pool`](Self::pool) needs to open a new one, so none is
    /// opened until the caller's drop or rename has ended.
    async fn close_pool(&self, tenant: &Tenant) {
        let pool = self.lru().remove(tenant);
        if let Some(pool) = pool {
            pool.close().await;
        }
    }

    /// Creates `tenant`: a migrated file built under a temporary name, linked into place, then
    /// registered. [`Error::TenantExists`] if registered, [`Error::SchemaExists`] if a file of
    /// that name exists unregistered; [`Error::Migration`] names a failing migration. On any
    /// failure nothing is left: no file, no registry row.
    pub(crate) async fn create(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<(), Error> {
        self.check_name(tenant)?;
        let _guard = self.lock(tenant).await?;
        if self.exists(tenant).await? {
            return Err(Error::TenantExists {
                tenant: tenant.clone(),
            });
        }
        let path = self.path(tenant);
        if path.exists() {
            return Err(Error::SchemaExists {
                tenant: tenant.clone(),
            });
        }
        let temp = self.folder.join(format!(
            ".{tenant}.{}.{}.creating",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let built = self.build(&temp, tenant, migrations).await;
        let result = match built {
            Ok(()) => self.link_and_register(tenant, &temp, &path).await,
            Err(e) => Err(e),
        };
        let _ = remove_with_sidecars(&temp);
        result
    }

    /// Builds the migrated file at `temp`: every up migration and its record, in one
    /// transaction.
    async fn build(
        &self,
        temp: &Path,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<(), Error> {
        let options = file_options(temp, self.busy_timeout()).create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        let result = async {
            conn.execute("BEGIN IMMEDIATE").await?;
            create_migrations_table(&mut conn).await?;
            for m in migrations.ups() {
                apply_up(&mut conn, tenant, m).await?;
            }
            conn.execute("COMMIT").await?;
            Ok::<_, Error>(())
        }
        .await;
        // Closing the last connection checkpoints the WAL into the file and removes it.
        let _ = conn.close().await;
        result.map_err(|e| e.about(tenant))
    }

    /// Links the built `temp` file to `path` (never replacing a file there) and registers the
    /// tenant; undoes the link if the registration fails.
    async fn link_and_register(
        &self,
        tenant: &Tenant,
        temp: &Path,
        path: &Path,
    ) -> Result<(), Error> {
        match std::fs::hard_link(temp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another process got there first.
                return Err(if self.exists(tenant).await? {
                    Error::TenantExists {
                        tenant: tenant.clone(),
                    }
                } else {
                    Error::SchemaExists {
                        tenant: tenant.clone(),
                    }
                });
            }
            Err(e) => return Err(io_error(Some(tenant), e)),
        }
        let registered = sqlx::query("INSERT INTO tenants (name) VALUES (?1)")
            .bind(tenant.as_str())
            .execute(&self.registry_pool)
            .await;
        if let Err(e) = registered {
            let _ = std::fs::remove_file(path);
            return Err(if is_unique_violation(&e) {
                Error::TenantExists {
                    tenant: tenant.clone(),
                }
            } else {
                Error::from(e).about(tenant)
            });
        }
        Ok(())
    }

    /// Drops `tenant`: its pool closed, its file removed (with `-wal` and `-shm`), then
    /// unregistered. [`Error::NotATenant`] if not registered; [`Dropped::Unregistered`] if the
    /// file was already gone.
    pub(crate) async fn drop(&self, tenant: &Tenant) -> Result<Dropped, Error> {
        self.check_name(tenant)?;
        let _guard = self.lock(tenant).await?;
        if !self.exists(tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        self.close_pool(tenant).await;
        self.remove(tenant).await
    }

    /// The part of `drop` after the tenant's pool is closed.
    async fn remove(&self, tenant: &Tenant) -> Result<Dropped, Error> {
        // The file first: if the process dies before the unregister, the tenant is left
        // registered without a file, which a second `drop` unregisters.
        let existed =
            remove_with_sidecars(&self.path(tenant)).map_err(|e| io_error(Some(tenant), e))?;
        sqlx::query("DELETE FROM tenants WHERE name = ?1")
            .bind(tenant.as_str())
            .execute(&self.registry_pool)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        Ok(if existed {
            Dropped::Schema
        } else {
            Dropped::Unregistered
        })
    }

    /// Renames `old` to `new`: both locked, `old`'s pool closed and its WAL checkpointed, the
    /// file linked under the new name, the registry row renamed, the old name removed.
    pub(crate) async fn rename(&self, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        if old == new {
            return Err(Error::SameName {
                tenant: old.clone(),
            });
        }
        self.check_name(old)?;
        self.check_name(new)?;
        // Both locks, in name order, so two renames cannot wait on each other.
        let (first, second) = if old < new { (old, new) } else { (new, old) };
        let _first = self.lock(first).await?;
        let _second = self.lock(second).await?;
        if !self.exists(old).await? {
            return Err(Error::NotATenant {
                tenant: old.clone(),
            });
        }
        if self.exists(new).await? {
            return Err(Error::TenantExists {
                tenant: new.clone(),
            });
        }
        let (old_path, new_path) = (self.path(old), self.path(new));
        if new_path.exists() {
            return Err(Error::SchemaExists {
                tenant: new.clone(),
            });
        }
        self.close_pool(old).await;
        self.move_file(old, new, &old_path, &new_path).await
    }

    /// The part of `rename` after `old`'s pool is closed.
    async fn move_file(
        &self,
        old: &Tenant,
        new: &Tenant,
        old_path: &Path,
        new_path: &Path,
    ) -> Result<(), Error> {
        // Everything into the main file, so the link carries all of it.
        let mut conn = self.connect(old).await?;
        let checkpoint = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
        let _ = conn.close().await;
        checkpoint.map_err(|e| self.locked(old, e))?;
        match std::fs::hard_link(old_path, new_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::SchemaExists {
                    tenant: new.clone(),
                })
            }
            Err(e) => return Err(io_error(Some(old), e)),
        }
        let renamed = sqlx::query("UPDATE tenants SET name = ?1 WHERE name = ?2")
            .bind(new.as_str())
            .bind(old.as_str())
            .execute(&self.registry_pool)
            .await;
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(new_path);
            return Err(Error::from(e).about(old));
        }
        remove_with_sidecars(old_path).map_err(|e| io_error(Some(old), e))?;
        Ok(())
    }

    /// Applies `tenant`'s pending migrations in one transaction holding the file's write lock.
    pub(crate) async fn migrate(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<Outcome, Error> {
        self.run(tenant, migrations, Direction::Up).await
    }

    /// Reverts every migration of `tenant` above `target`, newest first, in one transaction.
    pub(crate) async fn rollback(
        &self,
        tenant: &Tenant,
        target: i64,
        migrations: &Migrations,
    ) -> Result<Outcome, Error> {
        self.run(tenant, migrations, Direction::Down(target)).await
    }

    async fn run(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
        direction: Direction,
    ) -> Result<Outcome, Error> {
        self.check_name(tenant)?;
        let _guard = self.lock(tenant).await?;
        if !self.exists(tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        let mut conn = self.connect(tenant).await?;
        let result = async {
            conn.execute("BEGIN IMMEDIATE")
                .await
                .map_err(|e| self.locked(tenant, e))?;
            let applied = applied(&mut conn).await?;
            let plan = match direction {
                Direction::Up => migrations.pending(tenant, &applied)?,
                Direction::Down(target) => migrations.to_revert(tenant, &applied, target)?,
            };
            for m in &plan {
                match direction {
                    Direction::Up => apply_up(&mut conn, tenant, m).await?,
                    Direction::Down(_) => apply_down(&mut conn, tenant, m).await?,
                }
            }
            conn.execute("COMMIT").await?;
            let versions: Vec<i64> = plan.iter().map(|m| m.version).collect();
            Ok::<_, Error>(match direction {
                _ if versions.is_empty() => Outcome::UpToDate,
                Direction::Up => Outcome::Migrated(versions),
                Direction::Down(_) => Outcome::RolledBack(versions),
            })
        }
        .await;
        // Closed, never pooled: an error above leaves the transaction to die with it.
        let _ = conn.close().await;
        result.map_err(|e| e.about(tenant))
    }

    /// Every tenant's applied and pending migrations, read from each tenant's file (a few at
    /// a time). A tenant whose file is gone shows nothing applied.
    pub(crate) async fn status(&self, migrations: &Migrations) -> Result<Vec<TenantStatus>, Error> {
        let tenants = self.list().await?;
        futures_util::stream::iter(tenants)
            .map(|tenant| async move {
                let applied = self.read_applied(&tenant).await?;
                Ok::<_, Error>(migrations.status(tenant, applied))
            })
            .buffered(STATUS_CONCURRENCY)
            .try_collect()
            .await
    }

    /// One tenant's status. [`Error::NotATenant`] if it is not registered.
    pub(crate) async fn status_of(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<TenantStatus, Error> {
        if !self.exists(tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        let applied = self.read_applied(tenant).await?;
        Ok(migrations.status(tenant.clone(), applied))
    }

    /// The migrations recorded in `tenant`'s file (none if the file is gone).
    async fn read_applied(&self, tenant: &Tenant) -> Result<Applied, Error> {
        let mut conn = match self.connect(tenant).await {
            Ok(conn) => conn,
            Err(Error::SchemaMissing { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let result = applied(&mut conn).await;
        let _ = conn.close().await;
        result.map_err(|e| e.about(tenant))
    }
}

async fn create_migrations_table(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (\
             version INTEGER PRIMARY KEY NOT NULL, \
             description TEXT NOT NULL, \
             checksum BLOB NOT NULL, \
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), \
             execution_ms INTEGER NOT NULL)"
    )))
    .await?;
    Ok(())
}

/// The applied migrations recorded in the connection's file.
async fn applied(conn: &mut SqliteConnection) -> Result<Applied, Error> {
    create_migrations_table(conn).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, checksum FROM {MIGRATIONS_TABLE} ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await?)
}

/// Runs up migration `m` and records it, inside the caller's transaction.
async fn apply_up(
    conn: &mut SqliteConnection,
    tenant: &Tenant,
    m: &Migration,
) -> Result<(), Error> {
    let started = Instant::now();
    sqlx::raw_sql(m.sql.clone())
        .execute(&mut *conn)
        .await
        .map_err(|source| migration_failed(tenant, m, source))?;
    let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, checksum, execution_ms) \
         VALUES (?1, ?2, ?3, ?4)"
    )))
    .bind(m.version)
    .bind(m.description.as_ref())
    .bind(m.checksum.as_ref())
    .bind(millis)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Runs down migration `m` and deletes its record, inside the caller's transaction.
async fn apply_down(
    conn: &mut SqliteConnection,
    tenant: &Tenant,
    m: &Migration,
) -> Result<(), Error> {
    sqlx::raw_sql(m.sql.clone())
        .execute(&mut *conn)
        .await
        .map_err(|source| migration_failed(tenant, m, source))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {MIGRATIONS_TABLE} WHERE version = ?1"
    )))
    .bind(m.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
