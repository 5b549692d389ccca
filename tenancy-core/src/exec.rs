//! Where an operation runs — the [`Executor`] trait: a pool, a connection, a transaction, a
//! tenant's own pool, or the lifecycle handle — and the one place that sends a generated
//! statement: inside its span, refused on an executor bound to another tenant, its errors
//! naming its tenant and table.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};

use crate::backend::{from_db, About, Backend, Each, Session, SharedPool};
use crate::error::Error;
use crate::statement::Statement;
use crate::tenant::Tenant;
use crate::tenant_pool::{TenantPool, TenantTransaction};
use crate::trace;

/// Anything a tenancy operation can run on: a `&Pool<B>` (`&PgPool`, `&MySqlPool`), a
/// connection (`&mut PgConnection`, `&mut MySqlConnection`, also `&mut *tx`),
/// `&mut PoolConnection<B>`, `&mut Transaction<'_, B>`, and for PostgreSQL any of these
/// wrapped in [`PgBouncer`](crate::postgres::PgBouncer); on every backend a tenant's own [`TenantPool`]
/// and [`TenantTransaction`], which serve that tenant only, and the [`Tenants`](crate::Tenants)
/// handle, which routes each statement to its tenant's pool. On SQLite (a file per tenant) a
/// plain SQLite pool is no executor: it does not know whose file it has open.
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

    /// The session at once if taking it waits for nothing (a connection the executor lends),
    /// without boxing a future for it; otherwise the executor back, for
    /// [`__session`](Self::__session).
    #[doc(hidden)]
    fn __ready(self) -> Result<Session<'c, Self::Backend>, Self> {
        Err(self)
    }
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

impl<'c, B: SharedPool> Executor<'c> for &Pool<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let acquire = self.acquire();
        Box::pin(async move { Ok(Session::owned(acquire.await?, None)) })
    }
}

impl<'c, B: SharedPool> Executor<'c> for &'c mut PoolConnection<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        borrowed(&mut **self, None)
    }

    fn __ready(self) -> Result<Session<'c, B>, Self> {
        Ok(Session::borrowing(&mut **self, None))
    }
}

impl<'c, B: SharedPool> Executor<'c> for &'c mut Transaction<'_, B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        borrowed(&mut **self, None)
    }

    fn __ready(self) -> Result<Session<'c, B>, Self> {
        Ok(Session::borrowing(&mut **self, None))
    }
}

impl<'c, B: Backend> Executor<'c> for &'c TenantPool<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let acquire = self.sqlx_pool().acquire();
        let (tenant, mode) = (self.tenant(), self.mode());
        Box::pin(async move {
            let conn = acquire.await?;
            Ok(Session::owned(conn, Some(Cow::Borrowed(tenant))).in_mode(mode))
        })
    }
}

impl<'c, B: Backend> Executor<'c> for &'c mut TenantTransaction<B> {
    fn __session(self, _tenant: Option<&Tenant>) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
        let (conn, tenant, mode) = self.parts();
        Box::pin(std::future::ready(Ok(Session::borrowing(
            conn,
            Some(Cow::Borrowed(tenant)),
        )
        .in_mode(mode))))
    }

    fn __ready(self) -> Result<Session<'c, B>, Self> {
        let (conn, tenant, mode) = self.parts();
        Ok(Session::borrowing(conn, Some(Cow::Borrowed(tenant))).in_mode(mode))
    }
}

/// A session on a connection the executor lends.
pub(crate) fn borrowed<'c, B: Backend>(
    conn: &'c mut B::Connection,
    bound: Option<Cow<'c, Tenant>>,
) -> BoxFuture<'c, Result<Session<'c, B>, Error>> {
    Box::pin(std::future::ready(Ok(Session::borrowing(conn, bound))))
}

/// `&mut` connections of a backend whose statements name their tenant (a blanket impl over
/// `B::Connection` cannot name its backend): each such backend's folder invokes it once.
macro_rules! connection_executor {
    ($conn:ty, $backend:ty) => {
        impl $crate::exec::OnBackend for &mut $conn {
            type Backend = $backend;
        }

        impl<'c> $crate::exec::Executor<'c> for &'c mut $conn {
            fn __session(
                self,
                _tenant: Option<&$crate::tenant::Tenant>,
            ) -> futures_util::future::BoxFuture<
                'c,
                Result<$crate::backend::Session<'c, $backend>, $crate::error::Error>,
            > {
                $crate::exec::borrowed(self, None)
            }

            fn __ready(self) -> Result<$crate::backend::Session<'c, $backend>, Self> {
                Ok($crate::backend::Session::borrowing(self, None))
            }
        }
    };
}
pub(crate) use connection_executor;

/// A session of `executor` for a statement about `about`'s tenant, checked to serve it.
pub(crate) async fn session<'c, E: Executor<'c>>(
    executor: E,
    about: About<'_>,
) -> Result<Session<'c, E::Backend>, Error> {
    let session = match executor.__ready() {
        Ok(session) => session,
        Err(executor) => executor
            .__session(Some(about.tenant))
            .await
            .map_err(|e| unknown_if_missing::<E::Backend>(e, about))?,
    };
    session.check(about.tenant, about.table)?;
    Ok(session)
}

/// An error taking a connection for `about`'s tenant: a database error there is read as one of
/// the statement's (e.g. a closed pool of a dropped SQLite tenant is an unknown tenant), and a
/// tenant the router found unregistered or without its file is an unknown tenant too, as a
/// statement naming a missing schema is on the other backends.
fn unknown_if_missing<B: Backend>(err: Error, about: About<'_>) -> Error {
    match err {
        Error::Database {
            tenant: None,
            source,
        } => from_db::<B>(source.into_sqlx(), about.tenant, about.table),
        Error::NotATenant { .. } | Error::ContainerMissing { .. } => Error::UnknownTenant {
            tenant: about.tenant.clone(),
            table: about.table,
            source: sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                err.to_string(),
            ))
            .into(),
        },
        other => other,
    }
}

/// Sending a generated statement on a session: refused on a session bound to another tenant,
/// inside the statement's span, its errors naming its tenant and table.
impl<B: Backend> Session<'_, B> {
    /// The span of `statement`, once the session is checked to serve `about`'s tenant.
    fn span(&self, about: About<'_>, statement: &Statement<'_, B>) -> Result<trace::Span, Error> {
        self.check(about.tenant, about.table)?;
        Ok(trace::statement::<B>(
            about.operation,
            about.tenant,
            about.table,
            statement.sql(),
        ))
    }

    /// Sends `statement` and returns its first row, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        about: About<'_>,
        statement: &Statement<'_, B>,
    ) -> Result<Option<B::Row>, Error> {
        let span = self.span(about, statement)?;
        trace::in_span!(span, B::fetch_optional(self, statement))
            .map_err(|e| from_db::<B>(e, about.tenant, about.table))
    }

    /// Sends `statement` and hands each row to `each` as it arrives; returns how many.
    pub(crate) async fn fetch_each(
        &mut self,
        about: About<'_>,
        statement: &Statement<'_, B>,
        each: Each<'_, B>,
    ) -> Result<u64, Error> {
        let span = self.span(about, statement)?;
        trace::in_span!(span, B::fetch_each(self, statement, each))
            .map_err(|e| from_db::<B>(e, about.tenant, about.table))
    }

    /// Sends `statement` and returns its rows.
    pub(crate) async fn fetch_all(
        &mut self,
        about: About<'_>,
        statement: &Statement<'_, B>,
    ) -> Result<Vec<B::Row>, Error> {
        let mut rows = Vec::new();
        self.fetch_each(about, statement, &mut |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        Ok(rows)
    }

    /// Sends `statement` and returns how many rows it affected.
    pub(crate) async fn execute(
        &mut self,
        about: About<'_>,
        statement: &Statement<'_, B>,
    ) -> Result<u64, Error> {
        let span = self.span(about, statement)?;
        trace::in_span!(span, B::execute(self, statement))
            .map_err(|e| from_db::<B>(e, about.tenant, about.table))
    }
}
