//! What SQLite's errors mean: every result code and message the crate looks at is named here
//! and nowhere else, and how an error is written for people.

use std::fmt;

use crate::backend::Failure;

/// SQLITE_BUSY: the file is locked by another connection (after the busy timeout).
const BUSY: i32 = 5;
/// SQLITE_CANTOPEN: the file could not be opened (it does not exist: tenants are opened
/// without `create_if_missing`).
const CANTOPEN: i32 = 14;
/// SQLITE_CONSTRAINT_PRIMARYKEY.
const CONSTRAINT_PRIMARYKEY: i32 = 1555;
/// SQLITE_CONSTRAINT_UNIQUE.
const CONSTRAINT_UNIQUE: i32 = 2067;
/// SQLITE_CONSTRAINT: a constraint refused the statement (a trigger's `RAISE(ABORT, …)` among
/// them, as extended code SQLITE_CONSTRAINT_TRIGGER).
const CONSTRAINT: i32 = 19;
/// The start of the message of the placement guard's refusal (`RAISE(ABORT, …)` in the
/// triggers a promote or demote adds): the row's tenant is not placed in this file.
pub(crate) const NOT_PLACED_MESSAGE: &str = "tenancy: not placed here";
/// The start of SQLite's message for a missing table (its code is the generic SQLITE_ERROR).
const NO_SUCH_TABLE: &str = "no such table";

/// The extended result code of `err`, if it is a SQLite error.
fn code(err: &sqlx::Error) -> Option<i32> {
    match err {
        sqlx::Error::Database(db)
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
        {
            db.code().and_then(|c| c.parse().ok())
        }
        _ => None,
    }
}

/// The file was locked by another connection for longer than the busy timeout.
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    code(err).is_some_and(|c| c & 0xff == BUSY)
}

/// The file could not be opened.
pub(crate) fn is_cantopen(err: &sqlx::Error) -> bool {
    code(err).is_some_and(|c| c & 0xff == CANTOPEN)
}

/// A unique or primary key refused the row.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(code(err), Some(CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY))
}

/// The statement named a table the file does not have.
pub(crate) fn is_missing_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && db.message().starts_with(NO_SUCH_TABLE))
}

/// The placement guard refused the row ([`NOT_PLACED_MESSAGE`]).
fn is_not_placed(err: &sqlx::Error) -> bool {
    code(err).is_some_and(|c| c & 0xff == CONSTRAINT)
        && matches!(err, sqlx::Error::Database(db) if db.message().starts_with(NOT_PLACED_MESSAGE))
}

/// What a server error means to the crate, if anything.
pub(super) fn failure(err: &sqlx::Error) -> Option<Failure> {
    if is_not_placed(err) {
        return Some(Failure::NotPlaced);
    }
    if is_missing_table(err) {
        return Some(Failure::MissingTable);
    }
    // A tenant's pool is closed when the tenant is dropped or renamed; a file that cannot
    // be opened is a tenant whose file is gone.
    if matches!(err, sqlx::Error::PoolClosed) || is_cantopen(err) {
        return Some(Failure::MissingContainer);
    }
    if is_unique_violation(err) {
        return Some(Failure::UniqueViolation);
    }
    if is_busy(err) {
        return Some(Failure::LockTimeout);
    }
    None
}

/// SQLite's message with its extended result code.
pub(super) fn render(
    err: &dyn sqlx::error::DatabaseError,
    f: &mut fmt::Formatter<'_>,
) -> Option<fmt::Result> {
    err.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    Some((|| {
        f.write_str(err.message())?;
        if let Some(code) = err.code() {
            write!(f, " (SQLite result code {code})")?;
        }
        Ok(())
    })())
}
