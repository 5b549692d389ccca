//! The tenant lifecycle: create, drop, rename, exists, list.
//!
//! Only schemas created through [`Tenants`] count as tenants: they are recorded in a registry
//! schema (default `_tenancy`), so [`Tenants::list`] never returns unrelated schemas and
//! [`Tenants::drop`] refuses them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection, Postgres, Transaction};

use crate::error::{sqlstate, Error};
use crate::migrate::{self, Migrations};
use crate::sql::lifecycle as sql;
use crate::tenant::{Tenant, TenantNamePolicy};

/// The default name of the registry schema.
pub const DEFAULT_REGISTRY: &str = "_tenancy";

/// A hook run inside the transaction that creates a tenant, after its migrations (e.g. to seed
/// data). The tenant's schema is first on the connection's `search_path` for the duration of the
/// transaction. An error rolls the whole creation back.
pub type CreateHook = Box<
    dyn for<'c> FnOnce(
            &'c mut PgConnection,
            &'c Tenant,
        ) -> BoxFuture<'c, Result<(), sqlx::error::BoxDynError>>
        + Send,
>;

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
#[derive(Clone)]
pub struct Tenants {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) migrations: Migrations,
    pub(crate) registry: Tenant,
    pub(crate) policy: TenantNamePolicy,
    registry_ready: AtomicBool,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("registry", &self.inner.registry)
            .field("migrations", &self.inner.migrations.len())
            .finish_non_exhaustive()
    }
}

impl Tenants {
    /// A handle on `pool` with the tenant migrations of `migrator`, the default naming policy
    /// and the default registry schema (`_tenancy`).
    ///
    /// Refuses migrations marked `-- no-transaction` with
    /// [`Error::NonTransactionalMigration`]: creation and migration are atomic only because every
    /// migration runs inside the tenant's transaction.
    pub fn new(pool: PgPool, migrator: Migrator) -> Result<Self, Error> {
        Self::build(
            Vec::new(),
            pool,
            migrator.migrations.to_vec(),
            migrator.ignore_missing,
            TenantNamePolicy::default(),
            DEFAULT_REGISTRY,
        )
    }

    /// The same handle with another naming policy (e.g. with reserved names of your own).
    pub fn with_policy(self, policy: TenantNamePolicy) -> Self {
        let inner = &self.inner;
        Self::build(
            self.subscribers(),
            inner.pool.clone(),
            inner.migrations.all().to_vec(),
            inner.migrations.ignore_missing(),
            policy,
            inner.registry.as_str(),
        )
        .expect("migrations were checked when the handle was built")
    }

    /// The same handle with its registry in another schema; two handles with different
    /// registries see different sets of tenants. The name follows the tenant naming rule and is
    /// reserved, so no tenant can take it.
    pub fn with_registry(self, schema: &str) -> Result<Self, Error> {
        let inner = &self.inner;
        Self::build(
            self.subscribers(),
            inner.pool.clone(),
            inner.migrations.all().to_vec(),
            inner.migrations.ignore_missing(),
            inner.policy.clone(),
            schema,
        )
    }

    fn build(
        subscribers: Vec<Subscriber>,
        pool: PgPool,
        migrations: Vec<Migration>,
        ignore_missing: bool,
        policy: TenantNamePolicy,
        registry: &str,
    ) -> Result<Self, Error> {
        let registry = Tenant::new(registry)?;
        let policy = policy.reserve(registry.as_str());
        Ok(Tenants {
            inner: Arc::new(Inner {
                pool,
                migrations: Migrations::new(migrations, ignore_missing)?,
                registry,
                policy,
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

    fn publish(&self, event: TenantEvent) {
        for subscriber in self.subscribers() {
            subscriber(&event);
        }
    }

    /// The pool the handle runs on.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The registry schema's name.
    pub fn registry(&self) -> &Tenant {
        &self.inner.registry
    }

    /// Validates `name` under this handle's policy (which also reserves the registry's name).
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        Ok(self.inner.policy.parse(name)?)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) async fn ensure_registry(&self) -> Result<(), Error> {
        if self.inner.registry_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        sqlx::raw_sql(AssertSqlSafe(sql::ensure_registry(&self.inner.registry)))
            .execute(&self.inner.pool)
            .await?;
        self.inner.registry_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Creates tenant `name`: validates the name, creates its schema and applies every tenant
    /// migration, in one transaction. Either the tenant exists fully migrated, or nothing is
    /// left. Of concurrent creates of one name exactly one succeeds; the others get
    /// [`Error::TenantExists`].
    ///
    /// One round trip ([`sql::create_batch`](crate::sql::lifecycle::create_batch)); if it
    /// fails, the creation is redone a statement at a time to report the exact error
    /// ([`Error::TenantExists`], [`Error::SchemaExists`], [`Error::Migration`] naming the
    /// version).
    pub async fn create(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        self.create_inner(name.as_ref(), None).await
    }

    /// [`create`](Self::create), running `hook` in the same transaction after the migrations.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// tenants
    ///     .create_with("acme", Box::new(|conn, _tenant| Box::pin(async move {
    ///         // Unqualified names resolve in the new tenant's schema here.
    ///         sqlx::query("INSERT INTO settings (key, value) VALUES ('plan', 'free')")
    ///             .execute(conn)
    ///             .await?;
    ///         Ok(())
    ///     })))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_with(
        &self,
        name: impl AsRef<str>,
        hook: CreateHook,
    ) -> Result<Tenant, Error> {
        self.create_inner(name.as_ref(), Some(hook)).await
    }

    async fn create_inner(&self, name: &str, hook: Option<CreateHook>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        self.ensure_registry().await?;
        let registry = &self.inner.registry;
        let all: Vec<&Migration> = self.inner.migrations.ups().collect();
        if hook.is_none() {
            // The common case in one round trip. Any failure leaves nothing behind (one
            // implicit transaction) and falls through to the statement-at-a-time path below,
            // which redoes the work and reports the exact error (name taken, schema there,
            // which migration failed).
            let batch = sql::create_batch(registry, &tenant, &all);
            if sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(&self.inner.pool)
                .await
                .is_ok()
            {
                self.publish(TenantEvent::Created(tenant.clone()));
                return Ok(tenant);
            }
        }
        let mut conn = self.inner.pool.acquire().await?;
        let before = migrate::search_path(&mut conn).await?;
        let mut tx = conn.begin().await?;
        let result = async {
            sqlx::query(AssertSqlSafe(sql::register(registry)))
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| tenant_taken(e, &tenant))?;
            sqlx::raw_sql(AssertSqlSafe(sql::create_schema(&tenant)))
                .execute(&mut *tx)
                .await
                .map_err(|e| schema_taken(e, &tenant))?;
            migrate::apply(&mut tx, registry, &tenant, &all).await?;
            if let Some(hook) = hook {
                hook(&mut tx, &tenant).await.map_err(|source| Error::Hook {
                    tenant: tenant.clone(),
                    source,
                })?;
            }
            Ok(())
        }
        .await;
        settle(tx, result).await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        migrate::release_clean(conn, &before).await?;
        Ok(tenant)
    }

    /// Drops tenant `name` and everything in its schema (`DROP SCHEMA … CASCADE`). Refuses
    /// reserved names ([`Error::InvalidTenantName`]) and schemas that are not tenants
    /// ([`Error::NotATenant`]).
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<(), Error> {
        let tenant = self.parse(name)?;
        self.ensure_registry().await?;
        let registry = &self.inner.registry;
        let mut tx = self.inner.pool.begin().await?;
        let result = async {
            lock(&mut tx, registry, &tenant).await?;
            let found: Option<String> =
                sqlx::query_scalar(AssertSqlSafe(sql::unregister(registry)))
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(Error::NotATenant {
                    tenant: tenant.clone(),
                });
            }
            sqlx::raw_sql(AssertSqlSafe(sql::drop_schema(&tenant)))
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        .await;
        settle(tx, result).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(())
    }

    /// Renames tenant `old` to `new`, keeping its data and migration history.
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let old = self.parse(old)?;
        let new = self.parse(new)?;
        self.ensure_registry().await?;
        let registry = &self.inner.registry;
        let mut tx = self.inner.pool.begin().await?;
        let result = async {
            // Both locks, in a fixed order so two renames cannot deadlock.
            let (first, second) = if old <= new {
                (&old, &new)
            } else {
                (&new, &old)
            };
            lock(&mut tx, registry, first).await?;
            lock(&mut tx, registry, second).await?;
            let renamed: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql::rename(registry)))
                .bind(old.as_str())
                .bind(new.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| tenant_taken(e, &new))?;
            if renamed.is_none() {
                return Err(Error::NotATenant {
                    tenant: old.clone(),
                });
            }
            sqlx::raw_sql(AssertSqlSafe(sql::rename_schema(&old, &new)))
                .execute(&mut *tx)
                .await
                .map_err(|e| schema_taken(e, &new))?;
            Ok(())
        }
        .await;
        settle(tx, result).await?;
        self.publish(TenantEvent::Renamed {
            old,
            new: new.clone(),
        });
        Ok(new)
    }

    /// Whether `name` is a tenant. An invalid name is an error, not `false`.
    pub async fn exists(&self, name: impl AsRef<str>) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        self.ensure_registry().await?;
        Ok(
            sqlx::query_scalar(AssertSqlSafe(sql::exists(&self.inner.registry)))
                .bind(tenant.as_str())
                .fetch_one(&self.inner.pool)
                .await?,
        )
    }

    /// Every tenant, sorted by name. Only schemas created through this handle's registry.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql::list(&self.inner.registry)))
            .fetch_all(&self.inner.pool)
            .await?;
        names
            .into_iter()
            .map(|n| Tenant::new(n).map_err(Error::from))
            .collect()
    }
}

/// Commits `tx` if `result` is `Ok`, otherwise rolls it back right away. Leaving the rollback
/// to `Drop` would only queue it until the connection's next use, holding the transaction's
/// locks in the meantime.
pub(crate) async fn settle<T>(
    tx: Transaction<'_, Postgres>,
    result: Result<T, Error>,
) -> Result<T, Error> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            // The original error matters more than a failure to roll back (which also ends
            // the transaction, as the connection is then closed).
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

/// Takes the tenant's advisory lock until the end of the transaction.
pub(crate) async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    registry: &Tenant,
    tenant: &Tenant,
) -> Result<(), Error> {
    sqlx::query(AssertSqlSafe(sql::lock_tenant(registry)))
        .bind(tenant.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn tenant_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    match sqlstate(&err).as_deref() {
        Some("23505") => Error::TenantExists {
            tenant: tenant.clone(),
        },
        _ => Error::Database(err),
    }
}

fn schema_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    match sqlstate(&err).as_deref() {
        Some("42P06") => Error::SchemaExists {
            tenant: tenant.clone(),
        },
        _ => Error::Database(err),
    }
}
