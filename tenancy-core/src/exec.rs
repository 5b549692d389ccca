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

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Pool, Postgres, Transaction};

use crate::backend::Backend;
use crate::error::{from_db, Error};
use crate::tenant::Tenant;
use crate::trace;

/// Anything a tenancy operation can run on: a `&Pool<B>` (`&PgPool`, `&MySqlPool`), a
/// connection (`&mut PgConnection`, `&mut MySqlConnection`, also `&mut *tx`),
/// `&mut PoolConnection<B>`, `&mut Transaction<'_, B>`, and for PostgreSQL any of these
/// wrapped in [`PgBouncer`].
///
/// Its [`Backend`] is the pool's database; a model's operations take executors of the model's
/// backend only. Sealed in practice: its one method is not part of the public API.
pub trait Executor<'c>: Send + Sized + OnBackend {
    #[doc(hidden)]
    fn __session(self) -> BoxFuture<'c, Result<Session<'c, Self::Backend>, sqlx::Error>>;
}

/// The database an [`Executor`] talks to; a supertrait of its own so that the backend of an
/// executor does not depend on the executor's lifetime. Write `E: Executor<'c, Backend = B>`.
pub trait OnBackend {
    /// The database the executor talks to.
    type Backend: Backend;
}

impl<B: Backend> OnBackend for &Pool<B> {
    type Backend = B;
}

impl<B: Backend> OnBackend for &mut PoolConnection<B> {
    type Backend = B;
}

impl<B: Backend> OnBackend for &mut Transaction<'_, B> {
    type Backend = B;
}

impl<E: OnBackend> OnBackend for PgBouncer<E> {
    type Backend = E::Backend;
}

impl<'c, B: Backend> Executor<'c> for &Pool<B> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c, B>, sqlx::Error>> {
        let acquire = self.acquire();
        Box::pin(async move { Ok(Session::new(Conn::Owned(acquire.await?), false)) })
    }
}

impl<'c, B: Backend> Executor<'c> for &'c mut PoolConnection<B> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c, B>, sqlx::Error>> {
        borrowed(&mut **self)
    }
}

impl<'c, B: Backend> Executor<'c> for &'c mut Transaction<'_, B> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c, B>, sqlx::Error>> {
        borrowed(&mut **self)
    }
}

fn borrowed<'c, B: Backend>(
    conn: &'c mut B::Connection,
) -> BoxFuture<'c, Result<Session<'c, B>, sqlx::Error>> {
    Box::pin(std::future::ready(Ok(Session::new(
        Conn::Borrowed(conn),
        false,
    ))))
}

/// `&mut` connections, one impl per backend (a blanket impl over `B::Connection` cannot name
/// its backend).
macro_rules! connection_executor {
    ($conn:ty, $backend:ty) => {
        impl OnBackend for &mut $conn {
            type Backend = $backend;
        }

        impl<'c> Executor<'c> for &'c mut $conn {
            fn __session(self) -> BoxFuture<'c, Result<Session<'c, $backend>, sqlx::Error>> {
                borrowed(self)
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
    fn __session(self) -> BoxFuture<'c, Result<Session<'c, Postgres>, sqlx::Error>> {
        let session = self.0.__session();
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
}

/// What a statement's caller wants back.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Want {
    /// The first row, if any.
    Optional,
    /// Every row.
    All,
    /// How many rows were affected.
    Affected,
}

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

    fn all(self) -> Vec<B::Row> {
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
    fn new(conn: Conn<'c, B>, pgbouncer: bool) -> Self {
        Session { conn, pgbouncer }
    }

    /// A session on `conn` (e.g. a transaction the operation opened on another session).
    pub(crate) fn borrowing(conn: &'c mut B::Connection) -> Self {
        Session::new(Conn::Borrowed(conn), false)
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
        want: Want,
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
        want: Want,
    ) -> Result<Fetched<B>, Error> {
        let span = trace::statement(self.operation, self.tenant, self.table, sql);
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
        want: Want,
    ) -> Result<Fetched<E::Backend>, Error> {
        let span = trace::statement(self.operation, self.tenant, self.table, sql);
        trace::within(span, async {
            executor.__session().await?.run(sql, args, want).await
        })
        .await
        .map_err(|e| from_db::<E::Backend>(e, self.tenant, self.table))
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
