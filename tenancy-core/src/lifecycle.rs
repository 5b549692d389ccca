//! The lifecycle handle, [`Tenants`], whatever its backend: how it is built and configured, its
//! subscribers, and what every backend's operations share. The operations themselves are the
//! backend's (`pg/lifecycle.rs`, `pg/migrate.rs`, `mysql/tenants.rs`).
//!
//! Only containers created through [`Tenants`] count as tenants: they are recorded in a
//! registry (default `_tenancy`), so [`Tenants::list`] never returns unrelated schemas or
//! databases and [`Tenants::drop`] refuses them.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::migrate::{Migration, Migrator};
use sqlx::{Pool, Postgres};

use crate::backend::Backend;
use crate::error::Error;
use crate::pg::citus::Flavour;
use crate::pg::sql::BatchOptions;
use crate::plan::Migrations;
use crate::tenant::{Tenant, TenantNamePolicy};
use crate::tenant_pool::TenantPool;

/// The default name of the registry schema.
pub const DEFAULT_REGISTRY: &str = "_tenancy";

/// What [`Tenants::drop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// The tenant's schema and everything in it were dropped, and the tenant unregistered.
    Schema,
    /// The tenant's schema was already gone (dropped outside tenancy); the tenant was
    /// unregistered.
    Unregistered,
}

/// A change made through a [`Tenants`] handle, delivered to its subscribers after the change
/// committed (e.g. so a web layer's cache of known tenants stays current).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantEvent {
    /// The tenant was created (fully migrated).
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
}

type Subscriber = Arc<dyn Fn(&TenantEvent) + Send + Sync>;

/// The lifecycle handle: creates, drops, renames, lists and migrates tenants.
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
/// schema, `Tenants<MySql>` (feature `mysql`) in a database. Both have the same operations;
/// [`Lifecycle`](crate::Lifecycle) names them for code generic over the backend.
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
    pool: Pool<B>,
    // Read by the MySQL and SQLite lifecycles only.
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    store: B::Store,
    store_settings: B::StoreSettings,
    migrations: Migrations,
    registry: Tenant,
    policy: TenantNamePolicy,
    batch: BatchOptions,
    pgbouncer: bool,
    flavour_setting: Option<Flavour>,
    flavour: OnceLock<Flavour>,
    registry_ready: AtomicBool,
    subscribers: Mutex<Vec<Subscriber>>,
}

/// What a handle is built from; the `with_*` methods change one part and rebuild.
pub(crate) struct Settings<B: Backend> {
    pool: Pool<B>,
    migrations: Vec<Migration>,
    ignore_missing: bool,
    policy: TenantNamePolicy,
    registry: String,
    batch: BatchOptions,
    pgbouncer: bool,
    pub(crate) store: B::StoreSettings,
    flavour: Option<Flavour>,
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
    /// and the default registry (schema or database `_tenancy`).
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
                batch: BatchOptions::default(),
                pgbouncer: false,
                store: B::StoreSettings::default(),
                flavour: None,
            },
        )
    }

    /// The same handle with another naming policy (e.g. with reserved names of your own).
    pub fn with_policy(self, policy: TenantNamePolicy) -> Self {
        self.rebuild(|s| s.policy = policy)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle with its registry in another schema; two handles with different
    /// registries see different sets of tenants. The name follows the tenant naming rule and is
    /// reserved, so no tenant can take it.
    pub fn with_registry(self, schema: &str) -> Result<Self, Error> {
        self.rebuild(|s| s.registry = schema.to_owned())
    }

    /// The same handle, giving up with [`Error::LockTimeout`] when a lifecycle operation
    /// (create, drop, rename, migrate, rollback) waits longer than `timeout` for a lock on the
    /// tenant, e.g. behind a long transaction reading the tenant's tables. By default they wait.
    pub fn with_lock_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|s| s.batch.lock_timeout = Some(timeout))
            .expect("the rest was checked when the handle was built")
    }

    pub(crate) fn rebuild(self, change: impl FnOnce(&mut Settings<B>)) -> Result<Self, Error> {
        let inner = &self.inner;
        let mut settings = Settings {
            pool: inner.pool.clone(),
            migrations: inner.migrations.all().to_vec(),
            ignore_missing: inner.migrations.ignore_missing(),
            policy: inner.policy.clone(),
            registry: inner.registry.as_str().to_owned(),
            batch: inner.batch.clone(),
            pgbouncer: inner.pgbouncer,
            store: inner.store_settings.clone(),
            flavour: inner.flavour_setting,
        };
        change(&mut settings);
        Self::build(self.subscribers(), settings)
    }

    fn build(subscribers: Vec<Subscriber>, settings: Settings<B>) -> Result<Self, Error> {
        let registry = Tenant::new(&settings.registry)?;
        let policy = settings.policy.reserve(registry.as_str());
        Ok(Tenants {
            inner: Arc::new(Inner {
                store: B::store(
                    &settings.pool,
                    &registry,
                    settings.batch.lock_timeout,
                    &settings.store,
                )?,
                store_settings: settings.store,
                pool: settings.pool,
                migrations: Migrations::new(settings.migrations, settings.ignore_missing)?,
                registry,
                policy,
                batch: settings.batch,
                pgbouncer: settings.pgbouncer,
                flavour_setting: settings.flavour,
                flavour: settings.flavour.map(OnceLock::from).unwrap_or_default(),
                registry_ready: AtomicBool::new(false),
                subscribers: Mutex::new(subscribers),
            }),
        })
    }

    /// Calls `f` after every create, drop and rename made through this handle (or its clones)
    /// has committed. Changes made by other processes are not seen; pair this with an expiry.
    pub fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    fn subscribers(&self) -> Vec<Subscriber> {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        for subscriber in self.subscribers() {
            subscriber(&event);
        }
    }

    /// The pool the handle runs on.
    pub fn pool(&self) -> &Pool<B> {
        &self.inner.pool
    }

    /// `tenant`'s own executor: pass `&pool` to model operations of that tenant (a statement
    /// for another tenant is refused with [`Error::ExecutorMismatch`]). On PostgreSQL and
    /// MySQL it is the handle's pool with the tenant attached; on SQLite the pool of the
    /// tenant's file, opened on first use and kept in the handle's LRU
    /// ([`Error::NotATenant`] if it is not registered, [`Error::SchemaMissing`] if its file is
    /// gone). Code written against it reads the same on every backend.
    pub async fn pool_for(&self, tenant: &Tenant) -> Result<TenantPool<B>, Error> {
        let tenant = self.parse(tenant.as_str())?;
        let pool = B::tenant_pool(self, &tenant).await?;
        Ok(TenantPool::new(pool, tenant))
    }

    /// The registry schema's name.
    pub fn registry(&self) -> &Tenant {
        &self.inner.registry
    }

    /// Validates `name` under this handle's policy (which also reserves the registry's name).
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        Ok(self.inner.policy.parse(name)?)
    }

    /// The tenant migrations.
    pub(crate) fn migrations(&self) -> &Migrations {
        &self.inner.migrations
    }

    /// The backend's tenant store.
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn store(&self) -> &B::Store {
        &self.inner.store
    }

    /// The PostgreSQL batch options (shared schemas, lock timeout).
    pub(crate) fn batch(&self) -> &BatchOptions {
        &self.inner.batch
    }

    /// Whether the handle runs behind PgBouncer (PostgreSQL).
    pub(crate) fn pgbouncer(&self) -> bool {
        self.inner.pgbouncer
    }

    /// The server's flavour, once known (said with [`Tenants::with_flavour`] or detected when the
    /// registry was made sure of).
    pub(crate) fn flavour_cell(&self) -> &OnceLock<Flavour> {
        &self.inner.flavour
    }

    /// Whether the registry was made sure of by this handle.
    pub(crate) fn registry_ready(&self) -> &AtomicBool {
        &self.inner.registry_ready
    }
}

/// Settings of the PostgreSQL lifecycle.
impl Tenants<Postgres> {
    /// The same handle with `schemas` after the tenant's own on the `search_path` of its
    /// migrations and create hooks, so that unqualified names of shared objects there (types,
    /// extension functions, e.g. in `public`) resolve.
    ///
    /// By default the path holds the tenant's schema alone, so an unqualified name in a
    /// migration can only mean an object of the tenant (or of `pg_catalog`). With shared
    /// schemas on the path, an `ALTER` or `DROP` of a name the tenant lacks reaches the shared
    /// schema's object of that name instead of failing: qualify such statements.
    pub fn with_shared_schemas<S: Into<String>>(
        self,
        schemas: impl IntoIterator<Item = S>,
    ) -> Self {
        let schemas: Vec<String> = schemas.into_iter().map(Into::into).collect();
        self.rebuild(|s| s.batch.shared_schemas = schemas)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle, for a pool that reaches PostgreSQL through PgBouncer in transaction
    /// mode: every prepared statement of the lifecycle is unnamed and runs inside a transaction
    /// (see [`PgBouncer`](crate::PgBouncer)). Build the pool with
    /// [`PoolSettings::pgbouncer`](crate::PoolSettings::pgbouncer).
    pub fn behind_pgbouncer(self) -> Self {
        self.rebuild(|s| s.pgbouncer = true)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle, told that the server is a Citus coordinator (or, with
    /// [`Flavour::Postgres`], that it is not), instead of finding out at its first operation.
    ///
    /// By default a handle asks the server once, when it first uses the registry, whether the
    /// `citus` extension is installed in the database. On Citus it keeps the registry local to
    /// the coordinator, makes each tenant's schema a distributed schema when creating it
    /// (whatever the database's `citus.enable_schema_based_sharding`), and sends migrations so
    /// that Citus accepts them (see the README's "Citus" section). Saying
    /// [`Flavour::Postgres`] on a Citus server gives schemas that are not distributed.
    pub fn with_flavour(self, flavour: Flavour) -> Self {
        self.rebuild(|s| s.flavour = Some(flavour))
            .expect("the rest was checked when the handle was built")
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
        Box::pin(async move {
            match tenant {
                Some(tenant) => {
                    let pool = B::tenant_pool(self, &tenant).await?;
                    let conn = pool.acquire().await?;
                    Ok(crate::backend::Session::owned(
                        conn,
                        Some(std::borrow::Cow::Owned(tenant)),
                    ))
                }
                None if <B::Dialect as crate::statement::Dialect>::QUALIFIES => Ok(
                    crate::backend::Session::owned(self.pool().acquire().await?, None),
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
