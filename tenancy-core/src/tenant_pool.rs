//! [`TenantPool`]: one tenant's executor, the same on every backend.
//!
//! On PostgreSQL and MySQL a pool serves every tenant (statements name the tenant's schema or
//! database), so a `TenantPool` is that pool with the tenant attached. On SQLite each tenant is
//! its own file with its own small pool, and a `TenantPool` is the only way in. Either way the
//! executor belongs to its tenant: a statement for another tenant is refused with
//! [`Error::ExecutorMismatch`] before anything is sent.

use std::ops::{Deref, DerefMut};

use sqlx::{Pool, Transaction};

use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;

/// One tenant's executor: pass `&pool` to a model operation of that tenant, or open a
/// transaction with [`begin`](Self::begin). Get one with
/// [`Tenants::pool_for`](crate::Tenants::pool_for); cheap to clone.
///
/// ```no_run
/// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
/// let acme = tenants.parse("acme")?;
/// let db = tenants.pool_for(&acme).await?;
/// // Guard::find(&db, &acme, 1).await?;
/// let mut tx = db.begin().await?;
/// // guard.insert(&mut tx, &acme).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
///
/// It sends its statements the way its handle does: from a handle behind PgBouncer
/// ([`PoolSettings::connect_tenants`](crate::postgres::PoolSettings::connect_tenants) with
/// `?pgbouncer=true`, or [`Tenants::behind_pgbouncer`](crate::Tenants::behind_pgbouncer)), every
/// statement through it and its transactions is one PgBouncer can serve.
pub struct TenantPool<B: Backend> {
    pool: Pool<B>,
    tenant: Tenant,
    mode: B::Mode,
}

debug_fields!(TenantPool<B: Backend> { pool, tenant, .. });

impl<B: Backend> Clone for TenantPool<B> {
    fn clone(&self) -> Self {
        TenantPool {
            pool: self.pool.clone(),
            tenant: self.tenant.clone(),
            mode: self.mode,
        }
    }
}

impl<B: Backend> TenantPool<B> {
    /// `pool`, serving `tenant` only, sending in `mode`.
    pub(crate) fn new(pool: Pool<B>, tenant: Tenant, mode: B::Mode) -> Self {
        TenantPool { pool, tenant, mode }
    }

    /// How its statements are sent.
    pub(crate) fn mode(&self) -> B::Mode {
        self.mode
    }

    /// The tenant this pool serves.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The sqlx pool underneath, for SQL of your own. On SQLite it has the tenant's file open
    /// (tables are `main.<table>`); on PostgreSQL and MySQL it serves every tenant, so qualify
    /// your tables with the tenant yourself.
    pub fn sqlx_pool(&self) -> &Pool<B> {
        &self.pool
    }

    /// Begins a transaction on one of the pool's connections; it serves this tenant only and
    /// rolls back if dropped without [`commit`](TenantTransaction::commit).
    pub async fn begin(&self) -> Result<TenantTransaction<B>, Error> {
        let tx = self.pool.begin().await.map_err(|e| Error::Database {
            tenant: Some(self.tenant.clone()),
            source: e.into(),
        })?;
        Ok(TenantTransaction {
            tx,
            tenant: self.tenant.clone(),
            mode: self.mode,
        })
    }
}

/// A transaction of a [`TenantPool`]: an executor for its tenant only (`&mut tx`). It
/// dereferences to the connection for SQL of your own.
pub struct TenantTransaction<B: Backend> {
    tx: Transaction<'static, B>,
    tenant: Tenant,
    mode: B::Mode,
}

debug_fields!(TenantTransaction<B: Backend> { tx, tenant, .. });

impl<B: Backend> TenantTransaction<B> {
    /// The tenant this transaction serves.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), Error> {
        let tenant = self.tenant;
        self.tx.commit().await.map_err(|e| Error::Database {
            tenant: Some(tenant),
            source: e.into(),
        })
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), Error> {
        let tenant = self.tenant;
        self.tx.rollback().await.map_err(|e| Error::Database {
            tenant: Some(tenant),
            source: e.into(),
        })
    }

    /// The connection, the tenant and the mode, borrowed together.
    pub(crate) fn parts(&mut self) -> (&mut B::Connection, &Tenant, B::Mode) {
        (&mut self.tx, &self.tenant, self.mode)
    }
}

impl<B: Backend> Deref for TenantTransaction<B> {
    type Target = B::Connection;

    fn deref(&self) -> &B::Connection {
        &self.tx
    }
}

impl<B: Backend> DerefMut for TenantTransaction<B> {
    fn deref_mut(&mut self) -> &mut B::Connection {
        &mut self.tx
    }
}
