//! The multi-row `INSERT` with bound values that MySQL's and SQLite's imports write each batch
//! of rows with.

use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Database};

use super::{Column, Value};
use crate::error::Error;
use crate::lifecycle::store::Batch;

/// The `INSERT` of `batch`, whose table the backend names `table` (qualified and quoted) and
/// whose columns it quotes with `quote`: one statement, each value bound as
/// `stored` makes it for its column (what the backend stores otherwise than the archive
/// carries it: MySQL's timestamps without an offset, SQLite's uuids as 16 bytes).
pub(crate) fn insert<'q, DB>(
    table: &str,
    quote: fn(&str) -> String,
    batch: Batch<'_>,
    stored: impl Fn(&Column, &Value) -> Result<Value, Error>,
) -> Result<Query<'q, DB, DB::Arguments>, Error>
where
    DB: Database,
    for<'t> bool: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> f64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Vec<u8>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let Batch { into, rows } = batch;
    let columns: Vec<&Column> = into
        .columns
        .iter()
        .map(|&i| &into.table.columns[i])
        .collect();
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    let mut query = sqlx::query(AssertSqlSafe(insert_values(table, &names, rows.len())));
    for row in rows {
        for (column, value) in columns.iter().zip(row) {
            query = match stored(column, value)? {
                Value::Null => query.bind(None::<String>),
                Value::Bool(b) => query.bind(b),
                Value::Int(i) => query.bind(i),
                Value::Float(f) => query.bind(f),
                Value::Text(t) => query.bind(t),
                Value::Bytes(b) => query.bind(b),
            };
        }
    }
    Ok(query)
}

/// `INSERT INTO {table} ({columns}) VALUES (?, …), …` for `rows` rows of the columns `names`
/// (already quoted), with `?` placeholders.
fn insert_values(table: &str, names: &[String], rows: usize) -> String {
    let row = format!("({})", vec!["?"; names.len()].join(", "));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        names.join(", "),
        vec![row; rows].join(", ")
    )
}
