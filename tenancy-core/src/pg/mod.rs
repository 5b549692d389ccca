//! The PostgreSQL backend (and its Citus flavour): a schema per tenant
//! (`"tenant"."guards"`). Its dialect, how a statement is sent (a stale plan re-prepared,
//! PgBouncer's way), what its errors mean — every SQLSTATE the crate looks at is named here and
//! nowhere else — and its lifecycle.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::postgres::{PgArguments, PgConnection, PgDatabaseError, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres};

pub(crate) mod citus;
#[cfg(test)]
mod dialect_tests;
mod handle;
mod pgbouncer;
#[doc(hidden)]
pub mod sql;
pub(crate) mod store;
#[cfg(feature = "testing")]
pub(crate) mod testing;

pub use pgbouncer::PgBouncer;

use crate::backend::{About, Backend, Conflict, Each, Failure, Session, SharedPool};
use crate::crud;
use crate::error::Error;
use crate::filter::{Column, Filter};
use crate::model::Model;
use crate::relation::PreloadKey;
use crate::statement::{Dialect, Op, Statement};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{scalars, BindColumn, SqlValue};

/// PostgreSQL's SQL: `"double quoted"` identifiers, `$n` placeholders, `RETURNING`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgDialect;

impl Dialect for PgDialect {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    const FLOAT_TYPE: &'static str = "DOUBLE PRECISION";

    fn quote_ident(out: &mut String, ident: &str) {
        crate::ident::double_quote_into(out, ident)
    }

    fn placeholder(out: &mut String, n: usize) {
        use std::fmt::Write as _;
        let _ = write!(out, "${n}");
    }
}

/// How a PostgreSQL session sends its statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgMode {
    /// Through PgBouncer in transaction mode: unnamed statements, each inside a transaction.
    pub(crate) pgbouncer: bool,
}

scalars!(Postgres, branch = i32);
crate::exec::connection_executor!(PgConnection, Postgres);

impl SharedPool for Postgres {}

/// On PostgreSQL a preload sends its keys as one bound array (`= ANY($1)`), so one statement
/// serves every number of keys and gets a generic plan.
impl<T> PreloadKey<Postgres> for T
where
    T: SqlValue<Postgres> + sqlx::postgres::PgHasArrayType + Clone + Eq + std::hash::Hash,
    Vec<T>: SqlValue<Postgres>,
{
    fn any_of<M: Model<Backend = Postgres>>(column: Column<M, Self>, keys: &[Self]) -> Filter<M> {
        Filter::leaf(column.name(), Op::AnyOf, vec![Box::new(keys.to_vec())])
    }
}

/// What a statement's caller wants back (the PostgreSQL room's own: one sending path with its
/// retry serves them all).
enum Want<'w> {
    Optional,
    Each(Each<'w, Postgres>),
    Affected,
}

impl Want<'_> {
    /// The same request, for a statement sent again (a retry).
    fn again(&mut self) -> Want<'_> {
        match self {
            Want::Optional => Want::Optional,
            Want::Each(each) => Want::Each(&mut **each),
            Want::Affected => Want::Affected,
        }
    }
}

/// What a statement returned, as asked for with the matching [`Want`].
enum Fetched {
    Optional(Option<PgRow>),
    Count(u64),
}

impl Fetched {
    fn optional(self) -> Option<PgRow> {
        match self {
            Fetched::Optional(row) => row,
            Fetched::Count(_) => None,
        }
    }

    fn count(self) -> u64 {
        match self {
            Fetched::Count(n) => n,
            Fetched::Optional(row) => u64::from(row.is_some()),
        }
    }
}

/// Sends `statement` on the session's connection: behind PgBouncer as an unnamed statement in a
/// transaction (the caller's, or one of its own); otherwise as a cached prepared statement,
/// re-prepared once if a migration changed its result type.
async fn send(
    session: &mut Session<'_, Postgres>,
    statement: &Statement<'_, Postgres>,
    mut want: Want<'_>,
) -> Result<Fetched, sqlx::Error> {
    let pgbouncer = session.mode.pgbouncer;
    let conn = session.conn();
    let sql = statement.sql();
    if pgbouncer {
        if conn.is_in_transaction() {
            return once(conn, sql, statement.arguments()?, false, want).await;
        }
        let mut tx = conn.begin().await?;
        return match once(&mut tx, sql, statement.arguments()?, false, want).await {
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
    match once(conn, sql, statement.arguments()?, true, want.again()).await {
        Err(err) if is_stale_plan(&err) => {
            conn.clear_cached_statements().await?;
            if conn.is_in_transaction() {
                return Err(err);
            }
            once(conn, sql, statement.arguments()?, true, want).await
        }
        other => other,
    }
}

async fn once(
    conn: &mut PgConnection,
    sql: &str,
    args: PgArguments,
    persistent: bool,
    want: Want<'_>,
) -> Result<Fetched, sqlx::Error> {
    let query = sqlx::query_with(AssertSqlSafe(sql), args).persistent(persistent);
    Ok(match want {
        Want::Optional => Fetched::Optional(query.fetch_optional(conn).await?),
        Want::Each(each) => {
            Fetched::Count(crate::backend::each_row(query.fetch(conn), each).await?)
        }
        Want::Affected => Fetched::Count(query.execute(conn).await?.rows_affected()),
    })
}

impl Backend for Postgres {
    type Dialect = PgDialect;
    type Mode = PgMode;
    const DB_SYSTEM: &'static str = "postgresql";
    const CONTAINER: &'static str = "schema";
    const MAX_BIND_PARAMS: usize = 65_535;
    type Store = store::PgStore;

    async fn fetch_optional<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        Ok(send(session, statement, Want::Optional).await?.optional())
    }

    async fn fetch_each<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
        each: Each<'s, Self>,
    ) -> Result<u64, sqlx::Error> {
        Ok(send(session, statement, Want::Each(each)).await?.count())
    }

    async fn execute<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> Result<u64, sqlx::Error> {
        Ok(send(session, statement, Want::Affected).await?.count())
    }

    /// Behind PgBouncer, an unnamed statement inside a transaction (the caller's, or one
    /// opened for the stream and committed at its end). A stale cached plan is not retried
    /// here: the error ends the stream (rows may already have been yielded); run it again.
    fn stream<'s>(
        session: &'s mut Session<'_, Self>,
        sql: &'s str,
        args: PgArguments,
    ) -> BoxStream<'s, Result<PgRow, sqlx::Error>> {
        let pgbouncer = session.mode.pgbouncer;
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

    fn insert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
    ) -> impl std::future::Future<Output = Result<Vec<PgRow>, Error>> + Send + 's {
        crud::insert_returning(session, about, table, rows)
    }

    fn update_row<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s dyn BindColumn<Self>,
        columns: &'s [usize],
    ) -> impl std::future::Future<Output = Result<Option<PgRow>, Error>> + Send + 's {
        crud::update_returning(session, about, table, row, columns)
    }

    fn upsert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
        conflict: Conflict<'s>,
    ) -> impl std::future::Future<Output = Result<Vec<PgRow>, Error>> + Send + 's {
        crud::upsert_returning(session, about, table, rows, conflict)
    }

    fn first_without_table<'a>(
        session: &'a mut Session<'_, Self>,
        batch: &'a [Tenant],
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>> {
        Box::pin(async move {
            let names: Vec<&str> = batch.iter().map(Tenant::as_str).collect();
            let missing: Option<String> = sqlx::query_scalar(FIRST_WITHOUT_TABLE)
                .persistent(!session.mode.pgbouncer)
                .bind(&names)
                .bind(table)
                .fetch_optional(session.conn())
                .await?;
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

/// The first of the schemas `$1` (`text[]`), in order, that has no table named `$2`: which
/// tenant made a statement across tenants fail with "relation does not exist".
const FIRST_WITHOUT_TABLE: &str =
    "SELECT schema FROM unnest($1::text[]) WITH ORDINALITY AS given(schema, position) \
     WHERE to_regclass(quote_ident(schema) || '.' || quote_ident($2)) IS NULL \
     ORDER BY position LIMIT 1";

/// Runs one lifecycle statement on `pool` and returns its rows: prepared and kept, or behind
/// PgBouncer unnamed and inside a transaction of its own.
pub(crate) async fn pool_rows(
    pool: &sqlx::PgPool,
    pgbouncer: bool,
    sql: &str,
    args: PgArguments,
) -> Result<Vec<PgRow>, sqlx::Error> {
    let query = sqlx::query_with(AssertSqlSafe(sql), args).persistent(!pgbouncer);
    if !pgbouncer {
        return query.fetch_all(pool).await;
    }
    let mut tx = pool.begin().await?;
    let rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
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
