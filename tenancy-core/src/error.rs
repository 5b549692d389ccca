//! The crate's one error type.

use std::fmt;
use std::time::Duration;

use crate::record::State;
use crate::tenant::{InvalidTenantName, Tenant};
use crate::validate::ValidationErrors;

/// Everything an operation of this crate can fail with. Variants are named for what the caller
/// must do differently and carry what is needed to say it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tenant name broke the naming rule; nothing reached the database.
    #[error(transparent)]
    InvalidTenantName(#[from] InvalidTenantName),

    /// The tenant's schema or database (or the model's table in it) does not exist: the tenant
    /// was never created, was dropped, or has not been migrated.
    #[error("unknown tenant \"{tenant}\": no table {table:?} in it (the tenant does not exist or is not migrated)")]
    UnknownTenant {
        /// The tenant the statement was for.
        tenant: Tenant,
        /// The model's table.
        table: &'static str,
        /// The database's own error.
        #[source]
        source: DatabaseError,
    },

    /// A tenant's copy in another database (a [`Fleet`](crate::Fleet)'s move) is not its
    /// source: a table's rows or their checksum differ. Nothing was moved: the tenant is
    /// where it was, and the copy was dropped.
    #[error("the copy of tenant \"{tenant}\" differs from its source in table {table:?}: {detail}; nothing was moved")]
    Diverged {
        /// The tenant.
        tenant: Tenant,
        /// The table.
        table: String,
        /// How they differ.
        detail: String,
    },

    /// A row-level tenant's statement was sent to a container that no longer holds its rows:
    /// the tenant was promoted to a container of its own, renamed or dropped after this
    /// [`Tenant`] was resolved (or it never was a row-level tenant of that container). On
    /// MySQL also a write to a tenant's own database that a demote has just moved into a shared
    /// one. Nothing was written; resolve the tenant again
    /// ([`Tenants::tenant`](crate::Tenants::tenant)).
    #[error("tenant \"{tenant}\" has no rows in \"{}\" any more (promoted, renamed or dropped since it was resolved): resolve it again (Tenants::tenant); table {table:?}", tenant.container())]
    NotPlaced {
        /// The tenant, as the statement placed it.
        tenant: Tenant,
        /// The model's table.
        table: &'static str,
        /// The database's own error.
        #[source]
        source: DatabaseError,
    },

    /// A record belongs to one tenant and was written to another. Nothing was written.
    #[error("record of table {table:?} belongs to tenant \"{record}\" and cannot be written to tenant \"{requested}\"")]
    TenantMismatch {
        /// The model's table.
        table: &'static str,
        /// The tenant the record was inserted into or loaded from.
        record: Tenant,
        /// The tenant the write asked for.
        requested: Tenant,
    },

    /// A statement for a row-level tenant ([`Tenant::rows_in`]) names a table it cannot keep to
    /// that tenant's rows: the table of a model without `#[tenancy(tenant_column = "...")]`,
    /// or a table in a raw statement. Nothing was sent.
    #[error("tenant \"{tenant}\" keeps its rows in the tables of \"{}\", and a statement on table {table:?} cannot keep to them: {reason}", tenant.container())]
    NotRowLevel {
        /// The row-level tenant.
        tenant: Tenant,
        /// The table that has no tenant column (or the raw statement's first table).
        table: &'static str,
        /// Why, naming what to change.
        reason: &'static str,
    },

    /// A statement for one tenant was given an executor that belongs to another: a
    /// [`TenantPool`](crate::TenantPool) (or its transaction) serves its own tenant only. Nothing
    /// was sent.
    #[error("the executor belongs to tenant \"{executor}\" and cannot run a statement on table {table:?} of tenant \"{requested}\"")]
    ExecutorMismatch {
        /// The model's table.
        table: &'static str,
        /// The tenant the executor belongs to.
        executor: Tenant,
        /// The tenant the statement was for.
        requested: Tenant,
    },

    /// The record is not in a state that allows the operation (e.g. updating a deleted record).
    #[error("record of table {table:?} in tenant \"{tenant}\" is {found:?}; this operation needs a {expected:?} record")]
    InvalidState {
        /// The model's table.
        table: &'static str,
        /// The record's tenant.
        tenant: Tenant,
        /// The state the operation needs.
        expected: State,
        /// The record's state.
        found: State,
    },

    /// The model failed validation; nothing was written.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),

    /// One model of a batch failed validation; nothing was written.
    #[error("row {index} of the batch: {errors}")]
    InvalidBatchRow {
        /// The position of the invalid model in the batch.
        index: usize,
        /// Its errors.
        errors: ValidationErrors,
    },

    /// The row is not (or no longer) in the tenant's table.
    #[error("no row in table {table:?} of tenant \"{tenant}\" matches")]
    NotFound {
        /// The tenant searched.
        tenant: Tenant,
        /// The model's table.
        table: &'static str,
    },

    /// A changeset tried to set a column that updates never write (the primary key or a
    /// database-generated column). Nothing was written.
    #[error("column {column:?} of table {table:?} is read-only (primary key or generated)")]
    ReadOnlyColumn {
        /// The model's table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },

    /// A batch insert would bind more values than the database allows in one statement.
    /// Nothing was sent; split the batch.
    #[error("batch of {rows} rows for table {table:?} needs more than {max_values} bound values; at most {max_rows} rows fit in one statement")]
    BatchTooLarge {
        /// The model's table.
        table: &'static str,
        /// The rows given.
        rows: usize,
        /// The most rows of this model that fit in one statement.
        max_rows: usize,
        /// The most values the database binds in one statement (PostgreSQL and MySQL 65,535;
        /// SQLite 32,766).
        max_values: usize,
    },

    /// `rename` or `clone_tenant` was given the same name twice; nothing was done.
    #[error("tenant \"{tenant}\" cannot be {operation} to its own name")]
    SameName {
        /// The tenant.
        tenant: Tenant,
        /// What was asked: `"renamed"` or `"cloned"`.
        operation: &'static str,
    },

    /// The tenant is registered but its container (PostgreSQL schema, MySQL database, SQLite
    /// file) does not exist: dropped outside tenancy, or left out of a restore. Nothing was run:
    /// unqualified migration SQL would otherwise resolve in another schema.
    /// `Tenants::drop_tenant` unregisters such a tenant.
    #[error("tenant \"{tenant}\" is registered but its {container} does not exist; nothing was run (drop the tenant to unregister it)")]
    ContainerMissing {
        /// The tenant.
        tenant: Tenant,
        /// What the container is on this backend: `"schema"`, `"database"` or `"database file"`.
        container: &'static str,
    },

    /// A lifecycle operation waited longer than the handle's lock timeout for a lock on the
    /// tenant (its lifecycle lock, its schema or one of its tables); nothing was done.
    #[error(
        "gave up on tenant \"{tenant}\" after waiting {waited:?} for a lock{}",
        LockHolders(holders)
    )]
    LockTimeout {
        /// The tenant.
        tenant: Tenant,
        /// The lock timeout that ran out.
        waited: Duration,
        /// The sessions found holding a lock on the tenant right after the timeout (may be
        /// empty if they finished meanwhile).
        holders: Vec<LockHolder>,
    },

    /// `create` or `rename` found the tenant already registered.
    #[error("tenant \"{tenant}\" already exists")]
    TenantExists {
        /// The tenant.
        tenant: Tenant,
    },

    /// `create`, `create_in` or `rename` onto a name, or `rename`, `promote` or `demote` of a
    /// row-level tenant, whose drop started and has not finished (it stopped part-way, or runs
    /// now): its rows are being deleted. [`Tenants::drop`](crate::Tenants::drop) of it finishes
    /// the drop; then the name is free.
    #[error("tenant \"{tenant}\" is being dropped (its rows are being deleted): drop it again to finish, then use the name")]
    BeingDropped {
        /// The tenant.
        tenant: Tenant,
    },

    /// [`create_in_many`](crate::Tenants::create_in_many) was given one name twice; nothing
    /// was registered.
    #[error("tenant \"{tenant}\" is named twice in one create_in_many; nothing was registered")]
    DuplicateName {
        /// The name given twice.
        tenant: Tenant,
    },

    /// [`create_in_many`](crate::Tenants::create_in_many) was given more names than one call
    /// registers (each holds a lock until the one commit); nothing was registered. Split them.
    #[error("create_in_many was given {names} names; at most {max} are registered in one call (split them); nothing was registered")]
    TooManyNames {
        /// The names given.
        names: usize,
        /// The most one call takes.
        max: usize,
    },

    /// `create` or `rename` found a container of that name (PostgreSQL schema, MySQL database,
    /// SQLite file) that is not a tenant (not created by this library). It was left alone.
    #[error("a {container} named \"{tenant}\" already exists and is not a tenant")]
    ContainerExists {
        /// The name asked for.
        tenant: Tenant,
        /// What the container is on this backend: `"schema"`, `"database"` or `"database file"`.
        container: &'static str,
    },

    /// A lifecycle operation named a schema that is not a registered tenant; nothing was done.
    #[error("\"{tenant}\" is not a tenant (no tenant of that name was created by tenancy)")]
    NotATenant {
        /// The name given.
        tenant: Tenant,
    },

    /// `clone_tenant` found the source tenant behind the handle's migrations: a clone is made
    /// at the source's version with the source's history, so the source is migrated first
    /// (`migrate`). Nothing was created.
    #[error(
        "tenant \"{tenant}\" has pending migrations {pending:?}; migrate it before cloning it"
    )]
    Pending {
        /// The tenant.
        tenant: Tenant,
        /// The versions it has not applied, ascending.
        pending: Vec<i64>,
    },

    /// A migration applied in the tenant has a different checksum now: its file was edited after
    /// it ran. It is never re-run; restore the file or write a new migration.
    #[error("migration {version} of tenant \"{tenant}\" changed after it was applied (checksum differs)")]
    ChecksumMismatch {
        /// The tenant.
        tenant: Tenant,
        /// The migration's version.
        version: i64,
    },

    /// The tenant has a migration applied that the migrator does not know (e.g. a newer build
    /// migrated it). Set `ignore_missing` on the sqlx `Migrator` to allow it.
    #[error(
        "migration {version} is applied in tenant \"{tenant}\" but missing from the migrations"
    )]
    UnknownMigration {
        /// The tenant.
        tenant: Tenant,
        /// The applied version.
        version: i64,
    },

    /// A rollback needs a down migration that does not exist.
    #[error("migration {version} of tenant \"{tenant}\" has no down migration; cannot roll back")]
    Irreversible {
        /// The tenant.
        tenant: Tenant,
        /// The migration's version.
        version: i64,
    },

    /// A migration is marked `-- no-transaction`. Tenant migrations run inside the transaction
    /// that makes create and migrate atomic, so these are refused up front.
    #[error("migration {version} ({description}) is marked no-transaction; tenant migrations must run in a transaction")]
    NonTransactionalMigration {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
    },

    /// The server restarted while `migrate` or `migrate_all` ran (PostgreSQL). Migrations
    /// commit without waiting for the disk and are flushed by the run's last commit; those
    /// committed before the restart may have been lost with it, so no report is returned. Every
    /// tenant is still at its old or its new version: run it again, which applies what was lost
    /// and reports the rest up to date.
    #[error("the server restarted during {operation}: migrations committed before the restart may have been lost; run it again")]
    ServerRestarted {
        /// The operation (`"migrate"`, `"migrate_all"`).
        operation: &'static str,
    },

    /// A migration's SQL failed in a tenant; that tenant's transaction was rolled back.
    #[error("migration {version} ({description}) failed in tenant \"{tenant}\"")]
    Migration {
        /// The tenant.
        tenant: Tenant,
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
        /// The database's error.
        #[source]
        source: DatabaseError,
    },

    /// A migration (or the revert of one) of the tenant started and did not finish, on a server
    /// whose DDL is not transactional (MySQL, MariaDB): its bookkeeping row in the registry still
    /// says it has not succeeded, so the tenant may hold part of its changes. Nothing was run;
    /// such a migration is never re-run on its own.
    #[error("migration {version} of tenant \"{tenant}\" failed part-way on a server without transactional DDL; repair the tenant by hand, then delete the row of version {version} for this tenant from the registry's `migrations` table (or mark it successful) and run again")]
    Dirty {
        /// The tenant.
        tenant: Tenant,
        /// The migration's version.
        version: i64,
    },

    /// The operation cannot be done on this backend for the tenant as it is (e.g. renaming a
    /// MySQL database that holds views or triggers, which do not follow their tables). It was
    /// refused before anything was changed.
    #[error("{operation} is not supported here: {reason}")]
    Unsupported {
        /// The operation refused (`"rename"`, …).
        operation: &'static str,
        /// Why, naming what stands in the way.
        reason: String,
    },

    /// A query was built in a way that cannot run (an `update_all` setting no column, a raw
    /// statement naming a table it was not given); refused before anything was sent.
    #[error("invalid query on table {table:?}: {problem}")]
    InvalidQuery {
        /// The table the query is on (for a raw statement, the first it names, or `""`).
        table: &'static str,
        /// What is wrong, naming the part to fix.
        problem: String,
    },

    /// The server refused the operation, or cannot do it as it is set up, for a reason the
    /// backend names in `source`, its own typed error: on PostgreSQL with Citus a
    /// [`postgres::CitusError`](crate::postgres::CitusError) (match it with
    /// `source.downcast_ref::<CitusError>()`). Nothing was changed: a refused migration's
    /// transaction was rolled back.
    #[error("{operation} refused{}", InTenant(tenant.as_ref()))]
    Refused {
        /// The operation (`"migrate"`, `"placement"`, `"move"`, …).
        operation: &'static str,
        /// The tenant it was about, if one.
        tenant: Option<Tenant>,
        /// Why, as the backend's error.
        #[source]
        source: sqlx::error::BoxDynError,
    },

    /// The `create` hook failed; the tenant was not created.
    #[error("the create hook failed for tenant \"{tenant}\"")]
    Hook {
        /// The tenant being created.
        tenant: Tenant,
        /// The hook's error.
        #[source]
        source: sqlx::error::BoxDynError,
    },

    /// A tenant archive ([`Tenants::import`](crate::Tenants::import)) is not one this build
    /// can read whole: not an archive, another format version, cut short, changed (a row
    /// count or hash differs), a value unfit for its column, or tables and migrations the
    /// target handle does not have. Nothing was created.
    #[error("the tenant archive is refused at line {line}: {problem}; nothing was created")]
    Archive {
        /// The archive's line (1-based) where the problem was found.
        line: u64,
        /// What is wrong there.
        problem: String,
    },

    /// A column of a tenant archive cannot be stored in the target tenant's column of the same
    /// name: the types do not map (e.g. a blob into an integer). Found before any row was
    /// written; nothing was created.
    #[error(transparent)]
    Unmappable(Box<Unmappable>),

    /// Reading or writing a tenant archive's stream failed.
    #[error("{operation} failed")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Code that needs the current tenant ([`context::require`](crate::context::require)) ran
    /// outside [`context::with_tenant`](crate::context::with_tenant): e.g. in a task started
    /// with `tokio::spawn` instead of [`context::spawn`](crate::context::spawn), or in a request
    /// the tenant layer did not see. Nothing was run.
    #[error("no current tenant: this code runs outside `tenancy::context::with_tenant` (a task started with `tokio::spawn` instead of `tenancy::context::spawn`, or a request without the tenant layer)")]
    NoCurrentTenant,

    /// Any other database error, with the tenant it was about when there is one.
    #[error("database error{}", InTenant(tenant.as_ref()))]
    Database {
        /// The tenant the operation was about, if any.
        tenant: Option<Tenant>,
        /// The database's error.
        #[source]
        source: DatabaseError,
    },
}

/// The column of [`Error::Unmappable`]: which one, and the two types that do not map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?} of table {table:?}: the archive's {from} cannot be stored in the tenant's {to}; nothing was created")]
pub struct Unmappable {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The archive's column type and kind, e.g. `BLOB (bytes)`.
    pub from: String,
    /// The target's column type and kind, e.g. `bigint (int)`.
    pub to: String,
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Database {
            tenant: None,
            source: DatabaseError(err),
        }
    }
}

impl Error {
    /// [`Error::Migration`]: migration `m` failed in `tenant` with `source`.
    pub(crate) fn migration(
        tenant: &Tenant,
        m: &sqlx::migrate::Migration,
        source: sqlx::Error,
    ) -> Self {
        Error::Migration {
            tenant: tenant.clone(),
            version: m.version,
            description: m.description.to_string(),
            source: source.into(),
        }
    }

    /// Names `tenant` in a [`Error::Database`] that names none yet; other errors are returned
    /// as they are.
    pub(crate) fn about(self, tenant: &Tenant) -> Self {
        match self {
            Error::Database {
                tenant: None,
                source,
            } => Error::Database {
                tenant: Some(tenant.clone()),
                source,
            },
            other => other,
        }
    }

    /// The sqlx error underneath, if this error came from the database.
    pub fn as_sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Database { source, .. }
            | Error::UnknownTenant { source, .. }
            | Error::NotPlaced { source, .. }
            | Error::Migration { source, .. } => Some(source.as_sqlx()),
            Error::Refused { source, .. } => {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
                while let Some(err) = cause {
                    if let Some(db) = err.downcast_ref::<DatabaseError>() {
                        return Some(db.as_sqlx());
                    }
                    cause = err.source();
                }
                None
            }
            _ => None,
        }
    }
}

struct InTenant<'a>(Option<&'a Tenant>);

impl fmt::Display for InTenant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(tenant) => write!(f, " in tenant \"{tenant}\""),
            None => Ok(()),
        }
    }
}

/// A session found holding a lock that a lifecycle operation waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The server process id (`pg_stat_activity.pid`).
    pub pid: i32,
    /// Its `application_name`.
    pub application_name: String,
    /// Its state (`active`, `idle in transaction`, …).
    pub state: String,
    /// The start of its last statement, truncated to 200 characters.
    pub query: String,
}

struct LockHolders<'a>(&'a [LockHolder]);

impl fmt::Display for LockHolders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { "; held by " } else { ", " })?;
            write!(f, "pid {} ({}, {:?}", h.pid, h.state, h.query)?;
            if !h.application_name.is_empty() {
                write!(f, ", application {:?}", h.application_name)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An error from sqlx, displayed as the server's message with its SQLSTATE, detail and hint
/// (without the server's source-code location that sqlx appends). The sqlx error itself is
/// [`as_sqlx`](Self::as_sqlx).
pub struct DatabaseError(pub(crate) sqlx::Error);

impl DatabaseError {
    /// The sqlx error.
    pub fn as_sqlx(&self) -> &sqlx::Error {
        &self.0
    }

    /// The sqlx error, taken out.
    pub fn into_sqlx(self) -> sqlx::Error {
        self.0
    }

    /// The SQLSTATE (PostgreSQL) of a server error.
    pub fn code(&self) -> Option<String> {
        match &self.0 {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for DatabaseError {
    fn from(err: sqlx::Error) -> Self {
        DatabaseError(err)
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

// `Display` is implemented where the backends are registered (lib.rs): each renders its own
// server errors.

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            // Rendered in full above; its own source is the same server error again.
            sqlx::Error::Database(_) => None,
            other => other.source(),
        }
    }
}
