//! [`Lifecycle`]: the operations of a [`Tenants`] handle that every backend has, for code
//! generic over the backend (a web layer, a command-line tool).

use std::future::Future;

use crate::backend::Backend;
use crate::error::Error;
use crate::lifecycle::{Dropped, TenantEvent, Tenants};
use crate::report::{MigrateOptions, Outcome, Planned, Report, TenantStatus};
use crate::tenant::Tenant;
use crate::tenant_pool::TenantPool;

/// The lifecycle of tenants on one backend: what [`Tenants<Postgres>`](Tenants),
/// `Tenants<MySql>` and `Tenants<Sqlite>` all do. Each handle has these as inherent methods too (with
/// `impl AsRef<str>` names), so calling them needs no import; write `T: Lifecycle` to accept a
/// handle of any backend.
///
/// ```no_run
/// # use tenancy_core::{Error, Lifecycle};
/// async fn onboard(tenants: &impl Lifecycle, name: &str) -> Result<(), Error> {
///     let tenant = tenants.create(name).await?;
///     assert!(tenants.exists(tenant.as_str()).await?);
///     Ok(())
/// }
/// ```
pub trait Lifecycle: Clone + Send + Sync + 'static {
    /// The database the tenants live in.
    type Backend: Backend;

    /// Validates `name` under the handle's naming policy.
    fn parse(&self, name: &str) -> Result<Tenant, Error>;

    /// Calls `f` after every create, drop and rename made through this handle.
    fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static);

    /// `tenant`'s own executor (see [`Tenants::pool_for`]).
    fn pool_for(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<TenantPool<Self::Backend>, Error>> + Send;

    /// Creates tenant `name` with every migration applied, or nothing.
    fn create(&self, name: &str) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Drops tenant `name` and everything in it, and unregisters it.
    fn drop(&self, name: &str) -> impl Future<Output = Result<Dropped, Error>> + Send;

    /// Renames tenant `old` to `new`, data and migration history included.
    fn rename(&self, old: &str, new: &str) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Whether `name` is a registered tenant.
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Every tenant, by name.
    fn list(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send;

    /// Applies the pending migrations of tenant `name`.
    fn migrate(&self, name: &str) -> impl Future<Output = Result<Outcome, Error>> + Send;

    /// Reverts every migration of tenant `name` above version `target`.
    fn rollback(
        &self,
        name: &str,
        target: i64,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send;

    /// Migrates every tenant that is behind.
    fn migrate_all(
        &self,
        options: MigrateOptions,
    ) -> impl Future<Output = Result<Report, Error>> + Send;

    /// Rolls every tenant back to `target`, continuing past a failing tenant.
    fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> impl Future<Output = Result<Report, Error>> + Send;

    /// What `migrate_all` would do to each tenant, changing nothing (a dry run).
    fn plan(&self) -> impl Future<Output = Result<Report<Planned>, Error>> + Send;

    /// Every tenant's applied and pending migrations.
    fn status(&self) -> impl Future<Output = Result<Vec<TenantStatus>, Error>> + Send;

    /// Tenant `name`'s applied and pending migrations.
    fn status_of(&self, name: &str) -> impl Future<Output = Result<TenantStatus, Error>> + Send;
}

/// Implements [`Lifecycle`] for `Tenants<$backend>` by its inherent methods.
macro_rules! lifecycle_by_inherent_methods {
    ($backend:ty) => {
        impl Lifecycle for Tenants<$backend> {
            type Backend = $backend;

            fn parse(&self, name: &str) -> Result<Tenant, Error> {
                Tenants::parse(self, name)
            }

            fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
                Tenants::subscribe(self, f)
            }

            fn pool_for(
                &self,
                tenant: &Tenant,
            ) -> impl Future<Output = Result<TenantPool<$backend>, Error>> + Send {
                Tenants::<$backend>::pool_for(self, tenant)
            }

            fn create(&self, name: &str) -> impl Future<Output = Result<Tenant, Error>> + Send {
                Tenants::<$backend>::create(self, name)
            }

            fn drop(&self, name: &str) -> impl Future<Output = Result<Dropped, Error>> + Send {
                Tenants::<$backend>::drop(self, name)
            }

            fn rename(
                &self,
                old: &str,
                new: &str,
            ) -> impl Future<Output = Result<Tenant, Error>> + Send {
                Tenants::<$backend>::rename(self, old, new)
            }

            fn exists(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send {
                Tenants::<$backend>::exists(self, name)
            }

            fn list(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send {
                Tenants::<$backend>::list(self)
            }

            fn migrate(&self, name: &str) -> impl Future<Output = Result<Outcome, Error>> + Send {
                Tenants::<$backend>::migrate(self, name)
            }

            fn rollback(
                &self,
                name: &str,
                target: i64,
            ) -> impl Future<Output = Result<Outcome, Error>> + Send {
                Tenants::<$backend>::rollback(self, name, target)
            }

            fn migrate_all(
                &self,
                options: MigrateOptions,
            ) -> impl Future<Output = Result<Report, Error>> + Send {
                Tenants::<$backend>::migrate_all(self, options)
            }

            fn rollback_all(
                &self,
                target: i64,
                options: MigrateOptions,
            ) -> impl Future<Output = Result<Report, Error>> + Send {
                Tenants::<$backend>::rollback_all(self, target, options)
            }

            fn plan(&self) -> impl Future<Output = Result<Report<Planned>, Error>> + Send {
                Tenants::<$backend>::plan(self)
            }

            fn status(&self) -> impl Future<Output = Result<Vec<TenantStatus>, Error>> + Send {
                Tenants::<$backend>::status(self)
            }

            fn status_of(
                &self,
                name: &str,
            ) -> impl Future<Output = Result<TenantStatus, Error>> + Send {
                Tenants::<$backend>::status_of(self, name)
            }
        }
    };
}

lifecycle_by_inherent_methods!(sqlx::Postgres);
#[cfg(feature = "mysql")]
lifecycle_by_inherent_methods!(sqlx::MySql);
#[cfg(feature = "sqlite")]
lifecycle_by_inherent_methods!(sqlx::Sqlite);
