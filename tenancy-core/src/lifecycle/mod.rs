//! The tenant lifecycle: the handle [`Tenants`] (built from a pool and the tenant
//! migrations), the [`Lifecycle`] trait that names its operations for code generic over the
//! backend, and, in its submodules, the one algorithm of every operation
//! ([`operations`], cloning in [`copy`], export and import in [`portable`] over the format
//! of [`archive`]), runs across tenants ([`runs`]), the planning over migrations ([`plan`]),
//! what runs report ([`report`]) and the primitives each backend provides ([`store`]).
//!
//! Only containers created through [`Tenants`] count as tenants: they are recorded in a
//! registry (default `_tenancy`), so [`Tenants::list`] never returns unrelated schemas,
//! databases or files, and [`Tenants::drop`] refuses them.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::migrate::{Migration, Migrator};
use sqlx::{Pool, Postgres};

pub(crate) mod archive;
pub(crate) mod copy;
pub(crate) mod dropping;
pub(crate) mod fleet;
pub(crate) mod operations;
pub(crate) mod plan;
pub(crate) mod portable;
pub(crate) mod report;
pub(crate) mod row_level;
pub(crate) mod runs;
pub(crate) mod store;
pub(crate) mod tier;

use tokio::io::{AsyncBufRead, AsyncWrite};

use self::plan::Migrations;
use self::report::{
    DropOptions, Dropped, MigrateOptions, Moved, Outcome, Planned, RelocateOptions, Relocated,
    Report, TenantStatus,
};
use self::store::{Opening, Store};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::{InvalidTenantName, Tenant, TenantNamePolicy};
use crate::tenant_pool::TenantPool;

/// The default name of the registry schema (MySQL: database; SQLite: file `<name>.db`).
pub const DEFAULT_REGISTRY: &str = "_tenancy";

/// A change made through a [`Tenants`] handle, delivered to its subscribers after the change
/// committed (e.g. so a web layer's cache of known tenants stays current).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantEvent {
    /// The tenant was created (fully migrated), by `create` or as a clone.
    Created(Tenant),
    /// The tenant was dropped.
    Dropped(Tenant),
    /// The tenant was renamed.
    Renamed {
        /// Its old name.
        old: Tenant,
        /// Its new name.
        new: Tenant,
    },
    /// The tenant's rows moved to another container ([`Tenants::promote`],
    /// [`Tenants::demote`]): the tenant as placed now.
    Moved(Tenant),
}

type Subscriber = Arc<dyn Fn(&TenantEvent) + Send + Sync>;

/// The subscribers of a handle ([`Tenants`], [`Fleet`](fleet::Fleet)).
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<Vec<Subscriber>>);

impl Subscribers {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribers `all` (another handle's).
    pub(crate) fn of(all: Vec<Subscriber>) -> Self {
        Subscribers(Mutex::new(all))
    }

    /// Adds `f`.
    pub(crate) fn add(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        self.list().push(Arc::new(f));
    }

    /// Every subscriber now.
    pub(crate) fn all(&self) -> Vec<Subscriber> {
        self.list().clone()
    }

    /// Calls every subscriber with `event`.
    pub(crate) fn publish(&self, event: TenantEvent) {
        for subscriber in self.all() {
            subscriber(&event);
        }
    }
}

/// The tenant column [`Tenants::drop`] deletes a row-level tenant's rows by, unless the handle
/// names another ([`Tenants::with_tenant_column`]).
const DEFAULT_TENANT_COLUMN: &str = "tenant_id";

/// The settings of a handle's store on backend `B`.
pub(crate) type StoreSettings<B> = <<B as Backend>::Store as Store<B>>::Settings;

/// The lifecycle handle: creates, clones, drops, renames, lists and migrates tenants.
///
/// Built from a pool and a sqlx [`Migrator`] holding the tenant migrations (e.g.
/// `sqlx::migrate!("migrations/tenant")` or `Migrator::new(path)`). Cheap to clone.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), tenancy_core::Error> {
/// use tenancy_core::Tenants;
/// let migrator = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/tenant"))
///     .await
///     .map_err(sqlx::Error::from)?;
/// let tenants = Tenants::new(pool, migrator)?;
/// let acme = tenants.create("acme").await?; // CREATE SCHEMA "acme" + every migration, atomically
/// assert!(tenants.exists("acme").await?);
/// tenants.drop("acme").await?;
/// # Ok(()) }
/// ```
///
/// The handle's backend is its pool's: `Tenants<Postgres>` (the default) keeps each tenant in a
/// schema, `Tenants<MySql>` (feature `mysql`) in a database, `Tenants<Sqlite>` (feature
/// `sqlite`) in a file. Every backend has the same operations, written once over the backend's
/// store; [`Lifecycle`] names them for code generic over the backend.
pub struct Tenants<B: Backend = Postgres> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Tenants<B> {
    fn clone(&self) -> Self {
        Tenants {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<B: Backend> {
    store: B::Store,
    settings: Settings<B>,
    migrations: Migrations,
    registry: Tenant,
    policy: TenantNamePolicy,
    subscribers: Subscribers,
}

/// What a handle is built from; the `with_*` methods change one part and rebuild.
pub(crate) struct Settings<B: Backend> {
    pool: Pool<B>,
    migrations: Vec<Migration>,
    ignore_missing: bool,
    policy: TenantNamePolicy,
    registry: String,
    lock_timeout: Option<Duration>,
    /// The column a row-level tenant's rows are deleted by when it is dropped.
    tenant_column: String,
    /// The backend's own settings.
    pub(crate) store: StoreSettings<B>,
}

impl<B: Backend> Clone for Settings<B> {
    fn clone(&self) -> Self {
        Settings {
            pool: self.pool.clone(),
            migrations: self.migrations.clone(),
            ignore_missing: self.ignore_missing,
            policy: self.policy.clone(),
            registry: self.registry.clone(),
            lock_timeout: self.lock_timeout,
            tenant_column: self.tenant_column.clone(),
            store: self.store.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for Tenants<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("registry", &self.inner.registry)
            .field("migrations", &self.inner.migrations.len())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Tenants<B> {
    /// A handle on `pool` with the tenant migrations of `migrator`, the default naming policy
    /// and the default registry (schema, database or file `_tenancy`).
    ///
    /// Refuses migrations marked `-- no-transaction` with
    /// [`Error::NonTransactionalMigration`]: creation and migration are atomic only because every
    /// migration runs inside the tenant's transaction.
    pub fn new(pool: Pool<B>, migrator: Migrator) -> Result<Self, Error> {
        Self::build(
            Vec::new(),
            Settings {
                pool,
                migrations: migrator.migrations.to_vec(),
                ignore_missing: migrator.ignore_missing,
                policy: TenantNamePolicy::default(),
                registry: DEFAULT_REGISTRY.to_owned(),
                lock_timeout: None,
                tenant_column: DEFAULT_TENANT_COLUMN.to_owned(),
                store: StoreSettings::<B>::default(),
            },
        )
    }

    /// The same handle with another naming policy (e.g. with reserved names of your own).
    pub fn with_policy(self, policy: TenantNamePolicy) -> Self {
        self.rebuild(|s| s.policy = policy)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle with its registry in another schema (database, file); two handles with
    /// different registries see different sets of tenants. The name follows the tenant naming
    /// rule and is reserved, so no tenant can take it.
    pub fn with_registry(self, schema: &str) -> Result<Self, Error> {
        self.rebuild(|s| s.registry = schema.to_owned())
    }

    /// The same handle, giving up with [`Error::LockTimeout`] when a lifecycle operation
    /// (create, drop, rename, migrate, rollback) waits longer than `timeout` for a lock on the
    /// tenant, e.g. behind a long transaction reading the tenant's tables. By default they wait.
    pub fn with_lock_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|s| s.lock_timeout = Some(timeout))
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle with its settings changed by `change`, subscribers kept.
    pub(crate) fn rebuild(self, change: impl FnOnce(&mut Settings<B>)) -> Result<Self, Error> {
        let mut settings = self.inner.settings.clone();
        change(&mut settings);
        Self::build(self.subscribers(), settings)
    }

    fn build(subscribers: Vec<Subscriber>, mut settings: Settings<B>) -> Result<Self, Error> {
        let registry = Tenant::new(&settings.registry)?;
        // Kept in the settings: a rebuilt handle (another registry) still refuses this one's
        // registry name, which another handle on the same database may use.
        settings.policy = settings.policy.clone().reserve(registry.as_str());
        let policy = settings.policy.clone();
        let store = B::Store::open(Opening {
            pool: settings.pool.clone(),
            registry: &registry,
            lock_timeout: settings.lock_timeout,
            settings: &settings.store,
        })?;
        Ok(Tenants {
            inner: Arc::new(Inner {
                store,
                migrations: Migrations::new(settings.migrations.clone(), settings.ignore_missing)?,
                registry,
                policy,
                settings,
                subscribers: Subscribers::of(subscribers),
            }),
        })
    }

    /// Calls `f` after every create, drop and rename made through this handle (or its clones)
    /// has committed. Changes made by other processes are not seen; pair this with an expiry.
    pub fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        self.inner.subscribers.add(f)
    }

    fn subscribers(&self) -> Vec<Subscriber> {
        self.inner.subscribers.all()
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        self.inner.subscribers.publish(event)
    }

    /// The pool the handle runs on (SQLite: the registry's).
    pub fn pool(&self) -> &Pool<B> {
        self.store().pool()
    }

    /// `tenant`'s own executor: pass `&pool` to model operations of that tenant (a statement
    /// for another tenant is refused with [`Error::ExecutorMismatch`]). On PostgreSQL and
    /// MySQL it is the handle's pool with the tenant attached; on SQLite the pool of the
    /// tenant's file, opened on first use and kept in the handle's LRU
    /// ([`Error::NotATenant`] if it is not registered, [`Error::ContainerMissing`] if its file is
    /// gone). Code written against it reads the same on every backend. For a row-level tenant
    /// ([`Tenant::rows_in`]) it is its container's executor, serving that tenant's rows.
    pub async fn pool_for(&self, tenant: &Tenant) -> Result<TenantPool<B>, Error> {
        let container = self.parse(tenant.container())?;
        let pool = self.store().pool_for(&container).await?;
        let tenant = match tenant.is_row_level() {
            true => self.parse(tenant.as_str())?.rows_in(&container),
            false => container,
        };
        Ok(TenantPool::new(pool, tenant, B::mode_of(self.store())))
    }

    /// The column a row-level tenant's rows are deleted by when it is dropped.
    pub(crate) fn tenant_column(&self) -> &str {
        &self.inner.settings.tenant_column
    }

    /// The registry's name.
    pub fn registry(&self) -> &Tenant {
        &self.inner.registry
    }

    /// Validates `name` under this handle's policy (which also reserves the registry's name)
    /// and what the backend refuses beyond it.
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        let tenant = self.inner.policy.parse(name)?;
        if let Some(rule) = self.store().refuses(&tenant) {
            return Err(Error::InvalidTenantName(InvalidTenantName {
                name: tenant.as_str().to_owned(),
                rule,
            }));
        }
        Ok(tenant)
    }

    /// The tenant migrations.
    pub(crate) fn migrations(&self) -> &Migrations {
        &self.inner.migrations
    }

    /// The backend's tenant store.
    pub(crate) fn store(&self) -> &B::Store {
        &self.inner.store
    }
}

/// The lifecycle of tenants on one backend: what [`Tenants<Postgres>`](Tenants),
/// `Tenants<MySql>` and `Tenants<Sqlite>` all do. Each handle has these as inherent methods too
/// (with `impl AsRef<str>` names), so calling them needs no import; write `T: Lifecycle` to
/// accept a handle of any backend.
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
    fn drop_tenant(&self, name: &str) -> impl Future<Output = Result<Dropped, Error>> + Send;

    /// [`drop_tenant`](Self::drop_tenant), a row-level tenant's rows deleted a batch at a time
    /// and each batch told to `options.on_progress` (see [`Tenants::drop_with`]).
    fn drop_with(
        &self,
        name: &str,
        options: DropOptions,
    ) -> impl Future<Output = Result<Dropped, Error>> + Send;

    /// Registers row-level tenant `name` with its rows in tenant `container`'s tables (see
    /// [`Tenants::create_in`]).
    fn create_in(
        &self,
        name: &str,
        container: &str,
    ) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Renames tenant `old` to `new`, data and migration history included.
    fn rename(&self, old: &str, new: &str) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Gives row-level tenant `name` a container of its own with its rows (see
    /// [`Tenants::promote`]).
    fn promote(&self, name: &str) -> impl Future<Output = Result<Relocated, Error>> + Send;

    /// Moves tenant `name`'s rows into tenant `container`'s tables and drops its own container
    /// (see [`Tenants::demote`]).
    fn demote(
        &self,
        name: &str,
        container: &str,
    ) -> impl Future<Output = Result<Relocated, Error>> + Send;

    /// [`promote`](Self::promote), telling `options.on_progress` how it goes table by table
    /// (see [`Tenants::promote_with`]).
    fn promote_with(
        &self,
        name: &str,
        options: RelocateOptions,
    ) -> impl Future<Output = Result<Relocated, Error>> + Send;

    /// [`demote`](Self::demote), telling `options.on_progress` how it goes table by table
    /// (see [`Tenants::demote_with`]).
    fn demote_with(
        &self,
        name: &str,
        container: &str,
        options: RelocateOptions,
    ) -> impl Future<Output = Result<Relocated, Error>> + Send;

    /// Creates tenant `to` as a copy of tenant `from`, rows and migration history included
    /// (see [`Tenants::clone_tenant`]).
    fn clone_tenant(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Writes tenant `name` to `writer` as a tenant archive (see [`Tenants::export`]).
    fn export<W: AsyncWrite + Unpin + Send>(
        &self,
        name: &str,
        writer: W,
    ) -> impl Future<Output = Result<Moved, Error>> + Send;

    /// Creates tenant `name` from a tenant archive, all or nothing (see [`Tenants::import`]).
    fn import<R: AsyncBufRead + Unpin + Send>(
        &self,
        reader: R,
        name: &str,
    ) -> impl Future<Output = Result<Tenant, Error>> + Send;

    /// Whether `name` is a registered tenant.
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Every tenant, by name.
    fn list(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send;

    /// Tenant `name` as registered, placed where its rows are (see [`Tenants::tenant`]);
    /// [`Error::NotATenant`] if it is not one. By default: `name` if it
    /// [`exists`](Self::exists).
    fn tenant(&self, name: &str) -> impl Future<Output = Result<Tenant, Error>> + Send {
        async move {
            let tenant = self.parse(name)?;
            match self.exists(name).await? {
                true => Ok(tenant),
                false => Err(Error::NotATenant { tenant }),
            }
        }
    }

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

impl<B: Backend> Lifecycle for Tenants<B> {
    type Backend = B;

    fn parse(&self, name: &str) -> Result<Tenant, Error> {
        Tenants::parse(self, name)
    }

    fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        Tenants::subscribe(self, f)
    }

    fn pool_for(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<TenantPool<B>, Error>> + Send {
        Tenants::pool_for(self, tenant)
    }

    fn create(&self, name: &str) -> impl Future<Output = Result<Tenant, Error>> + Send {
        Tenants::create(self, name)
    }

    fn drop_tenant(&self, name: &str) -> impl Future<Output = Result<Dropped, Error>> + Send {
        Tenants::drop(self, name)
    }

    fn drop_with(
        &self,
        name: &str,
        options: DropOptions,
    ) -> impl Future<Output = Result<Dropped, Error>> + Send {
        Tenants::drop_with(self, name, options)
    }

    async fn create_in(&self, name: &str, container: &str) -> Result<Tenant, Error> {
        let container = self.parse(container)?;
        Tenants::create_in(self, name, &container).await
    }

    fn rename(&self, old: &str, new: &str) -> impl Future<Output = Result<Tenant, Error>> + Send {
        Tenants::rename(self, old, new)
    }

    fn promote(&self, name: &str) -> impl Future<Output = Result<Relocated, Error>> + Send {
        Tenants::promote(self, name)
    }

    async fn demote(&self, name: &str, container: &str) -> Result<Relocated, Error> {
        let container = self.parse(container)?;
        Tenants::demote(self, name, &container).await
    }

    fn promote_with(
        &self,
        name: &str,
        options: RelocateOptions,
    ) -> impl Future<Output = Result<Relocated, Error>> + Send {
        Tenants::promote_with(self, name, options)
    }

    async fn demote_with(
        &self,
        name: &str,
        container: &str,
        options: RelocateOptions,
    ) -> Result<Relocated, Error> {
        let container = self.parse(container)?;
        Tenants::demote_with(self, name, &container, options).await
    }

    fn clone_tenant(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Tenant, Error>> + Send {
        Tenants::clone_tenant(self, from, to)
    }

    fn export<W: AsyncWrite + Unpin + Send>(
        &self,
        name: &str,
        writer: W,
    ) -> impl Future<Output = Result<Moved, Error>> + Send {
        Tenants::export(self, name, writer)
    }

    fn import<R: AsyncBufRead + Unpin + Send>(
        &self,
        reader: R,
        name: &str,
    ) -> impl Future<Output = Result<Tenant, Error>> + Send {
        Tenants::import(self, reader, name)
    }

    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send {
        Tenants::exists(self, name)
    }

    fn list(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send {
        Tenants::list(self)
    }

    fn tenant(&self, name: &str) -> impl Future<Output = Result<Tenant, Error>> + Send {
        Tenants::tenant(self, name)
    }

    fn migrate(&self, name: &str) -> impl Future<Output = Result<Outcome, Error>> + Send {
        Tenants::migrate(self, name)
    }

    fn rollback(
        &self,
        name: &str,
        target: i64,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send {
        Tenants::rollback(self, name, target)
    }

    fn migrate_all(
        &self,
        options: MigrateOptions,
    ) -> impl Future<Output = Result<Report, Error>> + Send {
        Tenants::migrate_all(self, options)
    }

    fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> impl Future<Output = Result<Report, Error>> + Send {
        Tenants::rollback_all(self, target, options)
    }

    fn plan(&self) -> impl Future<Output = Result<Report<Planned>, Error>> + Send {
        Tenants::plan(self)
    }

    fn status(&self) -> impl Future<Output = Result<Vec<TenantStatus>, Error>> + Send {
        Tenants::status(self)
    }

    fn status_of(&self, name: &str) -> impl Future<Output = Result<TenantStatus, Error>> + Send {
        Tenants::status_of(self, name)
    }
}

impl<B: Backend> crate::exec::OnBackend for &Tenants<B> {
    type Backend = B;
}

/// The lifecycle handle routes: each operation runs on the pool that serves its tenant
/// ([`Tenants::pool_for`]), so `guard.insert(&tenants, &acme)` reads the same on every
/// backend. On SQLite that is the tenant's own file; elsewhere the shared pool.
impl<'c, B: Backend> crate::exec::Executor<'c> for &'c Tenants<B> {
    fn __session(
        self,
        tenant: Option<&Tenant>,
    ) -> futures_util::future::BoxFuture<'c, Result<crate::backend::Session<'c, B>, Error>> {
        let tenant = tenant.cloned();
        let mode = B::mode_of(self.store());
        Box::pin(async move {
            match tenant {
                Some(tenant) => {
                    let pool = self.store().pool_for(&tenant.container_tenant()).await?;
                    let conn = pool.acquire().await?;
                    Ok(
                        crate::backend::Session::owned(conn, Some(std::borrow::Cow::Owned(tenant)))
                            .in_mode(mode),
                    )
                }
                None if <B::Dialect as crate::statement::Dialect>::QUALIFIES => Ok(
                    crate::backend::Session::owned(self.pool().acquire().await?, None)
                        .in_mode(mode),
                ),
                None => Err(Error::Unsupported {
                    operation: "a statement on several tenants",
                    reason: format!(
                        "each tenant is its own {}; run one statement per tenant (e.g. with `Tenants::for_each`)",
                        B::CONTAINER
                    ),
                }),
            }
        })
    }
}
