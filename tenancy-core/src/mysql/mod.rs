//! The MySQL / MariaDB backend: a database per tenant (`` `tenant`.`table` ``). Every MySQL
//! error number the crate looks at is named here and nowhere else.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlDatabaseError};
use sqlx::{AssertSqlSafe, MySql};

use crate::backend::{Backend, Failure};
use crate::exec::{Args, Fetched, Session, Want};
use crate::sql;
use crate::tenant::Tenant;

pub(crate) mod store;
mod tenants;
pub(crate) use store::MySqlStore;

/// A handle without a lock timeout waits this long: one year, the largest `lock_wait_timeout`
/// the server accepts.
const WAIT_AS_LONG_AS_ALLOWED: Duration = Duration::from_secs(31_536_000);

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
    type Dialect = sql::MySql;
    const DB_SYSTEM: &'static str = "mysql";
    const CONTAINER: &'static str = "database";
    const MAX_BIND_PARAMS: usize = 65_535;
    type Store = MySqlStore;

    type StoreSettings = ();

    fn store(
        _pool: &sqlx::MySqlPool,
        registry: &Tenant,
        lock_timeout: Option<Duration>,
        _settings: &(),
    ) -> Result<MySqlStore, crate::Error> {
        Ok(MySqlStore::new(
            registry.clone(),
            lock_timeout.unwrap_or(WAIT_AS_LONG_AS_ALLOWED),
        ))
    }

    async fn tenant_pool(
        tenants: &crate::Tenants<Self>,
        _tenant: &Tenant,
    ) -> Result<sqlx::MySqlPool, crate::Error> {
        Ok(tenants.pool().clone())
    }

    async fn run<'a, 'w>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Args<'a, Self>,
        want: Want<'w, Self>,
    ) -> Result<Fetched<Self>, sqlx::Error> {
        once(session.conn(), sql, args()?, want).await
    }

    fn stream<'a>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Self::Arguments,
    ) -> futures_util::stream::BoxStream<'a, Result<Self::Row, sqlx::Error>> {
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch(session.conn())
    }

    fn bind_i64(args: &mut Self::Arguments, value: i64) -> Result<(), sqlx::Error> {
        sqlx::Arguments::add(args, value).map_err(sqlx::Error::Encode)
    }

    fn get_i64(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error> {
        sqlx::Row::try_get(row, index)
    }

    fn get<T: crate::query::SqlDecode<Self>>(
        row: &Self::Row,
        index: usize,
    ) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(row, index)
    }

    fn get_branch(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error> {
        sqlx::Row::try_get(row, index)
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
            let args = || {
                let mut args = MySqlArguments::default();
                sqlx::Arguments::add(&mut args, table).map_err(sqlx::Error::Encode)?;
                for tenant in batch {
                    sqlx::Arguments::add(&mut args, tenant.as_str())
                        .map_err(sqlx::Error::Encode)?;
                }
                Ok(args)
            };
            let rows = session.fetch_all(&sql, &args).await?;
            let present = rows
                .iter()
                .map(|r| sqlx::Row::try_get::<String, _>(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
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

async fn once(
    conn: &mut MySqlConnection,
    sql: &str,
    args: MySqlArguments,
    want: Want<'_, MySql>,
) -> Result<Fetched<MySql>, sqlx::Error> {
    let query = sqlx::query_with(AssertSqlSafe(sql), args);
    Ok(match want {
        Want::Optional => Fetched::Optional(query.fetch_optional(conn).await?),
        Want::All => Fetched::All(query.fetch_all(conn).await?),
        Want::Each(each) => {
            Fetched::Affected(crate::exec::each_row(query.fetch(conn), each).await?)
        }
        Want::Affected => Fetched::Affected(query.execute(conn).await?.rows_affected()),
    })
}
