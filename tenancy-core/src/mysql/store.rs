//! The tenant store on MySQL / MariaDB: a DATABASE per tenant, a registry database beside them.
//!
//! What differs from PostgreSQL, because DDL commits at once on MySQL:
//! - `create` cannot be one transaction: on any failure [`finish`](Store::finish) compensates
//!   (drops the database it created and unregisters the tenant) before the error returns, on a
//!   fresh connection if the operation's own was killed.
//! - A migration's bookkeeping row is written with `success = FALSE` before its SQL runs and
//!   flipped to `TRUE` after (like sqlx's own MySQL migrator); a revert flips it back to `FALSE`
//!   before the down SQL runs and deletes the row after. A `FALSE` row found later means a
//!   migration stopped part-way: [`Error::Dirty`], never a silent re-run.
//! - There is no `RENAME DATABASE`: `rename` moves the tables with one `RENAME TABLE` and refuses
//!   databases holding views, triggers, routines or events (which would not follow).
//! - The lifecycle lock is `GET_LOCK`, a session lock, taken on the operation's own connection
//!   (see [`Op`]), which is closed at the end: nothing it set reaches a pooled connection.
//!
//! The server's error numbers are classified in the backend module ([`super`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::migrate::Migration;
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::{AssertSqlSafe, Connection};

use super::op::{lock_name, qualified, quote, Op};
use super::{
    is_database_exists, is_duplicate_entry, is_lock_wait_timeout, is_missing_table,
    is_unknown_database, MySqlMode,
};
use crate::error::Error;
use crate::lifecycle::plan::History;
use crate::lifecycle::store::{CreateHook, Direction, Found, Opening, Operation, Store};
use crate::tenant::{NameRule, Tenant};

/// Databases of the server itself; never tenants.
const SERVER_DATABASES: &[&str] = &["mysql", "sys", "performance_schema", "information_schema"];

/// A handle without a lock timeout waits this long: one year, the largest `lock_wait_timeout`
/// the server accepts.
const WAIT_AS_LONG_AS_ALLOWED: Duration = Duration::from_secs(31_536_000);

/// Rows of the registry's `migrations` table for one tenant: `(version, checksum, success)`.
type Rows = Vec<(i64, Vec<u8>, bool)>;

/// A row of the status query: a tenant and one of its migration rows, if any:
/// `(tenant, version, checksum, success)`.
type StatusRow = (String, Option<i64>, Option<Vec<u8>>, Option<bool>);

/// The history `rows` record: successful rows applied, the others dirty.
fn history(rows: Rows) -> History {
    let mut history = History::default();
    for (version, checksum, success) in rows {
        if success {
            history.applied.push((version, checksum));
        } else {
            history.dirty.push(version);
        }
    }
    history
}

/// The MySQL / MariaDB lifecycle of one [`Tenants`](crate::Tenants) handle: tenants are
/// databases, recorded in a registry database.
pub struct MySqlStore {
    pool: MySqlPool,
    /// The registry DATABASE's name (default `_tenancy`).
    pub(crate) registry: Tenant,
    /// How long a lifecycle operation waits for the tenant's lock (`GET_LOCK`), and for
    /// metadata and row locks (`lock_wait_timeout`, `innodb_lock_wait_timeout`, in whole
    /// seconds, at least 1) before [`Error::LockTimeout`].
    pub(crate) lock_timeout: Duration,
    /// Whether the registry was made sure of by this store.
    ready: AtomicBool,
    /// Whether the server is MariaDB 10.5 or newer (`INSERT … RETURNING`), learned with the
    /// registry.
    returning: AtomicBool,
}

debug_fields!(MySqlStore { registry, lock_timeout, .. });

/// One operation on MySQL: its own connection (see [`Op`]), and for a create what it has done
/// so far, to undo it.
pub struct MySqlOp {
    pub(super) op: Op,
    creation: Option<Creation>,
}

/// What a `create` has done so far.
struct Creation {
    tenant: Tenant,
    /// When its registry row was written (to tell it from a later create's of the same name).
    registered_at: Option<String>,
    /// Whether `CREATE DATABASE` ran.
    database: bool,
}

impl MySqlStore {
    pub(super) fn table(&self, name: &str) -> String {
        qualified(self.registry.as_str(), name)
    }

    /// The error of an operation on `tenant`, made specific: a server lock wait timeout becomes
    /// [`Error::LockTimeout`], and a database error names the tenant.
    fn explained(&self, tenant: &Tenant, err: Error) -> Error {
        if err.as_sqlx().is_some_and(is_lock_wait_timeout) {
            return Error::LockTimeout {
                tenant: tenant.clone(),
                waited: self.lock_timeout,
                holders: Vec::new(),
            };
        }
        err.about(tenant)
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
                 CREATE TABLE IF NOT EXISTS {row_tenants} (\n\
                 \x20 name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,\n\
                 \x20 container VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,\n\
                 \x20 created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n\
                 \x20 dropping BOOLEAN NOT NULL DEFAULT FALSE,\n\
                 \x20 KEY (container)\n\
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
                row_tenants = self.table("row_tenants"),
                migrations = self.table("migrations"),
            ))
            .await;
        let created = match created {
            Ok(()) => self.add_dropping(op).await,
            failed => failed,
        };
        op.unlock(&name).await?;
        created?;
        let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut op.conn).await?;
        self.returning.store(inserts_return(&version), Ordering::Release);
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// How the handle's executors send their statements.
    pub(crate) fn mode(&self) -> MySqlMode {
        MySqlMode {
            returning: self.returning.load(Ordering::Acquire),
        }
    }

    /// Gives a registry made before drops of row-level tenants went in steps their mark
    /// (`row_tenants.dropping`) if it lacks it, on `op` under the registry's lock.
    async fn add_dropping(&self, op: &mut Op) -> Result<(), sqlx::Error> {
        let has: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = 'row_tenants' AND column_name = 'dropping'",
        )
        .bind(self.registry.as_str())
        .fetch_optional(&mut op.conn)
        .await?;
        if has.is_some() {
            return Ok(());
        }
        op.run(format!(
            "ALTER TABLE {} ADD COLUMN dropping BOOLEAN NOT NULL DEFAULT FALSE",
            self.table("row_tenants")
        ))
        .await
    }

    /// Takes `tenant`'s lifecycle lock on `op`.
    async fn lock_tenant(&self, op: &mut Op, tenant: &Tenant) -> Result<(), Error> {
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
        self.delete_rows(&mut tx, "migrations", "tenant", tenant)
            .await?;
        self.delete_rows(&mut tx, "tenants", "name", tenant).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the rows of registry table `table` whose `column` is `tenant`.
    async fn delete_rows(
        &self,
        conn: &mut MySqlConnection,
        table: &str,
        column: &str,
        tenant: &Tenant,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {column} = ?",
            self.table(table)
        )))
        .bind(tenant.as_str())
        .execute(conn)
        .await?;
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
            .map_err(|source| Error::migration(tenant, m, source))?;
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
        let row = "WHERE tenant = ? AND version = ?";
        let started = format!("UPDATE {migrations} SET success = FALSE {row}");
        run_bound(&mut op.conn, started, tenant.as_str(), m.version).await?;
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut op.conn)
            .await
            .map_err(|source| Error::migration(tenant, m, source))?;
        let done = format!("DELETE FROM {migrations} {row}");
        run_bound(&mut op.conn, done, tenant.as_str(), m.version).await?;
        Ok(())
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
            self.lock_tenant(&mut op, tenant).await?;
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

    /// [`Error::Unsupported`] if `tenant`'s database holds objects `RENAME TABLE` leaves behind
    /// (the placement guard's own triggers aside: [`move_database`](Self::move_database)
    /// drops them).
    async fn refuse_unmovable(
        &self,
        conn: &mut MySqlConnection,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        let counts: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM information_schema.TABLES \
              WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW'), \
             (SELECT COUNT(*) FROM information_schema.TRIGGERS \
              WHERE EVENT_OBJECT_SCHEMA = ? AND TRIGGER_NAME NOT LIKE ?), \
             (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?), \
             (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
        )
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .bind(super::tier::OWN_TRIGGERS)
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
        .map_err(|e| database_taken(new, e))?;
        let moves = |from: &str, to: &str| {
            let pairs: Vec<String> = tables
                .iter()
                .map(|t| format!("{} TO {}", qualified(from, t), qualified(to, t)))
                .collect();
            format!("RENAME TABLE {}", pairs.join(", "))
        };
        if !tables.is_empty() {
            // The placement guard's triggers (`RENAME TABLE` refuses tables with triggers),
            // dropped once the new database is made: the next row-level drop, rename or
            // promote in it puts them back, naming it; a `Tenant` resolved before names the old
            // database, which is gone.
            let moved = async {
                for guard in super::tier::own_triggers(&mut op.conn, old_db).await? {
                    op.run(format!("DROP TRIGGER IF EXISTS {}", qualified(old_db, &guard)))
                        .await?;
                }
                op.run(moves(old_db, new_db)).await
            }
            .await;
            if let Err(err) = moved {
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
        // `ContainerExists`).
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
        let (tenants, migrations) = (self.table("tenants"), self.table("migrations"));
        let copy = format!(
            "INSERT INTO {tenants} (name, created_at) SELECT ?, created_at FROM {tenants} WHERE name = ?"
        );
        let repoint = format!("UPDATE {migrations} SET tenant = ? WHERE tenant = ?");
        let mut tx = conn.begin().await?;
        run_bound(&mut tx, copy, new.as_str(), old.as_str())
            .await
            .map_err(|e| tenant_taken(new, e))?;
        run_bound(&mut tx, repoint, new.as_str(), old.as_str()).await?;
        self.delete_rows(&mut tx, "tenants", "name", old).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every registered tenant with its history, from one query. A migration that stopped
    /// part-way (`success = FALSE`) is dirty (neither applied nor pending).
    async fn all_histories(&self) -> Result<Vec<(Tenant, History)>, Error> {
        let rows: Result<Vec<StatusRow>, _> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT t.name, m.version, m.checksum, m.success FROM {} t \
                 LEFT JOIN {} m ON m.tenant = t.name ORDER BY t.name, m.version",
            self.table("tenants"),
            self.table("migrations")
        )))
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) if no_registry(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut histories: Vec<(String, History)> = Vec::new();
        for (name, version, checksum, success) in rows {
            if histories.last().is_none_or(|(n, _)| *n != name) {
                histories.push((name, History::default()));
            }
            let Some((_, history)) = histories.last_mut() else {
                continue;
            };
            match (version, checksum, success) {
                (Some(version), Some(checksum), Some(true)) => {
                    history.applied.push((version, checksum))
                }
                (Some(version), _, Some(false)) => history.dirty.push(version),
                _ => {}
            }
        }
        histories
            .into_iter()
            .map(|(name, history)| Ok((Tenant::new(name)?, history)))
            .collect()
    }
}

/// `tenant` taken: a registry row of its name is there already.
fn tenant_taken(tenant: &Tenant, err: sqlx::Error) -> Error {
    if is_duplicate_entry(&err) {
        Error::TenantExists {
            tenant: tenant.clone(),
        }
    } else {
        err.into()
    }
}

/// `tenant`'s database taken: one of its name is there already.
fn database_taken(tenant: &Tenant, err: sqlx::Error) -> Error {
    if is_database_exists(&err) {
        crate::backend::container_exists::<sqlx::MySql>(tenant)
    } else {
        err.into()
    }
}

/// Runs `sql` on `conn` with `first` and `second` bound, in that order.
async fn run_bound<'q, A, C>(
    conn: &mut MySqlConnection,
    sql: String,
    first: A,
    second: C,
) -> Result<(), sqlx::Error>
where
    A: 'q + sqlx::Encode<'q, MySql> + sqlx::Type<MySql>,
    C: 'q + sqlx::Encode<'q, MySql> + sqlx::Type<MySql>,
{
    sqlx::query(AssertSqlSafe(sql))
        .bind(first)
        .bind(second)
        .execute(conn)
        .await?;
    Ok(())
}

/// The registry database or one of its tables does not exist (yet).
pub(super) fn no_registry(err: &sqlx::Error) -> bool {
    is_unknown_database(err) || is_missing_table(err)
}


impl Store<MySql> for MySqlStore {
    type Settings = ();
    type Op = MySqlOp;

    fn open(with: Opening<'_, MySql, ()>) -> Result<Self, Error> {
        Ok(MySqlStore {
            pool: with.pool,
            registry: with.registry.clone(),
            lock_timeout: with.lock_timeout.unwrap_or(WAIT_AS_LONG_AS_ALLOWED),
            ready: AtomicBool::new(false),
            returning: AtomicBool::new(false),
        })
    }

    fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The server's own databases.
    fn refuses(&self, tenant: &Tenant) -> Option<NameRule> {
        SERVER_DATABASES
            .contains(&tenant.as_str())
            .then_some(NameRule::Reserved)
    }

    /// Whether `tenant` is registered. A registry that does not exist yet holds no tenants (a
    /// read creates nothing).
    async fn exists(&self, tenant: &Tenant) -> Result<bool, Error> {
        let pool = &self.pool;
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
    async fn list(&self) -> Result<Vec<Tenant>, Error> {
        let pool = &self.pool;
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

    async fn histories(&self) -> Result<Vec<(Tenant, History)>, Error> {
        self.all_histories().await
    }

    async fn history_of(&self, tenant: &Tenant) -> Result<Option<History>, Error> {
        if !self.exists(tenant).await? {
            return Ok(None);
        }
        let rows = self.rows(&self.pool, tenant).await?;
        Ok(Some(history(rows)))
    }

    async fn pool_for(&self, _tenant: &Tenant) -> Result<MySqlPool, Error> {
        Ok(self.pool.clone())
    }

    async fn begin(&self, _operation: Operation) -> Result<MySqlOp, Error> {
        let mut op = Op::open(&self.pool, self.lock_timeout).await?;
        if let Err(err) = self.ensure_registry_on(&mut op).await {
            op.finish().await;
            return Err(err);
        }
        Ok(MySqlOp { op, creation: None })
    }

    async fn lock(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<(), Error> {
        self.lock_tenant(&mut op.op, tenant).await
    }

    async fn inspect(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<Found, Error> {
        let (registered, container) = self
            .registered_and_database(&mut op.op.conn, tenant)
            .await?;
        Ok(Found {
            registered,
            container,
        })
    }

    async fn history(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<History, Error> {
        Ok(history(self.rows(&mut op.op.conn, tenant).await?))
    }

    /// Registered first: if the process dies half-way, what is left is a registered tenant
    /// (with a `success = FALSE` row if a migration was running) that `drop` removes, not an
    /// orphan database that blocks the name.
    async fn make(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<(), Error> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (name) VALUES (?)",
            self.table("tenants")
        )))
        .bind(tenant.as_str())
        .execute(&mut op.op.conn)
        .await
        .map_err(|e| tenant_taken(tenant, e))?;
        let creation = op.creation.insert(Creation {
            tenant: tenant.clone(),
            registered_at: None,
            database: false,
        });
        // The registry row's timestamp tells this create's row from a later one of the same
        // name (see the compensation in `finish`).
        creation.registered_at = self.registered_at(&mut op.op.conn, tenant).await?;
        op.op
            .run(format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4",
                quote(tenant.as_str())
            ))
            .await
            .map_err(|e| database_taken(tenant, e))?;
        if let Some(creation) = &mut op.creation {
            creation.database = true;
        }
        Ok(())
    }

    async fn enter(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<(), Error> {
        Ok(op.op.run(format!("USE {}", quote(tenant.as_str()))).await?)
    }

    async fn apply_one(
        &self,
        op: &mut MySqlOp,
        tenant: &Tenant,
        m: &Migration,
        direction: Direction,
    ) -> Result<(), Error> {
        self.apply(op, tenant, &[m], direction).await
    }

    /// Each migration in turn, then the placement guard on the tables they added where the
    /// database has it ([`super::tier::guard_added`]; not in a database this operation made).
    async fn apply(
        &self,
        op: &mut MySqlOp,
        tenant: &Tenant,
        migrations: &[&Migration],
        direction: Direction,
    ) -> Result<(), Error> {
        for m in migrations {
            match direction {
                Direction::Up => self.apply_up(&mut op.op, tenant, m).await?,
                Direction::Down => self.apply_down(&mut op.op, tenant, m).await?,
            }
        }
        let made_here = op.creation.as_ref().is_some_and(|c| c.database && c.tenant == *tenant);
        if migrations.is_empty() || made_here {
            return Ok(());
        }
        super::tier::guard_added(&mut op.op.conn, &self.registry, tenant).await
    }

    async fn hook(
        &self,
        op: &mut MySqlOp,
        tenant: &Tenant,
        hook: CreateHook<MySql>,
    ) -> Result<(), Error> {
        hook(&mut op.op.conn, tenant)
            .await
            .map_err(|source| Error::Hook {
                tenant: tenant.clone(),
                source,
            })
    }

    /// The database first: if the process dies before the unregister, the tenant is left
    /// registered without a database, which a second `drop` unregisters.
    async fn remove(&self, op: &mut MySqlOp, tenant: &Tenant, found: Found) -> Result<(), Error> {
        if found.container {
            op.op
                .run(format!(
                    "DROP DATABASE IF EXISTS {}",
                    quote(tenant.as_str())
                ))
                .await?;
        }
        self.unregister(&mut op.op.conn, tenant).await
    }

    async fn rename(&self, op: &mut MySqlOp, old: &Tenant, new: &Tenant) -> Result<(), Error> {
        self.refuse_unmovable(&mut op.op.conn, old).await?;
        self.move_database(&mut op.op, old, new).await
    }

    /// One transaction of `INSERT … SELECT`s across databases ([`super::copy`]); on a
    /// failure `finish` drops `to`'s database and unregisters it, as for a failed create.
    async fn copy_rows(&self, op: &mut MySqlOp, from: &Tenant, to: &Tenant) -> Result<(), Error> {
        super::copy::copy_rows(&mut op.op.conn, from, to).await
    }

    /// Releases the operation's locks and closes its connection; a create that failed is
    /// undone first: its database dropped (if it made one) and the tenant unregistered.
    async fn finish<T: Send>(&self, op: MySqlOp, result: Result<T, Error>) -> Result<T, Error> {
        let MySqlOp { mut op, creation } = op;
        let failed = result
            .as_ref()
            .err()
            .map(|err| matches!(err, Error::ContainerExists { .. }));
        if let (Some(schema_exists), Some(creation)) = (failed, creation) {
            // A migration may have left a transaction open: end it first so the deletes
            // below commit on their own.
            let _ = op.run("ROLLBACK".into()).await;
            let tenant = &creation.tenant;
            let undone = self.undo_create(&mut op, tenant, creation.database).await;
            if let (Err(_), Some(registered_at)) = (undone, &creation.registered_at) {
                // This connection failed (killed, cut), and its lock went with it: undo on a
                // fresh one, under the lock again. Whether `CREATE DATABASE` ran before the
                // cut is unknown; only a database found there unregistered is not ours.
                // (Without the timestamp, the row cannot be told from a later create's and is
                // left, as when the process dies.)
                let ours = !schema_exists;
                let _ = self
                    .compensate_elsewhere(&self.pool, tenant, registered_at, ours)
                    .await;
            }
        }
        op.finish().await;
        result
    }

    async fn explain(&self, tenant: &Tenant, err: Error) -> Error {
        self.explained(tenant, err)
    }
}

/// Whether a server whose `VERSION()` is `version` has `INSERT … RETURNING`: MariaDB 10.5 or
/// newer (`10.11.19-MariaDB-0+deb12u1`); MySQL (`8.0.36`) has none.
fn inserts_return(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    // The handshake's form of MariaDB before 11 (`VERSION()` has no such prefix).
    let version = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (10, 5),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::inserts_return;

    #[test]
    fn inserts_return_on_mariadb_from_10_5_only() {
        assert!(inserts_return("10.11.19-MariaDB-0+deb12u1"));
        assert!(inserts_return("10.5.0-MariaDB"));
        assert!(inserts_return("11.4.2-MariaDB-log"));
        assert!(inserts_return("5.5.5-10.11.6-MariaDB"), "the 5.5.5- prefix of older clients");
        assert!(!inserts_return("10.4.32-MariaDB"));
        assert!(!inserts_return("8.0.36"));
        assert!(!inserts_return("8.4.0-commercial"));
        assert!(!inserts_return("MariaDB"));
    }
}
