//! Sending the lifecycle's statements: their arguments, and one statement on a pool.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::AssertSqlSafe;

/// Builds the arguments of a lifecycle statement.
macro_rules! args {
    ($($value:expr),*) => {{
        #[allow(unused_mut)]
        let mut args = sqlx::postgres::PgArguments::default();
        $(sqlx::Arguments::add(&mut args, $value).map_err(sqlx::Error::Encode)?;)*
        args
    }};
}
pub(crate) use args;

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
