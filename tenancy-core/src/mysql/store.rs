//! The tenant lifecycle on MySQL / MariaDB: a DATABASE per tenant.
//!
//! The semantics mirror the PostgreSQL lifecycle (`lifecycle.rs`, `migrate.rs`) where the server
//! allows it. What differs, because DDL commits implicitly on MySQL:
//! - `create` cannot be one transaction: on any failure it compensates (drops the database it
//!   created and unregisters the tenant) before returning the error.
//! - A migration's bookkeeping row is written with `success = FALSE` before its SQL runs and
//!   flipped to `TRUE` after (like sqlx's own MySQL migrator); a revert flips it back to `FALSE`
//!   before the down SQL runs and deletes the row after. A `FALSE` row found later means a
//!   migration stopped part-way: [`Error::Dirty`], never a silent re-run.
//! - There is no `RENAME DATABASE`: `rename` moves the tables with one `RENAME TABLE` and refuses
//!   databases holding views, triggers, routines or events (which would not follow).
//! - The lifecycle lock is `GET_LOCK`, a session lock: taken and released on one connection.
//!
//! The server's error numbers are classified in the backend module ([`super`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::migrate::Migration;
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::{AssertSqlSafe, Connection};

use super::{
    is_database_exists, is_duplicate_entry, is_lock_wait_timeout, is_missing_table,
    is_unknown_database,
};
use crate::error::{Error, LockHolder};
use crate::lifecycle::Dropped;
use crate::plan::Migrations;
use crate::report::{Outcome, TenantStatus};
use crate::tenant::{InvalidTenantName, NameRule, Tenant};

// ---------------------------------------------------------------------------------------------
// SQL text.

/// Databases of the server itself; never tenants.
const SERVER_DATABASES: &[&str] = &["mysql", "sys", "performance_schema", "information_schema"];

/// The longest `GET_LOCK` name MySQL accepts.
const MAX_LOCK_NAME: usize = 64;

/// `name` as a MySQL identifier: in backticks, a backtick inside doubled.
pub(crate) fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `db`.`table`.
fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote(db), quote(table))
}

/// The `GET_LOCK` name of `tenant` under `registry` (or of the registry itself): readable when
/// it fits in 64 characters, else a stable 128-bit FNV-1a hash of it (stable across builds, so
/// every process computes the same name; a collision only serializes two tenants' operations).
fn lock_name(registry: &Tenant, tenant: Option<&Tenant>) -> String {
    let full = match tenant {
        Some(t) => format!("tenancy:{registry}:{t}"),
        None => format!("tenancy:{registry}"),
    };
    if full.len() <= MAX_LOCK_NAME {
        return full;
    }
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in full.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("tenancy:{hash:032x}")
}

/// The seconds of `d` for a server timeout variable that takes whole seconds (at least 1).
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// Applied migrations, `(version, checksum)` by version.
type Applied = Vec<(i64, Vec<u8>)>;

/// Rows of the registry's `migrations` table for one tenant: `(version, checksum, success)`.
type Rows = Vec<(i64, Vec<u8>, bool)>;

/// A row of the status query: a tenant and one of its migration rows, if any:
/// `(tenant, version, checksum, success)`.
type StatusRow = (String, Option<i64>, Option<Vec<u8>>, Option<bool>);

/// The successful rows of `rows`, or [`Error::Dirty`] for the first one that did not finish.
fn successful(tenant: &Tenant, rows: Rows) -> Result<Applied, Error> {
    if let Some((version, _, _)) = rows.iter().find(|r| !r.2) {
        return Err(Error::Dirty {
            tenant: tenant.clone(),
            version: *version,
        });
    }
    Ok(rows.into_iter().map(|(v, c, _)| (v, c)).collect())
}

// ---------------------------------------------------------------------------------------------
// The store.

/// The MySQL / MariaDB lifecycle: tenants are databases, recorded in a registry database.
#[doc(hidden)]
pub struct MySqlStore {
    /// The registry DATABASE's name (default `_tenancy`).
    pub(crate) registry: Tenant,
    /// How long a lifecycle operation waits for the tenant's lock (`GET_LOCK`), and for
    /// metadata and row locks (`lock_wait_timeout`, `innodb_lock_wait_timeout`, in whole
    /// seconds, at least 1) before [`Error::LockTimeout`].
    pub(crate) lock_timeout: Duration,
    /// Whether the registry was made sure of by this store.
    ready: AtomicBool,
}

impl std::fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlStore")
            .field("registry", &self.registry)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// Which way `run` moves a tenant.
#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down(i64),
}

/// One lifecycle operation's connection: a dedicated connection (never from the pool's idle
/// set, never returned to it) that holds the operation's `GET_LOCK` locks and runs everything.
///
/// Why dedicated rather than `pool.acquire()` + `USE` + `detach()`: the connection carries
/// session state the pool must never see again: the `GET_LOCK` locks, `USE <tenant>`, the lock
/// timeouts, and whatever session variables a migration sets. If the operation's future is
/// dropped half-way (cancelled), a pooled connection would go back to the pool still holding
/// the tenant's lock and default database; a dedicated connection is simply dropped, its socket
/// closes, and the server releases its locks. It costs one connect per lifecycle operation,
/// which is small next to the DDL these run. (The pool's `after_connect` hook, if any, does not
/// run on it.) Registry statements are always database-qualified, so `USE` only serves the
/// migrations' unqualified names.
struct Op {
    conn: MySqlConnection,
    /// Lock names taken, in order (a name may appear twice: `GET_LOCK` is re-entrant).
    held: Vec<String>,
}

impl Op {
    async fn open(pool: &MySqlPool, lock_timeout: Duration) -> Result<Op, Error> {
        let options = pool.connect_options();
        let mut conn = MySqlConnection::connect_with(&options).await?;
        let secs = whole_seconds(lock_timeout);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET SESSION lock_wait_timeout = {secs}, SESSION innodb_lock_wait_timeout = {secs}"
        )))
        .execute(&mut conn)
        .await?;
        Ok(Op {
            conn,
            held: Vec::new(),
        })
    }

    /// Takes the lock `name` for `tenant`, waiting at most `timeout`.
    async fn lock(
        &mut self,
        name: String,
        tenant: &Tenant,
        timeout: Duration,
    ) -> Result<(), Error> {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&name)
            .bind(timeout.as_secs_f64())
            .fetch_one(&mut self.conn)
            .await?;
        match got {
            Some(1) => {
                self.held.push(name);
                Ok(())
            }
            Some(_) => Err(Error::LockTimeout {
                tenant: tenant.clone(),
                waited: timeout,
                holders: self.holders(&name).await,
            }),
            None => Err(sqlx::Error::Protocol(format!("GET_LOCK({name:?}) returned NULL")).into()),
        }
    }

    /// The session holding lock `name`, if it still does (best effort: empty on any error).
    async fn holders(&mut self, name: &str) -> Vec<LockHolder> {
        let found: Result<Vec<(i64, String, String)>, _> = sqlx::query_as(
            "SELECT CAST(ID AS SIGNED), COALESCE(NULLIF(STATE, ''), COMMAND), \
             LEFT(COALESCE(INFO, ''), 200) \
             FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)",
        )
        .bind(name)
        .fetch_all(&mut self.conn)
        .await;
        found
            .unwrap_or_default()
            .into_iter()
            .map(|(id, state, query)| LockHolder {
                pid: i32::try_from(id).unwrap_or(i32::MAX),
                application_name: String::new(),
                state,
                query,
            })
            .collect()
    }

    /// Releases the last lock taken of `name`.
    async fn unlock(&mut self, name: &str) -> Result<(), Error> {
        if let Some(at) = self.held.iter().rposition(|n| n == name) {
            self.held.remove(at);
            sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(name)
                .execute(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    /// Releases every lock on this connection, then closes it. Errors are ignored: a closed
    /// connection's locks are released by the server anyway.
    async fn finish(mut self) {
        while let Some(name) = self.held.pop() {
            if sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&name)
                .execute(&mut self.conn)
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = self.conn.close().await;
    }

    /// Runs one statement without arguments.
    async fn run(&mut self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

impl MySqlStore {
    /// A store with its registry in database `registry`.
    pub(crate) fn new(registry: Tenant, lock_timeout: Duration) -> Self {
        MySqlStore {
            registry,
            lock_timeout,
            ready: AtomicBool::new(false),
        }
    }

    fn table(&self, name: &str) -> String {
        qualified(self.registry.as_str(), name)
    }

    /// Refuses names this backend cannot give a tenant: the registry's and the server's own
    /// databases.
    fn check_name(&self, tenant: &Tenant) -> Result<(), Error> {
        if *tenant == self.registry || SERVER_DATABASES.contains(&tenant.as_str()) {
            return Err(Error::InvalidTenantName(InvalidTenantName {
                name: tenant.as_str().to_owned(),
                rule: NameRule::Reserved,
            }));
        }
        Ok(())
    }

    /// The error of an operation on `tenant`, made specific: a server lock wait timeout becomes
    /// [`Error::LockTimeout`], and a database error names the tenant.
    fn explain(&self, tenant: &Tenant, err: Error) -> Error {
        if err.as_sqlx().is_some_and(is_lock_wait_timeout) {
            return Error::LockTimeout {
                tenant: tenant.clone(),
                waited: self.lock_timeout,
                holders: Vec::new(),
            };
        }
        err.about(tenant)
    }

    /// Opens an operation's connection, runs `f` on it, releases its locks and closes it.
    async fn with_op<T>(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        f: impl AsyncFnOnce(&mut Op) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut op = Op::open(pool, self.lock_timeout)
            .await
            .map_err(|e| self.explain(tenant, e))?;
        let result = async {
            self.ensure_registry_on(&mut op).await?;
            f(&mut op).await
        }
        .await;
        op.finish().await;
        result.map_err(|e| self.explain(tenant, e))
    }

    /// Creates the registry database and its tables if missing, once per store.
    #[cfg(test)]
    pub(crate) async fn ensure_registry(&self, pool: &MySqlPool) -> Result<(), Error> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.with_op(pool, &self.registry, async |_| Ok(())).await
    }

    /// [`ensure_registry`](Self::ensure_registry) on `op`'s connection, under the registry's
    /// lock (so concurrent first uses do not race on `CREATE … IF NOT EXISTS`).
    async fn ensure_registry_on(&self, op: &mut Op) -> Result<(), Error> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = lock_name(&self.registry, None);
        op.lock(name.clone(), &self.registry, self.lock_timeout)
            .await?;
        let created = op
            .run(format!(
                "CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;\n\
                 CREATE TABLE IF NOT EXISTS {tenants} (\n\
                 \x20 name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,\n\
                 \x20 created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)\n\
                 ) ENGINE = InnoDB;\n\
                 CREATE TABLE IF NOT EXISTS {migrations} (\n\
                 \x20 tenant VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,\n\
                 \x20 version BIGINT NOT NULL,\n\
                 \x20 description TEXT NOT NULL,\n\
                 \x20 checksum VARBINARY(1024) NOT NULL,\n\
                 \x20 success BOOLEAN NOT NULL,\n\
                 \x20 installed_on TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n\
                 \x20 execution_ms BIGINT NOT NULL DEFAULT 0,\n\
                 \x20 PRIMARY KEY (tenant, version)\n\
                 ) ENGINE = InnoDB",
                db = quote(self.registry.as_str()),
                tenants = self.table("tenants"),
                migrations = self.table("migrations"),
            ))
            .await;
        op.unlock(&name).await?;
        created?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Takes `tenant`'s lifecycle lock on `op`.
    async fn lock(&self, op: &mut Op, tenant: &Tenant) -> Result<(), Error> {
        op.lock(
            lock_name(&self.registry, Some(tenant)),
            tenant,
            self.lock_timeout,
        )
        .await
    }

    /// Whether `tenant` is registered and whether a database of its name exists.
    async fn registered_and_database(
        &self,
        conn: &mut MySqlConnection,
        tenant: &Tenant,
    ) -> Result<(bool, bool), Error> {
        let (registered, database): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM {} WHERE name = ?), \
             (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?)",
            self.table("tenants")
        )))
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .fetch_one(conn)
        .await?;
        Ok((registered > 0, database > 0))
    }

    /// `tenant`'s rows in the registry's `migrations` table, by version.
    async fn rows<'e, E>(&self, executor: E, tenant: &Tenant) -> Result<Rows, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::MySql>,
    {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT version, checksum, success FROM {} WHERE tenant = ? ORDER BY version",
            self.table("migrations")
        )))
        .bind(tenant.as_str())
        .fetch_all(executor)
        .await
    }

    /// Removes `tenant` and its migration rows from the registry, in one transaction.
    async fn unregister(&self, conn: &mut MySqlConnection, tenant: &Tenant) -> Result<(), Error> {
        let mut tx = conn.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE tenant = ?",
            self.table("migrations")
        )))
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE name = ?",
            self.table("tenants")
        )))
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs up migration `m` in `tenant` (the connection's default database), recorded with
    /// `success = FALSE` first and flipped to `TRUE` once it ran.
    async fn apply_up(&self, op: &mut Op, tenant: &Tenant, m: &Migration) -> Result<(), Error> {
        let migrations = self.table("migrations");
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {migrations} (tenant, version, description, checksum, success) \
             VALUES (?, ?, ?, ?, FALSE)"
        )))
        .bind(tenant.as_str())
        .bind(m.version)
        .bind(m.description.as_ref())
        .bind(m.checksum.as_ref())
        .execute(&mut op.conn)
        .await?;
        let started = Instant::now();
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut op.conn)
            .await
            .map_err(|source| migration_failed(tenant, m, source))?;
        let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {migrations} SET success = TRUE, execution_ms = ? \
             WHERE tenant = ? AND version = ?"
        )))
        .bind(millis)
        .bind(tenant.as_str())
        .bind(m.version)
        .execute(&mut op.conn)
        .await?;
        Ok(())
    }

    /// Runs down migration `m` in `tenant`: its row flipped to `success = FALSE` first, deleted
    /// once the down SQL ran.
    async fn apply_down(&self, op: &mut Op, tenant: &Tenant, m: &Migration) -> Result<(), Error> {
        let migrations = self.table("migrations");
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {migrations} SET success = FALSE WHERE tenant = ? AND version = ?"
        )))
        .bind(tenant.as_str())
        .bind(m.version)
        .execute(&mut op.conn)
        .await?;
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut op.conn)
            .await
            .map_err(|source| migration_failed(tenant, m, source))?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {migrations} WHERE tenant = ? AND version = ?"
        )))
        .bind(tenant.as_str())
        .bind(m.version)
        .execute(&mut op.conn)
        .await?;
        Ok(())
    }

    /// Creates `tenant`: its database (utf8mb4), its registry row and every up migration.
    /// [`Error::TenantExists`] if registered, [`Error::SchemaExists`] if a database of that name
    /// exists unregistered; [`Error::Migration`] names a failing migration. On any failure the
    /// database created here is dropped and the tenant unregistered before the error returns.
    /// Of concurrent creates of one name exactly one succeeds.
    pub(crate) async fn create(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<(), Error> {
        self.check_name(tenant)?;
        self.with_op(pool, tenant, async |op| {
            self.lock(op, tenant).await?;
            let (registered, database) = self.registered_and_database(&mut op.conn, tenant).await?;
            if registered {
                return Err(Error::TenantExists {
                    tenant: tenant.clone(),
                });
            }
            if database {
                return Err(Error::SchemaExists {
                    tenant: tenant.clone(),
                });
            }
            // Registered first: if the process dies half-way, what is left is a registered
            // tenant (with a `success = FALSE` row if a migration was running) that `drop`
            // removes, not an orphan database that blocks the name.
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (name) VALUES (?)",
                self.table("tenants")
            )))
            .bind(tenant.as_str())
            .execute(&mut op.conn)
            .await
            .map_err(|e| {
                if is_duplicate_entry(&e) {
                    Error::TenantExists {
                        tenant: tenant.clone(),
                    }
                } else {
                    e.into()
                }
            })?;
            // The registry row's timestamp tells this create's row from a later one of the
            // same name (see the compensation below). Read inside the compensated part: a
            // failure to read it is undone like any other.
            let mut registered_at = None;
            let mut created = false;
            let result = async {
                registered_at = self.registered_at(&mut op.conn, tenant).await?;
                self.create_registered(op, tenant, migrations, &mut created)
                    .await
            }
            .await;
            if let Err(err) = result {
                // Compensate. A migration may have left a transaction open: end it first so
                // the deletes below commit on their own.
                let _ = op.run("ROLLBACK".into()).await;
                let undone = self.undo_create(op, tenant, created).await;
                if let (Err(_), Some(registered_at)) = (undone, &registered_at) {
                    // This connection failed (killed, cut), and its lock went with it: undo on
                    // a fresh one, under the lock again. Whether `CREATE DATABASE` ran before
                    // the cut is unknown; only a database found there unregistered is not ours.
                    // (Without the timestamp, the row cannot be told from a later create's and
                    // is left, as when the process dies.)
                    let ours = !matches!(err, Error::SchemaExists { .. });
                    let _ = self
                        .compensate_elsewhere(pool, tenant, registered_at, ours)
                        .await;
                }
                return Err(err);
            }
            Ok(())
        })
        .await
    }

    /// When `tenant`'s registry row was written (`None`: not registered).
    async fn registered_at(
        &self,
        conn: &mut MySqlConnection,
        tenant: &Tenant,
    ) -> Result<Option<String>, Error> {
        // As text: no date-time type feature needed, and equality is what is asked.
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT CAST(created_at AS CHAR) FROM {} WHERE name = ?",
            self.table("tenants")
        )))
        .bind(tenant.as_str())
        .fetch_optional(conn)
        .await?)
    }

    /// Undoes a failed `create` of `tenant` whose own connection failed: on a fresh
    /// connection, under the tenant's lock, and only if the registry row is still the one that
    /// create wrote at `registered_at` (meanwhile, with the lock gone, another process may have
    /// dropped the tenant and created it anew). Then the database is this create's, if it
    /// exists at all (`drop_database`: the failure was not an unregistered database found in
    /// the way): the name was free when it registered it.
    async fn compensate_elsewhere(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        registered_at: &str,
        drop_database: bool,
    ) -> Result<(), Error> {
        let mut op = Op::open(pool, self.lock_timeout).await?;
        let result = async {
            self.lock(&mut op, tenant).await?;
            if self.registered_at(&mut op.conn, tenant).await?.as_deref() != Some(registered_at) {
                return Ok(());
            }
            self.undo_create(&mut op, tenant, drop_database).await
        }
        .await;
        op.finish().await;
        result
    }

    /// Drops `tenant`'s database (if `drop_database` and it exists) and unregisters it.
    async fn undo_create(
        &self,
        op: &mut Op,
        tenant: &Tenant,
        drop_database: bool,
    ) -> Result<(), Error> {
        if drop_database {
            op.run(format!(
                "DROP DATABASE IF EXISTS {}",
                quote(tenant.as_str())
            ))
            .await?;
        }
        self.unregister(&mut op.conn, tenant).await
    }

    /// The part of `create` after the tenant is registered; sets `created` once the database
    /// exists because of this call.
    async fn create_registered(
        &self,
        op: &mut Op,
        tenant: &Tenant,
        migrations: &Migrations,
        created: &mut bool,
    ) -> Result<(), Error> {
        op.run(format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4",
            quote(tenant.as_str())
        ))
        .await
        .map_err(|e| {
            if is_database_exists(&e) {
                Error::SchemaExists {
                    tenant: tenant.clone(),
                }
            } else {
                e.into()
            }
        })?;
        *created = true;
        op.run(format!("USE {}", quote(tenant.as_str()))).await?;
        for m in migrations.ups() {
            self.apply_up(op, tenant, m).await?;
        }
        Ok(())
    }

    /// Applies `tenant`'s pending migrations, under its lock. [`Error::NotATenant`],
    /// [`Error::SchemaMissing`] (nothing run), [`Error::Dirty`] if an earlier migration
    /// stopped part-way, [`Error::ChecksumMismatch`] / [`Error::UnknownMigration`] as on
    /// PostgreSQL, [`Error::Migration`] if one fails (its row then stays `success = FALSE`:
    /// the server cannot undo its DDL).
    pub(crate) async fn migrate(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<Outcome, Error> {
        self.run(pool, tenant, migrations, Direction::Up).await
    }

    /// Reverts every migration of `tenant` above `target` with its down migration, newest
    /// first, under its lock. [`Error::Irreversible`] (nothing run) if one has none; otherwise
    /// as [`migrate`](Self::migrate).
    pub(crate) async fn rollback(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        target: i64,
        migrations: &Migrations,
    ) -> Result<Outcome, Error> {
        self.run(pool, tenant, migrations, Direction::Down(target))
            .await
    }

    async fn run(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        migrations: &Migrations,
        direction: Direction,
    ) -> Result<Outcome, Error> {
        self.with_op(pool, tenant, async |op| {
            self.lock(op, tenant).await?;
            let (registered, database) = self.registered_and_database(&mut op.conn, tenant).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: tenant.clone(),
                });
            }
            if !database {
                return Err(Error::SchemaMissing {
                    tenant: tenant.clone(),
                });
            }
            let applied = successful(tenant, self.rows(&mut op.conn, tenant).await?)?;
            let plan = match direction {
                Direction::Up => migrations.pending(tenant, &applied)?,
                Direction::Down(target) => migrations.to_revert(tenant, &applied, target)?,
            };
            if plan.is_empty() {
                return Ok(Outcome::UpToDate);
            }
            op.run(format!("USE {}", quote(tenant.as_str()))).await?;
            for m in &plan {
                match direction {
                    Direction::Up => self.apply_up(op, tenant, m).await?,
                    Direction::Down(_) => self.apply_down(op, tenant, m).await?,
                }
            }
            let versions = plan.iter().map(|m| m.version).collect();
            Ok(match direction {
                Direction::Up => Outcome::Migrated(versions),
                Direction::Down(_) => Outcome::RolledBack(versions),
            })
        })
        .await
    }

    /// Drops `tenant`'s database and unregisters it, under its lock. [`Error::NotATenant`] if
    /// not registered; [`Dropped::Unregistered`] if its database was already gone.
    pub(crate) async fn drop(&self, pool: &MySqlPool, tenant: &Tenant) -> Result<Dropped, Error> {
        self.with_op(pool, tenant, async |op| {
            self.lock(op, tenant).await?;
            let (registered, database) = self.registered_and_database(&mut op.conn, tenant).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: tenant.clone(),
                });
            }
            // The database first: if the process dies before the unregister, the tenant is
            // left registered without a database, which a second `drop` unregisters.
            if database {
                op.run(format!(
                    "DROP DATABASE IF EXISTS {}",
                    quote(tenant.as_str())
                ))
                .await?;
            }
            self.unregister(&mut op.conn, tenant).await?;
            Ok(if database {
                Dropped::Schema
            } else {
                Dropped::Unregistered
            })
        })
        .await
    }

    /// Renames tenant `old` to `new`, keeping its tables, data and migration history, under
    /// both names' locks (taken in name order). MySQL has no `RENAME DATABASE`: the new database
    /// is created, every table moves in one atomic `RENAME TABLE`, the registry rows move in one
    /// transaction, and the old (now empty) database is dropped.
    ///
    /// [`Error::SameName`], [`Error::NotATenant`], [`Error::SchemaMissing`] for `old`;
    /// [`Error::TenantExists`] / [`Error::SchemaExists`] for `new`; [`Error::Unsupported`] if
    /// `old`'s database holds views, triggers, routines or events (they would not follow their
    /// tables). All refused before anything changes.
    pub(crate) async fn rename(
        &self,
        pool: &MySqlPool,
        old: &Tenant,
        new: &Tenant,
    ) -> Result<(), Error> {
        if old == new {
            return Err(Error::SameName {
                tenant: old.clone(),
            });
        }
        self.check_name(new)?;
        self.with_op(pool, old, async |op| {
            let (first, second) = if old <= new { (old, new) } else { (new, old) };
            self.lock(op, first).await?;
            self.lock(op, second).await?;
            let (registered, database) = self.registered_and_database(&mut op.conn, old).await?;
            if !registered {
                return Err(Error::NotATenant {
                    tenant: old.clone(),
                });
            }
            if !database {
                return Err(Error::SchemaMissing {
                    tenant: old.clone(),
                });
            }
            let (registered, database) = self.registered_and_database(&mut op.conn, new).await?;
            if registered {
                return Err(Error::TenantExists {
                    tenant: new.clone(),
                });
            }
            if database {
                return Err(Error::SchemaExists {
                    tenant: new.clone(),
                });
            }
            self.refuse_unmovable(&mut op.conn, old).await?;
            self.move_database(op, old, new).await
        })
        .await
    }

    /// [`Error::Unsupported`] if `tenant`'s database holds objects `RENAME TABLE` leaves behind.
    async fn refuse_unmovable(
        &self,
        conn: &mut MySqlConnection,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        let counts: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM information_schema.TABLES \
              WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW'), \
             (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?), \
             (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?), \
             (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
        )
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .fetch_one(conn)
        .await?;
        let found: Vec<String> = [
            (counts.0, "view"),
            (counts.1, "trigger"),
            (counts.2, "routine"),
            (counts.3, "event"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
        .collect();
        if found.is_empty() {
            return Ok(());
        }
        Err(Error::Unsupported {
            operation: "rename",
            reason: format!(
                "the database of tenant \"{tenant}\" holds {}, which MySQL cannot move to another \
                 database (there is no RENAME DATABASE; RENAME TABLE moves tables only); \
                 nothing was changed",
                found.join(", ")
            ),
        })
    }

    /// The moving part of `rename`, with compensation if a step fails.
    async fn move_database(&self, op: &mut Op, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        let (charset, collation): (String, String) = sqlx::query_as(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
             FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(old.as_str())
        .fetch_one(&mut op.conn)
        .await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
        )
        .bind(old.as_str())
        .fetch_all(&mut op.conn)
        .await?;
        let (old_db, new_db) = (old.as_str(), new.as_str());
        op.run(format!(
            "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
            quote(new_db),
            quote(&charset),
            quote(&collation)
        ))
        .await
        .map_err(|e| {
            if is_database_exists(&e) {
                Error::SchemaExists {
                    tenant: new.clone(),
                }
            } else {
                e.into()
            }
        })?;
        let moves = |from: &str, to: &str| {
            let pairs: Vec<String> = tables
                .iter()
                .map(|t| format!("{} TO {}", qualified(from, t), qualified(to, t)))
                .collect();
            format!("RENAME TABLE {}", pairs.join(", "))
        };
        if !tables.is_empty() {
            if let Err(err) = op.run(moves(old_db, new_db)).await {
                // One statement, atomic: nothing moved. The new database is empty.
                let _ = op.run(format!("DROP DATABASE {}", quote(new_db))).await;
                return Err(err.into());
            }
        }
        if let Err(err) = self.move_registry_rows(&mut op.conn, old, new).await {
            if tables.is_empty() || op.run(moves(new_db, old_db)).await.is_ok() {
                let _ = op.run(format!("DROP DATABASE {}", quote(new_db))).await;
            }
            return Err(err);
        }
        // The tenant is renamed; this drops an empty database. Should it fail, the error says
        // so, and an empty database of the old name is left (`create` of that name then gives
        // `SchemaExists`).
        op.run(format!("DROP DATABASE {}", quote(old_db))).await?;
        Ok(())
    }

    /// Moves `old`'s registry rows (tenant and migrations) to `new`, in one transaction.
    async fn move_registry_rows(
        &self,
        conn: &mut MySqlConnection,
        old: &Tenant,
        new: &Tenant,
    ) -> Result<(), Error> {
        let mut tx = conn.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {0} (name, created_at) SELECT ?, created_at FROM {0} WHERE name = ?",
            self.table("tenants")
        )))
        .bind(new.as_str())
        .bind(old.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_duplicate_entry(&e) {
                Error::TenantExists {
                    tenant: new.clone(),
                }
            } else {
                e.into()
            }
        })?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET tenant = ? WHERE tenant = ?",
            self.table("migrations")
        )))
        .bind(new.as_str())
        .bind(old.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE name = ?",
            self.table("tenants")
        )))
        .bind(old.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `tenant` is registered. A registry that does not exist yet holds no tenants (a
    /// read creates nothing).
    pub(crate) async fn exists(&self, pool: &MySqlPool, tenant: &Tenant) -> Result<bool, Error> {
        let found: Result<i64, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {} WHERE name = ?",
            self.table("tenants")
        )))
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await;
        match found {
            Ok(n) => Ok(n > 0),
            Err(e) if no_registry(&e) => Ok(false),
            Err(e) => Err(Error::from(e).about(tenant)),
        }
    }

    /// Every tenant, sorted by name.
    pub(crate) async fn list(&self, pool: &MySqlPool) -> Result<Vec<Tenant>, Error> {
        let names: Result<Vec<String>, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM {} ORDER BY name",
            self.table("tenants")
        )))
        .fetch_all(pool)
        .await;
        match names {
            Ok(names) => names
                .into_iter()
                .map(|n| Tenant::new(n).map_err(Error::from))
                .collect(),
            Err(e) if no_registry(&e) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every tenant's applied, pending and changed migrations, from one query. A migration
    /// that stopped part-way (`success = FALSE`) is in `dirty` (neither applied nor pending);
    /// [`migrate`](Self::migrate) reports it as [`Error::Dirty`].
    pub(crate) async fn status(
        &self,
        pool: &MySqlPool,
        migrations: &Migrations,
    ) -> Result<Vec<TenantStatus>, Error> {
        let rows: Result<Vec<StatusRow>, _> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT t.name, m.version, m.checksum, m.success FROM {} t \
                 LEFT JOIN {} m ON m.tenant = t.name ORDER BY t.name, m.version",
            self.table("tenants"),
            self.table("migrations")
        )))
        .fetch_all(pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) if no_registry(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut statuses: Vec<(String, Applied, Vec<i64>)> = Vec::new();
        for (name, version, checksum, success) in rows {
            if statuses.last().is_none_or(|(n, _, _)| *n != name) {
                statuses.push((name, Vec::new(), Vec::new()));
            }
            let Some((_, applied, dirty)) = statuses.last_mut() else {
                continue;
            };
            match (version, checksum, success) {
                (Some(version), Some(checksum), Some(true)) => applied.push((version, checksum)),
                (Some(version), _, Some(false)) => dirty.push(version),
                _ => {}
            }
        }
        statuses
            .into_iter()
            .map(|(name, applied, dirty)| {
                let tenant = Tenant::new(name)?;
                Ok(migrations.status_with_dirty(tenant, applied, dirty))
            })
            .collect()
    }

    /// One tenant's migration status ([`Error::NotATenant`] if not registered); a migration
    /// that stopped part-way is in `dirty`, as in [`status`](Self::status).
    pub(crate) async fn status_of(
        &self,
        pool: &MySqlPool,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> Result<TenantStatus, Error> {
        if !self.exists(pool, tenant).await? {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        let rows = self
            .rows(pool, tenant)
            .await
            .map_err(|e| Error::from(e).about(tenant))?;
        let dirty = rows.iter().filter(|r| !r.2).map(|r| r.0).collect();
        let applied = rows
            .into_iter()
            .filter(|r| r.2)
            .map(|(v, c, _)| (v, c))
            .collect();
        Ok(migrations.status_with_dirty(tenant.clone(), applied, dirty))
    }
}

/// The registry database or one of its tables does not exist (yet).
fn no_registry(err: &sqlx::Error) -> bool {
    is_unknown_database(err) || is_missing_table(err)
}

fn migration_failed(tenant: &Tenant, m: &Migration, source: sqlx::Error) -> Error {
    Error::Migration {
        tenant: tenant.clone(),
        version: m.version,
        description: m.description.to_string(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use sqlx::migrate::MigrationType;
    use sqlx::mysql::MySqlPoolOptions;
    use sqlx::SqlSafeStr;

    use super::*;

    async fn pool() -> MySqlPool {
        // `MYSQL_URL`, or a private server started from the installed programs.
        let url = tenancy_testdb::mysql_url().unwrap_or_else(|e| panic!("{e}"));
        MySqlPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MySQL/MariaDB at {url}: {e}"))
    }

    /// A name no other test (or earlier run) uses.
    fn unique(prefix: &str) -> Tenant {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Tenant::new(format!("{prefix}_{}_{nanos:x}_{n}", std::process::id())).unwrap()
    }

    /// A store with a registry of its own, dropped (with its tenants) by `cleanup`.
    fn store() -> MySqlStore {
        MySqlStore::new(unique("_tncy_test"), Duration::from_secs(10))
    }

    async fn cleanup(store: &MySqlStore, pool: &MySqlPool) {
        for tenant in store.list(pool).await.unwrap() {
            store.drop(pool, &tenant).await.unwrap();
        }
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}",
            quote(store.registry.as_str())
        )))
        .execute(pool)
        .await
        .unwrap();
    }

    fn migration(version: i64, kind: MigrationType, sql: &str) -> Migration {
        Migration::new(
            version,
            format!("m{version}").into(),
            kind,
            AssertSqlSafe(sql.to_owned()).into_sql_str(),
            false,
        )
    }

    fn migrations(list: Vec<Migration>) -> Migrations {
        Migrations::new(list, false).unwrap()
    }

    const GUARDS: &str = "CREATE TABLE guards (id BIGINT PRIMARY KEY AUTO_INCREMENT, \
                          name TEXT NOT NULL); INSERT INTO guards (name) VALUES ('Abu')";

    fn v1() -> Vec<Migration> {
        vec![migration(1, MigrationType::ReversibleUp, GUARDS)]
    }

    fn v2() -> Vec<Migration> {
        let mut all = v1();
        all.push(migration(
            1,
            MigrationType::ReversibleDown,
            "DROP TABLE guards",
        ));
        all.push(migration(
            2,
            MigrationType::ReversibleUp,
            "CREATE TABLE posts (id BIGINT PRIMARY KEY, guard BIGINT NOT NULL, \
             FOREIGN KEY (guard) REFERENCES guards (id))",
        ));
        all.push(migration(
            2,
            MigrationType::ReversibleDown,
            "DROP TABLE posts",
        ));
        all
    }

    async fn database_exists(pool: &MySqlPool, name: &Tenant) -> bool {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(name.as_str())
        .fetch_one(pool)
        .await
        .unwrap();
        n > 0
    }

    async fn guard_names(pool: &MySqlPool, tenant: &Tenant) -> Vec<String> {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM {} ORDER BY id",
            qualified(tenant.as_str(), "guards")
        )))
        .fetch_all(pool)
        .await
        .unwrap()
    }

    async fn registry_rows(store: &MySqlStore, pool: &MySqlPool, tenant: &Tenant) -> Rows {
        store.rows(pool, tenant).await.unwrap()
    }

    async fn exec(pool: &MySqlPool, sql: String) {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
    }

    /// The compensation of a create whose connection died removes the tenant only while its
    /// registry row is the one that create wrote: not a tenant of the same name created since.
    #[tokio::test]
    async fn compensation_elsewhere_removes_only_its_own_create() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        let m = migrations(v2());
        store.create(&pool, &acme, &m).await.unwrap();
        let ours = store
            .registered_at(&mut pool.acquire().await.unwrap(), &acme)
            .await
            .unwrap()
            .unwrap();
        // A row written at another time (a later create of the name): nothing is touched.
        store
            .compensate_elsewhere(&pool, &acme, "1999-01-01 00:00:00.000000", true)
            .await
            .unwrap();
        assert!(store.exists(&pool, &acme).await.unwrap());
        assert!(database_exists(&pool, &acme).await);
        assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
        // Its own row: the database and every registry row go.
        store
            .compensate_elsewhere(&pool, &acme, &ours, true)
            .await
            .unwrap();
        assert!(!store.exists(&pool, &acme).await.unwrap());
        assert!(!database_exists(&pool, &acme).await);
        assert!(registry_rows(&store, &pool, &acme).await.is_empty());
        store.create(&pool, &acme, &m).await.unwrap();
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn create_list_exists_drop() {
        let (pool, store) = (pool().await, store());
        let (acme, beta) = (unique("acme"), unique("beta"));
        let m = migrations(v2());
        assert!(!store.exists(&pool, &acme).await.unwrap());
        assert!(store.list(&pool).await.unwrap().is_empty());
        store.create(&pool, &beta, &m).await.unwrap();
        store.create(&pool, &acme, &m).await.unwrap();
        assert!(store.exists(&pool, &acme).await.unwrap());
        assert_eq!(
            store.list(&pool).await.unwrap(),
            vec![acme.clone(), beta.clone()]
        );
        assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
        let status = store.status_of(&pool, &acme, &m).await.unwrap();
        assert_eq!((status.applied, status.pending), (vec![1, 2], vec![]));
        let all = store.status(&pool, &m).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|s| s.applied == [1, 2]));
        assert!(matches!(
            store.create(&pool, &acme, &m).await,
            Err(Error::TenantExists { .. })
        ));

        assert_eq!(store.drop(&pool, &acme).await.unwrap(), Dropped::Schema);
        assert!(!store.exists(&pool, &acme).await.unwrap());
        assert!(!database_exists(&pool, &acme).await);
        assert!(registry_rows(&store, &pool, &acme).await.is_empty());
        assert!(matches!(
            store.drop(&pool, &acme).await,
            Err(Error::NotATenant { .. })
        ));
        assert_eq!(store.list(&pool).await.unwrap(), vec![beta]);
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn failing_second_migration_leaves_nothing() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        let mut list = v1();
        // The first statement succeeds (and commits: DDL), the second fails.
        list.push(migration(
            2,
            MigrationType::Simple,
            "CREATE TABLE posts (id BIGINT PRIMARY KEY); SELECT * FROM no_such_table",
        ));
        let err = store
            .create(&pool, &acme, &migrations(list))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Migration { version: 2, tenant, .. } if *tenant == acme),
            "{err:?}"
        );
        assert!(err.as_sqlx().is_some_and(is_missing_table), "{err:?}");
        assert!(!database_exists(&pool, &acme).await);
        assert!(!store.exists(&pool, &acme).await.unwrap());
        assert!(registry_rows(&store, &pool, &acme).await.is_empty());
        // The name is free again.
        store.create(&pool, &acme, &migrations(v1())).await.unwrap();
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn create_refuses_an_unregistered_database() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        exec(&pool, format!("CREATE DATABASE {}", quote(acme.as_str()))).await;
        let err = store
            .create(&pool, &acme, &migrations(v1()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SchemaExists { .. }), "{err:?}");
        // Left alone, and not registered.
        assert!(database_exists(&pool, &acme).await);
        assert!(!store.exists(&pool, &acme).await.unwrap());
        exec(&pool, format!("DROP DATABASE {}", quote(acme.as_str()))).await;
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn migrate_applies_new_migrations_and_rollback_reverts_them() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        store.create(&pool, &acme, &migrations(v1())).await.unwrap();
        let m = migrations(v2());
        assert_eq!(
            store.migrate(&pool, &acme, &m).await.unwrap(),
            Outcome::Migrated(vec![2])
        );
        assert_eq!(
            store.migrate(&pool, &acme, &m).await.unwrap(),
            Outcome::UpToDate
        );
        exec(
            &pool,
            format!(
                "INSERT INTO {} VALUES (1, 1)",
                qualified(acme.as_str(), "posts")
            ),
        )
        .await;
        let rows = registry_rows(&store, &pool, &acme).await;
        assert_eq!(
            rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
            [(1, true), (2, true)]
        );
        assert_eq!(
            store.rollback(&pool, &acme, 0, &m).await.unwrap(),
            Outcome::RolledBack(vec![2, 1])
        );
        assert!(registry_rows(&store, &pool, &acme).await.is_empty());
        let status = store.status_of(&pool, &acme, &m).await.unwrap();
        assert_eq!((status.applied, status.pending), (vec![], vec![1, 2]));
        // No down migration for version 1 in v1(): nothing is run.
        store.migrate(&pool, &acme, &m).await.unwrap();
        let err = store
            .rollback(&pool, &acme, 0, &migrations(v1()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Irreversible { .. }), "{err:?}");
        let other = unique("other");
        assert!(matches!(
            store.migrate(&pool, &other, &m).await,
            Err(Error::NotATenant { .. })
        ));
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn unfinished_migration_is_reported_dirty_not_rerun() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        store.create(&pool, &acme, &migrations(v1())).await.unwrap();
        // Version 2 creates a table, then fails: the table stays (DDL committed).
        let mut list = v1();
        list.push(migration(
            2,
            MigrationType::Simple,
            "CREATE TABLE posts (id BIGINT PRIMARY KEY); SELECT * FROM no_such_table",
        ));
        let m = migrations(list);
        let err = store.migrate(&pool, &acme, &m).await.unwrap_err();
        assert!(
            matches!(err, Error::Migration { version: 2, .. }),
            "{err:?}"
        );
        let rows = registry_rows(&store, &pool, &acme).await;
        assert_eq!(
            rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
            [(1, true), (2, false)]
        );
        // Run again (even with a fixed migration): refused, nothing re-run.
        let err = store
            .migrate(&pool, &acme, &migrations(v2()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Dirty { version: 2, tenant } if *tenant == acme),
            "{err:?}"
        );
        assert!(err.to_string().contains("repair the tenant by hand"));
        let err = store
            .rollback(&pool, &acme, 0, &migrations(v2()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Dirty { version: 2, .. }), "{err:?}");
        // Status shows it as dirty, neither applied nor pending, from both queries.
        let m = migrations(v2());
        let one = store.status_of(&pool, &acme, &m).await.unwrap();
        assert_eq!(
            (one.applied, one.pending, one.dirty),
            (vec![1], vec![], vec![2])
        );
        let all = store.status(&pool, &m).await.unwrap();
        let mine = all.iter().find(|s| s.tenant == acme).unwrap();
        assert_eq!(mine.dirty, [2]);
        assert!(mine.pending.is_empty());
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn a_false_success_row_is_dirty() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        let m = migrations(v2());
        store.create(&pool, &acme, &m).await.unwrap();
        exec(
            &pool,
            format!(
                "UPDATE {} SET success = FALSE WHERE tenant = '{acme}' AND version = 1",
                store.table("migrations")
            ),
        )
        .await;
        let err = store.migrate(&pool, &acme, &m).await.unwrap_err();
        assert!(matches!(err, Error::Dirty { version: 1, .. }), "{err:?}");
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn drop_of_a_database_already_gone_unregisters() {
        let (pool, store) = (pool().await, store());
        let acme = unique("acme");
        let m = migrations(v1());
        store.create(&pool, &acme, &m).await.unwrap();
        exec(&pool, format!("DROP DATABASE {}", quote(acme.as_str()))).await;
        let err = store.migrate(&pool, &acme, &m).await.unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err:?}");
        assert_eq!(
            store.drop(&pool, &acme).await.unwrap(),
            Dropped::Unregistered
        );
        assert!(!store.exists(&pool, &acme).await.unwrap());
        assert!(registry_rows(&store, &pool, &acme).await.is_empty());
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn rename_moves_tables_data_and_history() {
        let (pool, store) = (pool().await, store());
        let (old, new, taken) = (unique("old"), unique("new"), unique("taken"));
        let m = migrations(v2());
        store.create(&pool, &old, &m).await.unwrap();
        store.create(&pool, &taken, &m).await.unwrap();
        exec(
            &pool,
            format!(
                "INSERT INTO {} VALUES (7, 1)",
                qualified(old.as_str(), "posts")
            ),
        )
        .await;
        assert!(matches!(
            store.rename(&pool, &old, &taken).await,
            Err(Error::TenantExists { .. })
        ));
        assert!(matches!(
            store.rename(&pool, &old, &old).await,
            Err(Error::SameName { .. })
        ));

        store.rename(&pool, &old, &new).await.unwrap();
        assert!(!database_exists(&pool, &old).await);
        assert!(!store.exists(&pool, &old).await.unwrap());
        assert!(store.exists(&pool, &new).await.unwrap());
        assert_eq!(guard_names(&pool, &new).await, ["Abu"]);
        let post: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT guard FROM {} WHERE id = 7",
            qualified(new.as_str(), "posts")
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(post, 1);
        let status = store.status_of(&pool, &new, &m).await.unwrap();
        assert_eq!(status.applied, [1, 2]);
        assert!(registry_rows(&store, &pool, &old).await.is_empty());
        // The history moved with it: rolling back works on the new name.
        assert_eq!(
            store.rollback(&pool, &new, 1, &m).await.unwrap(),
            Outcome::RolledBack(vec![2])
        );
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn rename_refuses_a_database_with_a_view() {
        let (pool, store) = (pool().await, store());
        let (old, new) = (unique("old"), unique("new"));
        store.create(&pool, &old, &migrations(v1())).await.unwrap();
        exec(
            &pool,
            format!(
                "CREATE VIEW {} AS SELECT name FROM {}",
                qualified(old.as_str(), "guard_names"),
                qualified(old.as_str(), "guards")
            ),
        )
        .await;
        let err = store.rename(&pool, &old, &new).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { operation: "rename", reason } if reason.contains("1 view")),
            "{err:?}"
        );
        // Nothing changed.
        assert!(!database_exists(&pool, &new).await);
        assert!(!store.exists(&pool, &new).await.unwrap());
        assert!(store.exists(&pool, &old).await.unwrap());
        assert_eq!(guard_names(&pool, &old).await, ["Abu"]);
        cleanup(&store, &pool).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_of_one_name_exactly_one_succeeds() {
        let (pool, store) = (pool().await, Arc::new(store()));
        let acme = unique("acme");
        let m = Arc::new(migrations(v2()));
        // Made first, so its own lock does not stagger the creates below.
        store.ensure_registry(&pool).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, store, acme, m) = (pool.clone(), store.clone(), acme.clone(), m.clone());
            let start = start.clone();
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store.create(&pool, &acme, &m).await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => ok += 1,
                Err(Error::TenantExists { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
        cleanup(&store, &pool).await;
    }

    #[tokio::test]
    async fn lock_timeout_names_the_holder() {
        let pool = pool().await;
        let store = MySqlStore::new(unique("_tncy_test"), Duration::from_millis(200));
        let acme = unique("acme");
        store.ensure_registry(&pool).await.unwrap();
        let mut holder = pool.acquire().await.unwrap();
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
            .bind(lock_name(&store.registry, Some(&acme)))
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        assert_eq!(got, Some(1));
        let err = store
            .create(&pool, &acme, &migrations(v1()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::LockTimeout { holders, .. } if holders.len() == 1),
            "{err:?}"
        );
        assert!(!database_exists(&pool, &acme).await);
        holder.close().await.unwrap();
        cleanup(&store, &pool).await;
    }

    #[test]
    fn long_lock_names_are_hashed_stably() {
        let registry = Tenant::new("_tenancy").unwrap();
        let short = Tenant::new("acme").unwrap();
        assert_eq!(lock_name(&registry, Some(&short)), "tenancy:_tenancy:acme");
        let long = Tenant::new("a".repeat(63)).unwrap();
        let name = lock_name(&registry, Some(&long));
        assert!(name.len() <= MAX_LOCK_NAME, "{name}");
        assert_eq!(name, lock_name(&registry, Some(&long)));
        assert_ne!(
            name,
            lock_name(&registry, Some(&Tenant::new("b".repeat(63)).unwrap()))
        );
        assert_eq!(quote("a`b"), "`a``b`");
    }
}
