//! [`Tenants<Sqlite>`](Tenants): the lifecycle handle on SQLite, a database file per tenant:
//! its own settings here, the lifecycle from the [store](super::store) through
//! [`TenantStore`] (the methods are written once, in `store.rs`).
//!
//! What differs from PostgreSQL:
//! - Each tenant has its own pool ([`Tenants::pool_for`]); a plain `SqlitePool` is no
//!   executor. The pools live in an LRU bounded by the handle's [`PoolBudget`].
//! - A statement across tenants (`query_across`) is refused: one file cannot name another's
//!   tables; run one query per tenant ([`Tenants::for_each`]).
//! - Migrations are recorded in each tenant's file, so `status` and `migrate_all` open every
//!   tenant's file (a few at a time) instead of reading one registry query.
//! - No create hook, no shared schemas, no PgBouncer mode.

use sqlx::{Sqlite, SqlitePool};

use super::{PoolBudget, SqliteStore};
use crate::error::Error;
use crate::lifecycle::{Dropped, Tenants};
use crate::plan::Migrations;
use crate::report::{Outcome, TenantStatus};
use crate::store::TenantStore;
use crate::tenant::Tenant;

/// How many tenants `migrate_all` and `rollback_all` migrate at once unless told otherwise.
const DEFAULT_CONCURRENCY: usize = 4;

impl Tenants<Sqlite> {
    /// The same handle with another budget of open pools and connections (see
    /// [`PoolBudget`]).
    pub fn with_pool_budget(self, budget: PoolBudget) -> Self {
        self.rebuild(|s| s.store = budget)
            .expect("the rest was checked when the handle was built")
    }

    /// The folder holding the tenant files.
    pub fn folder(&self) -> &std::path::Path {
        self.store().folder()
    }

    /// The handle's budget of open pools and connections.
    pub fn pool_budget(&self) -> &PoolBudget {
        self.store().budget()
    }

    /// How many tenant pools the handle keeps open now (at most
    /// [`PoolBudget::get_max_pools`]).
    pub fn open_pools(&self) -> usize {
        self.store().open_pools()
    }
}

/// The store keeps its own registry pool (the registry file of the handle's folder), so the
/// handle's pool is not needed here.
impl TenantStore<Sqlite> for SqliteStore {
    async fn create(&self, _: &SqlitePool, tenant: &Tenant, m: &Migrations) -> Result<(), Error> {
        SqliteStore::create(self, tenant, m).await
    }

    async fn drop(&self, _: &SqlitePool, tenant: &Tenant) -> Result<Dropped, Error> {
        SqliteStore::drop(self, tenant).await
    }

    async fn rename(&self, _: &SqlitePool, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        SqliteStore::rename(self, old, new).await
    }

    async fn exists(&self, _: &SqlitePool, tenant: &Tenant) -> Result<bool, Error> {
        SqliteStore::exists(self, tenant).await
    }

    async fn list(&self, _: &SqlitePool) -> Result<Vec<Tenant>, Error> {
        SqliteStore::list(self).await
    }

    async fn migrate(
        &self,
        _: &SqlitePool,
        tenant: &Tenant,
        m: &Migrations,
    ) -> Result<Outcome, Error> {
        SqliteStore::migrate(self, tenant, m).await
    }

    async fn rollback(
        &self,
        _: &SqlitePool,
        tenant: &Tenant,
        target: i64,
        m: &Migrations,
    ) -> Result<Outcome, Error> {
        SqliteStore::rollback(self, tenant, target, m).await
    }

    async fn status(&self, _: &SqlitePool, m: &Migrations) -> Result<Vec<TenantStatus>, Error> {
        SqliteStore::status(self, m).await
    }

    async fn status_of(
        &self,
        _: &SqlitePool,
        tenant: &Tenant,
        m: &Migrations,
    ) -> Result<TenantStatus, Error> {
        SqliteStore::status_of(self, tenant, m).await
    }

    fn default_concurrency(&self, _: &SqlitePool) -> usize {
        DEFAULT_CONCURRENCY
    }

    /// Migrations are recorded in each tenant's file.
    fn status_reads_every_tenant(&self) -> bool {
        true
    }
}
