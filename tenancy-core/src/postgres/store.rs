//! The PostgreSQL tenant store: a schema per tenant, the registry schema, advisory locks per
//! tenant, creates and migrations in one round trip when nothing is in the way, and the
//! session's settings put back around migrations and hooks.
//!
//! Each operation runs on one pooled connection, inside one transaction: the tenant's advisory
//! lock is transaction-level, and DDL is transactional, so an operation that fails leaves
//! nothing. Its connection goes back to the pool only if the session settings a migration could
//! have changed are what they were; an operation dropped half-way closes its connection instead.
//! A clone or an export, which reads from one `REPEATABLE READ` snapshot, takes its locks for
//! the session just before its transaction begins and hands them to the transaction as its
//! first statement ([`sql::lock_then_begin`]): its snapshot is taken once it holds them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use sqlx::migrate::Migration;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::{Arguments, AssertSqlSafe, FromRow, Postgres, Row};

use super::{args, errors, guard_sql, PgMode};
use super::citus::{self, Flavour};
use super::sql::{self, BatchOptions};
use crate::error::{Error, LockHolder};
use crate::lifecycle::plan::{Applied, History, Migrations};
use crate::lifecycle::store::{Behind, CreateHook, Direction, Found, Opening, Operation};
use crate::lifecycle::store::{Placing, PlacingMany, Store};
use crate::tenant::Tenant;


/// What a PostgreSQL handle is configured with beyond the registry and lock timeout.
#[derive(Debug, Clone, Default)]
pub struct PgSettings {
    /// Schemas after the tenant's on the `search_path` of its migrations and hooks.
    pub(crate) shared_schemas: Vec<String>,
    /// Statements go through PgBouncer in transaction mode.
    pub(crate) pgbouncer: bool,
    /// The flavour as said by the application, instead of detected.
    pub(crate) flavour: Option<Flavour>,
    /// Row-level tenants' statements say their tenant to row-level security policies.
    pub(crate) row_security: bool,
}

/// The PostgreSQL lifecycle of one [`Tenants`](crate::Tenants) handle.
pub struct PgStore {
    pool: PgPool,
    registry: Tenant,
    batch: BatchOptions,
    pgbouncer: bool,
    /// Under row-level security: the statement that checks a row-level tenant is placed where
    /// its statement goes and says it to the policies ([`sql::enter_rows`]).
    row_security: Option<&'static str>,
    flavour: OnceLock<Flavour>,
    registry_ready: AtomicBool,
    /// The registry has no `create_in` function (made by an older version, by a role this
    /// handle's may not change it as): row-level tenants are registered a step at a time.
    no_create_in: AtomicBool,
    /// The registry has no `create_in_many` function (made by an older version, or by a role
    /// this one cannot see the function of): register many row-level tenants a step at a time.
    no_create_in_many: AtomicBool,
    /// The registry has no `guard_added` function (made by an older version, by a role this
    /// handle's may not change it as): a migration sends its body as a `DO` block.
    no_guard_added: AtomicBool,
}

debug_fields!(PgStore { registry, pgbouncer, .. });

/// One operation's connection, inside its transaction.
pub struct PgOp {
    conn: Option<PoolConnection<Postgres>>,
    /// What is sent before the first lock (`BEGIN`, the lock timeout, saving the session),
    /// so that it costs no round trip of its own.
    opening: String,
    /// The session's settings before the operation, to compare once it ended (`None`: it runs
    /// no SQL of the user's, or the connection is PgBouncer's to manage).
    before: Option<String>,
    /// Whether the session's settings were saved, to be put back before the commit.
    saved: bool,
    /// What an import dropped (its tables' indexes, the constraints they serve, their foreign
    /// keys): the statements that make it again once the rows are written, in order.
    pub(super) deferred: Vec<String>,
    /// The transaction reads from one snapshot (`REPEATABLE READ`), which must be taken once
    /// it holds its first locks: they are taken before it begins ([`sql::lock_then_begin`]).
    locks_first: bool,
}

impl PgOp {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("the operation has not finished")
    }

    /// Sends what is waiting to be sent before `sql`, with it.
    pub(super) async fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let batch = std::mem::take(&mut self.opening) + sql;
        sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&mut *self.conn())
            .await?;
        Ok(())
    }
}

impl Drop for PgOp {
    /// An operation dropped before it finished (its future was dropped): the connection is
    /// closed with its transaction, never pooled half-way.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl PgStore {
    /// Sends `batch` (several statements) in one round trip; whether it ran to its end.
    async fn sent_whole(&self, batch: String) -> bool {
        sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&self.pool)
            .await
            .is_ok()
    }

    /// How the handle's executors send their statements.
    pub(crate) fn mode(&self) -> PgMode {
        PgMode {
            pgbouncer: self.pgbouncer,
            row_security: self.row_security,
        }
    }

    /// Whether statements are kept prepared on the connection (not behind PgBouncer).
    /// The registry's schema.
    pub(super) fn registry(&self) -> &Tenant {
        &self.registry
    }

    pub(crate) fn persistent(&self) -> bool {
        !self.pgbouncer
    }

    /// The lock timeout and shared schemas of the lifecycle's statements.
    pub(crate) fn batch(&self) -> &BatchOptions {
        &self.batch
    }

    /// Runs one statement on the pool and decodes its rows.
    pub(crate) async fn rows<T>(&self, sql: &str, args: PgArguments) -> Result<Vec<T>, Error>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        let rows = super::pool_rows(&self.pool, self.pgbouncer, sql, args).await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }

    /// Creates the registry if this handle has not yet, and learns whether the server is Citus.
    pub(crate) async fn ensure_registry(&self) -> Result<(), Error> {
        if self.registry_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        // One round trip: on Citus the registry is created with schema-based sharding off, so
        // it stays local to the coordinator; the last statement says whether this is Citus.
        let batch = format!(
            "{};\n{};\n{};\n{}",
            citus::SHARDING_OFF_IF_CITUS,
            sql::ensure_registry(&self.registry),
            guard_sql::guard_added_function(&self.registry),
            citus::DETECT
        );
        let rows = match sqlx::raw_sql(AssertSqlSafe(batch)).fetch_all(&self.pool).await {
            Ok(rows) => rows,
            // An application's role without the right to create the registry (under row-level
            // security, say) uses the one its administrator made.
            Err(e) if errors::is_insufficient_privilege(&e) && self.registry_made().await? => {
                let function = format!("{}.guard_added(text,boolean)", self.registry.quoted());
                let missing: bool = sqlx::query_scalar("SELECT to_regprocedure($1) IS NULL")
                    .persistent(false)
                    .bind(function)
                    .fetch_one(&self.pool)
                    .await?;
                self.no_guard_added.store(missing, Ordering::Relaxed);
                sqlx::raw_sql(citus::DETECT).fetch_all(&self.pool).await?
            }
            Err(e) => return Err(e.into()),
        };
        let detected = match rows
            .last()
            .map(|row| row.try_get::<bool, _>(0))
            .transpose()?
        {
            Some(true) => Flavour::Citus,
            _ => Flavour::Postgres,
        };
        let flavour = *self.flavour.get_or_init(|| detected);
        if flavour == Flavour::Citus && detected == Flavour::Citus {
            // A registry made distributed before (the database's sharding was on when it was
            // created) is brought back to the coordinator.
            sqlx::query(citus::UNDISTRIBUTE_SCHEMA)
                .persistent(false)
                .bind(self.registry.as_str())
                .execute(&self.pool)
                .await?;
        }
        self.registry_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Registers row-level `tenant` with one call of the registry's `create_in`
    /// ([`sql::create_in`]): one round trip, one implicit transaction committed durably.
    /// `Ok(None)` if the registry has no such function.
    pub(super) async fn create_in(&self, tenant: &Tenant) -> Result<Option<Placing>, Error> {
        let call = sql::create_in(&self.registry, tenant, &self.batch);
        let own = tenant.own();
        let taken = |e| tenant_taken(e, &own);
        let Some(row) = self.call_registry(call, &self.no_create_in, taken).await? else {
            return Ok(None);
        };
        Ok(Some(Placing {
            taken: row.try_get(0)?,
            container: found_at(&row)?,
        }))
    }

    /// Registers the row-level tenants `tenants` (of one container) with one call of the
    /// registry's `create_in_many` ([`sql::create_in_many`]): one round trip, one implicit
    /// transaction committed durably, all or none. `Ok(None)` if the registry has no such
    /// function.
    pub(super) async fn create_in_many(
        &self,
        tenants: &[Tenant],
    ) -> Result<Option<PlacingMany>, Error> {
        let Some(first) = tenants.first() else {
            return Ok(None);
        };
        let container = first.container_tenant();
        let call = sql::create_in_many(&self.registry, tenants, &container, &self.batch);
        let missing = &self.no_create_in_many;
        let Some(row) = self.call_registry(call, missing, Error::from).await? else {
            return Ok(None);
        };
        Ok(Some(PlacingMany {
            taken: row.try_get(0)?,
            container: found_at(&row)?,
        }))
    }

    /// Sends `call`, one call of a registry function that an older registry may lack
    /// (`missing` says it was found missing): its one row, or `Ok(None)` (and `missing` set) if
    /// the registry has no such function; another failure through `fail`.
    async fn call_registry(
        &self,
        call: String,
        missing: &AtomicBool,
        fail: impl FnOnce(sqlx::Error) -> Error,
    ) -> Result<Option<PgRow>, Error> {
        self.ensure_registry().await?;
        if missing.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match sqlx::raw_sql(AssertSqlSafe(call)).fetch_all(&self.pool).await {
            Ok(rows) => Ok(Some(
                rows.into_iter().next().ok_or(sqlx::Error::RowNotFound)?,
            )),
            Err(e) if errors::is_undefined_function(&e) => {
                missing.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// Whether the registry's tables are all there (made by another role).
    async fn registry_made(&self) -> Result<bool, Error> {
        let r = self.registry.quoted();
        let tables = [format!("{r}.tenants"), format!("{r}.migrations"), format!("{r}.row_tenants")];
        let made: bool = sqlx::query_scalar(
            "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest($1::text[]) t",
        )
        .persistent(false)
        .bind(&tables[..])
        .fetch_one(&self.pool)
        .await?;
        Ok(made)
    }

    /// Takes the registry as made sure of, on a server of `flavour` (what another handle of
    /// this process found on the same database: `#[tenancy::test]` saves a round trip per
    /// test).
    #[cfg(feature = "testing")]
    pub(crate) fn assume_registry(&self, flavour: Flavour) {
        let _ = self.flavour.set(flavour);
        self.registry_ready.store(true, Ordering::Release);
    }

    /// The flavour, known once [`ensure_registry`](Self::ensure_registry) has run.
    pub(crate) fn flavour_now(&self) -> Flavour {
        self.flavour.get().copied().unwrap_or(Flavour::Postgres)
    }

    /// Whether this handle runs on Citus (after [`ensure_registry`](Self::ensure_registry)).
    pub(crate) fn on_citus(&self) -> bool {
        self.flavour_now() == Flavour::Citus
    }

    /// `migrations` as they are sent: on Citus, each statement Citus refuses in a
    /// multi-statement string in a block of its own ([`citus::for_citus`]).
    pub(crate) fn as_sent(&self, tenant: &Tenant, migrations: &[&Migration]) -> Vec<Migration> {
        if self.on_citus() {
            citus::for_citus(tenant, migrations)
        } else {
            migrations.iter().map(|m| (*m).clone()).collect()
        }
    }

    /// [`as_sent`](Self::as_sent), the last one followed by [`guard_sql::guard_added`]: a migration
    /// puts the placement guard of a container that has it on the tables it adds.
    pub(crate) fn as_migrated(&self, tenant: &Tenant, migrations: &[&Migration]) -> Vec<Migration> {
        let mut sent = self.as_sent(tenant, migrations);
        if let Some(last) = sent.last_mut() {
            let function = !self.no_guard_added.load(Ordering::Relaxed);
            let guard = guard_sql::guard_added(&self.registry, tenant, self.on_citus(), function);
            let sql = format!("{}\n;\n{guard};\n", last.sql.as_str());
            last.sql = sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(sql));
        }
        sent
    }

    /// `SET LOCAL lock_timeout …; SELECT pg_advisory_xact_lock(<tenant>)`: the tenant's
    /// lifecycle lock until the end of the transaction.
    pub(crate) fn lock_sql(&self, tenant: &Tenant) -> String {
        format!(
            "{}{}",
            sql::set_lock_timeout(&self.batch),
            sql::lock_tenant_named(&self.registry, tenant)
        )
    }

    /// Whether `tenant` is registered and whether its schema exists, read on `conn`.
    pub(crate) async fn found(
        &self,
        conn: &mut PgConnection,
        tenant: &Tenant,
    ) -> Result<Found, Error> {
        let (registered, container): (bool, bool) =
            sqlx::query_as(AssertSqlSafe(sql::registered_and_schema(&self.registry)))
                .persistent(self.persistent())
                .bind(tenant.as_str())
                .fetch_one(conn)
                .await?;
        Ok(Found {
            registered,
            container,
        })
    }

    /// When the server started ([`sql::SERVER_STARTED`]).
    async fn server_started(&self) -> Result<String, Error> {
        let sql = format!("SELECT {}", sql::SERVER_STARTED);
        let (started,): (String,) = self
            .rows(&sql, args!())
            .await?
            .pop()
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(started)
    }

    /// The session settings a migration could change, as one string.
    async fn fingerprint(conn: &mut PgConnection) -> Result<String, Error> {
        Ok(
            sqlx::query_scalar(AssertSqlSafe(sql::session_fingerprint()))
                .fetch_one(conn)
                .await?,
        )
    }

    /// Returns `conn` to the pool only if its session settings are what they were before the
    /// operation (they are put back inside it; a hook could still change them in ways that
    /// does not cover); otherwise closes it.
    async fn release(
        mut conn: PoolConnection<Postgres>,
        before: Option<String>,
    ) -> Result<(), Error> {
        if let Some(before) = before {
            if Self::fingerprint(&mut conn).await? != before {
                conn.close().await?;
            }
        }
        Ok(())
    }
}

/// A failed migration, named: Citus's refusals say what to write instead.
fn migration_failed(tenant: &Tenant, m: &Migration, source: sqlx::Error) -> Error {
    match citus::refusal(&source) {
        Some(refusal) => citus::refused(tenant, m.version, refusal, source),
        None => Error::migration(tenant, m, source),
    }
}

/// What a registry function's row says of a container, in its columns 1 and 2: whether it is
/// registered, whether its schema exists.
fn found_at(row: &PgRow) -> Result<Found, sqlx::Error> {
    Ok(Found {
        registered: row.try_get(1)?,
        container: row.try_get(2)?,
    })
}

fn tenant_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    if super::is_unique_violation(&err) {
        Error::TenantExists {
            tenant: tenant.clone(),
        }
    } else {
        err.into()
    }
}

fn schema_taken(err: sqlx::Error, tenant: &Tenant) -> Error {
    if super::is_duplicate_schema(&err) {
        crate::backend::container_exists::<sqlx::Postgres>(tenant)
    } else {
        err.into()
    }
}

impl Store<Postgres> for PgStore {
    type Settings = PgSettings;
    type Op = PgOp;

    fn open(with: Opening<'_, Postgres, PgSettings>) -> Result<Self, Error> {
        let settings = with.settings;
        Ok(PgStore {
            pool: with.pool,
            registry: with.registry.clone(),
            batch: BatchOptions {
                shared_schemas: settings.shared_schemas.clone(),
                lock_timeout: with.lock_timeout,
            },
            pgbouncer: settings.pgbouncer,
            row_security: settings
                .row_security
                .then(|| sql::enter_rows(with.registry)),
            flavour: settings.flavour.map(OnceLock::from).unwrap_or_default(),
            registry_ready: AtomicBool::new(false),
            no_create_in: AtomicBool::new(false),
            no_create_in_many: AtomicBool::new(false),
            no_guard_added: AtomicBool::new(false),
        })
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn exists(&self, tenant: &Tenant) -> Result<bool, Error> {
        self.ensure_registry().await?;
        let found: Vec<(bool,)> = self
            .rows(&sql::exists(&self.registry), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(tenant))?;
        Ok(found.first().is_some_and(|r| r.0))
    }

    async fn list(&self) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let names: Vec<(String,)> = self.rows(&sql::list(&self.registry), args!()).await?;
        names
            .into_iter()
            .map(|(n,)| Tenant::new(n).map_err(Error::from))
            .collect()
    }

    async fn histories(&self) -> Result<Vec<(Tenant, History)>, Error> {
        self.ensure_registry().await?;
        let rows: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
            .rows(&sql::applied_all(&self.registry), args!())
            .await?;
        rows.into_iter()
            .map(|(name, versions, checksums)| {
                let applied = versions.into_iter().zip(checksums).collect();
                Ok((Tenant::new(name)?, History::clean(applied)))
            })
            .collect()
    }

    async fn history_of(&self, tenant: &Tenant) -> Result<Option<History>, Error> {
        if !self.exists(tenant).await? {
            return Ok(None);
        }
        let applied: Applied = self
            .rows(&sql::applied(&self.registry), args!(tenant.as_str()))
            .await?;
        Ok(Some(History::clean(applied)))
    }

    async fn pool_for(&self, _tenant: &Tenant) -> Result<PgPool, Error> {
        Ok(self.pool.clone())
    }

    async fn begin(&self, operation: Operation) -> Result<PgOp, Error> {
        self.ensure_registry().await?;
        let mut conn = self.pool.acquire().await?;
        let user_sql = matches!(
            operation,
            Operation::Create
                | Operation::Migrate
                | Operation::Clone
                | Operation::Import
                | Operation::Promote
        );
        let before = match user_sql && !self.pgbouncer {
            true => Some(Self::fingerprint(&mut conn).await?),
            false => None,
        };
        // A clone or an export reads its source from one snapshot: every table as of one
        // moment, while the source's writes go on (locking its tables instead could deadlock
        // with a writer). Taken once the operation holds its locks (`locks_first`): taken
        // before, it would not show what a rename, drop, migrate or `create_in` that held one
        // of them committed while this waited.
        let locks_first = matches!(operation, Operation::Clone | Operation::Export);
        let mut opening = String::from(match operation {
            Operation::Clone | Operation::Export => "BEGIN ISOLATION LEVEL REPEATABLE READ;\n",
            _ => "BEGIN;\n",
        });
        if matches!(
            operation,
            Operation::Create | Operation::Clone | Operation::Import | Operation::Promote
        ) && self.on_citus()
        {
            // The tenant's schema is distributed, whatever the database's sharding setting.
            opening.push_str(citus::SHARDING_ON);
            opening.push_str(";\n");
        }
        if user_sql {
            opening.push_str(&sql::save_session(&self.registry));
            opening.push_str(";\n");
        }
        Ok(PgOp {
            conn: Some(conn),
            opening,
            before,
            saved: user_sql,
            deferred: Default::default(),
            locks_first,
        })
    }

    async fn lock(&self, op: &mut PgOp, tenant: &Tenant) -> Result<(), Error> {
        self.lock_each(op, &[tenant]).await
    }

    /// In the operation's transaction, one lock after the other; in an operation whose
    /// snapshot must come after its first locks, those all before its transaction begins, in one
    /// round trip ([`sql::lock_then_begin`]). If that fails, the session may still hold some of
    /// them, which no rollback releases: the connection is closed, never pooled.
    async fn lock_each(&self, op: &mut PgOp, tenants: &[&Tenant]) -> Result<(), Error> {
        if !op.locks_first || tenants.is_empty() {
            for tenant in tenants {
                op.raw(&self.lock_sql(tenant)).await?;
            }
            return Ok(());
        }
        op.locks_first = false;
        let opening = std::mem::take(&mut op.opening);
        let batch = sql::lock_then_begin(&self.registry, tenants, &self.batch, &opening);
        let sent = sqlx::raw_sql(AssertSqlSafe(batch)).execute(op.conn()).await;
        if let Err(err) = sent {
            if let Some(conn) = op.conn.take() {
                drop(conn.detach());
            }
            return Err(err.into());
        }
        Ok(())
    }

    async fn inspect(&self, op: &mut PgOp, tenant: &Tenant) -> Result<Found, Error> {
        self.found(op.conn(), tenant).await
    }

    async fn history(&self, op: &mut PgOp, tenant: &Tenant) -> Result<History, Error> {
        let applied: Applied = sqlx::query_as(AssertSqlSafe(sql::applied(&self.registry)))
            .persistent(self.persistent())
            .bind(tenant.as_str())
            .fetch_all(op.conn())
            .await?;
        Ok(History::clean(applied))
    }

    async fn make(&self, op: &mut PgOp, tenant: &Tenant) -> Result<(), Error> {
        sqlx::query(AssertSqlSafe(sql::register(&self.registry)))
            .persistent(self.persistent())
            .bind(tenant.as_str())
            .execute(op.conn())
            .await
            .map_err(|e| tenant_taken(e, tenant))?;
        op.raw(&sql::create_schema(tenant))
            .await
            .map_err(|e| schema_taken(e, tenant))
    }

    async fn enter(&self, op: &mut PgOp, tenant: &Tenant) -> Result<(), Error> {
        Ok(op
            .raw(&sql::set_local_search_path(tenant, &self.batch))
            .await?)
    }

    /// As a batch of one.
    async fn apply_one(
        &self,
        op: &mut PgOp,
        tenant: &Tenant,
        m: &Migration,
        direction: Direction,
    ) -> Result<(), Error> {
        self.apply(op, tenant, &[m], direction).await
    }

    /// All at once: each migration sent in turn, then all of them recorded in one statement.
    async fn apply(
        &self,
        op: &mut PgOp,
        tenant: &Tenant,
        migrations: &[&Migration],
        direction: Direction,
    ) -> Result<(), Error> {
        if migrations.is_empty() {
            return Ok(());
        }
        let mut millis = Vec::with_capacity(migrations.len());
        for m in self.as_migrated(tenant, migrations) {
            let started = Instant::now();
            sqlx::raw_sql(m.sql.clone())
                .execute(op.conn())
                .await
                .map_err(|source| migration_failed(tenant, &m, source))?;
            millis.push(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        }
        let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        let record = match direction {
            Direction::Up => sqlx::query(AssertSqlSafe(sql::record_applied(&self.registry)))
                .bind(tenant.as_str())
                .bind(versions)
                .bind(
                    migrations
                        .iter()
                        .map(|m| m.description.to_string())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    migrations
                        .iter()
                        .map(|m| m.checksum.to_vec())
                        .collect::<Vec<_>>(),
                )
                .bind(millis),
            Direction::Down => sqlx::query(AssertSqlSafe(sql::forget_applied(&self.registry)))
                .bind(tenant.as_str())
                .bind(versions),
        };
        record
            .persistent(self.persistent())
            .execute(op.conn())
            .await?;
        Ok(())
    }

    async fn hook(
        &self,
        op: &mut PgOp,
        tenant: &Tenant,
        hook: CreateHook<Postgres>,
    ) -> Result<(), Error> {
        // Again: a migration may have set its own.
        self.enter(op, tenant).await?;
        hook(op.conn(), tenant).await.map_err(|source| Error::Hook {
            tenant: tenant.clone(),
            source,
        })
    }

    async fn remove(&self, op: &mut PgOp, tenant: &Tenant, found: Found) -> Result<(), Error> {
        let mut batch = sql::unregister_named(&self.registry, tenant);
        if found.container {
            batch.push_str(";\n");
            batch.push_str(&sql::drop_schema(tenant));
        }
        Ok(op.raw(&batch).await?)
    }

    async fn rename(&self, op: &mut PgOp, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        sqlx::query(AssertSqlSafe(sql::rename(&self.registry)))
            .persistent(self.persistent())
            .bind(old.as_str())
            .bind(new.as_str())
            .execute(op.conn())
            .await
            .map_err(|e| tenant_taken(e, new))?;
        op.raw(&sql::rename_schema(old, new))
            .await
            .map_err(|e| schema_taken(e, new))
    }

    /// In the operation's transaction ([`super::copy`]), whose snapshot (`REPEATABLE READ`)
    /// every table of `from` is read from: one batch of `INSERT … SELECT`s and `setval`s.
    async fn copy_rows(&self, op: &mut PgOp, from: &Tenant, to: &Tenant) -> Result<(), Error> {
        super::copy::copy_rows(op.conn(), self.persistent(), from, to, !self.on_citus()).await
    }

    async fn finish<T: Send>(&self, mut op: PgOp, result: Result<T, Error>) -> Result<T, Error> {
        let Some(mut conn) = op.conn.take() else {
            // Closed when its first locks failed ([`Store::lock_each`]): that error is the
            // result, and nothing of the operation happened.
            return result;
        };
        let before = op.before.take();
        let ended = match &result {
            Ok(_) => {
                let end = if op.saved {
                    format!("{};\nCOMMIT", sql::restore_session(&self.registry))
                } else {
                    "COMMIT".to_owned()
                };
                sqlx::raw_sql(AssertSqlSafe(end)).execute(&mut *conn).await
            }
            Err(_) => sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await,
        };
        if let Err(err) = ended {
            // The connection is in an unknown state: closed, never pooled.
            drop(conn.detach());
            return match result {
                // The commit failed: nothing of the operation happened.
                Ok(_) => Err(err.into()),
                // The original error matters more than a failure to roll back.
                Err(original) => Err(original),
            };
        }
        Self::release(conn, before).await?;
        result
    }

    async fn explain(&self, tenant: &Tenant, err: Error) -> Error {
        let timed_out = err.as_sqlx().is_some_and(super::is_lock_timeout);
        match (timed_out, self.batch.lock_timeout) {
            (true, Some(waited)) => {
                let mut args = PgArguments::default();
                let _ = args.add(tenant.as_str());
                let holders: Vec<(i32, String, String, String)> = self
                    .rows(&sql::lock_holders(&self.registry), args)
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

    /// The common case in one round trip: any failure leaves nothing behind (one implicit
    /// transaction) and falls through to the step-at-a-time path, which redoes the work and
    /// reports the exact error (name taken, schema there, which migration failed).
    async fn create_at_once(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<bool, Error> {
        self.ensure_registry().await?;
        let ups: Vec<&Migration> = migrations.ups().collect();
        let sent = self.as_sent(tenant, &ups);
        let sent: Vec<&Migration> = sent.iter().collect();
        let mut batch = String::new();
        if self.on_citus() {
            batch.push_str(citus::SHARDING_ON);
            batch.push_str(";\n");
        }
        batch.push_str(&sql::create_batch(
            &self.registry,
            tenant,
            &sent,
            &self.batch,
        ));
        Ok(self.sent_whole(batch).await)
    }

    async fn history_unlocked(&self, tenant: &Tenant) -> Result<Option<History>, Error> {
        self.ensure_registry().await?;
        let applied: Applied = self
            .rows(&sql::applied(&self.registry), args!(tenant.as_str()))
            .await?;
        Ok(Some(History::clean(applied)))
    }

    /// One round trip ([`sql::migrate_batch`]): under the tenant's lock it checks that the
    /// tenant is still as read, or changes nothing.
    async fn migrate_at_once(
        &self,
        tenant: &Tenant,
        read: &History,
        pending: &[&Migration],
    ) -> Result<bool, Error> {
        let versions: Vec<i64> = read.applied.iter().map(|(v, _)| *v).collect();
        let sent = self.as_migrated(tenant, pending);
        let sent: Vec<&Migration> = sent.iter().collect();
        let batch = sql::migrate_batch(&self.registry, tenant, &versions, &sent, &self.batch);
        Ok(self.sent_whole(batch).await)
    }

    /// One catalog query finds who is behind; a second reads what those have applied, only if
    /// there are any, so a no-op run stays one small query.
    async fn behind(&self, migrations: &Migrations) -> Result<Option<Behind>, Error> {
        self.ensure_registry().await?;
        let (versions, checksums) = (migrations.versions(), migrations.checksums());
        let rows: Vec<(String, bool)> = self
            .rows(&sql::behind(&self.registry), args!(versions, checksums))
            .await?;
        let behind: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
        let mut applied: std::collections::HashMap<String, Applied> = Default::default();
        if !behind.is_empty() {
            let found: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
                .rows(&sql::applied_of(&self.registry), args!(&behind))
                .await?;
            for (tenant, versions, checksums) in found {
                applied.insert(tenant, versions.into_iter().zip(checksums).collect());
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for (name, is_behind) in rows {
            let read = is_behind.then(|| History::clean(applied.remove(&name).unwrap_or_default()));
            out.push((Tenant::new(name)?, read));
        }
        Ok(Some(out))
    }

    async fn run_started(&self) -> Result<String, Error> {
        self.server_started().await
    }

    /// The run's durable commit ([`sql::record_run`]): it flushes the migrations committed
    /// without waiting for the disk, unless the server restarted since `started` (read before
    /// the first of them): those may have been lost with the restart, and the run fails with
    /// [`Error::ServerRestarted`] instead of reporting them.
    async fn run_finished(
        &self,
        started: &str,
        changed: usize,
        operation: &'static str,
    ) -> Result<(), Error> {
        let changed = i64::try_from(changed).unwrap_or(i64::MAX);
        super::pool_rows(
            &self.pool,
            self.pgbouncer,
            &sql::record_run(&self.registry),
            args!(changed),
        )
        .await?;
        // Read after that commit: the same start time means no restart since `started`, so the
        // commit flushed every migration of the run.
        if self.server_started().await? != started {
            return Err(Error::ServerRestarted { operation });
        }
        Ok(())
    }
}
