//! What PostgreSQL's errors mean to this crate. Every SQLSTATE the crate looks at is named here
//! and nowhere else.

use std::fmt;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgArguments, PgConnection, PgDatabaseError};
use sqlx::{AssertSqlSafe, Connection, Postgres};

pub(crate) mod citus;
pub(crate) mod lifecycle;
pub(crate) mod migrate;
#[doc(hidden)]
pub mod sql;

use crate::backend::{Backend, Failure};
use crate::exec::{Args, Fetched, Session, Want};
use crate::sql as dialect;
use crate::tenant::Tenant;

impl Backend for Postgres {
    type Dialect = dialect::Postgres;
    const DB_SYSTEM: &'static str = "postgresql";
    const CONTAINER: &'static str = "schema";
    const MAX_BIND_PARAMS: usize = 65_535;
    // The PostgreSQL lifecycle keeps its settings in the handle (lifecycle.rs, migrate.rs).
    type Store = ();
    type StoreSettings = ();

    fn store(
        _pool: &sqlx::PgPool,
        _registry: &Tenant,
        _lock_timeout: Option<std::time::Duration>,
        _settings: &(),
    ) -> Result<(), crate::Error> {
        Ok(())
    }

    /// Unnamed statements in a transaction behind PgBouncer; otherwise a cached statement,
    /// re-prepared once if a migration changed its result type (see [`crate::exec`]).
    async fn tenant_pool(
        tenants: &crate::Tenants<Self>,
        _tenant: &Tenant,
    ) -> Result<sqlx::PgPool, crate::Error> {
        Ok(tenants.pool().clone())
    }

    async fn run<'a, 'w>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Args<'a, Self>,
        mut want: Want<'w, Self>,
    ) -> Result<Fetched<Self>, sqlx::Error> {
        let pgbouncer = session.pgbouncer;
        let conn = session.conn();
        if pgbouncer {
            if conn.is_in_transaction() {
                return once(conn, sql, args()?, false, want).await;
            }
            let mut tx = conn.begin().await?;
            return match once(&mut tx, sql, args()?, false, want).await {
                Ok(fetched) => {
                    tx.commit().await?;
                    Ok(fetched)
                }
                Err(err) => {
                    let _ = tx.rollback().await;
                    Err(err)
                }
            };
        }
        // A stale plan is refused when the statement is bound, before any row is sent, so a
        // `Want::Each` has handed nothing over when it is retried.
        match once(conn, sql, args()?, true, want.again()).await {
            Err(err) if is_stale_plan(&err) => {
                conn.clear_cached_statements().await?;
                if conn.is_in_transaction() {
                    return Err(err);
                }
                once(conn, sql, args()?, true, want).await
            }
            other => other,
        }
    }

    /// Behind PgBouncer, an unnamed statement inside a transaction (the caller's, or one
    /// opened for the stream and committed at its end). A stale cached plan is not retried
    /// here: the error ends the stream (rows may already have been yielded); run it again.
    fn stream<'a>(
        session: &'a mut Session<'_, Self>,
        sql: &'a str,
        args: Self::Arguments,
    ) -> futures_util::stream::BoxStream<'a, Result<Self::Row, sqlx::Error>> {
        let pgbouncer = session.pgbouncer;
        let conn = session.conn();
        if !pgbouncer || conn.is_in_transaction() {
            return sqlx::query_with(AssertSqlSafe(sql), args)
                .persistent(!pgbouncer)
                .fetch(conn);
        }
        Box::pin(async_stream::try_stream! {
            let mut tx = conn.begin().await?;
            {
                let mut rows = sqlx::query_with(AssertSqlSafe(sql), args)
                    .persistent(false)
                    .fetch(&mut *tx);
                while let Some(row) = futures_util::StreamExt::next(&mut rows).await {
                    yield row?;
                }
            }
            tx.commit().await?;
        })
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

    /// The literal index is an `integer`.
    fn get_branch(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error> {
        sqlx::Row::try_get::<i32, _>(row, index).map(i64::from)
    }

    fn first_without_table<'a>(
        session: &'a mut Session<'_, Self>,
        batch: &'a [Tenant],
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>> {
        Box::pin(async move {
            let names: Vec<&str> = batch.iter().map(Tenant::as_str).collect();
            let args = || {
                let mut args = PgArguments::default();
                sqlx::Arguments::add(&mut args, &names).map_err(sqlx::Error::Encode)?;
                sqlx::Arguments::add(&mut args, table).map_err(sqlx::Error::Encode)?;
                Ok(args)
            };
            let row = session
                .fetch_optional(dialect::first_without_table(), &args)
                .await?;
            let missing: Option<String> = row.map(|r| sqlx::Row::try_get(&r, 0)).transpose()?;
            Ok(missing.and_then(|name| batch.iter().position(|t| t.as_str() == name)))
        })
    }

    fn failure(err: &sqlx::Error) -> Option<Failure> {
        let code = code(err)?;
        Some(match code.as_str() {
            UNDEFINED_TABLE => Failure::MissingTable,
            INVALID_SCHEMA_NAME => Failure::MissingContainer,
            DUPLICATE_SCHEMA => Failure::ContainerExists,
            UNIQUE_VIOLATION => Failure::UniqueViolation,
            LOCK_NOT_AVAILABLE => Failure::LockTimeout,
            _ => return None,
        })
    }

    fn render(err: &sqlx::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(err, f)
    }
}

async fn once(
    conn: &mut PgConnection,
    sql: &str,
    args: PgArguments,
    persistent: bool,
    want: Want<'_, Postgres>,
) -> Result<Fetched<Postgres>, sqlx::Error> {
    let query = sqlx::query_with(AssertSqlSafe(sql), args).persistent(persistent);
    Ok(match want {
        Want::Optional => Fetched::Optional(query.fetch_optional(conn).await?),
        Want::All => Fetched::All(query.fetch_all(conn).await?),
        Want::Each(each) => {
            Fetched::Affected(crate::exec::each_row(query.fetch(conn), each).await?)
        }
        Want::Affected => Fetched::Affected(query.execute(conn).await?.rows_affected()),
    })
}

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
