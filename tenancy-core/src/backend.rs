//! The backend seam: what each database the crate supports provides, in one place per database.
//!
//! A backend is sqlx's own database type — [`sqlx::Postgres`], and [`sqlx::MySql`] with the
//! `mysql` feature — so a pool's type names its backend (`Pool<Postgres>` is a
//! [`Tenants<Postgres>`](crate::Tenants)) and nothing has to be inferred twice. A model names
//! its backend with `#[tenancy(backend = "mysql")]` or gets [`DefaultBackend`].
//!
//! What a backend decides:
//! - **types**: its row, arguments and connection (sqlx's);
//! - **SQL**: its [`Dialect`](crate::sql::Dialect) (quoting, placeholders, `RETURNING` or a read
//!   back, paging) and its limit on bound values ([`Backend::MAX_BIND_PARAMS`]);
//! - **errors**: which server errors mean a missing table or container, an existing container,
//!   a unique violation or a lock timeout ([`Failure`]); no error code appears outside the
//!   backend's module;
//! - **sending**: how one statement is sent on a connection (PostgreSQL re-prepares a stale
//!   plan and serves PgBouncer; MySQL reads `LAST_INSERT_ID()` back);
//! - **lifecycle**: the tenant store behind [`Tenants`](crate::Tenants) (create, drop, rename,
//!   exists, list, lock, migrate one tenant, who is behind).
//!
//! Execution stays monomorphic per backend: each backend's module writes its own
//! `sqlx::query_with(..).fetch_*(conn)` calls, so public bounds stay one
//! `E: Executor<'c, Backend = M::Backend>` per operation.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::exec::{Args, Fetched, Session, Want};
use crate::sql::Dialect;
use crate::tenant::Tenant;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Postgres {}
    #[cfg(feature = "mysql")]
    impl Sealed for sqlx::MySql {}
    #[cfg(feature = "sqlite")]
    impl Sealed for sqlx::Sqlite {}
}

/// A database tenancy runs on: sqlx's [`Postgres`](sqlx::Postgres), (feature `mysql`)
/// `MySql`, which also serves MariaDB, or (feature `sqlite`) `Sqlite`. Sealed: its methods are the crate's business.
pub trait Backend: sqlx::Database + sealed::Sealed {
    /// How the backend's SQL is written.
    #[doc(hidden)]
    type Dialect: Dialect;

    /// What a tenant's container is called in this database's words, for messages: "schema"
    /// or "database".
    const CONTAINER: &'static str;

    /// The database's name in a span's `db.system` field (OpenTelemetry's values):
    /// `"postgresql"`, `"mysql"` (MySQL and MariaDB) or `"sqlite"`.
    const DB_SYSTEM: &'static str;

    /// The most values one statement may bind (PostgreSQL 65,535; MySQL 65,535).
    const MAX_BIND_PARAMS: usize;

    /// The backend's tenant store, held by [`Tenants`](crate::Tenants): what its lifecycle
    /// keeps beyond the pool (PostgreSQL: nothing; MySQL: the registry and lock settings;
    /// SQLite: the folder of tenant files and the pools open on them).
    #[doc(hidden)]
    type Store: Send + Sync + 'static;

    /// What a handle's store is configured with beyond the registry and lock timeout (SQLite:
    /// its `PoolBudget`; nothing elsewhere).
    #[doc(hidden)]
    type StoreSettings: Clone + Default + Send + Sync + 'static;

    /// The store of a handle on `pool` whose registry is `registry`, waiting at most
    /// `lock_timeout` for a tenant's lock (`None`: as long as the server allows).
    #[doc(hidden)]
    fn store(
        pool: &sqlx::Pool<Self>,
        registry: &Tenant,
        lock_timeout: Option<Duration>,
        settings: &Self::StoreSettings,
    ) -> Result<Self::Store, crate::Error>;

    /// The pool that serves `tenant` of `tenants` (PostgreSQL, MySQL: the handle's own;
    /// SQLite: the tenant's, from the handle's LRU).
    #[doc(hidden)]
    fn tenant_pool<'a>(
        tenants: &'a crate::Tenants<Self>,
        tenant: &'a Tenant,
    ) -> impl std::future::Future<Output = Result<sqlx::Pool<Self>, crate::Error>> + Send + 'a;

    /// Sends one statement on the session's connection. (A plain future, not boxed: it is on
    /// the path of every statement.)
    #[doc(hidden)]
    fn run<'a, 'w>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Args<'a, Self>,
        want: Want<'w, Self>,
    ) -> impl std::future::Future<Output = Result<Fetched<Self>, sqlx::Error>> + Send;

    /// Sends one statement on the session's connection and yields its rows as they arrive.
    #[doc(hidden)]
    fn stream<'a>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Self::Arguments,
    ) -> futures_util::stream::BoxStream<'a, Result<Self::Row, sqlx::Error>>;

    /// Binds an `i64` (a limit or offset).
    #[doc(hidden)]
    fn bind_i64(args: &mut Self::Arguments, value: i64) -> Result<(), sqlx::Error>;

    /// Reads column `index` of `row` as an `i64` (a count).
    #[doc(hidden)]
    fn get_i64(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;

    /// Reads column `index` of `row` as a `T` (an aggregate, a group's key).
    #[doc(hidden)]
    fn get<T: crate::query::SqlDecode<Self>>(
        row: &Self::Row,
        index: usize,
    ) -> Result<T, sqlx::Error>;

    /// Reads the branch index a statement across tenants adds to each row (column `index`).
    #[doc(hidden)]
    fn get_branch(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;

    /// The position in `batch` of the first tenant without table `table`: which tenant made a
    /// statement across tenants fail (one catalog query, on failure only).
    #[doc(hidden)]
    fn first_without_table<'a>(
        session: &'a mut Session<'_, Self>,
        batch: &'a [Tenant],
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>>;

    /// What a server error means to the crate, if anything.
    #[doc(hidden)]
    fn failure(err: &sqlx::Error) -> Option<Failure>;

    /// Writes a server error for people (message and code, without noise).
    #[doc(hidden)]
    fn render(err: &sqlx::Error, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result;
}

/// A backend whose statements name their tenant's container (`"tenant"."guards"`), so that any
/// connection of one pool serves every tenant: PostgreSQL and MySQL. A plain pool, connection
/// or transaction of such a backend is an [`Executor`](crate::Executor) for any tenant; on
/// SQLite (a file per tenant) only a [`TenantPool`](crate::TenantPool) is.
#[diagnostic::on_unimplemented(
    message = "a plain `{Self}` pool, connection or transaction does not know its tenant",
    label = "on this backend each tenant has its own database file",
    note = "take the tenant's pool with `tenants.pool_for(&tenant).await?` and pass `&pool` (or a transaction of it: `pool.begin().await?`)"
)]
pub trait SharedPool: Backend {}

impl SharedPool for sqlx::Postgres {}
#[cfg(feature = "mysql")]
impl SharedPool for sqlx::MySql {}

/// The backend of models that do not name one: PostgreSQL.
pub type DefaultBackend = sqlx::Postgres;

/// What a server error means, classified by the backend that raised it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The statement named a table that does not exist.
    MissingTable,
    /// The statement named a tenant container (schema, database) that does not exist.
    MissingContainer,
    /// A container of that name exists already.
    ContainerExists,
    /// A unique constraint refused the row.
    UniqueViolation,
    /// A lock was not granted in time.
    LockTimeout,
}

impl Failure {
    /// Whether the statement failed because its tenant's table or container is missing.
    pub(crate) fn is_missing(self) -> bool {
        matches!(self, Failure::MissingTable | Failure::MissingContainer)
    }
}

/// The [`Failure`] of `err` under backend `B`.
pub(crate) fn failure<B: Backend>(err: &sqlx::Error) -> Option<Failure> {
    B::failure(err)
}

/// Writes `err` with the renderer of the backend that raised it (the error carries its
/// database's type, so no backend parameter is needed).
pub(crate) fn render_any(err: &sqlx::Error, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if let sqlx::Error::Database(db) = err {
        if db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            return <sqlx::Postgres as Backend>::render(err, f);
        }
        #[cfg(feature = "mysql")]
        if db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some()
        {
            return <sqlx::MySql as Backend>::render(err, f);
        }
        #[cfg(feature = "sqlite")]
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            return <sqlx::Sqlite as Backend>::render(err, f);
        }
    }
    std::fmt::Display::fmt(err, f)
}
