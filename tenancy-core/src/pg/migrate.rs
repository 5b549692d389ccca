//! Per-tenant migrations on PostgreSQL: which tenants are behind (one query), migrating one or
//! all of them with bounded parallelism and a lock per tenant, rolling back, and status.
//!
//! Each tenant is migrated in one transaction holding that tenant's advisory lock: a tenant is
//! either fully at the new version or unchanged, even if the run is aborted (future dropped,
//! process killed), and two processes migrating at once never apply a migration twice.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::migrate::Migration;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Arguments, AssertSqlSafe, Connection, Postgres, Transaction};

use super::citus;
use super::lifecycle::{args, settle};
use super::sql;
use crate::error::Error;
use crate::fan_out::run_report;
use crate::lifecycle::Tenants;
use crate::pg;
use crate::plan::Applied;
use crate::report::{MigrateOptions, Outcome, Report, TenantResult, TenantStatus};
use crate::tenant::Tenant;
use crate::trace;

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
    sqlx::query(AssertSqlSafe(sql::record_applied(tenants.registry())))
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
    let path = sql::set_local_search_path(tenant, tenants.batch());
    sqlx::raw_sql(AssertSqlSafe(path))
        .execute(&mut **tx)
        .await?;
    let mut millis = Vec::with_capacity(migrations.len());
    for m in migrations {
        let started = Instant::now();
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut **tx)
            .await
            .map_err(|source| match citus::refusal(&source) {
                Some(refusal) => Error::CitusUnsupported {
                    tenant: tenant.clone(),
                    version: m.version,
                    refusal,
                    source: source.into(),
                },
                None => Error::Migration {
                    tenant: tenant.clone(),
                    version: m.version,
                    description: m.description.to_string(),
                    source: source.into(),
                },
            })?;
        millis.push(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    }
    Ok(millis)
}

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
        let span = trace::migration::<Postgres>("migrate", &tenant, self.latest_version());
        let result = trace::within(span, async {
            self.ensure_registry().await?;
            let applied: Applied = self
                .rows(&sql::applied(self.registry()), args!(tenant.as_str()))
                .await?;
            let started = self.server_started().await?;
            let outcome = self.migrate_read(&tenant, &applied).await?;
            if matches!(outcome, Outcome::Migrated(_)) {
                self.record_run(1, &started, "migrate").await?;
            }
            Ok(outcome)
        })
        .await;
        self.explained(&tenant, result).await
    }

    /// When the server started ([`sql::SERVER_STARTED`]), read before a run's first migration.
    async fn server_started(&self) -> Result<String, Error> {
        let sql = format!("SELECT {}", sql::SERVER_STARTED);
        let (started,): (String,) = self
            .rows(&sql, args!())
            .await?
            .pop()
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(started)
    }

    /// The run's durable commit: see [`sql::record_run`]. It flushes the migrations committed
    /// without waiting for the disk, unless the server restarted since `started` (read before
    /// the first of them): those may have been lost with the restart, and the run fails with
    /// [`Error::ServerRestarted`] instead of reporting them.
    async fn record_run(
        &self,
        migrated: usize,
        started: &str,
        operation: &'static str,
    ) -> Result<(), Error> {
        let migrated = i64::try_from(migrated).unwrap_or(i64::MAX);
        pg::pool_rows(
            self.pool(),
            self.pgbouncer(),
            &sql::record_run(self.registry()),
            {
                let mut args = PgArguments::default();
                args.add(migrated).map_err(sqlx::Error::Encode)?;
                args
            },
        )
        .await?;
        // Read after that commit: the same start time means no restart since `started`, so the
        // commit flushed every migration of the run.
        if self.server_started().await? != started {
            return Err(Error::ServerRestarted { operation });
        }
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
        let pending = self.migrations().pending(tenant, applied)?;
        if pending.is_empty() {
            return Ok(Outcome::UpToDate);
        }
        let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
        let for_citus = if self.on_citus() {
            citus::for_citus(&pending)
        } else {
            Vec::new()
        };
        let sent: Vec<&Migration> = if self.on_citus() {
            for_citus.iter().collect()
        } else {
            pending.clone()
        };
        let batch = sql::migrate_batch(self.registry(), tenant, &versions, &sent, self.batch());
        match sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(self.pool())
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
        let span = trace::migration::<Postgres>("rollback", &tenant, Some(target));
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
        let registry = self.registry();
        let mut conn = self.pool().acquire().await?;
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
                    let pending = self.citus_ready(self.migrations().pending(tenant, &applied)?);
                    apply(self, &mut tx, tenant, &pending.iter().collect::<Vec<_>>()).await?;
                    Outcome::Migrated(pending.iter().map(|m| m.version).collect())
                }
                Direction::Down(target) => {
                    let downs =
                        self.citus_ready(self.migrations().to_revert(tenant, &applied, *target)?);
                    revert(self, &mut tx, tenant, &downs.iter().collect::<Vec<_>>()).await?;
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

    /// `migrations` as they are sent: on Citus, rewritten by [`citus::for_citus`].
    fn citus_ready(&self, migrations: Vec<&Migration>) -> Vec<Migration> {
        if self.on_citus() {
            citus::for_citus(&migrations)
        } else {
            migrations.into_iter().cloned().collect()
        }
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
    /// Fails as a whole only if the catalog query or that last commit fails, or the server
    /// restarted during the run ([`Error::ServerRestarted`]): the tenants' migrations have then
    /// committed, but are not known to be durable; a rerun reports them up to date or applies
    /// them again.
    pub async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        let span = trace::run::<Postgres>("migrate_all", self.latest_version());
        trace::within(span, self.migrate_all_untraced(options)).await
    }

    /// The newest migration version, which `migrate` and `migrate_all` go to.
    fn latest_version(&self) -> Option<i64> {
        self.migrations().versions().last().copied()
    }

    async fn migrate_all_untraced(&self, options: MigrateOptions) -> Result<Report, Error> {
        self.ensure_registry().await?;
        let (versions, checksums) = (self.migrations().versions(), self.migrations().checksums());
        let rows: Vec<(String, bool)> = self
            .rows(&sql::behind(self.registry()), args!(versions, checksums))
            .await?;
        // What the tenants with work have applied, in a second query only if there are any,
        // so a no-op run stays one small query.
        let behind: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
        let has_work = !behind.is_empty();
        let mut applied: HashMap<String, Applied> = HashMap::new();
        if has_work {
            let found: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
                .rows(&sql::applied_of(self.registry()), args!(&behind))
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
        // Read before any tenant commits (only when there is work: a no-op run stays one query).
        let started = match has_work {
            true => self.server_started().await?,
            false => String::new(),
        };
        let report = self.run_all(rows, Direction::Up, options).await?;
        let migrated = report.changed().count();
        if migrated > 0 {
            self.record_run(migrated, &started, "migrate_all").await?;
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
        let span = trace::run::<Postgres>("rollback_all", Some(target));
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
        let concurrency = options
            .concurrency
            .unwrap_or_else(|| self.pool().options().get_max_connections() as usize);
        let target = match direction {
            Direction::Up => self.latest_version(),
            Direction::Down(target) => Some(target),
        };
        let run = |tenant: Tenant, applied: Applied| {
            let this = self.clone();
            let span = trace::migration::<Postgres>(direction.operation(), &tenant, target);
            trace::within(span, async move {
                let result = match direction {
                    Direction::Up => this.migrate_read(&tenant, &applied).await,
                    Direction::Down(_) => this.run_one(&tenant, &direction).await,
                };
                this.explained(&tenant, result).await
            })
        };
        let progress = options.on_progress.as_ref();
        Ok(run_report(tenants, work, concurrency, progress, run).await)
    }

    /// Every tenant's applied, pending and changed migrations, from one query.
    pub async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        self.ensure_registry().await?;
        let rows: Vec<(String, Vec<i64>, Vec<Vec<u8>>)> = self
            .rows(&sql::applied_all(self.registry()), args!())
            .await?;
        rows.into_iter()
            .map(|(name, versions, checksums)| {
                let applied = versions.into_iter().zip(checksums).collect();
                Ok(self.migrations().status(Tenant::new(name)?, applied))
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
        let registry = self.registry();
        let applied: Applied = self
            .rows(&sql::applied(registry), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(&tenant))?;
        Ok(self.migrations().status(tenant, applied))
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
    sqlx::query(AssertSqlSafe(sql::forget_applied(tenants.registry())))
        .persistent(tenants.persistent())
        .bind(tenant.as_str())
        .bind(downs.iter().map(|m| m.version).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
