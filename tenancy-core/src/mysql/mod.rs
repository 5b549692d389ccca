//! The MySQL / MariaDB backend: a database per tenant (`` `tenant`.`table` ``). Every MySQL
//! error number the crate looks at is named here and nowhere else.

use std::fmt;

use futures_util::future::BoxFuture;
use sqlx::mysql::{MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::MySql;

use crate::backend::{plain_sending, About, Backend, Conflict, Failure, Session, SharedPool};
use crate::error::Error;
use crate::statement::Dialect;
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{scalars, BindColumn};

#[cfg(test)]
mod dialect_tests;
mod op;
pub(crate) mod store;
#[cfg(feature = "testing")]
mod testing;
mod write;
pub(crate) use store::MySqlStore;

/// MySQL's and MariaDB's SQL: `` `backquoted` `` identifiers, `?` placeholders, no
/// `RETURNING` (the row is read back by key or `LAST_INSERT_ID()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlDialect;

impl Dialect for MySqlDialect {
    const RETURNING: bool = false;
    const NUMBERED_PARAMS: bool = false;
    const DELETE_THROUGH_DERIVED_TABLE: bool = true;
    // The documented idiom: the largest unsigned 64-bit value.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT 18446744073709551615");
    const INTEGER_TYPE: &'static str = "SIGNED";
    const ON_DUPLICATE_KEY: bool = true;
    const FLOAT_TYPE: &'static str = "DOUBLE";

    fn quote_ident(out: &mut String, ident: &str) {
        crate::ident::quote_into(out, ident, '`')
    }

    fn placeholder(out: &mut String, _n: usize) {
        out.push('?');
    }
}

scalars!(MySql, branch = i64);
crate::exec::connection_executor!(MySqlConnection, MySql);
crate::relation::preload_with_in!(MySql);

impl SharedPool for MySql {}

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

impl Backend for MySql {
    type Dialect = MySqlDialect;
    type Mode = ();
    const DB_SYSTEM: &'static str = "mysql";
    const CONTAINER: &'static str = "database";
    const MAX_BIND_PARAMS: usize = 65_535;
    type Store = MySqlStore;

    plain_sending!();

    fn insert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
    ) -> impl std::future::Future<Output = Result<Vec<MySqlRow>, Error>> + Send + 's {
        write::insert_rows(session, about, table, rows)
    }

    fn update_row<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s dyn BindColumn<Self>,
        columns: &'s [usize],
    ) -> impl std::future::Future<Output = Result<Option<MySqlRow>, Error>> + Send + 's {
        write::update_row(session, about, table, row, columns)
    }

    fn upsert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
        conflict: Conflict<'s>,
    ) -> impl std::future::Future<Output = Result<Vec<MySqlRow>, Error>> + Send + 's {
        write::upsert_rows(session, about, table, rows, conflict)
    }

    fn first_without_table<'a>(
        session: &'a mut Session<'_, Self>,
        batch: &'a [Tenant],
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>> {
        Box::pin(async move {
            let mut sql = String::from(
                "SELECT CAST(table_schema AS CHAR) FROM information_schema.tables \
                 WHERE table_name = ? AND table_schema IN (",
            );
            for i in 0..batch.len() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
            }
            sql.push(')');
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(table);
            for tenant in batch {
                query = query.bind(tenant.as_str());
            }
            let present: Vec<String> = query.fetch_all(session.conn()).await?;
            Ok(batch
                .iter()
                .position(|t| !present.iter().any(|p| p == t.as_str())))
        })
    }

    fn failure(err: &sqlx::Error) -> Option<Failure> {
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
    fn render(err: &sqlx::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sqlx::Error::Database(db) = err else {
            return fmt::Display::fmt(err, f);
        };
        f.write_str(db.message())?;
        if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
            write!(f, " (error {}", my.number())?;
            if let Some(state) = my.code() {
                write!(f, ", SQLSTATE {state}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
