//! The tenant lifecycle: create, drop, rename, exists, list.
//!
//! Only schemas created through [`Tenants`] count as tenants: they are recorded in a registry
//! schema (default `_tenancy`), so [`Tenants::list`] never returns unrelated schemas and
//! [`Tenants::drop`] refuses them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, FromRow, Pool, Postgres, Transaction};

use crate::backend::Backend;

use crate::error::{Error, LockHolder};
use crate::exec::{Executor, PgBouncer, Session};
use crate::migrate::{self, Migrations};
use crate::pg;
use crate::sql::lifecycle::{self as sql, BatchOptions};
use crate::tenant::{Tenant, TenantNamePolicy};
use crate::trace;

/// Builds the arguments of a lifecycle statement (called again if the statement is retried).
macro_rules! args {
    ($($value:expr),*) => {
        || {
            #[allow(unused_mut)]
            let mut args = PgArguments::default();
            $(args.add($value).map_err(sqlx::Error::Encode)?;)*
            Ok(args)
        }
    };
}
pub(crate) use args;

/// The default name of the registry schema.
pub const DEFAULT_REGISTRY: &str = "_tenancy";

/// A hook run inside the transaction that creates a tenant, after its migrations (e.g. to seed
/// data). The tenant's schema is first on the connection's `search_path` for the duration of the
/// transaction (followed by the handle's shared schemas, if any). An error rolls the whole
/// creation back.
pub type CreateHook = Box<
    dyn for<'c> FnOnce(
            &'c mut PgConnection,
            &'c Tenant,
        ) -> BoxFuture<'c, Result<(), sqlx::error::BoxDynError>>
        + Send,
>;

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

pub(crate) struct Inner<B: Backend> {
    pub(crate) pool: Pool<B>,
    pub(crate) store: B::Store,
    pub(crate) migrations: Migrations,
    pub(crate) registry: Tenant,
    pub(crate) policy: TenantNamePolicy,
    pub(crate) batch: BatchOptions,
    pub(crate) pgbouncer: bool,
    registry_ready: AtomicBool,
    subscribers: Mutex<Vec<Subscriber>>,
}

/// What a handle is built from; the `with_*` methods change one part and rebuild.
struct Settings<B: Backend> {
    pool: Pool<B>,
    migrations: Vec<Migration>,
    ignore_missing: bool,
    policy: TenantNamePolicy,
    registry: String,
    batch: BatchOptions,
    pgbouncer: bool,
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

    fn rebuild(self, change: impl FnOnce(&mut Settings<B>)) -> Result<Self, Error> {
        let inner = &self.inner;
        let mut settings = Settings {
            pool: inner.pool.clone(),
            migrations: inner.migrations.all().to_vec(),
            ignore_missing: inner.migrations.ignore_missing(),
            policy: inner.policy.clone(),
            registry: inner.registry.as_str().to_owned(),
            batch: inner.batch.clone(),
            pgbouncer: inner.pgbouncer,
        };
        change(&mut settings);
        Self::build(self.subscribers(), settings)
    }

    fn build(subscribers: Vec<Subscriber>, settings: Settings<B>) -> Result<Self, Error> {
        let registry = Tenant::new(&settings.registry)?;
        let policy = settings.policy.reserve(registry.as_str());
        Ok(Tenants {
            inner: Arc::new(Inner {
                store: B::store(&registry, settings.batch.lock_timeout),
                pool: settings.pool,
                migrations: Migrations::new(settings.migrations, settings.ignore_missing)?,
                registry,
                policy,
                batch: settings.batch,
                pgbouncer: settings.pgbouncer,
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

    /// The registry schema's name.
    pub fn registry(&self) -> &Tenant {
        &self.inner.registry
    }

    /// Validates `name` under this handle's policy (which also reserves the registry's name).
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        Ok(self.inner.policy.parse(name)?)
    }

    pub(crate) fn inner(&self) -> &Inner<B> {
        &self.inner
    }
}

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
    /// (see [`PgBouncer`]). Build the pool with
    /// [`PoolSettings::pgbouncer`](crate::PoolSettings::pgbouncer).
    pub fn behind_pgbouncer(self) -> Self {
        self.rebuild(|s| s.pgbouncer = true)
            .expect("the rest was checked when the handle was built")
    }

    /// A session on the pool for one statement: through [`PgBouncer`] when the handle is
    /// [`behind_pgbouncer`](Self::behind_pgbouncer).
    pub(crate) async fn session(&self) -> Result<Session<'static, Postgres>, Error> {
        let pool = &self.inner.pool;
        Ok(if self.inner.pgbouncer {
            PgBouncer(pool).__session().await?
        } else {
            pool.__session().await?
        })
    }

    /// Runs one statement on the pool and decodes its rows.
    pub(crate) async fn rows<T>(
        &self,
        sql: &str,
        args: impl Fn() -> Result<PgArguments, sqlx::Error> + Sync,
    ) -> Result<Vec<T>, Error>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        let rows = self.session().await?.fetch_all(sql, &args).await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }

    /// Whether statements are kept prepared on the connection (not behind PgBouncer).
    pub(crate) fn persistent(&self) -> bool {
        !self.inner.pgbouncer
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

    /// The result of a lifecycle operation on `tenant`, its error made specific (see
    /// [`explain`](Self::explain)).
    pub(crate) async fn explained<T>(
        &self,
        tenant: &Tenant,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        match result {
            Ok(value) => Ok(value),
            Err(err) => Err(self.explain(tenant, err).await),
        }
    }

    /// The error of a lifecycle operation on `tenant`, made specific: a lock timeout becomes
    /// [`Error::LockTimeout`] naming who holds a lock on the tenant, and a database error names
    /// the tenant.
    async fn explain(&self, tenant: &Tenant, err: Error) -> Error {
        let timed_out = err.as_sqlx().is_some_and(pg::is_lock_timeout);
        match (timed_out, self.inner.batch.lock_timeout) {
            (true, Some(waited)) => {
                let holders: Vec<(i32, String, String, String)> = self
                    .rows(
                        &sql::lock_holders(&self.inner.registry),
                        args!(tenant.as_str()),
                    )
                    .await
                    .unwrap_or_default();
                Error::LockTimeout {
                    tenant: tenant.clone(),
                    waited,
                    holders: holders
                        .into_iter()
                        .map(|(pid, application_name, state, query)| LockHolder {
                            pid,
                            application_name,
                            state,
                            query,
                        })
                        .collect(),
                }
            }
            _ => err.about(tenant),
        }
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
    ///         sqlx::query("INSERT INTO guards (name, position) VALUES ('Abu', 'Guard')")
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
        let span = trace::lifecycle("create", &tenant);
        let created = trace::within(span, self.create_checked(&tenant, hook)).await;
        self.explained(&tenant, created).await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    async fn create_checked(&self, tenant: &Tenant, hook: Option<CreateHook>) -> Result<(), Error> {
        self.ensure_registry().await?;
        let inner = &self.inner;
        let registry = &inner.registry;
        let all: Vec<&Migration> = inner.migrations.ups().collect();
        if hook.is_none() {
            // The common case in one round trip. Any failure leaves nothing behind (one
            // implicit transaction) and falls through to the statement-at-a-time path below,
            // which redoes the work and reports the exact error (name taken, schema there,
            // which migration failed).
            let batch = sql::create_batch(registry, tenant, &all, &inner.batch);
            if sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(&inner.pool)
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        let mut conn = inner.pool.acquire().await?;
        let before = self.session_check(&mut conn).await?;
        let mut tx = conn.begin().await?;
        let result = async {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "{};\n{}",
                sql::save_session(registry),
                sql::set_lock_timeout(&inner.batch)
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query(AssertSqlSafe(sql::register(registry)))
                .persistent(self.persistent())
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| tenant_taken(e, tenant))?;
            sqlx::raw_sql(AssertSqlSafe(sql::create_schema(tenant)))
                .execute(&mut *tx)
                .await
                .map_err(|e| schema_taken(e, tenant))?;
            migrate::apply(self, &mut tx, tenant, &all).await?;
            if let Some(hook) = hook {
                sqlx::raw_sql(AssertSqlSafe(sql::set_local_search_path(
                    tenant,
                    &inner.batch,
                )))
                .execute(&mut *tx)
                .await?;
                hook(&mut tx, tenant).await.map_err(|source| Error::Hook {
                    tenant: tenant.clone(),
                    source,
                })?;
            }
            sqlx::raw_sql(AssertSqlSafe(sql::restore_session(registry)))
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        .await;
        settle(tx, result).await?;
        self.release_clean(conn, before).await
    }

    /// What the session looks like before a statement-at-a-time transaction (`None` behind
    /// PgBouncer, where the server connection is not this client's to check).
    pub(crate) async fn session_check(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<String>, Error> {
        if self.inner.pgbouncer {
            return Ok(None);
        }
        Ok(Some(migrate::session_fingerprint(conn).await?))
    }

    /// Returns `conn` to the pool only if its session settings are what they were before the
    /// transaction (they are restored inside it; a hook could still change them afterwards in
    /// ways the restore does not cover); otherwise closes it.
    pub(crate) async fn release_clean(
        &self,
        mut conn: sqlx::pool::PoolConnection<Postgres>,
        before: Option<String>,
    ) -> Result<(), Error> {
        if let Some(before) = before {
            if migrate::session_fingerprint(&mut conn).await? != before {
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Drops tenant `name` and everything in its schema (`DROP SCHEMA … CASCADE`), and
    /// unregisters it. Refuses reserved names ([`Error::InvalidTenantName`]) and schemas that
    /// are not tenants ([`Error::NotATenant`]). A registered tenant whose schema is already
    /// gone is unregistered and reported as [`Dropped::Unregistered`].
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle("drop", &tenant);
        let dropped = trace::within(span, self.drop_checked(&tenant)).await;
        let dropped = self.explained(&tenant, dropped).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    async fn drop_checked(&self, tenant: &Tenant) -> Result<Dropped, Error> {
        self.ensure_registry().await?;
        let registry = &self.inner.registry;
        let mut tx = self.inner.pool.begin().await?;
        let result = async {
            self.lock(&mut tx, tenant).await?;
            let (registered, schema) = self.registered_and_schema(&mut tx, tenant).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: tenant.clone(),
                });
            }
            sqlx::query(AssertSqlSafe(sql::unregister(registry)))
                .persistent(self.persistent())
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?;
            if !schema {
                return Ok(Dropped::Unregistered);
            }
            sqlx::raw_sql(AssertSqlSafe(sql::drop_schema(tenant)))
                .execute(&mut *tx)
                .await?;
            Ok(Dropped::Schema)
        }
        .await;
        settle(tx, result).await
    }

    /// Renames tenant `old` to `new`, keeping its data and migration history.
    /// [`Error::SameName`] if they are the same, [`Error::SchemaMissing`] if `old`'s schema is
    /// gone.
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let old = self.parse(old)?;
        let new = self.parse(new)?;
        if old == new {
            return Err(Error::SameName { tenant: old });
        }
        let span = trace::lifecycle("rename", &old);
        let renamed = trace::within(span, self.rename_checked(&old, &new)).await;
        self.explained(&old, renamed).await?;
        self.publish(TenantEvent::Renamed {
            old,
            new: new.clone(),
        });
        Ok(new)
    }

    async fn rename_checked(&self, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        self.ensure_registry().await?;
        let registry = &self.inner.registry;
        let mut tx = self.inner.pool.begin().await?;
        let result = async {
            // Both locks, in a fixed order so two renames cannot deadlock.
            let (first, second) = if old <= new { (old, new) } else { (new, old) };
            self.lock(&mut tx, first).await?;
            self.lock(&mut tx, second).await?;
            let (registered, schema) = self.registered_and_schema(&mut tx, old).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: old.clone(),
                });
            }
            if !schema {
                return Err(Error::SchemaMissing {
                    tenant: old.clone(),
                });
            }
            sqlx::query(AssertSqlSafe(sql::rename(registry)))
                .persistent(self.persistent())
                .bind(old.as_str())
                .bind(new.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| tenant_taken(e, new))?;
            sqlx::raw_sql(AssertSqlSafe(sql::rename_schema(old, new)))
                .execute(&mut *tx)
                .await
                .map_err(|e| schema_taken(e, new))?;
            Ok(())
        }
        .await;
        settle(tx, result).await
    }

    /// Whether `name` is a tenant (registered). An invalid name is an error, not `false`.
    pub async fn exists(&self, name: impl AsRef<str>) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        self.registered(&tenant).await
    }

    /// Whether `tenant` is registered (one query, after making sure the registry exists).
    pub(crate) async fn registered(&self, tenant: &Tenant) -> Result<bool, Error> {
        self.ensure_registry().await?;
        let found: Vec<(bool,)> = self
            .rows(&sql::exists(&self.inner.registry), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(tenant))?;
        Ok(found.first().is_some_and(|r| r.0))
    }

    /// Every tenant, sorted by name. Only schemas created through this handle's registry.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<(String,)> = self.rows(&sql::list(&self.inner.registry), args!()).await?;
        names
            .into_iter()
            .map(|(n,)| Tenant::new(n).map_err(Error::from))
            .collect()
    }

    /// Takes the tenant's lifecycle lock until the end of the transaction, after setting the
    /// handle's lock timeout for the transaction. One round trip.
    pub(crate) async fn lock(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        let statement = format!(
            "{}{}",
            sql::set_lock_timeout(&self.inner.batch),
            sql::lock_tenant_named(&self.inner.registry, tenant)
        );
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Whether `tenant` is registered and whether its schema exists, read in `tx` (under the
    /// tenant's lock).
    pub(crate) async fn registered_and_schema(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        tenant: &Tenant,
    ) -> Result<(bool, bool), Error> {
        Ok(sqlx::query_as(AssertSqlSafe(sql::registered_and_schema(
            &self.inner.registry,
        )))
        .persistent(self.persistent())
        .bind(tenant.as_str())
        .fetch_one(&mut **tx)
        .await?)
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

fn tenant_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    if pg::is_unique_violation(&err) {
        Error::TenantExists {
            tenant: tenant.clone(),
        }
    } else {
        err.into()
    }
}

fn schema_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    if pg::is_duplicate_schema(&err) {
        Error::SchemaExists {
            tenant: tenant.clone(),
        }
    } else {
        err.into()
    }
}
