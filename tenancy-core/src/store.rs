//! The lifecycle of the backends whose operations live in a tenant store (MySQL, SQLite):
//! [`TenantStore`] names what a store does, and `Tenants<B>` gets its lifecycle methods from
//! it, written once. PostgreSQL's lifecycle is its own (`pg/lifecycle.rs`, `pg/migrate.rs`).

use std::future::Future;

use sqlx::Pool;

use crate::backend::Backend;
use crate::error::Error;
use crate::fan_out::run_report;
use crate::lifecycle::{Dropped, TenantEvent, Tenants};
use crate::plan::Migrations;
use crate::report::{MigrateOptions, Outcome, Report, TenantResult, TenantStatus};
use crate::tenant::Tenant;
use crate::trace;

/// The lifecycle operations of a backend's tenant store, each on the handle's pool. Every one
/// takes the tenant's lock and leaves nothing half-done (see each store). Public only because
/// it bounds public methods; it lives in a private module, so nothing outside can name it.
#[doc(hidden)]
pub trait TenantStore<B: Backend>: Send + Sync {
    /// Creates `tenant` with every migration applied, or nothing.
    fn create(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops `tenant` and unregisters it.
    fn drop(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Dropped, Error>> + Send;

    /// Renames `old` to `new`.
    fn rename(
        &self,
        pool: &Pool<B>,
        old: &Tenant,
        new: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether `tenant` is registered.
    fn exists(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Every registered tenant, by name.
    fn list(&self, pool: &Pool<B>) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send;

    /// Applies `tenant`'s pending migrations.
    fn migrate(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send;

    /// Reverts every migration of `tenant` above `target`.
    fn rollback(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
        target: i64,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send;

    /// Every tenant's status.
    fn status(
        &self,
        pool: &Pool<B>,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<Vec<TenantStatus>, Error>> + Send;

    /// One tenant's status ([`Error::NotATenant`] if it is not registered).
    fn status_of(
        &self,
        pool: &Pool<B>,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<TenantStatus, Error>> + Send;

    /// How many tenants `migrate_all` and `rollback_all` run at once unless told otherwise.
    fn default_concurrency(&self, pool: &Pool<B>) -> usize;

    /// Whether [`status`](Self::status) reads each tenant's own container (SQLite: its file)
    /// rather than one registry query; `migrate_all` then runs on every tenant without reading
    /// the statuses first.
    fn status_reads_every_tenant(&self) -> bool;
}

impl<B: Backend> Tenants<B>
where
    B::Store: TenantStore<B>,
{
    /// Creates tenant `name` with every migration applied, under the tenant's lock, or leaves
    /// nothing: MySQL creates the database, registers it and migrates it, dropping and
    /// unregistering it again on any failure; SQLite builds the migrated file under a temporary
    /// name, links it into place as `<folder>/<name>.db` and registers it.
    /// [`Error::TenantExists`] if it is registered, [`Error::SchemaExists`] if a database (file)
    /// of that name exists but is no tenant.
    pub async fn create(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle::<B>("create", &tenant);
        trace::within(
            span,
            self.store().create(self.pool(), &tenant, self.migrations()),
        )
        .await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// Drops tenant `name`'s database (SQLite: closes its pool, waiting for connections in use,
    /// and removes its file with `-wal` and `-shm`) and unregisters it
    /// ([`Dropped::Unregistered`] if it was already gone). [`Error::NotATenant`] if it is not
    /// registered.
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle::<B>("drop", &tenant);
        let dropped = trace::within(span, self.store().drop(self.pool(), &tenant)).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    /// Renames tenant `old` to `new`, data and migration history included. MySQL: a new
    /// database, every table moved into it with one `RENAME TABLE`, the registry rows moved, the
    /// old database dropped; a database holding views, triggers, routines or events is refused
    /// ([`Error::Unsupported`]). SQLite: `old`'s pool closed, its WAL checkpointed, the file
    /// linked under the new name, the registry row renamed, the old name removed.
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let old = self.parse(old)?;
        let new = self.parse(new)?;
        let span = trace::lifecycle::<B>("rename", &old);
        trace::within(span, self.store().rename(self.pool(), &old, &new)).await?;
        self.publish(TenantEvent::Renamed {
            old,
            new: new.clone(),
        });
        Ok(new)
    }

    /// Whether `name` is a registered tenant.
    pub async fn exists(&self, name: impl AsRef<str>) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        self.store().exists(self.pool(), &tenant).await
    }

    /// Every tenant, by name.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.store().list(self.pool()).await
    }

    /// Applies the pending migrations of tenant `name` under its lock. MySQL records each
    /// one's success ([`Error::Dirty`]: one stopped part-way earlier); SQLite applies them all
    /// in one transaction holding the file's write lock, recorded in the file.
    /// [`Error::NotATenant`], [`Error::SchemaMissing`] (its database or file is gone),
    /// [`Error::Migration`], [`Error::LockTimeout`].
    pub async fn migrate(&self, name: impl AsRef<str>) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration::<B>("migrate", &tenant, None);
        trace::within(
            span,
            self.store()
                .migrate(self.pool(), &tenant, self.migrations()),
        )
        .await
    }

    /// Reverts every migration of tenant `name` above version `target` with its down
    /// migration, newest first. [`Error::Irreversible`] if one has none.
    pub async fn rollback(&self, name: impl AsRef<str>, target: i64) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration::<B>("rollback", &tenant, Some(target));
        trace::within(
            span,
            self.store()
                .rollback(self.pool(), &tenant, target, self.migrations()),
        )
        .await
    }

    /// Migrates every tenant that is behind, up to `options.concurrency` at once; a failing
    /// tenant does not stop the others. MySQL finds who is behind with one query over the
    /// registry; SQLite, whose records are in each tenant's file, runs `migrate` on every tenant
    /// (opening each file once: a tenant with nothing pending is reported up to date).
    pub async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        // A dirty tenant is run too, so the report names it (`Error::Dirty`).
        let has_work = |s: &TenantStatus| {
            !s.pending.is_empty() || !s.changed.is_empty() || !s.dirty.is_empty()
        };
        self.run_all(has_work, options, |this, tenant| async move {
            this.migrate(tenant.as_str()).await
        })
        .await
    }

    /// Rolls every tenant back to `target` (see [`rollback`](Self::rollback)), like
    /// [`migrate_all`](Self::migrate_all): tenants with a migration above `target`, up to
    /// `options.concurrency` at once.
    pub async fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let above = |versions: &[i64]| versions.iter().any(|v| *v > target);
        let has_work = |s: &TenantStatus| above(&s.applied) || above(&s.dirty);
        self.run_all(has_work, options, move |this, tenant| async move {
            this.rollback(tenant.as_str(), target).await
        })
        .await
    }

    /// Runs `op` on every tenant whose status `has_work` (on every tenant where reading the
    /// statuses would cost as much as running `op`), in tasks of their own, up to
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
        let mut tenants = Vec::new();
        let mut work = Vec::new();
        if self.store().status_reads_every_tenant() {
            // Reading every tenant's status costs what running the operation on it costs (which
            // reads the same under the tenant's lock and returns `UpToDate` if nothing is to
            // do): run it on every tenant instead of reading each one twice.
            for (index, tenant) in self
                .store()
                .list(self.pool())
                .await?
                .into_iter()
                .enumerate()
            {
                work.push((index, tenant.clone(), ()));
                tenants.push(TenantResult {
                    tenant,
                    result: Ok(Outcome::UpToDate),
                });
            }
        } else {
            let statuses = self.store().status(self.pool(), self.migrations()).await?;
            for (index, status) in statuses.into_iter().enumerate() {
                if has_work(&status) {
                    work.push((index, status.tenant.clone(), ()));
                }
                tenants.push(TenantResult {
                    tenant: status.tenant,
                    result: Ok(Outcome::UpToDate),
                });
            }
        }
        let concurrency = options
            .concurrency
            .unwrap_or_else(|| self.store().default_concurrency(self.pool()));
        let progress = options.on_progress.as_ref();
        let run = |tenant, ()| op(self.clone(), tenant);
        Ok(run_report(tenants, work, concurrency, progress, run).await)
    }

    /// Every tenant's applied and pending migrations (MySQL: from one registry query;
    /// SQLite: read from each tenant's file, a few at a time).
    pub async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        self.store().status(self.pool(), self.migrations()).await
    }

    /// Tenant `name`'s applied and pending migrations. [`Error::NotATenant`] if it is not
    /// registered.
    pub async fn status_of(&self, name: impl AsRef<str>) -> Result<TenantStatus, Error> {
        let tenant = self.parse(name)?;
        self.store()
            .status_of(self.pool(), &tenant, self.migrations())
            .await
    }
}
