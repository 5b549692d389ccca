//! Sending the lifecycle's statements: their arguments, one statement on a pool, and the
//! catalog queries about one schema.

use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, FromRow};

use crate::tenant::Tenant;

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

/// The rows of catalog query `sql` about `schema` (its `$1`) on `conn`, decoded as `T`:
/// prepared and kept if `persistent` (not behind PgBouncer).
pub(crate) async fn schema_rows<T>(
    conn: &mut PgConnection,
    persistent: bool,
    sql: &'static str,
    schema: &Tenant,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .persistent(persistent)
        .bind(schema.as_str())
        .fetch_all(conn)
        .await
}
