//! The SQLite backend: a database file per tenant (`<folder>/<tenant>.db`), each with a small
//! pool of its own kept in an LRU, and a registry file beside them. Every SQLite result code
//! and message the crate looks at is named here and nowhere else.
//!
//! SQLite cannot name another file's tables in a statement (beyond the `ATTACH` limit of 10
//! per connection), so this backend routes instead of qualifying: a statement names
//! `"main"."table"`, the file its connection has open, and only a tenant's own
//! [`TenantPool`](crate::TenantPool) (from [`Tenants::pool_for`](crate::Tenants::pool_for)) is
//! an executor. A plain `SqlitePool` is not one: it does not know whose file it has open.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Sqlite;

use crate::backend::{plain_sending, About, Backend, Conflict, Failure, Session};
use crate::crud;
use crate::error::Error;
use crate::statement::Dialect;
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{scalars, BindColumn};

#[cfg(test)]
mod dialect_tests;
mod handle;
mod store;
pub(crate) use store::SqliteStore;

/// SQLite's SQL: `"double quoted"` identifiers, `?n` placeholders, `RETURNING` (3.35+), and
/// tables named `"main"."table"`: a tenant is the file its connection has open.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    // SQLite's grammar has OFFSET only after LIMIT; a negative limit means none.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT -1");
    const QUALIFIES: bool = false;
    const INTEGER_TYPE: &'static str = "INTEGER";
    const FLOAT_TYPE: &'static str = "REAL";

    fn quote_ident(out: &mut String, ident: &str) {
        crate::ident::double_quote_into(out, ident)
    }

    fn placeholder(out: &mut String, n: usize) {
        use std::fmt::Write as _;
        let _ = write!(out, "?{n}");
    }
}

scalars!(Sqlite, branch = i64);
crate::relation::preload_with_in!(Sqlite);

/// SQLITE_BUSY: the file is locked by another connection (after the busy timeout).
const BUSY: i32 = 5;
/// SQLITE_CANTOPEN: the file could not be opened (it does not exist: tenants are opened
/// without `create_if_missing`).
const CANTOPEN: i32 = 14;
/// SQLITE_CONSTRAINT_PRIMARYKEY.
const CONSTRAINT_PRIMARYKEY: i32 = 1555;
/// SQLITE_CONSTRAINT_UNIQUE.
const CONSTRAINT_UNIQUE: i32 = 2067;
/// The start of SQLite's message for a missing table (its code is the generic SQLITE_ERROR).
const NO_SUCH_TABLE: &str = "no such table";

/// The registry file's name in the folder, for a registry named `registry`.
pub(crate) fn registry_file(folder: &Path, registry: &Tenant) -> PathBuf {
    folder.join(format!("{registry}.db"))
}

/// The extended result code of `err`, if it is a SQLite error.
fn code(err: &sqlx::Error) -> Option<i32> {
    match err {
        sqlx::Error::Database(db)
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
        {
            db.code().and_then(|c| c.parse().ok())
        }
        _ => None,
    }
}

/// The file was locked by another connection for longer than the busy timeout.
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    code(err).is_some_and(|c| c & 0xff == BUSY)
}

/// The file could not be opened.
pub(crate) fn is_cantopen(err: &sqlx::Error) -> bool {
    code(err).is_some_and(|c| c & 0xff == CANTOPEN)
}

/// A unique or primary key refused the row.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(code(err), Some(CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY))
}

/// The statement named a table the file does not have.
pub(crate) fn is_missing_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && db.message().starts_with(NO_SUCH_TABLE))
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
    max_pools: usize,
    connections_per_pool: u32,
    idle_timeout: Duration,
    busy_timeout: Duration,
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

impl Backend for Sqlite {
    type Dialect = SqliteDialect;
    type Mode = ();
    const DB_SYSTEM: &'static str = "sqlite";
    const CONTAINER: &'static str = "database file";
    const MAX_BIND_PARAMS: usize = 32_766;
    type Store = SqliteStore;

    plain_sending!();

    fn insert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
    ) -> impl std::future::Future<Output = Result<Vec<SqliteRow>, Error>> + Send + 's {
        crud::insert_returning(session, about, table, rows)
    }

    fn update_row<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s dyn BindColumn<Self>,
        columns: &'s [usize],
    ) -> impl std::future::Future<Output = Result<Option<SqliteRow>, Error>> + Send + 's {
        crud::update_returning(session, about, table, row, columns)
    }

    fn upsert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
        conflict: Conflict<'s>,
    ) -> impl std::future::Future<Output = Result<Vec<SqliteRow>, Error>> + Send + 's {
        crud::upsert_returning(session, about, table, rows, conflict)
    }

    /// Never reached: a statement across tenants is refused on SQLite before it is built (its
    /// executor belongs to one tenant).
    fn first_without_table<'a>(
        _session: &'a mut Session<'_, Self>,
        _batch: &'a [Tenant],
        _table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn failure(err: &sqlx::Error) -> Option<Failure> {
        if is_missing_table(err) {
            return Some(Failure::MissingTable);
        }
        // A tenant's pool is closed when the tenant is dropped or renamed; a file that cannot
        // be opened is a tenant whose file is gone.
        if matches!(err, sqlx::Error::PoolClosed) || is_cantopen(err) {
            return Some(Failure::MissingContainer);
        }
        if is_unique_violation(err) {
            return Some(Failure::UniqueViolation);
        }
        if is_busy(err) {
            return Some(Failure::LockTimeout);
        }
        None
    }

    /// SQLite's message with its extended result code.
    fn render(err: &sqlx::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sqlx::Error::Database(db) = err else {
            return fmt::Display::fmt(err, f);
        };
        f.write_str(db.message())?;
        if let Some(code) = db.code() {
            write!(f, " (SQLite result code {code})")?;
        }
        Ok(())
    }
}
