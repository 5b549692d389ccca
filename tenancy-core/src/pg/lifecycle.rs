//! The tenant lifecycle on PostgreSQL: create, drop, rename, exists, list, with a schema per
//! tenant, a registry schema, advisory locks and one-batch creates.

use std::sync::atomic::Ordering;

use futures_util::future::BoxFuture;
use sqlx::migrate::Migration;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, FromRow, Postgres, Row, Transaction};

use super::citus::{self, Flavour};
use super::sql;
use crate::error::{Error, LockHolder};
use crate::lifecycle::{Dropped, TenantEvent, Tenants};
use crate::pg;
use crate::pg::migrate;
use crate::tenant::Tenant;
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

impl Tenants<Postgres> {
    /// Runs one statement on the pool and decodes its rows.
    pub(crate) async fn rows<T>(
        &self,
        sql: &str,
        args: impl Fn() -> Result<PgArguments, sqlx::Error> + Sync,
    ) -> Result<Vec<T>, Error>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        let rows = pg::pool_rows(self.pool(), self.pgbouncer(), sql, args()?).await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }

    /// Whether statements are kept prepared on the connection (not behind PgBouncer).
    pub(crate) fn persistent(&self) -> bool {
        !self.pgbouncer()
    }

    pub(crate) async fn ensure_registry(&self) -> Result<(), Error> {
        if self.registry_ready().load(Ordering::Acquire) {
            return Ok(());
        }
        // One round trip: on Citus the registry is created with schema-based sharding off, so
        // it stays local to the coordinator; the last statement says whether this is Citus.
        let batch = format!(
            "{};\n{};\n{}",
            citus::SHARDING_OFF_IF_CITUS,
            sql::ensure_registry(self.registry()),
            citus::DETECT
        );
        let rows = sqlx::raw_sql(AssertSqlSafe(batch))
            .fetch_all(self.pool())
            .await?;
        let detected = match rows
            .last()
            .map(|row| row.try_get::<bool, _>(0))
            .transpose()?
        {
            Some(true) => Flavour::Citus,
            _ => Flavour::Postgres,
        };
        let flavour = *self.flavour_cell().get_or_init(|| detected);
        if flavour == Flavour::Citus && detected == Flavour::Citus {
            // A registry made distributed before (the database's sharding was on when it was
            // created) is brought back to the coordinator.
            sqlx::query(citus::UNDISTRIBUTE_REGISTRY)
                .persistent(false)
                .bind(self.registry().as_str())
                .execute(self.pool())
                .await?;
        }
        self.registry_ready().store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the server is a Citus coordinator (see [`with_flavour`](Self::with_flavour));
    /// asked once per handle, with the registry's set-up.
    pub async fn flavour(&self) -> Result<Flavour, Error> {
        self.ensure_registry().await?;
        Ok(self.flavour_now())
    }

    /// The flavour, known once [`ensure_registry`](Self::ensure_registry) has run.
    pub(crate) fn flavour_now(&self) -> Flavour {
        self.flavour_cell()
            .get()
            .copied()
            .unwrap_or(Flavour::Postgres)
    }

    /// Whether this handle runs on Citus (after [`ensure_registry`](Self::ensure_registry)).
    pub(crate) fn on_citus(&self) -> bool {
        self.flavour_now() == Flavour::Citus
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
        match (timed_out, self.batch().lock_timeout) {
            (true, Some(waited)) => {
                let holders: Vec<(i32, String, String, String)> = self
                    .rows(&sql::lock_holders(self.registry()), args!(tenant.as_str()))
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
        let span = trace::lifecycle::<Postgres>("create", &tenant);
        let created = trace::within(span, self.create_checked(&tenant, hook)).await;
        self.explained(&tenant, created).await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    async fn create_checked(&self, tenant: &Tenant, hook: Option<CreateHook>) -> Result<(), Error> {
        self.ensure_registry().await?;
        let registry = self.registry();
        let ups: Vec<&Migration> = self.migrations().ups().collect();
        let on_citus = self.on_citus();
        // On Citus: each statement Citus refuses in a multi-statement string in a block of its
        // own, and the schema distributed whatever the database's sharding setting.
        let for_citus = if on_citus {
            citus::for_citus(&ups)
        } else {
            Vec::new()
        };
        let all: Vec<&Migration> = if on_citus {
            for_citus.iter().collect()
        } else {
            ups
        };
        let sharding = if on_citus {
            format!("{};\n", citus::SHARDING_ON)
        } else {
            String::new()
        };
        if hook.is_none() {
            // The common case in one round trip. Any failure leaves nothing behind (one
            // implicit transaction) and falls through to the statement-at-a-time path below,
            // which redoes the work and reports the exact error (name taken, schema there,
            // which migration failed).
            let batch = sharding.clone() + &sql::create_batch(registry, tenant, &all, self.batch());
            if sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(self.pool())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        let mut conn = self.pool().acquire().await?;
        let before = self.session_check(&mut conn).await?;
        let mut tx = conn.begin().await?;
        let result = async {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "{sharding}{};\n{}",
                sql::save_session(registry),
                sql::set_lock_timeout(self.batch())
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
                    self.batch(),
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
        if self.pgbouncer() {
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
        let span = trace::lifecycle::<Postgres>("drop", &tenant);
        let dropped = trace::within(span, self.drop_checked(&tenant)).await;
        let dropped = self.explained(&tenant, dropped).await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    async fn drop_checked(&self, tenant: &Tenant) -> Result<Dropped, Error> {
        self.ensure_registry().await?;
        let registry = self.registry();
        let mut tx = self.pool().begin().await?;
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
        let span = trace::lifecycle::<Postgres>("rename", &old);
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
        let registry = self.registry();
        let mut tx = self.pool().begin().await?;
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
            .rows(&sql::exists(self.registry()), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(tenant))?;
        Ok(found.first().is_some_and(|r| r.0))
    }

    /// Every tenant, sorted by name. Only schemas created through this handle's registry.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<(String,)> = self.rows(&sql::list(self.registry()), args!()).await?;
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
            sql::set_lock_timeout(self.batch()),
            sql::lock_tenant_named(self.registry(), tenant)
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
        Ok(
            sqlx::query_as(AssertSqlSafe(sql::registered_and_schema(self.registry())))
                .persistent(self.persistent())
                .bind(tenant.as_str())
                .fetch_one(&mut **tx)
                .await?,
        )
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
