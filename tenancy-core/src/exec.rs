//! Where an operation runs: the [`Executor`] trait (a pool, a connection, a transaction, or any
//! of them behind [`PgBouncer`]), and the one place that sends a generated statement.
//!
//! Sending goes through here, and on to the backend's [`Backend::run`]. On PostgreSQL two things
//! hold for every generated statement:
//! - **A migration that changes a column's type does not break pooled connections.** A
//!   prepared statement cached before the change fails with "cached plan must not change
//!   result type" before it executes; it is re-prepared (the connection's statement cache is
//!   cleared) and sent once more. Inside a transaction the server has already aborted the
//!   transaction, so the error is returned, but the cache is cleared all the same and the
//!   caller's retry of the transaction succeeds.
//! - **PgBouncer in transaction mode** (which 1.18 serves without prepared-statement support)
//!   gets unnamed statements, each inside a transaction, so that the parse and the execution
//!   of a statement reach the same server connection.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Pool, Postgres, Transaction};

use crate::backend::{Backend, SharedPool};
use crate::error::{from_db, Error};
use crate::lifecycle::Tenants;
use crate::sql::Dialect;
use crate::tenant::Tenant;
use crate::tenant_pool::{TenantPool, TenantTransaction};
use crate::trace;

/// Anything a tenancy operation can run on: a `&Pool<B>` (`&PgPool`, `&MySqlPool`), a
/// connection (`&mut PgConnection`, `&mut MySqlConnection`, also `&mut *tx`),
/// `&mut PoolConnection<B>`, `&mut Transaction<'_, B>`, and for PostgreSQL any of these
/// wrapped in [`PgBouncer`]; on every backend a tenant's own [`TenantPool`] and
/// [`TenantTransaction`], which serve that tenant only. On SQLite (a file per tenant) only the
/// last two are executors: a plain SQLite pool does not know whose file it has open.
///
/// Its [`Backend`] is the pool's database; a model's operations take executors of the model's
/// backend only. Sealed in practice: its one method is not part of the public API.
pub trait Executor<'c>: Send + Sized + OnBackend {
    /// A connection for statements on `tenant` (`None`: on several tenants at once).
    #[doc(hidden)]
    fn __session(
        self,
        tenant: Option<&Tenant>,
    ) -> BoxFuture<'c, Result<Session<'c, Self::Backend>, Error>>;
}

/// The database an [`Executor`] talks to; a supertrait of its own so that the backend of an
/// executor does not depend on the executor's lifetime. Write `E: Executor<'c, Backend = B>`.
pub trait OnBackend {
    /// The database the executor talks to.
    type Backend: Backend;
}

impl<B: SharedPool> OnBackend for &Pool<B> {
    type Backend = B;
}

impl<B: SharedPool> OnBackend for &mut PoolConnection<B> {
    type Backend = B;
}

impl<B: SharedPool> OnBackend for &mut Transaction<'_, B> {
    type Backend = B;
}

impl<B: Backend> OnBackend for &TenantPool<B> {
    type Backend = B;
}

impl<B: Backend> OnBackend for &mut TenantTransaction<B> {
    type Backend = B;
}

impl<B: Backend> OnBackend for &Tenants<B> {
    type Backend = B;
}

impl<E: OnBackend> OnBackend for PgBouncer<E> {
    type Backend = E::Backend;
}

impl<'c, B: SharedPool> Executor<'c> for &Pool<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let acquire = self.acquire();
        Box::pin(async move { Ok(Session::new(Conn::Owned(acquire.await?), None)) })
    }
}

impl<'c, B: SharedPool> Executor<'c> for &'c mut PoolConnection<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        borrowed(&mut **self, None)
    }
}

impl<'c, B: SharedPool> Executor<'c> for &'c mut Transaction<'_, B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        borrowed(&mut **self, None)
    }
}

impl<'c, B: Backend> Executor<'c> for &'c TenantPool<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let acquire = self.sqlx_pool().acquire();
        let tenant = self.tenant();
        Box::pin(async move {
            let conn = acquire.await?;
            Ok(Session::new(Conn::Owned(conn), Some(Cow::Borrowed(tenant))))
        })
    }
}

impl<'c, B: Backend> Executor<'c> for &'c mut TenantTransaction<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let (conn, tenant) = self.parts();
        borrowed(conn, Some(Cow::Borrowed(tenant)))
    }
}

/// The lifecycle handle routes: each operation runs on the pool that serves its tenant
/// ([`Tenants::pool_for`]), so `guard.insert(&tenants, &acme)` reads the same on every
/// backend. On SQLite that is the tenant's own file; elsewhere the shared pool.
impl<'c, B: Backend> Executor<'c> for &'c Tenants<B> {
    fn __session(self, tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let tenant = tenant.cloned();
        Box::pin(async move {
            match tenant {
                Some(tenant) => {
                    let pool = B::tenant_pool(self, &tenant).await?;
                    let conn = pool.acquire().await?;
                    Ok(Session::new(Conn::Owned(conn), Some(Cow::Owned(tenant))))
                }
                None if <B::Dialect as Dialect>::QUALIFIES => {
                    Ok(Session::new(Conn::Owned(self.pool().acquire().await?), None))
                }
                None => Err(Error::Unsupported {
                    operation: "a statement on several tenants",
                    reason: format!(
                        "each tenant is its own {}; run one statement per tenant (e.g. with `Tenants::for_each`)",
                        B::CONTAINER
                    ),
                }),
            }
        })
    }
}

fn borrowed<'c, B: Backend>(
    conn: &'c mut B::Connection,
    bound: Option<Cow<'c, Tenant>>,
) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
    Box::pin(std::future::ready(Ok(Session::new(
        Conn::Borrowed(conn),
        bound,
    ))))
}

/// `&mut` connections, one impl per backend whose statements name their tenant (a blanket
/// impl over `B::Connection` cannot name its backend).
macro_rules! connection_executor {
    ($conn:ty, $backend:ty) => {
        impl OnBackend for &mut $conn {
            type Backend = $backend;
        }

        impl<'c> Executor<'c> for &'c mut $conn {
            fn __session(
                self,
                _tenant: Option<&Tenant>,
            ) -> BoxFuture<'c, Result<Session<'c, $backend>, Error>> {
                borrowed(self, None)
            }
        }
    };
}

connection_executor!(PgConnection, Postgres);
#[cfg(feature = "mysql")]
connection_executor!(sqlx::mysql::MySqlConnection, sqlx::MySql);

/// Runs the wrapped executor's statements the way PgBouncer in transaction mode can serve
/// them: unnamed (never cached) prepared statements, each inside a transaction (the caller's,
/// or one of its own), so no statement can meet another client's on a shared server
/// connection. Build the pool with a statement cache of 0 (see
/// [`PoolSettings::pgbouncer`](crate::PoolSettings::pgbouncer)).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool, tenant: tenancy_core::Tenant) -> Result<(), tenancy_core::Error> {
/// # #[derive(Debug)] struct Guard;
/// use tenancy_core::PgBouncer;
/// let db = PgBouncer(&pool);
/// # let _ = (db, tenant);
/// // Guard::find(db, &tenant, 1).await?;
/// let mut tx = pool.begin().await?;
/// // Guard::find(PgBouncer(&mut *tx), &tenant, 1).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PgBouncer<E>(pub E);

impl<'c, E: Executor<'c, Backend = Postgres>> Executor<'c> for PgBouncer<E> {
    fn __session(
        self,
        tenant: Option<&Tenant>,
    ) -> BoxFuture<'c, Result<Session<'c, Postgres>, Error>> {
        let session = self.0.__session(tenant);
        Box::pin(async move {
            let mut session = session.await?;
            session.pgbouncer = true;
            Ok(session)
        })
    }
}

enum Conn<'c, B: Backend> {
    Owned(PoolConnection<B>),
    Borrowed(&'c mut B::Connection),
}

/// A connection taken from an [`Executor`] for one operation. Not part of the public API.
#[doc(hidden)]
pub struct Session<'c, B: Backend> {
    conn: Conn<'c, B>,
    pub(crate) pgbouncer: bool,
    /// The tenant the executor belongs to, if it belongs to one ([`TenantPool`]): every
    /// statement sent on the session must be for that tenant.
    bound: Option<Cow<'c, Tenant>>,
}

/// What a statement's caller wants back.
#[doc(hidden)]
pub enum Want<'w, B: Backend> {
    /// The first row, if any.
    Optional,
    /// Every row.
    All,
    /// Every row, handed to the function as it arrives (decoded there: no row is kept), as
    /// sqlx's `query_as(..).fetch_all` does. Answered with [`Fetched::Affected`], the count.
    Each(Each<'w, B>),
    /// How many rows were affected.
    Affected,
}

impl<B: Backend> Want<'_, B> {
    /// The same request, for a statement sent again (a retry).
    pub(crate) fn again(&mut self) -> Want<'_, B> {
        match self {
            Want::Optional => Want::Optional,
            Want::All => Want::All,
            Want::Each(each) => Want::Each(&mut **each),
            Want::Affected => Want::Affected,
        }
    }
}

/// Hands each row of `rows` to `each` as it arrives; returns how many there were.
pub(crate) async fn each_row<R>(
    mut rows: futures_util::stream::BoxStream<'_, Result<R, sqlx::Error>>,
    each: &mut (dyn FnMut(R) -> Result<(), sqlx::Error> + Send),
) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
        each(row)?;
        n += 1;
    }
    Ok(n)
}

/// A function a [`Want::Each`] hands each row to.
pub(crate) type Each<'w, B> =
    &'w mut (dyn FnMut(<B as sqlx::Database>::Row) -> Result<(), sqlx::Error> + Send);

/// What a statement returned, as asked for with the matching [`Want`].
#[doc(hidden)]
pub enum Fetched<B: Backend> {
    /// The first row, if any.
    Optional(Option<B::Row>),
    /// Every row.
    All(Vec<B::Row>),
    /// How many rows were affected.
    Affected(u64),
}

impl<B: Backend> Fetched<B> {
    fn optional(self) -> Option<B::Row> {
        match self {
            Fetched::Optional(row) => row,
            _ => unreachable!("asked for an optional row"),
        }
    }

    pub(crate) fn all(self) -> Vec<B::Row> {
        match self {
            Fetched::All(rows) => rows,
            _ => unreachable!("asked for all rows"),
        }
    }

    fn affected(self) -> u64 {
        match self {
            Fetched::Affected(n) => n,
            _ => unreachable!("asked for rows affected"),
        }
    }
}

impl<'c, B: Backend> Session<'c, B> {
    fn new(conn: Conn<'c, B>, bound: Option<Cow<'c, Tenant>>) -> Self {
        Session {
            conn,
            pgbouncer: false,
            bound,
        }
    }

    /// A session on `conn` (e.g. a transaction the operation opened on another session),
    /// bound to the same tenant as that session.
    pub(crate) fn borrowing(conn: &'c mut B::Connection, bound: Option<Tenant>) -> Self {
        Session::new(Conn::Borrowed(conn), bound.map(Cow::Owned))
    }

    /// The tenant the session's executor belongs to, if any.
    pub(crate) fn bound(&self) -> Option<&Tenant> {
        self.bound.as_deref()
    }

    /// Refuses a statement for `tenant` on a session bound to another tenant.
    pub(crate) fn check(&self, tenant: &Tenant, table: &'static str) -> Result<(), Error> {
        match self.bound() {
            Some(bound) if bound != tenant => Err(Error::ExecutorMismatch {
                table,
                executor: bound.clone(),
                requested: tenant.clone(),
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn conn(&mut self) -> &mut B::Connection {
        match &mut self.conn {
            Conn::Owned(c) => c,
            Conn::Borrowed(c) => c,
        }
    }

    /// Sends `sql` with the arguments `args` builds (called again for a retry), the way the
    /// backend sends statements.
    pub(crate) async fn run(
        &mut self,
        sql: &str,
        args: Args<'_, B>,
        want: Want<'_, B>,
    ) -> Result<Fetched<B>, sqlx::Error> {
        B::run(self, sql, args, want).await
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Args<'_, B>,
    ) -> Result<Option<B::Row>, sqlx::Error> {
        Ok(self.run(sql, args, Want::Optional).await?.optional())
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: Args<'_, B>,
    ) -> Result<Vec<B::Row>, sqlx::Error> {
        Ok(self.run(sql, args, Want::All).await?.all())
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        args: Args<'_, B>,
    ) -> Result<u64, sqlx::Error> {
        Ok(self.run(sql, args, Want::Affected).await?.affected())
    }
}

/// Arguments of a statement, built again if it is retried.
#[doc(hidden)]
pub type Args<'a, B> =
    &'a (dyn Fn() -> Result<<B as sqlx::Database>::Arguments, sqlx::Error> + Sync);

/// What a generated statement is about: its tenant and table name its errors and its span.
#[derive(Clone, Copy)]
pub(crate) struct On<'a> {
    /// `select`, `insert`, `update`, `delete` or `count`.
    pub(crate) operation: &'static str,
    pub(crate) tenant: &'a Tenant,
    pub(crate) table: &'static str,
}

impl On<'_> {
    /// Sends `sql` on `session` inside the statement's span, naming the tenant in an error.
    pub(crate) async fn run<B: Backend>(
        self,
        session: &mut Session<'_, B>,
        sql: &str,
        args: Args<'_, B>,
        want: Want<'_, B>,
    ) -> Result<Fetched<B>, Error> {
        session.check(self.tenant, self.table)?;
        let span = trace::statement::<B>(self.operation, self.tenant, self.table, sql);
        trace::within(span, session.run(sql, args, want))
            .await
            .map_err(|e| from_db::<B>(e, self.tenant, self.table))
    }

    /// Sends `sql` on `executor` inside the statement's span, naming the tenant in an error.
    async fn send<'c, E: Executor<'c>>(
        self,
        executor: E,
        sql: &str,
        args: Args<'_, E::Backend>,
        want: Want<'_, E::Backend>,
    ) -> Result<Fetched<E::Backend>, Error> {
        let span = trace::statement::<E::Backend>(self.operation, self.tenant, self.table, sql);
        trace::within(span, async {
            let mut session = self.session(executor).await?;
            session
                .run(sql, args, want)
                .await
                .map_err(|e| from_db::<E::Backend>(e, self.tenant, self.table))
        })
        .await
    }

    /// A session of `executor` for the statement's tenant, checked to serve it.
    pub(crate) async fn session<'c, E: Executor<'c>>(
        self,
        executor: E,
    ) -> Result<Session<'c, E::Backend>, Error> {
        let session = executor
            .__session(Some(self.tenant))
            .await
            .map_err(|e| about::<E::Backend>(e, self.tenant, self.table))?;
        session.check(self.tenant, self.table)?;
        Ok(session)
    }

    /// Sends `sql` on `session` and returns its first row, if any.
    pub(crate) async fn fetch_optional<B: Backend>(
        self,
        session: &mut Session<'_, B>,
        sql: &str,
        args: Args<'_, B>,
    ) -> Result<Option<B::Row>, Error> {
        Ok(self
            .run(session, sql, args, Want::Optional)
            .await?
            .optional())
    }

    /// Sends `sql` on `session` and hands each row to `each` as it arrives.
    pub(crate) async fn fetch_each<B: Backend>(
        self,
        session: &mut Session<'_, B>,
        sql: &str,
        args: Args<'_, B>,
        each: Each<'_, B>,
    ) -> Result<(), Error> {
        self.run(session, sql, args, Want::Each(each)).await?;
        Ok(())
    }

    /// Sends `sql` on `session` and returns how many rows it affected.
    pub(crate) async fn execute<B: Backend>(
        self,
        session: &mut Session<'_, B>,
        sql: &str,
        args: Args<'_, B>,
    ) -> Result<u64, Error> {
        Ok(self
            .run(session, sql, args, Want::Affected)
            .await?
            .affected())
    }
}

/// An error taking a connection for `tenant`: a database error there is read as one of the
/// statement's (e.g. a closed pool of a dropped SQLite tenant is an unknown tenant), and a
/// tenant the router found unregistered or without its file is an unknown tenant too, as a
/// statement naming a missing schema is on the other backends.
fn about<B: Backend>(err: Error, tenant: &Tenant, table: &'static str) -> Error {
    match err {
        Error::Database {
            tenant: None,
            source,
        } => from_db::<B>(source.into_sqlx(), tenant, table),
        Error::NotATenant { .. } | Error::SchemaMissing { .. } => Error::UnknownTenant {
            tenant: tenant.clone(),
            table,
            source: sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                err.to_string(),
            ))
            .into(),
        },
        other => other,
    }
}

/// Runs `sql` once on `executor` and returns its first row, if any.
pub(crate) async fn fetch_optional<'c, E: Executor<'c>>(
    executor: E,
    on: On<'_>,
    sql: &str,
    args: Args<'_, E::Backend>,
) -> Result<Option<<E::Backend as sqlx::Database>::Row>, Error> {
    Ok(on
        .send(executor, sql, args, Want::Optional)
        .await?
        .optional())
}

/// Runs `sql` once on `executor` and returns its rows.
pub(crate) async fn fetch_all<'c, E: Executor<'c>>(
    executor: E,
    on: On<'_>,
    sql: &str,
    args: Args<'_, E::Backend>,
) -> Result<Vec<<E::Backend as sqlx::Database>::Row>, Error> {
    Ok(on.send(executor, sql, args, Want::All).await?.all())
}

/// Runs `sql` once on `executor` and hands each row to `each` as it arrives.
pub(crate) async fn fetch_each<'c, E: Executor<'c>>(
    executor: E,
    on: On<'_>,
    sql: &str,
    args: Args<'_, E::Backend>,
    each: Each<'_, E::Backend>,
) -> Result<(), Error> {
    on.send(executor, sql, args, Want::Each(each)).await?;
    Ok(())
}

/// Runs `sql` once on `executor` and returns how many rows it affected.
pub(crate) async fn execute<'c, E: Executor<'c>>(
    executor: E,
    on: On<'_>,
    sql: &str,
    args: Args<'_, E::Backend>,
) -> Result<u64, Error> {
    Ok(on
        .send(executor, sql, args, Want::Affected)
        .await?
        .affected())
}
