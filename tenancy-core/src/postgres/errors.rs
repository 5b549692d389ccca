//! What PostgreSQL's errors mean: every SQLSTATE the crate looks at is named here and nowhere
//! else, and how a server error is written for people.

use std::fmt;

use sqlx::postgres::PgDatabaseError;

use crate::backend::Failure;

/// 42P01 undefined_table.
const UNDEFINED_TABLE: &str = "42P01";
/// 3F000 invalid_schema_name.
const INVALID_SCHEMA_NAME: &str = "3F000";
/// 23505 unique_violation.
const UNIQUE_VIOLATION: &str = "23505";
/// 42P06 duplicate_schema.
const DUPLICATE_SCHEMA: &str = "42P06";
/// 42501 insufficient_privilege.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// 42883 undefined_function.
const UNDEFINED_FUNCTION: &str = "42883";
/// 55P03 lock_not_available: `lock_timeout` ran out.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// 0A000 feature_not_supported; with the message below, a cached prepared statement whose
/// result columns changed type since it was prepared.
const FEATURE_NOT_SUPPORTED: &str = "0A000";
const STALE_PLAN_MESSAGE: &str = "cached plan must not change result type";

/// The placement guard's refusal ([`super::sql::NOT_PLACED`]).
const NOT_PLACED: &str = super::sql::NOT_PLACED;

fn code(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn has_code(err: &sqlx::Error, wanted: &str) -> bool {
    code(err).as_deref() == Some(wanted)
}

/// A unique constraint refused the row.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    has_code(err, UNIQUE_VIOLATION)
}

/// `CREATE SCHEMA` or `ALTER SCHEMA … RENAME` found the name taken.
pub(crate) fn is_duplicate_schema(err: &sqlx::Error) -> bool {
    has_code(err, DUPLICATE_SCHEMA)
}

/// The role lacks a privilege the statement needs.
pub(crate) fn is_insufficient_privilege(err: &sqlx::Error) -> bool {
    has_code(err, INSUFFICIENT_PRIVILEGE)
}

/// No function of that name and arguments (a registry made by an older version, which the
/// handle's role may not change).
pub(crate) fn is_undefined_function(err: &sqlx::Error) -> bool {
    has_code(err, UNDEFINED_FUNCTION)
}

/// Whether the server refused something as not supported (`0A000`): what Citus answers to a
/// table it cannot distribute (a key without the distribution column, and the like).
pub(crate) fn is_not_supported(err: &sqlx::Error) -> bool {
    has_code(err, FEATURE_NOT_SUPPORTED)
}

/// A lock was not granted within `lock_timeout`.
pub(crate) fn is_lock_timeout(err: &sqlx::Error) -> bool {
    has_code(err, LOCK_NOT_AVAILABLE)
}

/// A cached prepared statement failed because a migration changed the type of a column it
/// returns. It failed before executing, so running it again after re-preparing is safe.
pub(crate) fn is_stale_plan(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some(FEATURE_NOT_SUPPORTED)
                && db.message().contains(STALE_PLAN_MESSAGE)
        }
        _ => false,
    }
}

/// The server's message with its SQLSTATE, detail and hint; `None` if `err` is another
/// database's.
pub(super) fn render(
    err: &dyn sqlx::error::DatabaseError,
    f: &mut fmt::Formatter<'_>,
) -> Option<fmt::Result> {
    let pg = err.try_downcast_ref::<PgDatabaseError>()?;
    Some(render_pg(pg, f))
}

fn render_pg(pg: &PgDatabaseError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(pg.message())?;
    write!(f, " (SQLSTATE {})", pg.code())?;
    if let Some(detail) = pg.detail() {
        write!(f, "; detail: {detail}")?;
    }
    if let Some(hint) = pg.hint() {
        write!(f, "; hint: {hint}")?;
    }
    Ok(())
}

/// What a server error means to the crate, if anything.
pub(super) fn failure(err: &sqlx::Error) -> Option<Failure> {
    let code = code(err)?;
    Some(match code.as_str() {
        UNDEFINED_TABLE => Failure::MissingTable,
        INVALID_SCHEMA_NAME => Failure::MissingContainer,
        DUPLICATE_SCHEMA => Failure::ContainerExists,
        UNIQUE_VIOLATION => Failure::UniqueViolation,
        LOCK_NOT_AVAILABLE => Failure::LockTimeout,
        NOT_PLACED => Failure::NotPlaced,
        _ => return None,
    })
}
