//! [`Tenants<Sqlite>`](Tenants): the lifecycle handle on SQLite, a database file per tenant,
//! on the [store](super::store).
//!
//! What differs from PostgreSQL:
//! - Each tenant has its own pool ([`Tenants::pool_for`]); a plain `SqlitePool` is no
//!   executor. The pools live in an LRU bounded by the handle's [`PoolBudget`].
//! - A statement across tenants (`query_across`) is refused: one file cannot name another's
//!   tables; run one query per tenant ([`Tenants::for_each`]).
//! - Migrations are recorded in each tenant's file, so `status` and `migrate_all` open every
//!   tenant's file (a few at a time) instead of reading one registry query.
//! - No create hook, no shared schemas, no PgBouncer mode.

use std::future::Future;

use sqlx::Sqlite;

use super::PoolBudget;
use crate::error::Error;
use crate::fan_out::run_report;
use crate::lifecycle::{Dropped, TenantEvent, Tenants};
use crate::report::{MigrateOptions, Outcome, Report, TenantResult, TenantStatus};
use crate::tenant::Tenant;
use crate::trace;

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

impl Tenants<Sqlite> {
    /// Creates tenant `name`: its file built with every migration applied under a temporary
    /// name, linked into place as `<folder>/<name>.db`, then registered, under the tenant's
    /// lock. If anything fails no file and no registry row is left. [`Error::TenantExists`] if
    /// it is registered, [`Error::SchemaExists`] if a file of that name exists but is no
    /// tenant.
    pub async fn create(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle("create", &tenant);
        trace::within(span, self.store().create(&tenant, self.migrations())).await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// Drops tenant `name`: closes its pool (waiting for connections in use), removes its file
    /// with its `-wal` and `-shm`, and unregisters it ([`Dropped::Unregistered`] if the file
    /// was already gone). [`Error::NotATenant`] if it is not registered. A pool of the tenant
    /// still held by a caller fails with [`Error::UnknownTenant`] from then on.
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle("drop", &tenant);
        let dropped = trace::within(span, self.store().drop(&tenant)).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    /// Renames tenant `old` to `new`: closes `old`'s pool, checkpoints its WAL, links the file
    /// under the new name, renames the registry row and removes the old name.
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let old = self.parse(old)?;
        let new = self.parse(new)?;
        let span = trace::lifecycle("rename", &old);
        trace::within(span, self.store().rename(&old, &new)).await?;
        self.publish(TenantEvent::Renamed {
            old,
            new: new.clone(),
        });
        Ok(new)
    }

    /// Whether `name` is a registered tenant.
    pub async fn exists(&self, name: impl AsRef<str>) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        self.store().exists(&tenant).await
    }

    /// Every tenant, by name.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.store().list().await
    }

    /// Applies the pending migrations of tenant `name` in one transaction holding the file's
    /// write lock, each recorded in the file: all of them or none. [`Error::NotATenant`],
    /// [`Error::SchemaMissing`] (its file is gone), [`Error::Migration`],
    /// [`Error::LockTimeout`] (another connection held the file's write lock too long).
    pub async fn migrate(&self, name: impl AsRef<str>) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration("migrate", &tenant, None);
        trace::within(span, self.store().migrate(&tenant, self.migrations())).await
    }

    /// Reverts every migration of tenant `name` above version `target` with its down
    /// migration, newest first. [`Error::Irreversible`] if one has none.
    pub async fn rollback(&self, name: impl AsRef<str>, target: i64) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration("rollback", &tenant, Some(target));
        trace::within(
            span,
            self.store().rollback(&tenant, target, self.migrations()),
        )
        .await
    }

    /// Migrates every tenant that is behind (found with one query over the registry), up to
    /// `options.concurrency` at once; a failing tenant does not stop the others.
    pub async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        let has_work = |s: &TenantStatus| !s.pending.is_empty() || !s.changed.is_empty();
        self.run_all(has_work, options, |this, tenant| async move {
            this.migrate(tenant.as_str()).await
        })
        .await
    }

    /// Rolls every tenant back to `target` (see [`rollback`](Self::rollback)), like
    /// [`migrate_all`](Self::migrate_all): tenants with a migration above `target` (found with
    /// one query over the registry), up to `options.concurrency` at once.
    pub async fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let above = |versions: &[i64]| versions.iter().any(|v| *v > target);
        let has_work = |s: &TenantStatus| above(&s.applied);
        self.run_all(has_work, options, move |this, tenant| async move {
            this.rollback(tenant.as_str(), target).await
        })
        .await
    }

    /// Runs `op` on every tenant whose status `has_work`, in tasks of their own, up to
    /// `options.concurrency` at once; the others are reported up to date.
    async fn run_all<Fut>(
        &self,
        has_work: impl Fn(&TenantStatus) -> bool,
        options: MigrateOptions,
        op: impl Fn(Self, Tenant) -> Fut,
    ) -> Result<Report, Error>
    where
        Fut: Future<Output = Result<Outcome, Error>> + Send + 'static,
    {
        let statuses = self.store().status(self.migrations()).await?;
        let mut tenants = Vec::with_capacity(statuses.len());
        let mut work = Vec::new();
        for (index, status) in statuses.into_iter().enumerate() {
            if has_work(&status) {
                work.push((index, status.tenant.clone(), ()));
            }
            tenants.push(TenantResult {
                tenant: status.tenant,
                result: Ok(Outcome::UpToDate),
            });
        }
        let concurrency = options.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        let progress = options.on_progress.as_ref();
        let run = |tenant, ()| op(self.clone(), tenant);
        Ok(run_report(tenants, work, concurrency, progress, run).await)
    }

    /// Every tenant's applied and pending migrations, read from each tenant's file.
    pub async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        self.store().status(self.migrations()).await
    }

    /// Tenant `name`'s applied and pending migrations. [`Error::NotATenant`] if it is not
    /// registered.
    pub async fn status_of(&self, name: impl AsRef<str>) -> Result<TenantStatus, Error> {
        let tenant = self.parse(name)?;
        self.store().status_of(&tenant, self.migrations()).await
    }
}
