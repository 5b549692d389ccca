//! The crate's one error type.

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

    /// The tenant's schema (or the model's table in it) does not exist: the tenant was never
    /// created, was dropped, or has not been migrated.
    #[error("unknown tenant \"{tenant}\": no table {table:?} in schema \"{tenant}\" (the tenant does not exist or is not migrated)")]
    UnknownTenant {
        /// The tenant the statement was for.
        tenant: Tenant,
        /// The model's table.
        table: &'static str,
        /// The database's own error.
        #[source]
        source: sqlx::Error,
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

    /// A batch insert would bind more values than PostgreSQL allows in one statement.
    /// Nothing was sent; split the batch.
    #[error("batch of {rows} rows for table {table:?} needs more than 65535 bound values; at most {max_rows} rows fit in one statement")]
    BatchTooLarge {
        /// The model's table.
        table: &'static str,
        /// The rows given.
        rows: usize,
        /// The most rows of this model that fit in one statement.
        max_rows: usize,
    },

    /// `create` or `rename` found the tenant already registered.
    #[error("tenant \"{tenant}\" already exists")]
    TenantExists {
        /// The tenant.
        tenant: Tenant,
    },

    /// `create` or `rename` found a schema of that name that is not a tenant (not created by
    /// this library). It was left alone.
    #[error("a schema named \"{tenant}\" already exists and is not a tenant")]
    SchemaExists {
        /// The name asked for.
        tenant: Tenant,
    },

    /// A lifecycle operation named a schema that is not a registered tenant; nothing was done.
    #[error("\"{tenant}\" is not a tenant (no tenant of that name was created by tenancy)")]
    NotATenant {
        /// The name given.
        tenant: Tenant,
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

    /// A migration's SQL failed in a tenant; that tenant's transaction was rolled back.
    #[error("migration {version} ({description}) failed in tenant \"{tenant}\": {source}")]
    Migration {
        /// The tenant.
        tenant: Tenant,
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },

    /// The `create` hook failed; the tenant was not created.
    #[error("the create hook failed for tenant \"{tenant}\": {source}")]
    Hook {
        /// The tenant being created.
        tenant: Tenant,
        /// The hook's error.
        #[source]
        source: sqlx::error::BoxDynError,
    },

    /// Any other database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Maps a database error of a statement on `tenant`'s `table` to an [`Error`]: a missing
/// relation or schema becomes [`Error::UnknownTenant`] instead of a raw
/// "relation does not exist".
/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

pub(crate) fn from_db(err: sqlx::Error, tenant: &Tenant, table: &'static str) -> Error {
    let missing = matches!(
        &err,
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42P01" | "3F000"))
    );
    if missing {
        Error::UnknownTenant {
            tenant: tenant.clone(),
            table,
            source: err,
        }
    } else {
        Error::Database(err)
    }
}
