//! What PostgreSQL's errors mean to this crate. Every SQLSTATE the crate looks at is named here
//! and nowhere else.

use std::fmt;

use sqlx::postgres::PgDatabaseError;

/// 42P01 undefined_table.
const UNDEFINED_TABLE: &str = "42P01";
/// 3F000 invalid_schema_name.
const INVALID_SCHEMA_NAME: &str = "3F000";
/// 23505 unique_violation.
const UNIQUE_VIOLATION: &str = "23505";
/// 42P06 duplicate_schema.
const DUPLICATE_SCHEMA: &str = "42P06";
/// 55P03 lock_not_available: `lock_timeout` ran out.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// 0A000 feature_not_supported; with the message below, a cached prepared statement whose
/// result columns changed type since it was prepared.
const FEATURE_NOT_SUPPORTED: &str = "0A000";
const STALE_PLAN_MESSAGE: &str = "cached plan must not change result type";

fn code(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn has_code(err: &sqlx::Error, wanted: &str) -> bool {
    code(err).as_deref() == Some(wanted)
}

/// The statement named a table or schema that does not exist.
pub(crate) fn is_missing_relation(err: &sqlx::Error) -> bool {
    matches!(
        code(err).as_deref(),
        Some(UNDEFINED_TABLE | INVALID_SCHEMA_NAME)
    )
}

/// A unique constraint refused the row.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    has_code(err, UNIQUE_VIOLATION)
}

/// `CREATE SCHEMA` or `ALTER SCHEMA … RENAME` found the name taken.
pub(crate) fn is_duplicate_schema(err: &sqlx::Error) -> bool {
    has_code(err, DUPLICATE_SCHEMA)
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

/// Writes a server error as its message, SQLSTATE, detail and hint; not the server's own
/// source-code location, which sqlx's `Display` appends ("at line 1454") and which reads like a
/// line of the user's migration.
pub(crate) fn render(err: &sqlx::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sqlx::Error::Database(db) = err else {
        return fmt::Display::fmt(err, f);
    };
    f.write_str(db.message())?;
    if let Some(code) = db.code() {
        write!(f, " (SQLSTATE {code})")?;
    }
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = pg.hint() {
            write!(f, "; hint: {hint}")?;
        }
    }
    Ok(())
}
