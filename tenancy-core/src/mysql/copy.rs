//! The rows of a tenant copied into its clone on the server: what `information_schema` says
//! of the source database's tables, and the one transaction of `INSERT … SELECT`s across
//! databases that copies them.

use sqlx::mysql::MySqlConnection;
use sqlx::AssertSqlSafe;

use super::op::{qualified, quote};
use crate::error::Error;
use crate::lifecycle::archive;
use crate::lifecycle::copy::referenced_first;
use crate::tenant::Tenant;

/// How many triggers tenant `tenant`'s database holds, the placement guard's aside (they
/// guard its shared tables; the copy's database gets its own when it needs them).
pub(crate) async fn trigger_count(conn: &mut MySqlConnection, tenant: &Tenant) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TRIGGERS \
         WHERE EVENT_OBJECT_SCHEMA = ? AND TRIGGER_NAME NOT LIKE ?",
    )
    .bind(tenant.as_str())
    .bind(super::tier::OWN_TRIGGERS)
    .fetch_one(&mut *conn)
    .await?)
}

/// The base tables of database `schema` with their columns (generated ones left out: they are
/// computed again; `DEFAULT_GENERATED` ones, an expression default, have no generation
/// expression and are kept), referenced tables first.
pub(crate) async fn tables_in_order(
    conn: &mut MySqlConnection,
    schema: &Tenant,
) -> Result<Vec<(String, Vec<String>)>, Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .bind(schema.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND COALESCE(GENERATION_EXPRESSION, '') = '' \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .bind(schema.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = ? AND UNIQUE_CONSTRAINT_SCHEMA = ?",
    )
    .bind(schema.as_str())
    .bind(schema.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let graph = tables
        .iter()
        .map(|t| {
            let refs = references.iter().filter(|(c, _)| c == t);
            (t.clone(), refs.map(|(_, p)| p.clone()).collect())
        })
        .collect();
    Ok(referenced_first(graph)
        .into_iter()
        .map(|table| {
            let names = columns.iter().filter(|(t, _)| *t == table);
            let names = names.map(|(_, c)| c.clone()).collect();
            (table, names)
        })
        .collect())
}

/// Copies every row of `from`'s tables into `to`'s (made and migrated alike), in one
/// `REPEATABLE READ` transaction on `conn`. Refuses a `from` holding triggers, which would fire on the copy.
pub(crate) async fn copy_rows(
    conn: &mut MySqlConnection,
    from: &Tenant,
    to: &Tenant,
) -> Result<(), Error> {
    let triggers = trigger_count(conn, from).await?;
    archive::refuse_triggers("clone", from, triggers, "MySQL")?;
    let order = tables_in_order(conn, from).await?;
    // In REPEATABLE READ (whatever the server's default), `INSERT … SELECT` reads its source
    // with shared locks held to the commit: every table is copied as of one moment, `from`'s
    // writes waiting. (`SET TRANSACTION` is for the next transaction only.)
    let mut batch =
        String::from("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nSTART TRANSACTION;\n");
    for (table, _) in order.iter().rev() {
        batch.push_str(&format!("DELETE FROM {};\n", qualified(to.as_str(), table)));
    }
    for (table, names) in &order {
        let names: Vec<String> = names.iter().map(|c| quote(c)).collect();
        if names.is_empty() {
            continue;
        }
        let names = names.join(", ");
        batch.push_str(&format!(
            "INSERT INTO {} ({names}) SELECT {names} FROM {};\n",
            qualified(to.as_str(), table),
            qualified(from.as_str(), table)
        ));
    }
    batch.push_str("COMMIT");
    sqlx::raw_sql(AssertSqlSafe(batch)).execute(conn).await?;
    Ok(())
}
