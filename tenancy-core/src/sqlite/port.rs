//! A tenant's rows read for an export and written by an import: the file's tables (each
//! column's kind from its declared type, as SQLite's affinity rules read it, and the names
//! sqlx's types are stored under), every value read as the type it is stored as, and
//! multi-row `INSERT`s with bound values (a uuid as its 16 bytes, as sqlx stores one).

use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Row, TypeInfo, ValueRef};

use super::store::{SqliteOp, SqliteStore, MIGRATIONS_TABLE};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::archive::insert::insert;
use crate::lifecycle::archive::{self, canonical, uuid_bytes, Column, Kind, Lines, Shape, Value};
use crate::lifecycle::store::{Batch, Port, Source};
use crate::tenant::Tenant;

/// What a column declared as `declared` holds: the names sqlx's types are declared with first
/// (`BOOLEAN`, `UUID`, `JSON`, dates and times), then SQLite's affinity rules.
pub(crate) fn kind(declared: &str) -> Kind {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    if has("BOOL") {
        Kind::Bool
    } else if has("UUID") {
        Kind::Uuid
    } else if has("JSON") {
        Kind::Json
    } else if has("TIMESTAMPTZ") || has("WITH TIME ZONE") {
        Kind::TimestampTz
    } else if has("DATETIME") || has("TIMESTAMP") {
        Kind::Timestamp
    } else if d == "DATE" {
        Kind::Date
    } else if has("TIME") {
        Kind::Time
    } else if has("INT") {
        Kind::Int
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        Kind::Text
    } else if has("BLOB") {
        Kind::Bytes
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        Kind::Float
    } else if d.is_empty() {
        Kind::Other
    } else {
        Kind::Numeric
    }
}

/// The tables of the file open on `conn` (not SQLite's own, not the migration history, not
/// the placement guard's list), referenced tables first.
pub(crate) async fn shapes(conn: &mut SqliteConnection) -> Result<Vec<Shape>, Error> {
    // `hidden` 0: a stored column (2 and 3 are generated ones, computed again).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.name, c.name, c.type FROM sqlite_schema m, pragma_table_xinfo(m.name) c \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND m.name NOT IN (?1, ?2) AND c.hidden = 0 ORDER BY m.name, c.cid",
    )
    .bind(MIGRATIONS_TABLE)
    .bind(super::tier::MOVED_OUT)
    .fetch_all(&mut *conn)
    .await?;
    let columns = rows
        .into_iter()
        .map(|(table, name, declared)| {
            let kind = kind(&declared);
            (table, Column { name, declared, kind })
        })
        .collect();
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"table\" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table'",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(archive::shapes(columns, references))
}

/// The value of column `c` of `table`, at `i` in `row`: read as the type it is stored as,
/// then made canonical for the column's kind.
fn decode(row: &SqliteRow, i: usize, c: &Column, table: &Shape) -> Result<Value, Error> {
    let raw = row.try_get_raw(i)?;
    let stored = if raw.is_null() {
        Value::Null
    } else {
        // The type the value is stored as (SQLite's storage class), not the declared one.
        let class = raw.type_info().name().to_owned();
        match class.as_str() {
            "INTEGER" | "BOOLEAN" => Value::Int(row.try_get_unchecked(i)?),
            "REAL" => Value::Float(row.try_get_unchecked(i)?),
            "BLOB" => Value::Bytes(row.try_get_unchecked(i)?),
            _ => Value::Text(row.try_get_unchecked(i)?),
        }
    };
    canonical(c.kind, stored).map_err(|problem| Error::Unsupported {
        operation: "export",
        reason: format!("column {:?} of table {:?}: {problem}", c.name, table.name),
    })
}

/// The refusal of a value of column `c` of `table` that SQLite would not keep as it is
/// (`holds`: the value and what SQLite would make of it).
fn refused(table: &Shape, c: &Column, holds: &str) -> Error {
    Error::Unsupported {
        operation: "import",
        reason: format!(
            "column {:?} of table {:?} holds {holds}; nothing was created",
            c.name, table.name
        ),
    }
}

/// Whether `value` of a date or timestamp kind starts as `YYYY-MM-DD` with a year from 1 to
/// 9999 (not PostgreSQL's `infinity` or `… BC`).
fn calendar_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[..4] != b"0000"
        && b[4] == b'-'
        && !value.ends_with(" BC")
}

impl Port<Sqlite> for SqliteStore {
    /// The file's write lock, taken when the history was read, is the consistent view.
    async fn export_begin(&self, op: &mut SqliteOp, _tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        shapes(op.conn()).await
    }

    fn read_lines<'a>(&'a self, op: &'a mut SqliteOp, from: Source<'a>) -> Lines<'a> {
        let table = from.table;
        let name = double_quoted(&table.name);
        let select = archive::select(table, &name, double_quoted, |_, column| column);
        let rows = sqlx::query(AssertSqlSafe(select)).fetch(op.conn());
        archive::decoded(rows, table, move |row, i, c| decode(row, i, c, table))
    }

    /// Refuses a file with triggers (they would fire on every imported row, and SQLite cannot
    /// turn them off), defers foreign key checks to the commit, and empties the tables of
    /// what the migrations wrote.
    async fn import_begin(&self, op: &mut SqliteOp, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        let conn = op.conn();
        let triggers: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger'")
                .fetch_one(&mut *conn)
                .await?;
        archive::refuse_triggers("import", tenant, triggers, "SQLite")?;
        let tables = shapes(conn).await?;
        let mut batch = String::from("PRAGMA defer_foreign_keys = ON;\n");
        for table in tables.iter().rev() {
            batch.push_str(&format!("DELETE FROM {};\n", double_quoted(&table.name)));
        }
        sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&mut *conn)
            .await?;
        Ok(tables)
    }

    /// One multi-row `INSERT`: a uuid as its 16 bytes, as sqlx stores one; a NaN refused
    /// (SQLite would store NULL in its place), and so is a date no reader of SQLite's takes.
    async fn write_rows(&self, op: &mut SqliteOp, batch: Batch<'_>) -> Result<(), Error> {
        let table = batch.into.table;
        let name = double_quoted(&table.name);
        let query = insert(&name, double_quoted, batch, |c, value| {
            Ok(match (c.kind, value) {
                (Kind::Uuid, Value::Text(t)) => {
                    Value::Bytes(uuid_bytes(t).map_err(|problem| Error::Archive {
                        line: 0,
                        problem: format!(
                            "column {:?} of table {:?}: {problem}",
                            c.name, table.name
                        ),
                    })?)
                }
                (_, Value::Float(f)) if f.is_nan() => {
                    return Err(refused(table, c, "NaN, which SQLite stores as NULL"))
                }
                (Kind::Date | Kind::Timestamp | Kind::TimestampTz, Value::Text(t))
                    if !calendar_date(t) =>
                {
                    let holds = format!(
                        "{t:?}, which is no date SQLite's readers take (years 0001 to 9999 only)"
                    );
                    return Err(refused(table, c, &holds));
                }
                (_, v) => v.clone(),
            })
        })?;
        query.execute(op.conn()).await?;
        Ok(())
    }

    /// Nothing left: `AUTOINCREMENT` keys already continue after the largest one written.
    async fn import_end(&self, _op: &mut SqliteOp, _tenant: &Tenant) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_declared_types() {
        assert_eq!(kind("INTEGER"), Kind::Int);
        assert_eq!(kind("BOOLEAN"), Kind::Bool);
        assert_eq!(kind("uuid"), Kind::Uuid);
        assert_eq!(kind("TIMESTAMPTZ"), Kind::TimestampTz);
        assert_eq!(kind("DATETIME"), Kind::Timestamp);
        assert_eq!(kind("DATE"), Kind::Date);
        assert_eq!(kind("VARCHAR(20)"), Kind::Text);
        assert_eq!(kind("BLOB"), Kind::Bytes);
        assert_eq!(kind("DOUBLE PRECISION"), Kind::Float);
        assert_eq!(kind("DECIMAL(10,2)"), Kind::Numeric);
        assert_eq!(kind(""), Kind::Other);
    }
}
