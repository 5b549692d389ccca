//! What MySQL's and MariaDB's errors mean: every error number the crate looks at is named here
//! and nowhere else, and how a server error is written for people.

use std::fmt;

use sqlx::mysql::MySqlDatabaseError;

use crate::backend::Failure;

/// ER_BAD_DB_ERROR: unknown database.
const BAD_DB: u16 = 1049;
/// ER_NO_SUCH_TABLE: table doesn't exist.
const NO_SUCH_TABLE: u16 = 1146;
/// ER_DB_CREATE_EXISTS: can't create database; database exists.
const DB_CREATE_EXISTS: u16 = 1007;
/// ER_DUP_ENTRY: duplicate entry for a unique key.
const DUP_ENTRY: u16 = 1062;
/// ER_LOCK_WAIT_TIMEOUT: lock wait timeout exceeded.
const LOCK_WAIT_TIMEOUT: u16 = 1205;

/// The SQLSTATE the placement guard's triggers signal ([`super::tier`]): a row-level tenant's
/// row written to a database that does not hold its rows.
pub(crate) const NOT_PLACED_STATE: &str = "TNCY3";

/// The server's error number of `err`, if it is a MySQL server error.
pub(crate) fn number(err: &sqlx::Error) -> Option<u16> {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// The statement named a database that does not exist.
pub(crate) fn is_unknown_database(err: &sqlx::Error) -> bool {
    number(err) == Some(BAD_DB)
}

/// The statement named a table that does not exist.
pub(crate) fn is_missing_table(err: &sqlx::Error) -> bool {
    number(err) == Some(NO_SUCH_TABLE)
}

/// `CREATE DATABASE` found a database of that name.
pub(crate) fn is_database_exists(err: &sqlx::Error) -> bool {
    number(err) == Some(DB_CREATE_EXISTS)
}

/// A unique key (or primary key) refused the row.
pub(crate) fn is_duplicate_entry(err: &sqlx::Error) -> bool {
    number(err) == Some(DUP_ENTRY)
}

/// A metadata or row lock was not granted in time (`lock_wait_timeout`,
/// `innodb_lock_wait_timeout`).
pub(crate) fn is_lock_wait_timeout(err: &sqlx::Error) -> bool {
    number(err) == Some(LOCK_WAIT_TIMEOUT)
}

/// What a server error means to the crate, if anything.
pub(super) fn failure(err: &sqlx::Error) -> Option<Failure> {
    if let sqlx::Error::Database(db) = err {
        if db.code().as_deref() == Some(NOT_PLACED_STATE) {
            return Some(Failure::NotPlaced);
        }
    }
    Some(match number(err)? {
        NO_SUCH_TABLE => Failure::MissingTable,
        BAD_DB => Failure::MissingContainer,
        DB_CREATE_EXISTS => Failure::ContainerExists,
        DUP_ENTRY => Failure::UniqueViolation,
        LOCK_WAIT_TIMEOUT => Failure::LockTimeout,
        _ => return None,
    })
}

/// The server's message with its error number and SQLSTATE.
pub(super) fn render(
    err: &dyn sqlx::error::DatabaseError,
    f: &mut fmt::Formatter<'_>,
) -> Option<fmt::Result> {
    let my = err.try_downcast_ref::<MySqlDatabaseError>()?;
    Some((|| {
        f.write_str(my.message())?;
        write!(f, " (error {}", my.number())?;
        if let Some(state) = my.code() {
            write!(f, ", SQLSTATE {state}")?;
        }
        f.write_str(")")
    })())
}
