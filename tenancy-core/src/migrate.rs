//! Per-tenant migrations: which tenants are behind (one query), migrating one or all of them
//! with bounded parallelism and a lock per tenant, rolling back, and status.
//!
//! Each tenant is migrated in one transaction holding that tenant's advisory lock: a tenant is
//! either fully at the new version or unchanged, even if the run is aborted (future dropped,
//! process killed), and two processes migrating at once never apply a migration twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sqlx::migrate::Migration;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Arguments, AssertSqlSafe, Connection, Postgres, Transaction};

use crate::error::Error;
use crate::fan_out::run_bounded;
use crate::lifecycle::{args, settle, Tenants};
use crate::sql::lifecycle as sql;
use crate::tenant::Tenant;
use crate::trace;

/// The tenant migrations of a [`Tenants`] handle, sorted by version.
#[derive(Clone)]
pub(crate) struct Migrations {
    all: Vec<Migration>,
    ignore_missing: bool,
    versions: Vec<i64>,
    checksums: Vec<Vec<u8>>,
}

impl Migrations {
    pub(crate) fn new(mut all: Vec<Migration>, ignore_missing: bool) -> Result<Self, Error> {
        if let Some(m) = all.iter().find(|m| m.no_tx) {
            return Err(Error::NonTransactionalMigration {
                version: m.version,
                description: m.description.to_string(),
            });
        }
        all.sort();
        let ups = all.iter().filter(|m| m.migration_type.is_up_migration());
        let (versions, checksums) = ups.map(|m| (m.version, m.checksum.to_vec())).unzip();
        Ok(Migrations {
            all,
            ignore_missing,
            versions,
            checksums,
        })
    }

    pub(crate) fn all(&self) -> &[Migration] {
        &self.all
    }

    pub(crate) fn len(&self) -> usize {
        self.versions.len()
    }

    pub(crate) fn ignore_missing(&self) -> bool {
        self.ignore_missing
    }

    /// The up migrations, by version.
    pub(crate) fn ups(&self) -> impl Iterator<Item = &Migration> {
        self.all
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
    }

    /// The status of `tenant`, which has `applied` (by version).
    pub(crate) fn status(&self, tenant: Tenant, applied: Applied) -> TenantStatus {
        let changed = applied
            .iter()
            .filter(|(v, c)| self.ups().any(|m| m.version == *v && *m.checksum != **c))
            .map(|(v, _)| *v)
            .collect();
        let versions: Vec<i64> = applied.into_iter().map(|(v, _)| v).collect();
        let pending = self
            .versions
            .iter()
            .copied()
            .filter(|v| !versions.contains(v))
            .collect();
        TenantStatus {
            tenant,
            applied: versions,
            pending,
            changed,
        }
    }

    fn down(&self, version: i64) -> Option<&Migration> {
        self.all
            .iter()
            .find(|m| m.version == version && m.migration_type.is_down_migration())
    }

    /// The up migrations `tenant` still needs, given what is applied. A changed checksum or an
    /// applied version unknown here (unless `ignore_missing`) is an error: nothing is re-run.
    pub(crate) fn pending(
        &self,
        tenant: &Tenant,
        applied: &[(i64, Vec<u8>)],
    ) -> Result<Vec<&Migration>, Error> {
        for (version, checksum) in applied {
            match self.ups().find(|m| m.version == *version) {
                Some(m) if *m.checksum != **checksum => {
                    return Err(Error::ChecksumMismatch {
                        tenant: tenant.clone(),
                        version: *version,
                    })
                }
                Some(_) => {}
                None if self.ignore_missing => {}
                None => {
                    return Err(Error::UnknownMigration {
                        tenant: tenant.clone(),
                        version: *version,
                    })
                }
            }
        }
        Ok(self
            .ups()
            .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
            .collect())
    }

    /// What [`pending`](Self::pending) would give for the tenant of `status`, from its status
    /// alone (no checksums needed: `status.changed` names the edited ones): the same checks in
    /// the same order, so a dry run and the real run cannot disagree.
    pub(crate) fn plan(&self, status: &TenantStatus) -> Result<Vec<i64>, Error> {
        for &version in &status.applied {
            if status.changed.contains(&version) {
                return Err(Error::ChecksumMismatch {
                    tenant: status.tenant.clone(),
                    version,
                });
            }
            if !self.versions.contains(&version) && !self.ignore_missing {
                return Err(Error::UnknownMigration {
                    tenant: status.tenant.clone(),
                    version,
                });
            }
        }
        Ok(status.pending.clone())
    }

    /// The down migrations that take `tenant` back to `target` (every applied version above it,
    /// newest first).
    pub(crate) fn to_revert(
        &self,
        tenant: &Tenant,
        applied: &[(i64, Vec<u8>)],
        target: i64,
    ) -> Result<Vec<&Migration>, Error> {
        let mut versions: Vec<i64> = applied
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v > target)
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
            .into_iter()
            .map(|version| {
                self.down(version).ok_or(Error::Irreversible {
                    tenant: tenant.clone(),
                    version,
                })
            })
            .collect()
    }
}

/// What migrating one tenant would do, found by [`Tenants::plan`] without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Nothing is pending.
    UpToDate,
    /// These versions would be applied, in order.
    Apply(Vec<i64>),
}

/// What migrating (or rolling back) one tenant did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was pending.
    UpToDate,
    /// These migrations were applied, in order.
    Migrated(Vec<i64>),
    /// These migrations were reverted, in order.
    RolledBack(Vec<i64>),
}

/// One tenant's line in a [`Report`].
#[derive(Debug)]
pub struct TenantResult<T = Outcome, E = Error> {
    /// The tenant.
    pub tenant: Tenant,
    /// What happened to it.
    pub result: Result<T, E>,
}

/// The per-tenant result of a run across tenants: [`Tenants::migrate_all`] or
/// [`Tenants::rollback_all`] (in tenant name order), or [`Tenants::for_each`] (in the order
/// run, with what its closure returned). A failing tenant does not stop the others.
#[derive(Debug)]
pub struct Report<T = Outcome, E = Error> {
    /// Every tenant, with what happened to it.
    pub tenants: Vec<TenantResult<T, E>>,
}

impl<T, E> Default for Report<T, E> {
    fn default() -> Self {
        Report {
            tenants: Vec::new(),
        }
    }
}

impl<T, E> Report<T, E> {
    /// Tenants that failed, with their errors.
    pub fn failed(&self) -> impl Iterator<Item = (&Tenant, &E)> {
        self.tenants
            .iter()
            .filter_map(|t| t.result.as_ref().err().map(|e| (&t.tenant, e)))
    }

    /// Tenants that succeeded, with their values.
    pub fn succeeded(&self) -> impl Iterator<Item = (&Tenant, &T)> {
        self.tenants
            .iter()
            .filter_map(|t| t.result.as_ref().ok().map(|v| (&t.tenant, v)))
    }

    /// Whether no tenant failed.
    pub fn is_success(&self) -> bool {
        self.failed().next().is_none()
    }
}

impl Report {
    /// Tenants where migrations were applied or reverted.
    pub fn changed(&self) -> impl Iterator<Item = &TenantResult> {
        self.tenants
            .iter()
            .filter(|t| matches!(t.result, Ok(Outcome::Migrated(_) | Outcome::RolledBack(_))))
    }

    /// How many tenants were already up to date.
    pub fn up_to_date(&self) -> usize {
        self.tenants
            .iter()
            .filter(|t| matches!(t.result, Ok(Outcome::UpToDate)))
            .count()
    }
}

/// Progress of a run across tenants, reported after each tenant that had work
/// ([`Tenants::migrate_all`]) or after each tenant ([`Tenants::for_each`]).
#[derive(Debug)]
pub struct Progress<'a, T = Outcome, E = Error> {
    /// Tenants finished so far (of those that had work).
    pub done: usize,
    /// Tenants that had work.
    pub total: usize,
    /// The tenant just finished.
    pub tenant: &'a Tenant,
    /// What happened to it.
    pub result: &'a Result<T, E>,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Options of [`Tenants::migrate_all`] and [`Tenants::rollback_all`].
#[derive(Clone, Default)]
pub struct MigrateOptions {
    /// How many tenants to migrate at once; default: the pool's maximum size.
    pub concurrency: Option<usize>,
    /// Called after each tenant that had work.
    pub on_progress: Option<ProgressFn>,
}

impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("concurrency", &self.concurrency)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl MigrateOptions {
    /// Sets the number of tenants migrated at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Sets the progress callback.
    pub fn on_progress(mut self, f: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }
}

/// One tenant's migration status, from [`Tenants::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    /// The tenant.
    pub tenant: Tenant,
    /// Applied versions, ascending.
    pub applied: Vec<i64>,
    /// Versions not yet applied, ascending.
    pub pending: Vec<i64>,
    /// Applied versions whose checksum differs from the migration's now.
    pub changed: Vec<i64>,
}

/// The session settings a migration could change (see
/// [`RESTORED_SETTINGS`](crate::sql::lifecycle::RESTORED_SETTINGS)), as one string.
pub(crate) async fn session_fingerprint(conn: &mut PgConnection) -> Result<String, Error> {
    Ok(
        sqlx::query_scalar(AssertSqlSafe(sql::session_fingerprint()))
            .fetch_one(conn)
            .await?,
    )
}

/// Runs `migrations` in `tenant` inside `tx` (with the tenant first on the transaction's
/// `search_path`) and records them. The caller has checked, under the tenant's lock, that the
/// tenant's schema exists.
pub(crate) async fn apply(
    tenants: &Tenants,
    tx: &mut Transaction<'_, Postgres>,
    tenant: &Tenant,
    migrations: &[&Migration],
) -> Result<(), Error> {
    if migrations.is_empty() {
        return Ok(());
    }
    let millis = run_in_tenant(tenants, tx, tenant, migrations).await?;
    sqlx::query(AssertSqlSafe(sql::record_applied(
        &tenants.inner().registry,
    )))
    .persistent(tenants.persistent())
    .bind(tenant.as_str())
    .bind(migrations.iter().map(|m| m.version).collect::<Vec<_>>())
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
    .bind(millis)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs each migration's SQL with `tenant` first on the transaction's `search_path`, returning
/// how long each took in milliseconds. A failure names the tenant and the migration.
async fn run_in_tenant(
    tenants: &Tenants,
    tx: &mut Transaction<'_, Postgres>,
    tenant: &Tenant,
    migrations: &[&Migration],
) -> Result<Vec<i64>, Error> {
    let path = sql::set_local_search_path(tenant, &tenants.inner().batch);
    sqlx::raw_sql(AssertSqlSafe(path))
        .execute(&mut **tx)
        .await?;
    let mut millis = Vec::with_capacity(migrations.len());
    for m in migrations {
        let started = Instant::now();
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut **tx)
            .await
            .map_err(|source| Error::Migration {
                tenant: tenant.clone(),
                version: m.version,
                description: m.description.to_string(),
                source: source.into(),
            })?;
        millis.push(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    }
    Ok(millis)
}

/// Applied migrations, `(version, checksum)` by version.
type Applied = Vec<(i64, Vec<u8>)>;

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down(i64),
}

impl Direction {
    fn operation(self) -> &'static str {
        match self {
            Direction::Up => "migrate",
            Direction::Down(_) => "rollback",
        }
    }
}

impl Tenants {
    /// Applies the pending migrations of tenant `name`, in one transaction under the tenant's
    /// lock. [`Error::NotATenant`] if `name` is not registered, [`Error::SchemaMissing`] if its
    /// schema is gone (nothing is run then); [`Error::Migration`] names the migration that
    /// failed (the tenant is then left as it was).
    pub async fn migrate(&self, name: impl AsRef<str>) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration("migrate", &tenant, self.latest_version());
        let result = trace::within(span, async {
            self.ensure_registry().await?;
            let applied: Applied = self
                .rows(
                    &sql::applied(&self.inner().registry),
                    args!(tenant.as_str()),
                )
                .await?;
            let outcome = self.migrate_read(&tenant, &applied).await?;
            if matches!(outcome, Outcome::Migrated(_)) {
                self.record_run(1).await?;
            }
            Ok(outcome)
        })
        .await;
        self.explained(&tenant, result).await
    }

    /// The run's durable commit: see [`sql::record_run`].
    async fn record_run(&self, migrated: usize) -> Result<(), Error> {
        let migrated = i64::try_from(migrated).unwrap_or(i64::MAX);
        self.session()
            .await?
            .execute(&sql::record_run(&self.inner().registry), &args!(migrated))
            .await?;
        Ok(())
    }

    /// Migrates `tenant`, whose applied migrations were read as `applied` (by version), in one
    /// round trip ([`sql::migrate_batch`]). If the batch fails for any reason (the tenant
    /// changed since it was read, is not registered, its schema is gone, a migration fails)
    /// nothing of it remains, and [`run_one`](Self::run_one) redoes the work a statement at a
    /// time under the lock: it finds the tenant's state afresh and names the exact error.
    /// Failures are rare, so the slower path costs nothing in the common case.
    async fn migrate_read(
        &self,
        tenant: &Tenant,
        applied: &[(i64, Vec<u8>)],
    ) -> Result<Outcome, Error> {
        let inner = self.inner();
        let pending = inner.migrations.pending(tenant, applied)?;
        if pending.is_empty() {
            return Ok(Outcome::UpToDate);
        }
        let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
        let batch = sql::migrate_batch(&inner.registry, tenant, &versions, &pending, &inner.batch);
        match sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&inner.pool)
            .await
        {
            Ok(_) => Ok(Outcome::Migrated(
                pending.iter().map(|m| m.version).collect(),
            )),
            Err(_) => self.run_one(tenant, &Direction::Up).await,
        }
    }

    /// Reverts every migration of tenant `name` above version `target` with its down migration,
    /// newest first, in one transaction. [`Error::Irreversible`] if one has no down migration,
    /// [`Error::SchemaMissing`] if the tenant's schema is gone (nothing is run then).
    pub async fn rollback(&self, name: impl AsRef<str>, target: i64) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration("rollback", &tenant, Some(target));
        let result = trace::within(span, async {
            self.ensure_registry().await?;
            self.run_one(&tenant, &Direction::Down(target)).await
        })
        .await;
        self.explained(&tenant, result).await
    }

    /// Migrates or rolls back `tenant` a statement at a time, in one transaction under the
    /// tenant's lock, after checking there that the tenant is registered and its schema exists.
    async fn run_one(&self, tenant: &Tenant, direction: &Direction) -> Result<Outcome, Error> {
        let inner = self.inner();
        let registry = &inner.registry;
        let mut conn = inner.pool.acquire().await?;
        let before = self.session_check(&mut conn).await?;
        let mut tx = conn.begin().await?;
        let result = async {
            sqlx::raw_sql(AssertSqlSafe(sql::save_session(registry)))
                .execute(&mut *tx)
                .await?;
            self.lock(&mut tx, tenant).await?;
            let (registered, schema) = self.registered_and_schema(&mut tx, tenant).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: tenant.clone(),
                });
            }
            if !schema {
                return Err(Error::SchemaMissing {
                    tenant: tenant.clone(),
                });
            }
            let applied: Applied = sqlx::query_as(AssertSqlSafe(sql::applied(registry)))
                .persistent(self.persistent())
                .bind(tenant.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let outcome = match direction {
                Direction::Up => {
                    let pending = inner.migrations.pending(tenant, &applied)?;
                    apply(self, &mut tx, tenant, &pending).await?;
                    Outcome::Migrated(pending.iter().map(|m| m.version).collect())
                }
                Direction::Down(target) => {
                    let downs = inner.migrations.to_revert(tenant, &applied, *target)?;
                    revert(self, &mut tx, tenant, &downs).await?;
                    Outcome::RolledBack(downs.iter().map(|m| m.version).collect())
                }
            };
            sqlx::raw_sql(AssertSqlSafe(sql::restore_session(registry)))
                .execute(&mut *tx)
                .await?;
            Ok(match outcome {
                Outcome::Migrated(v) | Outcome::RolledBack(v) if v.is_empty() => Outcome::UpToDate,
                other => other,
            })
        }
        .await;
        let outcome = settle(tx, result).await?;
        self.release_clean(conn, before).await?;
        Ok(outcome)
    }

    /// Migrates every tenant that is behind. One catalog query finds them (a no-op run is one
    /// round trip); then up to `options.concurrency` tenants migrate at once, each in its own
    /// transaction under its own lock. A failing tenant does not stop the others; the
    /// [`Report`] lists every tenant with its outcome or error.
    ///
    /// Each tenant's pending migrations go in one round trip
    /// ([`sql::migrate_batch`](crate::sql::lifecycle::migrate_batch)) and commit without
    /// waiting for the WAL flush; after the last tenant, one ordinary commit (recording the run
    /// in the registry) flushes them all, so what the returned report says is durable.
    ///
    /// Fails as a whole only if the catalog query or that last commit fails (the tenants'
    /// migrations have then committed, but are not known to be durable; a rerun reports them
    /// up to date or applies them again).
    pub async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        let span = trace::run("migrate_all", self.latest_version());
        trace::within(span, self.migrate_all_untraced(options)).await
    }

    /// The newest migration version, which `migrate` and `migrate_all` go to.
    fn latest_version(&self) -> Option<i64> {
        self.inner().migrations.versions.last().copied()
    }

    async fn migrate_all_untraced(&self, options: MigrateOptions) -> Result<Report, Error> {
        self.ensure_registry().await?;
        let inner = self.inner();
        let (versions, checksums) = (&inner.migrations.versions, &inner.migrations.checksums);
        let rows: Vec<(String, bool)> = self
            .rows(&sql::behind(&inner.registry), args!(versions, checksums))
            .await?;
        // What the tenants with work have applied, in a second query only if there are any,
        // so a no-op run stays one small query.
        let behind: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
        let mut applied: HashMap<String, Applied> = HashMap::new();
        if !behind.is_empty() {
            let found: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
                .rows(&sql::applied_of(&inner.registry), args!(&behind))
                .await?;
            for (tenant, versions, checksums) in found {
                applied.insert(tenant, versions.into_iter().zip(checksums).collect());
            }
        }
        let rows = rows
            .into_iter()
            .map(|(name, behind)| {
                let work = behind.then(|| applied.remove(&name).unwrap_or_default());
                (name, work)
            })
            .collect();
        let report = self.run_all(rows, Direction::Up, options).await?;
        let migrated = report.changed().count();
        if migrated > 0 {
            self.record_run(migrated).await?;
        }
        Ok(report)
    }

    /// Rolls every tenant back to `target` (see [`rollback`](Self::rollback)), like
    /// [`migrate_all`](Self::migrate_all).
    pub async fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let span = trace::run("rollback_all", Some(target));
        trace::within(span, self.rollback_all_untraced(target, options)).await
    }

    async fn rollback_all_untraced(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let statuses = self.status().await?;
        let rows = statuses
            .into_iter()
            .map(|s| {
                let has_work = s.applied.iter().any(|v| *v > target);
                (s.tenant.as_str().to_owned(), has_work.then(Vec::new))
            })
            .collect();
        self.run_all(rows, Direction::Down(target), options).await
    }

    /// Runs `direction` on every tenant of `rows` that has work: `Some(applied)` (what the
    /// catalog query read as applied, used by the one-round-trip path of migrations).
    async fn run_all(
        &self,
        rows: Vec<(String, Option<Applied>)>,
        direction: Direction,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let mut tenants = Vec::with_capacity(rows.len());
        let mut work = Vec::new();
        for (index, (name, applied)) in rows.into_iter().enumerate() {
            let tenant = Tenant::new(name)?;
            if let Some(applied) = applied {
                work.push((index, tenant.clone(), applied));
            }
            tenants.push(TenantResult {
                tenant,
                result: Ok(Outcome::UpToDate),
            });
        }
        let total = work.len();
        let concurrency = options
            .concurrency
            .unwrap_or_else(|| self.pool().options().get_max_connections() as usize);
        let target = match direction {
            Direction::Up => self.latest_version(),
            Direction::Down(target) => Some(target),
        };
        let mut done = 0;
        let run = |(index, tenant, applied): (usize, Tenant, Applied)| {
            let this = self.clone();
            let span = trace::migration(direction.operation(), &tenant, target);
            trace::within(span, async move {
                let result = match direction {
                    Direction::Up => this.migrate_read(&tenant, &applied).await,
                    Direction::Down(_) => this.run_one(&tenant, &direction).await,
                };
                let result = this.explained(&tenant, result).await;
                (index, tenant, result)
            })
        };
        run_bounded(work, concurrency, run, |_, (index, tenant, result)| {
            done += 1;
            if let Some(progress) = &options.on_progress {
                progress(&Progress {
                    done,
                    total,
                    tenant: &tenant,
                    result: &result,
                });
            }
            tenants[index].result = result;
        })
        .await;
        Ok(Report { tenants })
    }

    /// Every tenant's applied, pending and changed migrations, from one query.
    pub async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        self.ensure_registry().await?;
        let inner = self.inner();
        let rows: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
            .rows(&sql::applied_all(&inner.registry), args!())
            .await?;
        rows.into_iter()
            .map(|(name, versions, checksums)| {
                let applied = versions.into_iter().zip(checksums).collect();
                Ok(inner.migrations.status(Tenant::new(name)?, applied))
            })
            .collect()
    }

    /// One tenant's applied, pending and changed migrations. [`Error::NotATenant`] if `name`
    /// is not registered.
    pub async fn status_of(&self, name: impl AsRef<str>) -> Result<TenantStatus, Error> {
        let tenant = self.parse(name)?;
        if !self.registered(&tenant).await? {
            return Err(Error::NotATenant { tenant });
        }
        let registry = &self.inner().registry;
        let applied: Applied = self
            .rows(&sql::applied(registry), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(&tenant))?;
        Ok(self.inner().migrations.status(tenant, applied))
    }
}

async fn revert(
    tenants: &Tenants,
    tx: &mut Transaction<'_, Postgres>,
    tenant: &Tenant,
    downs: &[&Migration],
) -> Result<(), Error> {
    if downs.is_empty() {
        return Ok(());
    }
    run_in_tenant(tenants, tx, tenant, downs).await?;
    sqlx::query(AssertSqlSafe(sql::forget_applied(
        &tenants.inner().registry,
    )))
    .persistent(tenants.persistent())
    .bind(tenant.as_str())
    .bind(downs.iter().map(|m| m.version).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::MigrationType;
    use sqlx::SqlSafeStr;

    fn m(version: i64, kind: MigrationType, sql: &'static str) -> Migration {
        Migration::new(
            version,
            format!("m{version}").into(),
            kind,
            sqlx::AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    }

    fn set() -> Migrations {
        Migrations::new(
            vec![
                m(2, MigrationType::ReversibleUp, "CREATE TABLE b ()"),
                m(1, MigrationType::Simple, "CREATE TABLE a ()"),
                m(2, MigrationType::ReversibleDown, "DROP TABLE b"),
                m(3, MigrationType::ReversibleUp, "CREATE TABLE c ()"),
                m(3, MigrationType::ReversibleDown, "DROP TABLE c"),
            ],
            false,
        )
        .unwrap()
    }

    fn t() -> Tenant {
        Tenant::new("acme").unwrap()
    }

    fn applied(set: &Migrations, versions: &[i64]) -> Vec<(i64, Vec<u8>)> {
        set.ups()
            .filter(|m| versions.contains(&m.version))
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect()
    }

    fn versions(ms: &[&Migration]) -> Vec<i64> {
        ms.iter().map(|m| m.version).collect()
    }

    #[test]
    fn pending_is_what_is_not_applied_in_version_order() {
        let s = set();
        assert_eq!(versions(&s.pending(&t(), &[]).unwrap()), [1, 2, 3]);
        assert_eq!(
            versions(&s.pending(&t(), &applied(&s, &[1, 3])).unwrap()),
            [2]
        );
        assert!(s
            .pending(&t(), &applied(&s, &[1, 2, 3]))
            .unwrap()
            .is_empty());
    }

    fn status(applied: &[i64], pending: &[i64], changed: &[i64]) -> TenantStatus {
        TenantStatus {
            tenant: t(),
            applied: applied.to_vec(),
            pending: pending.to_vec(),
            changed: changed.to_vec(),
        }
    }

    #[test]
    fn a_plan_makes_the_checks_of_the_run_in_its_order() {
        let s = set();
        assert_eq!(s.plan(&status(&[1], &[2, 3], &[])).unwrap(), [2, 3]);
        assert!(s.plan(&status(&[1, 2, 3], &[], &[])).unwrap().is_empty());
        assert!(matches!(
            s.plan(&status(&[1, 2], &[3], &[2])),
            Err(Error::ChecksumMismatch { version: 2, .. })
        ));
        // The first applied version with a problem decides, as in `pending`.
        assert!(matches!(
            s.plan(&status(&[1, 5, 7], &[2, 3], &[7])),
            Err(Error::UnknownMigration { version: 5, .. })
        ));
        let lenient = Migrations::new(s.all().to_vec(), true).unwrap();
        assert_eq!(
            lenient.plan(&status(&[1, 5], &[2, 3], &[])).unwrap(),
            [2, 3]
        );
    }

    #[test]
    fn a_changed_checksum_is_reported_not_rerun() {
        let s = set();
        let mut a = applied(&s, &[1, 2]);
        a[1].1 = vec![0; 4];
        assert!(matches!(
            s.pending(&t(), &a),
            Err(Error::ChecksumMismatch { version: 2, .. })
        ));
    }

    #[test]
    fn an_unknown_applied_version_is_an_error_unless_ignored() {
        let s = set();
        let mut a = applied(&s, &[1]);
        a.push((99, vec![1]));
        assert!(matches!(
            s.pending(&t(), &a),
            Err(Error::UnknownMigration { version: 99, .. })
        ));
        let lenient = Migrations::new(s.all().to_vec(), true).unwrap();
        assert_eq!(versions(&lenient.pending(&t(), &a).unwrap()), [2, 3]);
    }

    #[test]
    fn revert_goes_newest_first_and_needs_down_migrations() {
        let s = set();
        let a = applied(&s, &[1, 2, 3]);
        let downs = s.to_revert(&t(), &a, 1).unwrap();
        assert_eq!(versions(&downs), [3, 2]);
        assert!(downs.iter().all(|m| m.migration_type.is_down_migration()));
        assert!(matches!(
            s.to_revert(&t(), &a, 0),
            Err(Error::Irreversible { version: 1, .. })
        ));
        assert!(s.to_revert(&t(), &a, 3).unwrap().is_empty());
    }

    #[test]
    fn no_transaction_migrations_are_refused() {
        let mut bad = m(
            1,
            MigrationType::Simple,
            "CREATE INDEX CONCURRENTLY x ON a (id)",
        );
        bad.no_tx = true;
        assert!(matches!(
            Migrations::new(vec![bad], false),
            Err(Error::NonTransactionalMigration { version: 1, .. })
        ));
    }
}
