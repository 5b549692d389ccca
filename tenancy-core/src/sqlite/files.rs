//! The files of a SQLite handle: where the registry and each tenant's file are, how a file is
//! opened, and how many connections and pools may stay open.

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

/// How many connections, pools and idle seconds a [`Tenants<Sqlite>`](crate::Tenants) handle
/// may keep open. Each tenant's file gets a small pool of its own (up to
/// [`connections_per_pool`](Self::connections_per_pool) connections), kept in an LRU; the
/// budget is counted in **connections**, since a SQLite connection is what costs: a worker
/// thread of its own (sqlx runs each connection on one), its page cache, and up to three file
/// descriptors (the file, its `-wal` and, shared by the file's connections, its `-shm`; SQLite
/// also keeps a closed connection's descriptor of the file, for reuse, while another connection
/// has the file open).
///
/// - At most [`max_connections`](Self::max_connections) connections are open in the kept pools
///   together. When a tenant's pool opens a connection beyond that, room is made in least
///   recently used order: first by closing the idle connections of other tenants beyond their
///   first, then by letting whole pools go. So 1,000 tenants looked up at random each keep
///   one connection, and a busy tenant grows to `connections_per_pool`.
/// - At most [`max_pools`](Self::max_pools) pools are kept (by default as many as
///   connections), including pools whose connections all went idle and were closed.
/// - A connection idle for [`idle_timeout`](Self::idle_timeout) is closed (its thread and
///   descriptors with it): a tenant nobody uses holds nothing but its entry in the LRU.
///
/// The default `max_connections` comes from the process's descriptor limit (the soft
/// `RLIMIT_NOFILE`, `ulimit -n`): a sixth of it (half the descriptors, at three per
/// connection), at least 16 and at most 2,048. With a limit of 20,000 that is 2,048 (1,000
/// tenants with one connection each, and room for busy ones to grow); with the common 1,024 it
/// is 170: raise the limit (`ulimit -n`, systemd's `LimitNOFILE=`) to keep more tenants
/// open, or set the budget. Off Unix it is 2,048.
///
/// A pool that was let go keeps working for a caller still holding it (its connections
/// close when the last holder drops it), outside the budget.
///
/// ```
/// use std::time::Duration;
/// use tenancy_core::sqlite::PoolBudget;
/// let budget = PoolBudget::default()
///     .max_connections(500)
///     .connections_per_pool(2)
///     .idle_timeout(Duration::from_secs(30));
/// assert_eq!(budget.get_max_connections(), 500);
/// assert_eq!(budget.get_max_pools(), 500); // as many as connections unless set
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBudget {
    max_connections: usize,
    max_pools: Option<usize>,
    pub(super) connections_per_pool: u32,
    pub(super) idle_timeout: Duration,
    pub(super) busy_timeout: Duration,
}

/// The most descriptors one connection holds: the file, its `-wal` and its `-shm` (WAL mode).
pub(crate) const DESCRIPTORS_PER_CONNECTION: usize = 3;

/// The bounds of the default connection budget.
const DEFAULT_CONNECTIONS: (usize, usize) = (16, 2048);

/// The default connection budget: a sixth of the soft descriptor limit (half of it, at
/// [`DESCRIPTORS_PER_CONNECTION`] each), within [`DEFAULT_CONNECTIONS`]. Read once.
fn default_max_connections() -> usize {
    static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let (low, high) = DEFAULT_CONNECTIONS;
        descriptor_limit().map_or(high, |limit| {
            (limit / 2 / DESCRIPTORS_PER_CONNECTION).clamp(low, high)
        })
    })
}

/// The process's soft limit of open descriptors, if it has one.
#[cfg(unix)]
fn descriptor_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the struct it is given, which lives here.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY)
        .then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<usize> {
    None
}

impl Default for PoolBudget {
    /// At most [the default number](Self) of connections (2,048 with a descriptor limit of
    /// 12,288 or more) in pools of at most 4, each closed after 60 s idle; a 5 s busy timeout.
    fn default() -> Self {
        PoolBudget {
            max_connections: default_max_connections(),
            max_pools: None,
            connections_per_pool: 4,
            idle_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl PoolBudget {
    /// At most `n` connections (at least 1) open in the tenants' pools together; beyond it,
    /// the least recently used tenants' idle connections are closed (beyond their first, then
    /// whole pools) to make room.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// At most `n` tenants' pools kept (at least 1; by default as many as
    /// [`max_connections`](Self::max_connections)); the least recently used is let go when
    /// another is opened. A pool still held by a caller keeps working until dropped.
    pub fn max_pools(mut self, n: usize) -> Self {
        self.max_pools = Some(n.max(1));
        self
    }

    /// At most `n` connections per tenant (at least 1). SQLite writes one at a time per file;
    /// more connections serve more concurrent readers (WAL mode).
    pub fn connections_per_pool(mut self, n: u32) -> Self {
        self.connections_per_pool = n.max(1);
        self
    }

    /// A connection idle this long is closed (its thread and file descriptors with it).
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

    /// The most connections open in the tenants' pools together.
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// The most pools kept open.
    pub fn get_max_pools(&self) -> usize {
        self.max_pools.unwrap_or(self.max_connections)
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
