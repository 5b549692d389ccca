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
//! - Each tenant has its own pool ([`Tenants::pool_for`](crate::Tenants::pool_for)); a plain
//!   `SqlitePool` is no executor. The pools live in an LRU bounded by the handle's
//!   [`PoolBudget`], counted in connections: a pool opening a connection beyond the budget
//!   (a new tenant's first, or a busy tenant's next) makes room in least recently used order.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use sqlx::migrate::Migration;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Executor as _};

use super::lru::{lock, on_connect, Lru, Released};
use super::{file_options, is_busy, is_cantopen, is_unique_violation, registry_file, PoolBudget};
use crate::error::Error;
use crate::lifecycle::plan::{Applied, History};
use crate::lifecycle::store::{CreateHook, Direction, Found, Opening, Operation, Store};
use crate::tenant::{NameRule, Tenant};

/// How many tenants `migrate_all` and `rollback_all` migrate at once unless told otherwise.
const DEFAULT_CONCURRENCY: usize = 4;

/// The table of applied migrations inside each tenant's file.
pub(crate) const MIGRATIONS_TABLE: &str = "_tenancy_migrations";

/// Names a file system may treat as devices (Windows), refused as tenant file names.
const DEVICE_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// How many tenant files `status` reads at once.
const STATUS_CONCURRENCY: usize = 8;

/// The SQLite store of one [`Tenants`](crate::Tenants) handle.
pub struct SqliteStore {
    /// The pool the handle was built on.
    pool: SqlitePool,
    folder: PathBuf,
    registry_file: PathBuf,
    pub(super) registry_pool: SqlitePool,
    registry: Tenant,
    lock_timeout: Option<Duration>,
    budget: PoolBudget,
    pools: Arc<Mutex<Lru>>,
    locks: Mutex<HashMap<Tenant, Arc<tokio::sync::Mutex<()>>>>,
    /// Set once the registry table is there; concurrent first callers wait for one
    /// `CREATE TABLE` instead of racing for the registry file's write lock.
    registry_ready: tokio::sync::OnceCell<()>,
    temp_counter: AtomicU64,
}

debug_fields!(SqliteStore { folder, registry, budget, .. });

/// One operation on SQLite: the tenants' locks in this process, and the connection to the file
/// it works on (the tenant's, or the one a create builds), inside `BEGIN IMMEDIATE`.
pub struct SqliteOp {
    guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
    pub(super) conn: Option<SqliteConnection>,
    /// Whose file `conn` has open (for a create, the tenant it builds).
    file: Option<Tenant>,
    /// A create's tenant and the temporary file it builds.
    pub(super) building: Option<(Tenant, PathBuf)>,
    /// The file the operation had open before it made another (a promote's shared
    /// container), still inside `BEGIN IMMEDIATE`: its write lock kept until the move
    /// commits or the operation ends (rolled back).
    pub(super) held: Option<SqliteConnection>,
}

impl Drop for SqliteOp {
    /// An operation dropped before it finished: its connection closes (an open transaction
    /// with it) and the file it was building is removed.
    fn drop(&mut self) {
        if let Some((_, temp)) = self.building.take() {
            let _ = remove_with_sidecars(&temp);
        }
    }
}

impl SqliteOp {
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("the operation's file is open")
    }
}

fn io_error(tenant: Option<&Tenant>, err: io::Error) -> Error {
    Error::Database {
        tenant: tenant.cloned(),
        source: sqlx::Error::Io(err).into(),
    }
}

/// The error of opening `tenant`'s file: a file that cannot be opened is a missing container.
fn unopened(tenant: &Tenant, err: sqlx::Error) -> Error {
    if is_cantopen(&err) {
        crate::backend::container_missing::<sqlx::Sqlite>(tenant)
    } else {
        Error::from(err).about(tenant)
    }
}


/// Removes `path` and the files SQLite keeps beside it; a file already gone is fine.
pub(super) fn remove_with_sidecars(path: &Path) -> io::Result<bool> {
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
        match self.refuses(tenant) {
            Some(rule) => Err(Error::InvalidTenantName(crate::tenant::InvalidTenantName {
                name: tenant.as_str().to_owned(),
                rule,
            })),
            None => Ok(()),
        }
    }

    fn mutex(&self, tenant: &Tenant) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(tenant.clone()).or_default())
    }

    /// Takes `tenant`'s lock in this process, waiting at most the handle's lock timeout.
    async fn lock_tenant(
        &self,
        tenant: &Tenant,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, Error> {
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
    pub(super) async fn connect(&self, tenant: &Tenant) -> Result<SqliteConnection, Error> {
        let options = file_options(&self.path(tenant), self.busy_timeout());
        SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| unopened(tenant, e))
    }

    /// Maps a busy file to the handle's lock timeout.
    pub(super) fn locked(&self, tenant: &Tenant, err: sqlx::Error) -> Error {
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
        self.registry_ready
            .get_or_try_init(|| async {
                self.registry_pool
                    .execute(
                        "CREATE TABLE IF NOT EXISTS tenants (\
                         name TEXT PRIMARY KEY NOT NULL, \
                         created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));\
                         CREATE TABLE IF NOT EXISTS row_tenants (\
                         name TEXT PRIMARY KEY NOT NULL, \
                         container TEXT NOT NULL, \
                         created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), \
                         dropping INTEGER NOT NULL DEFAULT 0);\
                         CREATE TABLE IF NOT EXISTS moving (name TEXT PRIMARY KEY NOT NULL)",
                    )
                    .await?;
                self.add_dropping().await
            })
            .await?;
        Ok(())
    }

    /// Gives a registry made before drops of row-level tenants went in steps their mark
    /// (`row_tenants.dropping`), if it lacks it (another process may add it at the same time).
    async fn add_dropping(&self) -> Result<(), sqlx::Error> {
        const HAS: &str = "SELECT 1 FROM pragma_table_info('row_tenants') WHERE name = 'dropping'";
        let has = |pool| sqlx::query_scalar::<_, i64>(HAS).fetch_optional(pool);
        if has(&self.registry_pool).await?.is_some() {
            return Ok(());
        }
        let added = self
            .registry_pool
            .execute("ALTER TABLE row_tenants ADD COLUMN dropping INTEGER NOT NULL DEFAULT 0")
            .await;
        match added {
            Err(_) if has(&self.registry_pool).await?.is_some() => Ok(()),
            added => added.map(|_| ()),
        }
    }

    /// Whether `tenant` is registered.
    async fn registered(&self, tenant: &Tenant) -> Result<bool, Error> {
        self.ensure_registry().await?;
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE name = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&self.registry_pool)
            .await?;
        Ok(found.is_some())
    }

    /// Every registered tenant, by name.
    async fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM tenants ORDER BY name")
            .fetch_all(&self.registry_pool)
            .await?;
        names
            .into_iter()
            .map(|n| Tenant::new(n).map_err(Error::from))
            .collect()
    }

    /// `tenant`'s pool, from the LRU or opened now (making room for its connection first).
    /// [`Error::NotATenant`] if it is not registered, [`Error::ContainerMissing`] if its file
    /// is gone.
    async fn tenant_pool(&self, tenant: &Tenant) -> Result<SqlitePool, Error> {
        if let Some(pool) = self.lru().get(tenant) {
            return Ok(pool);
        }
        self.check_name(tenant)?;
        // Opened under the tenant's lock, so never between a drop's or rename's check and its
        // removal of the file.
        let _guard = self.lock_tenant(tenant).await?;
        if let Some(pool) = self.lru().get(tenant) {
            return Ok(pool);
        }
        if !self.registered(tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        let mut released = Released::default();
        let id = {
            let mut lru = self.lru();
            lru.make_room(None, 1, &self.budget, &mut released);
            lru.next_id()
        };
        drop(released);
        let options = file_options(&self.path(tenant), self.budget.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.budget.connections_per_pool)
            .min_connections(0)
            .idle_timeout(self.budget.idle_timeout)
            .after_connect(on_connect(
                Arc::downgrade(&self.pools),
                tenant.clone(),
                id,
                self.budget,
            ))
            .connect_with(options)
            .await
            .map_err(|e| unopened(tenant, e))?;
        let mut released = Released::default();
        let pool = self
            .lru()
            .insert(tenant, pool, id, &self.budget, &mut released);
        drop(released);
        Ok(pool)
    }

    /// How many tenant pools the LRU holds.
    pub(crate) fn open_pools(&self) -> usize {
        self.lru().len()
    }

    /// How many connections the LRU's pools have open.
    pub(crate) fn open_connections(&self) -> usize {
        self.lru().connections()
    }

    pub(super) fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        lock(&self.pools)
    }

    /// Closes `tenant`'s pool if it is open: waits for its connections to come back, then
    /// closes them; a holder of the pool gets [`Error::UnknownTenant`] from then on. Called
    /// under the tenant's lock, which [`pool`](Self::pool) needs to open a new one, so none is
    /// opened until the caller's drop or rename has ended.
    pub(super) async fn close_pool(&self, tenant: &Tenant) {
        let pool = self.lru().remove(tenant);
        if let Some(pool) = pool {
            pool.close().await;
        }
    }

    /// Links the built `temp` file to `path` (never replacing a file there) and registers the
    /// tenant; undoes the link if the registration fails.
    pub(super) async fn link_and_register(
        &self,
        tenant: &Tenant,
        temp: &Path,
        path: &Path,
    ) -> Result<(), Error> {
        let mut linked = std::fs::hard_link(temp, path);
        if matches!(&linked, Err(e) if e.kind() == io::ErrorKind::AlreadyExists)
            && !self.registered(tenant).await?
            && self.left_behind(tenant).await?
        {
            remove_with_sidecars(path).map_err(|e| io_error(Some(tenant), e))?;
            linked = std::fs::hard_link(temp, path);
        }
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another process got there first.
                return Err(if self.registered(tenant).await? {
                    Error::TenantExists {
                        tenant: tenant.clone(),
                    }
                } else {
                    crate::backend::container_exists::<sqlx::Sqlite>(tenant)
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

    /// The part of `drop` after the tenant's pool is closed.
    pub(super) async fn remove_file(&self, tenant: &Tenant) -> Result<(), Error> {
        // The file first: if the process dies before the unregister, the tenant is left
        // registered without a file, which a second `drop` unregisters.
        remove_with_sidecars(&self.path(tenant)).map_err(|e| io_error(Some(tenant), e))?;
        self.unregister(tenant).await
    }

    /// Marks (`true`) or unmarks `tenant`'s name as in a move between tiers, in the registry's
    /// `moving`: while marked, a file of its name that is no registered tenant's is one the move
    /// made or was removing when it was killed, and goes.
    pub(super) async fn mark_moving(&self, tenant: &Tenant, moving: bool) -> Result<(), Error> {
        let sql = match moving {
            true => "INSERT OR IGNORE INTO moving (name) VALUES (?1)",
            false => "DELETE FROM moving WHERE name = ?1",
        };
        sqlx::query(sql)
            .bind(tenant.as_str())
            .execute(&self.registry_pool)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        Ok(())
    }

    /// Whether `tenant`'s name is marked as in a move ([`mark_moving`](Self::mark_moving)).
    async fn left_behind(&self, tenant: &Tenant) -> Result<bool, Error> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM moving WHERE name = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&self.registry_pool)
            .await?;
        Ok(found.is_some())
    }

    /// Removes `tenant` from the registry (its file is then never opened as a tenant's).
    pub(super) async fn unregister(&self, tenant: &Tenant) -> Result<(), Error> {
        sqlx::query("DELETE FROM tenants WHERE name = ?1")
            .bind(tenant.as_str())
            .execute(&self.registry_pool)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        Ok(())
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
                return Err(crate::backend::container_exists::<sqlx::Sqlite>(new))
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

    /// The migrations recorded in `tenant`'s file (none if the file is gone).
    async fn read_applied(&self, tenant: &Tenant) -> Result<Applied, Error> {
        let mut conn = match self.connect(tenant).await {
            Ok(conn) => conn,
            Err(Error::ContainerMissing { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let result = applied(&mut conn).await;
        let _ = conn.close().await;
        result.map_err(|e| e.about(tenant))
    }

    /// A new temporary name in the folder for a file being built for `tenant`.
    fn temp_path(&self, tenant: &Tenant) -> PathBuf {
        self.folder.join(format!(
            ".{tenant}.{}.{}.creating",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Opens `tenant`'s file for the operation, inside `BEGIN IMMEDIATE` (its write lock,
    /// which another process's migration waits for), unless it is open already.
    pub(super) async fn open_file(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<(), Error> {
        if op.conn.is_some() {
            return Ok(());
        }
        op.conn = Some(self.begin_immediate(tenant).await?);
        op.file = Some(tenant.clone());
        Ok(())
    }

    /// A dedicated connection to `tenant`'s file inside `BEGIN IMMEDIATE` (its write lock,
    /// waited for up to the busy timeout).
    pub(super) async fn begin_immediate(&self, tenant: &Tenant) -> Result<SqliteConnection, Error> {
        let mut conn = self.connect(tenant).await?;
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            let _ = conn.close().await;
            return Err(self.locked(tenant, e));
        }
        Ok(conn)
    }
}

impl Store<Sqlite> for SqliteStore {
    type Settings = PoolBudget;
    type Op = SqliteOp;

    fn open(with: Opening<'_, Sqlite, PoolBudget>) -> Result<Self, Error> {
        let Opening {
            pool,
            registry,
            lock_timeout,
            settings: budget,
        } = with;
        let file = pool.connect_options().get_filename().to_owned();
        let folder = match file.parent() {
            Some(folder) if !file.as_os_str().is_empty() && file != Path::new(":memory:") => {
                if folder.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    folder.to_owned()
                }
            }
            _ => {
                return Err(Error::Unsupported {
                    operation: "Tenants<Sqlite>",
                    reason: format!(
                        "the pool's database {file:?} is not a file in a folder; open the registry with tenancy::sqlite::open(\"sqlite:///path/to/folder\")"
                    ),
                })
            }
        };
        // The registry is the file `<registry>.db` in the folder: the pool's own file for the
        // default registry of `open`, another file (opened on first use) for another name.
        let registry_file = registry_file(&folder, registry);
        let registry_pool = if registry_file == file {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_lazy_with(
                    file_options(&registry_file, budget.busy_timeout).create_if_missing(true),
                )
        };
        Ok(SqliteStore {
            pool,
            folder,
            registry_file,
            registry_pool,
            registry: registry.clone(),
            lock_timeout,
            budget: *budget,
            pools: Arc::new(Mutex::new(Lru::default())),
            locks: Mutex::new(HashMap::new()),
            registry_ready: tokio::sync::OnceCell::new(),
            temp_counter: AtomicU64::new(0),
        })
    }

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Names that must not become a file here: a name a file system treats as a device, or
    /// the registry's own file. Checked before the file system is touched.
    fn refuses(&self, tenant: &Tenant) -> Option<NameRule> {
        (DEVICE_NAMES.contains(&tenant.as_str()) || self.path(tenant) == self.registry_file)
            .then_some(NameRule::Reserved)
    }

    async fn exists(&self, tenant: &Tenant) -> Result<bool, Error> {
        self.registered(tenant).await
    }

    async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.tenants().await
    }

    /// Read from each tenant's file, a few at a time. A tenant whose file is gone shows
    /// nothing applied.
    async fn histories(&self) -> Result<Vec<(Tenant, History)>, Error> {
        let tenants = self.tenants().await?;
        futures_util::stream::iter(tenants)
            .map(|tenant| async move {
                let applied = self.read_applied(&tenant).await?;
                Ok::<_, Error>((tenant, History::clean(applied)))
            })
            .buffered(STATUS_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn history_of(&self, tenant: &Tenant) -> Result<Option<History>, Error> {
        if !self.registered(tenant).await? {
            return Ok(None);
        }
        Ok(Some(History::clean(self.read_applied(tenant).await?)))
    }

    async fn pool_for(&self, tenant: &Tenant) -> Result<SqlitePool, Error> {
        self.tenant_pool(tenant).await
    }

    async fn begin(&self, _operation: Operation) -> Result<SqliteOp, Error> {
        self.ensure_registry().await?;
        Ok(SqliteOp {
            guards: Vec::new(),
            conn: None,
            file: None,
            building: None,
            held: None,
        })
    }

    async fn lock(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<(), Error> {
        self.check_name(tenant)?;
        op.guards.push(self.lock_tenant(tenant).await?);
        Ok(())
    }

    /// A file a move killed part-way left behind ([`left_behind`](SqliteStore::left_behind))
    /// counts as none.
    async fn inspect(&self, _op: &mut SqliteOp, tenant: &Tenant) -> Result<Found, Error> {
        let registered = self.registered(tenant).await?;
        let container = self.path(tenant).exists() && (registered || !self.left_behind(tenant).await?);
        Ok(Found { registered, container })
    }

    /// Read inside the operation's transaction on the tenant's file, which it opens if the
    /// operation has no file open yet; another tenant's (a demote's container) is read on a
    /// connection of its own.
    async fn history(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<History, Error> {
        if op.file.as_ref().is_some_and(|open| open != tenant) {
            return Ok(History::clean(self.read_applied(tenant).await?));
        }
        self.open_file(op, tenant).await?;
        Ok(History::clean(applied(op.conn()).await?))
    }

    /// Starts the migrated file under a temporary name (linked into place by `finish`).
    /// A file the operation had open (a promote's container) is held, its write lock kept.
    async fn make(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<(), Error> {
        let temp = self.temp_path(tenant);
        op.building = Some((tenant.clone(), temp.clone()));
        op.held = op.conn.take();
        let options = file_options(&temp, self.busy_timeout()).create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        let started = async {
            conn.execute("BEGIN IMMEDIATE").await?;
            create_migrations_table(&mut conn).await
        }
        .await;
        if let Err(e) = started {
            let _ = conn.close().await;
            return Err(Error::from(e).about(tenant));
        }
        op.conn = Some(conn);
        op.file = Some(tenant.clone());
        Ok(())
    }

    async fn enter(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<(), Error> {
        self.open_file(op, tenant).await
    }

    async fn apply_one(
        &self,
        op: &mut SqliteOp,
        tenant: &Tenant,
        m: &Migration,
        direction: Direction,
    ) -> Result<(), Error> {
        match direction {
            Direction::Up => apply_up(op.conn(), tenant, m).await?,
            Direction::Down => apply_down(op.conn(), tenant, m).await?,
        }
        Ok(super::tier::guard_added(op.conn()).await?)
    }

    async fn hook(
        &self,
        op: &mut SqliteOp,
        tenant: &Tenant,
        hook: CreateHook<Sqlite>,
    ) -> Result<(), Error> {
        hook(op.conn(), tenant).await.map_err(|source| Error::Hook {
            tenant: tenant.clone(),
            source,
        })
    }

    /// The tenant's pool in this process closed first (waiting for connections in use), then
    /// its file removed (with `-wal` and `-shm`), then unregistered.
    async fn remove(
        &self,
        _op: &mut SqliteOp,
        tenant: &Tenant,
        _found: Found,
    ) -> Result<(), Error> {
        self.close_pool(tenant).await;
        self.remove_file(tenant).await
    }

    async fn rename(&self, _op: &mut SqliteOp, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        let (old_path, new_path) = (self.path(old), self.path(new));
        self.close_pool(old).await;
        self.move_file(old, new, &old_path, &new_path).await
    }

    /// `VACUUM INTO` a file under a temporary name, on a second connection to `from`'s file
    /// while the operation holds its write lock (taken when its history was read), so the copy
    /// is `from` as of one moment, written into one file (no `-wal` beside it); `finish`
    /// links it into place as `to`'s file and registers `to`, or removes it.
    async fn copy_whole(
        &self,
        op: &mut SqliteOp,
        from: &Tenant,
        to: &Tenant,
    ) -> Result<bool, Error> {
        let temp = self.temp_path(to);
        let Some(target) = temp.to_str().map(str::to_owned) else {
            return Err(Error::Unsupported {
                operation: "clone",
                reason: format!("the tenant folder {:?} is not valid UTF-8", self.folder),
            });
        };
        op.building = Some((to.clone(), temp));
        let mut conn = self.connect(from).await?;
        let copied = sqlx::query("VACUUM INTO ?1")
            .bind(target)
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        copied.map_err(|e| self.locked(from, e))?;
        Ok(true)
    }

    /// Never called: [`copy_whole`](Self::copy_whole) copies the file.
    async fn copy_rows(&self, _op: &mut SqliteOp, _from: &Tenant, _to: &Tenant) -> Result<(), Error> {
        Err(Error::Unsupported {
            operation: "clone",
            reason: "SQLite copies a tenant's whole file".into(),
        })
    }

    /// Commits the file's transaction and closes its connection (never pooled: an error
    /// leaves the transaction to die with it); a create's file is then linked into place and
    /// registered, or removed.
    async fn finish<T: Send>(
        &self,
        mut op: SqliteOp,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let mut result = result;
        if let Some(held) = op.held.take() {
            // Only read (a move that commits it takes it): its transaction dies with it.
            let _ = held.close().await;
        }
        if let Some(mut conn) = op.conn.take() {
            if result.is_ok() {
                if let Err(e) = conn.execute("COMMIT").await {
                    result = Err(e.into());
                }
            }
            // Closing the last connection checkpoints the WAL into the file and removes it.
            let _ = conn.close().await;
        }
        if let Some((tenant, temp)) = op.building.take() {
            if result.is_ok() {
                if let Err(e) = self
                    .link_and_register(&tenant, &temp, &self.path(&tenant))
                    .await
                {
                    result = Err(e);
                }
            }
            let _ = remove_with_sidecars(&temp);
        }
        result
    }

    async fn explain(&self, tenant: &Tenant, err: Error) -> Error {
        match err.as_sqlx() {
            Some(e) if is_busy(e) => Error::LockTimeout {
                tenant: tenant.clone(),
                waited: self.busy_timeout(),
                holders: Vec::new(),
            },
            _ => err.about(tenant),
        }
    }

    /// Migrations are recorded in each tenant's file.
    fn reads_every_tenant(&self) -> bool {
        true
    }

    fn default_concurrency(&self) -> usize {
        DEFAULT_CONCURRENCY
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
        .map_err(|source| Error::migration(tenant, m, source))?;
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
        .map_err(|source| Error::migration(tenant, m, source))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {MIGRATIONS_TABLE} WHERE version = ?1"
    )))
    .bind(m.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
