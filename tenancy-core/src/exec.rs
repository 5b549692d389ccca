//! Where an operation runs: the [`Executor`] trait (a pool, a connection, a transaction, or any
//! of them behind [`PgBouncer`]), and the one place that sends a generated statement.
//!
//! Sending goes through here so that two things hold for every generated statement:
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
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres, Transaction};

use crate::error::{from_db, Error};
use crate::pg;
use crate::tenant::Tenant;
use crate::trace;

/// Anything a tenancy operation can run on: `&PgPool`, `&mut PgConnection` (also `&mut *tx`),
/// `&mut PoolConnection<Postgres>`, `&mut Transaction<'_, Postgres>`, and any of these wrapped
/// in [`PgBouncer`].
///
/// It is sealed in practice: its one method is not part of the public API.
pub trait Executor<'c>: Send + Sized {
    #[doc(hidden)]
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>>;
}

impl<'c> Executor<'c> for &PgPool {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>> {
        let acquire = self.acquire();
        Box::pin(async move { Ok(Session::new(Conn::Owned(acquire.await?), false)) })
    }
}

impl<'c> Executor<'c> for &'c mut PgConnection {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>> {
        Box::pin(std::future::ready(Ok(Session::new(
            Conn::Borrowed(self),
            false,
        ))))
    }
}

impl<'c> Executor<'c> for &'c mut PoolConnection<Postgres> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>> {
        (&mut **self).__session()
    }
}

impl<'c> Executor<'c> for &'c mut Transaction<'_, Postgres> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>> {
        (&mut **self).__session()
    }
}

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

impl<'c, E: Executor<'c>> Executor<'c> for PgBouncer<E> {
    fn __session(self) -> BoxFuture<'c, Result<Session<'c>, sqlx::Error>> {
        let session = self.0.__session();
        Box::pin(async move {
            let mut session = session.await?;
            session.pgbouncer = true;
            Ok(session)
        })
    }
}

enum Conn<'c> {
    Owned(PoolConnection<Postgres>),
    Borrowed(&'c mut PgConnection),
}

/// A connection taken from an [`Executor`] for one operation. Not part of the public API.
#[doc(hidden)]
pub struct Session<'c> {
    conn: Conn<'c>,
    pgbouncer: bool,
}

/// What a statement's caller wants back.
#[derive(Clone, Copy)]
pub(crate) enum Want {
    Optional,
    All,
    Affected,
}

pub(crate) enum Fetched {
    Optional(Option<PgRow>),
    All(Vec<PgRow>),
    Affected(u64),
}

/// What was fetched, as asked for with the matching [`Want`].
impl Fetched {
    fn optional(self) -> Option<PgRow> {
        match self {
            Fetched::Optional(row) => row,
            _ => unreachable!("asked for an optional row"),
        }
    }

    fn all(self) -> Vec<PgRow> {
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

impl<'c> Session<'c> {
    fn new(conn: Conn<'c>, pgbouncer: bool) -> Self {
        Session { conn, pgbouncer }
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match &mut self.conn {
            Conn::Owned(c) => c,
            Conn::Borrowed(c) => c,
        }
    }

    /// Sends `sql` with the arguments `args` builds (called again for a retry), as described
    /// in the [module docs](self).
    pub(crate) async fn run(
        &mut self,
        sql: &str,
        args: Args<'_>,
        want: Want,
    ) -> Result<Fetched, sqlx::Error> {
        let pgbouncer = self.pgbouncer;
        let conn = self.conn();
        if pgbouncer {
            if conn.is_in_transaction() {
                return once(conn, sql, args()?, false, want).await;
            }
            let mut tx = conn.begin().await?;
            return match once(&mut tx, sql, args()?, false, want).await {
                Ok(fetched) => {
                    tx.commit().await?;
                    Ok(fetched)
                }
                Err(err) => {
                    let _ = tx.rollback().await;
                    Err(err)
                }
            };
        }
        match once(conn, sql, args()?, true, want).await {
            Err(err) if pg::is_stale_plan(&err) => {
                conn.clear_cached_statements().await?;
                if conn.is_in_transaction() {
                    return Err(err);
                }
                once(conn, sql, args()?, true, want).await
            }
            other => other,
        }
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Args<'_>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        Ok(self.run(sql, args, Want::Optional).await?.optional())
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: Args<'_>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        Ok(self.run(sql, args, Want::All).await?.all())
    }

    pub(crate) async fn execute(&mut self, sql: &str, args: Args<'_>) -> Result<u64, sqlx::Error> {
        Ok(self.run(sql, args, Want::Affected).await?.affected())
    }
}

/// Arguments of a statement, built again if it is retried.
pub(crate) type Args<'a> = &'a (dyn Fn() -> Result<PgArguments, sqlx::Error> + Sync);

/// What a generated statement is about: its tenant and table name its errors and its span.
#[derive(Clone, Copy)]
pub(crate) struct On<'a> {
    /// `select`, `insert`, `update`, `delete` or `count`.
    pub(crate) operation: &'static str,
    pub(crate) tenant: &'a Tenant,
    pub(crate) table: &'static str,
}

impl On<'_> {
    /// Sends `sql` on `executor` inside the statement's span, naming the tenant in an error.
    async fn send<'c>(
        self,
        executor: impl Executor<'c>,
        sql: &str,
        args: Args<'_>,
        want: Want,
    ) -> Result<Fetched, Error> {
        let span = trace::statement(self.operation, self.tenant, self.table, sql);
        trace::within(span, async {
            executor.__session().await?.run(sql, args, want).await
        })
        .await
        .map_err(|e| from_db(e, self.tenant, self.table))
    }
}

/// Runs `sql` once on `executor` and returns its first row, if any.
pub(crate) async fn fetch_optional<'c>(
    executor: impl Executor<'c>,
    on: On<'_>,
    sql: &str,
    args: Args<'_>,
) -> Result<Option<PgRow>, Error> {
    Ok(on
        .send(executor, sql, args, Want::Optional)
        .await?
        .optional())
}

/// Runs `sql` once on `executor` and returns its rows.
pub(crate) async fn fetch_all<'c>(
    executor: impl Executor<'c>,
    on: On<'_>,
    sql: &str,
    args: Args<'_>,
) -> Result<Vec<PgRow>, Error> {
    Ok(on.send(executor, sql, args, Want::All).await?.all())
}

/// Runs `sql` once on `executor` and returns how many rows it affected.
pub(crate) async fn execute<'c>(
    executor: impl Executor<'c>,
    on: On<'_>,
    sql: &str,
    args: Args<'_>,
) -> Result<u64, Error> {
    Ok(on
        .send(executor, sql, args, Want::Affected)
        .await?
        .affected())
}

async fn once(
    conn: &mut PgConnection,
    sql: &str,
    args: PgArguments,
    persistent: bool,
    want: Want,
) -> Result<Fetched, sqlx::Error> {
    let query = sqlx::query_with(AssertSqlSafe(sql), args).persistent(persistent);
    Ok(match want {
        Want::Optional => Fetched::Optional(query.fetch_optional(conn).await?),
        Want::All => Fetched::All(query.fetch_all(conn).await?),
        Want::Affected => Fetched::Affected(query.execute(conn).await?.rows_affected()),
    })
}
