//! [`Tenants<MySql>`](crate::Tenants): the lifecycle on MySQL / MariaDB, a database per tenant,
//! is the [store](super::store)'s, through [`TenantStore`] (the methods are written once, in
//! `store.rs`).
//!
//! What differs from PostgreSQL, and what it returns instead:
//! - DDL commits implicitly, so `create` compensates (drops the database and unregisters)
//!   when a migration fails, and a migration that stopped part-way is reported as
//!   [`Error::Dirty`](crate::Error::Dirty), never re-run.
//! - `rename` moves the tables with one `RENAME TABLE`; a database holding views, triggers,
//!   routines or events is refused with [`Error::Unsupported`](crate::Error::Unsupported)
//!   before anything changes.
//! - No create hook, no shared schemas, no PgBouncer mode, and no record of the last
//!   `migrate_all` run in the registry (PostgreSQL only).

use sqlx::{MySql, MySqlPool};

use super::MySqlStore;
use crate::error::Error;
use crate::lifecycle::Dropped;
use crate::plan::Migrations;
use crate::report::{Outcome, TenantStatus};
use crate::store::TenantStore;
use crate::tenant::Tenant;

impl TenantStore<MySql> for MySqlStore {
    async fn create(&self, pool: &MySqlPool, tenant: &Tenant, m: &Migrations) -> Result<(), Error> {
        MySqlStore::create(self, pool, tenant, m).await
    }

    async fn drop(&self, pool: &MySqlPool, tenant: &Tenant) -> Result<Dropped, Error> {
        MySqlStore::drop(self, pool, tenant).await
    }

    async fn rename(&self, pool: &MySqlPool, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        MySqlStore::rename(self, pool, old, new).await
    }

    async fn exists(&self, pool: &MySqlPool, tenant: &Tenant) -> Result<bool, Error> {
        MySqlStore::exists(self, pool, tenant).await
    }

    async fn list(&self, pool: &MySqlPool) -> Result<Vec<Tenant>, Error> {
        MySqlStore::list(self, pool).await
    }

    async fn migrate(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        m: &Migrations,
    ) -> Result<Outcome, Error> {
        MySqlStore::migrate(self, pool, tenant, m).await
    }

    async fn rollback(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        target: i64,
        m: &Migrations,
    ) -> Result<Outcome, Error> {
        MySqlStore::rollback(self, pool, tenant, target, m).await
    }

    async fn status(&self, pool: &MySqlPool, m: &Migrations) -> Result<Vec<TenantStatus>, Error> {
        MySqlStore::status(self, pool, m).await
    }

    async fn status_of(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        m: &Migrations,
    ) -> Result<TenantStatus, Error> {
        MySqlStore::status_of(self, pool, tenant, m).await
    }

    /// As many as the pool has connections.
    fn default_concurrency(&self, pool: &MySqlPool) -> usize {
        pool.options().get_max_connections() as usize
    }

    /// One registry query.
    fn status_reads_every_tenant(&self) -> bool {
        false
    }
}
