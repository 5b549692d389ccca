//! The backend seam: what each database the crate supports provides, in one place per database.
//!
//! A backend is sqlx's own database type — [`sqlx::Postgres`], and [`sqlx::MySql`] with the
//! `mysql` feature, [`sqlx::Sqlite`] with `sqlite` — so a pool's type names its backend
//! (`Pool<Postgres>` is a [`Tenants<Postgres>`](crate::Tenants)) and nothing has to be inferred
//! twice. A model names its backend with `#[tenancy(backend = "mysql")]` or gets
//! [`DefaultBackend`].
//!
//! What a backend decides, each in its own folder (`postgres/`, `mysql/`, `sqlite/`):
//! - **SQL**: its [`Dialect`] (quoting, placeholders, `RETURNING` or not, paging) and its limit
//!   on bound values ([`Backend::MAX_BIND_PARAMS`]);
//! - **sending**: how one statement goes out on a connection ([`Backend::fetch_optional`] and
//!   its siblings: PostgreSQL re-prepares a stale plan and serves PgBouncer), and how a write
//!   returns the rows it stored ([`Backend::insert_rows`]: one statement with `RETURNING`, or
//!   MySQL's write and read back);
//! - **errors**: which server errors mean a missing table or container, an existing container,
//!   a unique violation or a lock timeout ([`Failure`]), and how they read; no error code
//!   appears outside the backend's folder;
//! - **lifecycle**: the tenant store behind [`Tenants`](crate::Tenants).
//!
//! Execution stays monomorphic per backend: each backend's folder writes its own
//! `sqlx::query_with(..).fetch_*(conn)` calls, so public bounds stay one
//! `E: Executor<'c, Backend = M::Backend>` per operation.

use std::borrow::Cow;
use std::future::Future;

use futures_util::stream::BoxStream;
use sqlx::pool::PoolConnection;

use crate::error::{DatabaseError, Error};
use crate::lifecycle::fleet::store::FleetStore;
use crate::lifecycle::store::{Place, Port, Store};
use crate::statement::{self, Dialect, OnConflictAction, Statement};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{BindColumn, Scalars};

pub(crate) mod sealed {
    /// Implemented by the registration of each backend (`backends!` in lib.rs) only.
    pub trait Sealed {}
}

/// A database tenancy runs on: sqlx's [`Postgres`](sqlx::Postgres), (feature `mysql`)
/// `MySql`, which also serves MariaDB, or (feature `sqlite`) `Sqlite`. Sealed: its methods are
/// the crate's business.
pub trait Backend: sqlx::Database + Scalars + sealed::Sealed {
    /// How the backend's SQL is written.
    #[doc(hidden)]
    type Dialect: Dialect;

    /// What a [`Session`] of this backend carries besides its connection (PostgreSQL: whether
    /// it runs behind PgBouncer).
    #[doc(hidden)]
    type Mode: Default + Copy + Send + Sync + 'static;

    /// What a tenant's container is called in this database's words, for messages: "schema",
    /// "database" or "database file".
    const CONTAINER: &'static str;

    /// The database's name in a span's `db.system` field (OpenTelemetry's values):
    /// `"postgresql"`, `"mysql"` (MySQL and MariaDB) or `"sqlite"`.
    const DB_SYSTEM: &'static str;

    /// The most values one statement may bind (PostgreSQL and MySQL 65,535; SQLite 32,766).
    const MAX_BIND_PARAMS: usize;

    /// The backend's tenant store, held by [`Tenants`](crate::Tenants): the primitives of its
    /// lifecycle, and what it keeps beyond the pool (PostgreSQL: the registry's state, shared
    /// schemas, PgBouncer, the Citus flavour; MySQL: the registry and lock settings; SQLite:
    /// the folder of tenant files and the pools open on them).
    #[doc(hidden)]
    type Store: Store<Self> + Port<Self> + Place<Self> + FleetStore<Self>;

    /// How the statements of a handle's executors are sent (PostgreSQL: behind PgBouncer or
    /// not); carried by the handle and the [`TenantPool`](crate::TenantPool)s it gives out.
    #[doc(hidden)]
    fn mode_of(store: &Self::Store) -> Self::Mode {
        let _ = store;
        Self::Mode::default()
    }

    /// Sends `statement` on the session's connection and returns its first row, if any.
    #[doc(hidden)]
    fn fetch_optional<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 's;

    /// Sends `statement` and hands each row to `each` as it arrives (decoded there: no row is
    /// kept, as sqlx's `query_as(..).fetch_all` does); returns how many rows there were.
    #[doc(hidden)]
    fn fetch_each<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
        each: Each<'s, Self>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 's;

    /// Sends `statement` and returns how many rows it affected.
    #[doc(hidden)]
    fn execute<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 's;

    /// Sends one statement and yields its rows as they arrive; `rows_of` names the
    /// row-level tenant whose rows it reads, if one (PostgreSQL's row-level security).
    #[doc(hidden)]
    fn stream<'s>(
        session: &'s mut Session<'_, Self>,
        sql: &'s str,
        args: Self::Arguments,
        rows_of: Option<&'s Tenant>,
    ) -> BoxStream<'s, Result<Self::Row, sqlx::Error>>;

    /// Inserts `rows` into `table` of `about`'s tenant and returns them as stored (generated
    /// columns filled), in order: all or none (one statement, or MySQL's rows each written and
    /// read back inside one transaction).
    #[doc(hidden)]
    fn insert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, Error>> + Send + 's {
        // With `RETURNING`: one `INSERT … RETURNING` statement. One row comes back as one
        // (sqlx's `fetch_optional`), without a row stream for it.
        async move {
            let statement = statement::insert::<Self::Dialect, Self>(about.tenant, table, rows);
            if let [_] = rows {
                let row = session.fetch_optional(about, &statement).await?;
                return Ok(row.into_iter().collect());
            }
            session.fetch_all(about, &statement).await
        }
    }

    /// [`insert_rows`](Self::insert_rows) of one row: the row as stored, without a `Vec` for
    /// it (`None` if the database returned none).
    #[doc(hidden)]
    fn insert_one<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s [&'s dyn BindColumn<Self>; 1],
    ) -> impl Future<Output = Result<Option<Self::Row>, Error>> + Send + 's {
        // With `RETURNING`: one `INSERT … RETURNING` statement, its row as one.
        async move {
            let statement = statement::insert::<Self::Dialect, Self>(about.tenant, table, row);
            session.fetch_optional(about, &statement).await
        }
    }

    /// Writes `columns` of `row` to the stored row with its key and returns that row as
    /// stored, or `None` if there is none.
    #[doc(hidden)]
    fn update_row<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s dyn BindColumn<Self>,
        columns: &'s [usize],
    ) -> impl Future<Output = Result<Option<Self::Row>, Error>> + Send + 's {
        // With `RETURNING`: one `UPDATE … RETURNING` statement.
        async move {
            let statement =
                statement::update::<Self::Dialect, Self>(about.tenant, table, row, columns);
            session.fetch_optional(about, &statement).await
        }
    }

    /// Inserts `rows`, and where one conflicts on `conflict`'s target, does its action instead;
    /// returns the rows written as stored, in order (not those `do_nothing` kept).
    #[doc(hidden)]
    fn upsert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
        conflict: Conflict<'s>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, Error>> + Send + 's {
        // With `RETURNING`: one `INSERT … ON CONFLICT … RETURNING` statement.
        async move {
            let statement = statement::upsert::<Self::Dialect, Self>(
                about.tenant,
                table,
                rows,
                conflict.target_names,
                conflict.action,
            );
            session.fetch_all(about, &statement).await
        }
    }

    /// What a server error means to the crate, if anything.
    #[doc(hidden)]
    fn failure(err: &sqlx::Error) -> Option<Failure>;

    /// Writes a server error of this database for people (message and code, without noise);
    /// `None` if the error is another database's.
    #[doc(hidden)]
    fn render(
        err: &dyn sqlx::error::DatabaseError,
        f: &mut std::fmt::Formatter<'_>,
    ) -> Option<std::fmt::Result>;
}

/// A function a [`Backend::fetch_each`] hands each row to.
pub type Each<'w, B> =
    &'w mut (dyn FnMut(<B as sqlx::Database>::Row) -> Result<(), sqlx::Error> + Send);

/// An upsert's conflict target (column indexes and names) and what it does on a conflict.
#[derive(Debug, Clone, Copy)]
pub struct Conflict<'c> {
    /// The unique columns, by index.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) target: &'c [usize],
    /// Their names.
    pub(crate) target_names: &'c [&'static str],
    /// What happens to a conflicting row.
    pub(crate) action: OnConflictAction<'c>,
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
    /// A row-level tenant's row was written to a container that does not hold its rows (the
    /// guard [`Tenants::promote`](crate::Tenants::promote) installs).
    NotPlaced,
}

impl Failure {
    /// Whether the statement failed because its tenant's table or container is missing.
    pub(crate) fn is_missing(self) -> bool {
        matches!(self, Failure::MissingTable | Failure::MissingContainer)
    }
}

/// What a generated statement is about: its tenant and table name its errors and its span.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// `select`, `insert`, `update`, `delete`, `count`, …
    pub(crate) operation: &'static str,
    pub(crate) tenant: &'a Tenant,
    pub(crate) table: &'static str,
}

impl<'a> About<'a> {
    /// A statement of `operation` on `table` of `tenant`.
    pub(crate) fn new(operation: &'static str, tenant: &'a Tenant, table: &'static str) -> Self {
        About {
            operation,
            tenant,
            table,
        }
    }

    /// The same statement, another operation (a write's read back is a `select`).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn as_operation(self, operation: &'static str) -> Self {
        About { operation, ..self }
    }
}

enum Conn<'c, B: Backend> {
    Owned(PoolConnection<B>),
    Borrowed(&'c mut B::Connection),
}

/// A connection taken from an [`Executor`](crate::Executor) for one operation. Not part of
/// the public API.
#[doc(hidden)]
pub struct Session<'c, B: Backend> {
    conn: Conn<'c, B>,
    /// What the executor asked of its statements (PostgreSQL: PgBouncer's way).
    pub(crate) mode: B::Mode,
    /// The tenant the executor belongs to, if it belongs to one
    /// ([`TenantPool`](crate::TenantPool)): every statement sent on the session must be for
    /// that tenant.
    bound: Option<Cow<'c, Tenant>>,
}

impl<'c, B: Backend> Session<'c, B> {
    /// A session on a connection taken from a pool.
    pub(crate) fn owned(conn: PoolConnection<B>, bound: Option<Cow<'c, Tenant>>) -> Self {
        Session {
            conn: Conn::Owned(conn),
            mode: B::Mode::default(),
            bound,
        }
    }

    /// A session on a connection the caller holds (e.g. a transaction the operation opened on
    /// another session, bound to the same tenant as that session).
    pub(crate) fn borrowing(conn: &'c mut B::Connection, bound: Option<Cow<'c, Tenant>>) -> Self {
        Session {
            conn: Conn::Borrowed(conn),
            mode: B::Mode::default(),
            bound,
        }
    }

    /// The same session, sending its statements in `mode` (e.g. the mode a
    /// [`Tenants`](crate::Tenants) handle or a [`TenantPool`](crate::TenantPool) carries).
    pub(crate) fn in_mode(mut self, mode: B::Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The tenant the session's executor belongs to, if any.
    pub(crate) fn bound(&self) -> Option<&Tenant> {
        self.bound.as_deref()
    }

    /// Refuses a statement for `tenant` on a session bound to another tenant.
    pub(crate) fn check(&self, tenant: &Tenant, table: &'static str) -> Result<(), Error> {
        match self.bound() {
            Some(bound) if bound.container() != tenant.container() => {
                Err(Error::ExecutorMismatch {
                    table,
                    executor: bound.clone(),
                    requested: tenant.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut B::Connection {
        match &mut self.conn {
            Conn::Owned(c) => c,
            Conn::Borrowed(c) => c,
        }
    }

    /// The connection, and a session on it for the statements of a transaction the caller
    /// opens there: bound to the same tenant, in the same mode.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn parts(&mut self) -> (&mut B::Connection, Option<Tenant>, B::Mode) {
        let bound = self.bound().cloned();
        let mode = self.mode;
        (self.conn(), bound, mode)
    }
}

/// Implements sending for a backend whose statements need nothing but sqlx's own calls (MySQL,
/// SQLite): `fetch_optional`, `fetch_each`, `execute` and `stream` as sqlx's
/// `query_with(..).fetch_*` on the session's connection.
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(unused_macros))]
macro_rules! plain_sending {
    () => {
        fn fetch_optional<'s>(
            session: &'s mut $crate::backend::Session<'_, Self>,
            statement: &'s $crate::statement::Statement<'_, Self>,
        ) -> impl std::future::Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 's {
            async move {
                sqlx::query_with(statement.sql_str(), statement.arguments()?)
                    .fetch_optional(session.conn())
                    .await
            }
        }

        fn fetch_each<'s>(
            session: &'s mut $crate::backend::Session<'_, Self>,
            statement: &'s $crate::statement::Statement<'_, Self>,
            each: $crate::backend::Each<'s, Self>,
        ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send + 's {
            async move {
                let rows = sqlx::query_with(statement.sql_str(), statement.arguments()?)
                    .fetch(session.conn());
                $crate::backend::each_row(rows, each).await
            }
        }

        fn execute<'s>(
            session: &'s mut $crate::backend::Session<'_, Self>,
            statement: &'s $crate::statement::Statement<'_, Self>,
        ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send + 's {
            async move {
                Ok(
                    sqlx::query_with(statement.sql_str(), statement.arguments()?)
                        .execute(session.conn())
                        .await?
                        .rows_affected(),
                )
            }
        }

        fn stream<'s>(
            session: &'s mut $crate::backend::Session<'_, Self>,
            sql: &'s str,
            args: Self::Arguments,
            _rows_of: Option<&'s $crate::tenant::Tenant>,
        ) -> futures_util::stream::BoxStream<'s, Result<Self::Row, sqlx::Error>> {
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch(session.conn())
        }
    };
}
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(unused_imports))]
pub(crate) use plain_sending;

/// [`Backend::failure`] and [`Backend::render`] of a backend whose folder has an `errors` module
/// with `failure` and `render` of those signatures (the invoking module names `errors`).
macro_rules! errors_module_hooks {
    () => {
        fn failure(err: &sqlx::Error) -> Option<$crate::backend::Failure> {
            errors::failure(err)
        }

        fn render(
            err: &dyn sqlx::error::DatabaseError,
            f: &mut std::fmt::Formatter<'_>,
        ) -> Option<std::fmt::Result> {
            errors::render(err, f)
        }
    };
}
pub(crate) use errors_module_hooks;

/// Hands each row of `rows` to `each` as it arrives; returns how many there were.
pub(crate) async fn each_row<R>(
    mut rows: BoxStream<'_, Result<R, sqlx::Error>>,
    each: &mut (dyn FnMut(R) -> Result<(), sqlx::Error> + Send),
) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
        each(row)?;
        n += 1;
    }
    Ok(n)
}

/// [`Error::ContainerExists`]: `tenant`'s container on backend `B` is there already.
pub(crate) fn container_exists<B: Backend>(tenant: &Tenant) -> Error {
    Error::ContainerExists {
        tenant: tenant.clone(),
        container: B::CONTAINER,
    }
}

/// [`Error::ContainerMissing`]: `tenant`'s container on backend `B` is not there.
pub(crate) fn container_missing<B: Backend>(tenant: &Tenant) -> Error {
    Error::ContainerMissing {
        tenant: tenant.clone(),
        container: B::CONTAINER,
    }
}

/// Maps a database error of a statement on `tenant`'s `table` to an [`Error`]: a missing
/// relation or schema becomes [`Error::UnknownTenant`] instead of a raw
/// "relation does not exist".
pub(crate) fn from_db<B: Backend>(err: sqlx::Error, tenant: &Tenant, table: &'static str) -> Error {
    if let Some(refusal) = crate::statement::Refusal::of(&err) {
        return Error::NotRowLevel {
            tenant: tenant.clone(),
            table: refusal.table,
            reason: refusal.reason,
        };
    }
    let failure = B::failure(&err);
    if failure == Some(Failure::NotPlaced) {
        return Error::NotPlaced {
            tenant: tenant.clone(),
            table,
            source: DatabaseError::from(err),
        };
    }
    if failure.is_some_and(|f| f.is_missing()) {
        Error::UnknownTenant {
            tenant: tenant.clone(),
            table,
            source: DatabaseError::from(err),
        }
    } else {
        Error::Database {
            tenant: Some(tenant.clone()),
            source: DatabaseError::from(err),
        }
    }
}
