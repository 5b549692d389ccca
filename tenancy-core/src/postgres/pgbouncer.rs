//! [`PgBouncer`]: an executor whose statements PgBouncer in transaction mode can serve.

use futures_util::future::BoxFuture;
use sqlx::Postgres;

use crate::backend::Session;
use crate::error::Error;
use crate::exec::{Executor, OnBackend};
use crate::tenant::Tenant;

/// Runs the wrapped executor's statements the way PgBouncer in transaction mode can serve
/// them: unnamed (never cached) prepared statements, each inside a transaction (the caller's,
/// or one of its own), so no statement can meet another client's on a shared server
/// connection. Build the pool with a statement cache of 0 (see
/// [`PoolSettings::pgbouncer`](crate::postgres::PoolSettings::pgbouncer)).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool, tenant: tenancy_core::Tenant) -> Result<(), tenancy_core::Error> {
/// # #[derive(Debug)] struct Guard;
/// use tenancy_core::postgres::PgBouncer;
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

impl<E: OnBackend> OnBackend for PgBouncer<E> {
    type Backend = E::Backend;
}

impl<'c, E: Executor<'c, Backend = Postgres>> Executor<'c> for PgBouncer<E> {
    fn __session(
        self,
        tenant: Option<&Tenant>,
    ) -> BoxFuture<'c, Result<Session<'c, Postgres>, Error>> {
        let session = self.0.__session(tenant);
        Box::pin(async move {
            let mut session = session.await?;
            session.mode.pgbouncer = true;
            Ok(session)
        })
    }

    fn __ready(self) -> Result<Session<'c, Postgres>, Self> {
        let mut session = self.0.__ready().map_err(PgBouncer)?;
        session.mode.pgbouncer = true;
        Ok(session)
    }
}
