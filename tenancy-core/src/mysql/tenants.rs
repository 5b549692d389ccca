//! [`Tenants<MySql>`](Tenants): the lifecycle handle on MySQL / MariaDB, a database per tenant,
//! on the [store](super::store).
//!
//! What differs from PostgreSQL, and what it returns instead:
//! - DDL commits implicitly, so `create` compensates (drops the database and unregisters)
//!   when a migration fails, and a migration that stopped part-way is reported as
//!   [`Error::Dirty`], never re-run.
//! - `rename` moves the tables with one `RENAME TABLE`; a database holding views, triggers,
//!   routines or events is refused with [`Error::Unsupported`] before anything changes.
//! - No create hook, no shared schemas, no PgBouncer mode, no `rollback_all`, and no record of
//!   the last `migrate_all` run in the registry (PostgreSQL only).

use std::future::Future;

use sqlx::MySql;

use crate::error::Error;
use crate::fan_out::run_report;
use crate::lifecycle::{Dropped, TenantEvent, Tenants};
use crate::report::{MigrateOptions, Outcome, Report, TenantResult, TenantStatus};
use crate::tenant::Tenant;
use crate::trace;

impl Tenants<MySql> {
    /// Creates tenant `name`: `CREATE DATABASE`, registers it and applies every migration with
    /// the tenant as the default database, under the tenant's lock. If anything fails the
    /// database is dropped and the tenant unregistered before the error is returned.
    /// [`Error::TenantExists`] if it is registered, [`Error::SchemaExists`] if a database of
    /// that name exists but is no tenant.
    pub async fn create(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle("create", &tenant);
        trace::within(
            span,
            self.store().create(self.pool(), &tenant, self.migrations()),
        )
        .await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// Drops tenant `name`'s database and unregisters it ([`Dropped::Unregistered`] if the
    /// database was already gone). [`Error::NotATenant`] if it is not registered.
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle("drop", &tenant);
        let dropped = trace::within(span, self.store().drop(self.pool(), &tenant)).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    /// Renames tenant `old` to `new`: a new database, every table moved into it with one
    /// `RENAME TABLE`, the registry rows moved, the old database dropped. Refuses a tenant
    /// whose database holds views, triggers, routines or events ([`Error::Unsupported`]).
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let old = self.parse(old)?;
        let new = self.parse(new)?;
        let span = trace::lifecycle("rename", &old);
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

    /// Applies the pending migrations of tenant `name` under its lock, recording each one's
    /// success. [`Error::NotATenant`], [`Error::SchemaMissing`] (its database is gone),
    /// [`Error::Dirty`] (a migration stopped part-way earlier), [`Error::Migration`].
    pub async fn migrate(&self, name: impl AsRef<str>) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration("migrate", &tenant, None);
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
        let span = trace::migration("rollback", &tenant, Some(target));
        trace::within(
            span,
            self.store()
                .rollback(self.pool(), &tenant, target, self.migrations()),
        )
        .await
    }

    /// Migrates every tenant that is behind (found with one query over the registry), up to
    /// `options.concurrency` at once; a failing tenant does not stop the others.
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
    /// [`migrate_all`](Self::migrate_all): tenants with a migration above `target` (found with
    /// one query over the registry), up to `options.concurrency` at once.
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
        let statuses = self.store().status(self.pool(), self.migrations()).await?;
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
        let concurrency = options
            .concurrency
            .unwrap_or_else(|| self.pool().options().get_max_connections() as usize);
        let progress = options.on_progress.as_ref();
        let run = |tenant, ()| op(self.clone(), tenant);
        Ok(run_report(tenants, work, concurrency, progress, run).await)
    }

    /// Every tenant's applied and pending migrations, from one query.
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
