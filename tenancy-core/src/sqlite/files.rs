//! The files of a SQLite handle: where the registry and each tenant's file are, how a file is
//! opened, and how many pools may stay open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::Error;
use crate::tenant::Tenant;

/// The registry file's name in the folder, for a registry named `registry`.
pub(crate) fn registry_file(folder: &Path, registry: &Tenant) -> PathBuf {
    folder.join(format!("{registry}.db"))
}

/// How many files, connections and idle seconds a [`Tenants<Sqlite>`](crate::Tenants) handle
/// may keep open: each tenant's file gets a small pool of its own, kept in an LRU of at most
/// [`max_pools`](Self::max_pools) pools, so 10,000 tenants do not mean 10,000 open files or
/// worker threads (each SQLite connection runs on a thread of its own).
///
/// ```
/// use std::time::Duration;
/// use tenancy_core::sqlite::PoolBudget;
/// let budget = PoolBudget::default().max_pools(200).connections_per_pool(2).idle_timeout(Duration::from_secs(30));
/// assert_eq!(budget.get_max_pools(), 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBudget {
    pub(super) max_pools: usize,
    pub(super) connections_per_pool: u32,
    pub(super) idle_timeout: Duration,
    pub(super) busy_timeout: Duration,
}

impl Default for PoolBudget {
    /// 100 pools of at most 4 connections, closed after 60 s idle; a 5 s busy timeout.
    fn default() -> Self {
        PoolBudget {
            max_pools: 100,
            connections_per_pool: 4,
            idle_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl PoolBudget {
    /// At most `n` tenants' pools kept open (at least 1); the least recently used is let go
    /// when another is opened. A pool still held by a caller keeps working until dropped.
    pub fn max_pools(mut self, n: usize) -> Self {
        self.max_pools = n.max(1);
        self
    }

    /// At most `n` connections per tenant (at least 1). SQLite writes one at a time per file;
    /// more connections serve more concurrent readers (WAL mode).
    pub fn connections_per_pool(mut self, n: u32) -> Self {
        self.connections_per_pool = n.max(1);
        self
    }

    /// A connection idle this long is closed (its thread and file descriptor with it).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a statement waits for another connection's write lock on the file before
    /// failing with SQLITE_BUSY.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most pools kept open.
    pub fn get_max_pools(&self) -> usize {
        self.max_pools
    }

    /// The most connections per tenant.
    pub fn get_connections_per_pool(&self) -> u32 {
        self.connections_per_pool
    }
}

/// The connect options of an existing file: never created on open (a dropped tenant is an
/// error, not a fresh empty database), WAL mode, foreign keys on, `busy_timeout` to wait for
/// another writer.
pub(crate) fn file_options(path: &Path, busy_timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(busy_timeout)
}

/// The folder of a `sqlite://` URL (`sqlite:///srv/tenants`, `sqlite://./data`, or a plain
/// path): where the tenant files and the registry live. A query string is ignored.
///
/// ```
/// use std::path::Path;
/// assert_eq!(tenancy_core::sqlite::folder_of("sqlite:///srv/tenants?mode=rwc").unwrap(), Path::new("/srv/tenants"));
/// assert!(tenancy_core::sqlite::folder_of("sqlite::memory:").is_err());
/// ```
pub fn folder_of(url: &str) -> Result<PathBuf, Error> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(Error::Unsupported {
            operation: "a SQLite tenant folder",
            reason: format!(
                "{url:?} names no folder (an in-memory database cannot hold a file per tenant); write sqlite:///path/to/folder"
            ),
        });
    }
    Ok(PathBuf::from(path))
}

/// Opens (creating the folder and the registry file if needed) the registry of the tenant
/// folder `url` (`sqlite:///path/to/folder` or a path): the pool to build
/// [`Tenants<Sqlite>`](crate::Tenants) from. The tenant files go beside it,
/// `<folder>/<tenant>.db`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = tenancy_core::sqlite::open("sqlite:///var/lib/app/tenants").await?;
/// let migrator = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/tenant")).await?;
/// let tenants = tenancy_core::Tenants::new(pool, migrator)?; // a Tenants<Sqlite>
/// let acme = tenants.create("acme").await?; // /var/lib/app/tenants/acme.db, migrated
/// let db = tenants.pool_for(&acme).await?; // acme's own pool
/// # let _ = db;
/// # Ok(()) }
/// ```
pub async fn open(url: &str) -> Result<SqlitePool, Error> {
    let folder = folder_of(url)?;
    std::fs::create_dir_all(&folder).map_err(|e| Error::Database {
        tenant: None,
        source: sqlx::Error::Io(e).into(),
    })?;
    let registry = Tenant::new(crate::lifecycle::DEFAULT_REGISTRY)?;
    let options = file_options(
        &registry_file(&folder, &registry),
        PoolBudget::default().busy_timeout,
    )
    .create_if_missing(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?)
}
