//! A tenant's rows read for an export and written by an import: what `information_schema`
//! says of the database's tables (each column's kind from its type), a `SELECT` that prints
//! every value in the archive's form, and multi-row `INSERT`s with bound values.

use sqlx::mysql::{MySql, MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Row};

use super::op::{qualified, quote};
use super::store::{MySqlOp, MySqlStore};
use crate::error::Error;
use crate::lifecycle::archive::insert::insert;
use crate::lifecycle::archive::{self, Column, Kind, Lines, Shape, Value};
use crate::lifecycle::store::{Batch, Port, Source};
use crate::tenant::Tenant;

/// Each stored column of each base table of a database, in order (generated columns are
/// computed again; `DEFAULT_GENERATED` ones, an expression default, have no generation
/// expression and are stored).
const COLUMNS: &str = "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE \
     FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
     ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' \
     AND COALESCE(c.GENERATION_EXPRESSION, '') = '' \
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

/// Each foreign key between two tables of a database.
const REFERENCES: &str = "SELECT TABLE_NAME, REFERENCED_TABLE_NAME \
     FROM information_schema.REFERENTIAL_CONSTRAINTS \
     WHERE CONSTRAINT_SCHEMA = ? AND UNIQUE_CONSTRAINT_SCHEMA = ?";

/// What a column of MySQL type `data_type` (`COLUMN_TYPE` `column_type`) holds. `TINYINT(1)`
/// is a boolean (as sqlx maps `bool`); `BIGINT UNSIGNED` does not fit an `int` and is carried
/// as a decimal; MariaDB's `JSON` is `LONGTEXT`, text.
pub(crate) fn kind(data_type: &str, column_type: &str) -> Kind {
    let column_type = column_type.to_ascii_lowercase();
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" if column_type.starts_with("tinyint(1)") => Kind::Bool,
        "bigint" if column_type.contains("unsigned") => Kind::Numeric,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => Kind::Int,
        "float" | "double" | "real" => Kind::Float,
        "decimal" | "numeric" => Kind::Numeric,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Kind::Text
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Bytes,
        "json" => Kind::Json,
        "uuid" => Kind::Uuid,
        "date" => Kind::Date,
        "time" => Kind::Time,
        "datetime" => Kind::Timestamp,
        // Stored in UTC, read in the session's time zone (sqlx sets `+00:00`).
        "timestamp" => Kind::TimestampTz,
        _ => Kind::Other,
    }
}

/// The tables of `tenant`'s database, referenced tables first.
pub(crate) async fn shapes(conn: &mut MySqlConnection, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(COLUMNS)
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    let columns = rows
        .into_iter()
        .map(|(table, name, column_type, data_type)| {
            let kind = kind(&data_type, &column_type);
            let column = Column {
                name,
                declared: column_type,
                kind,
            };
            (table, column)
        })
        .collect();
    let references: Vec<(String, String)> = sqlx::query_as(REFERENCES)
        .bind(tenant.as_str())
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    Ok(archive::shapes(columns, references))
}

/// The `SELECT` of `table`'s rows, each value printed as the archive carries its kind.
pub(crate) fn select(tenant: &Tenant, table: &Shape) -> String {
    const ISO: &str = "'%Y-%m-%dT%H:%i:%s.%f'";
    let from = qualified(tenant.as_str(), &table.name);
    archive::select(table, &from, quote, |c, name| match c.kind {
        Kind::Int | Kind::Bool => format!("CAST({name} AS SIGNED)"),
        Kind::Float => format!("CAST({name} AS DOUBLE)"),
        Kind::Bytes => name,
        Kind::Timestamp => format!("DATE_FORMAT({name}, {ISO})"),
        Kind::TimestampTz => format!("CONCAT(DATE_FORMAT({name}, {ISO}), '+00:00')"),
        _ => format!("CAST({name} AS CHAR)"),
    })
}

/// The value of column `c`, at `i` in `row`: the `SELECT` cast every column to the type
/// decoded here.
fn decode(row: &MySqlRow, i: usize, c: &Column) -> Result<Value, Error> {
    let value = match c.kind {
        Kind::Int => row.try_get_unchecked::<Option<i64>, _>(i)?.map(Value::Int),
        Kind::Bool => row
            .try_get_unchecked::<Option<i64>, _>(i)?
            .map(|v| Value::Bool(v != 0)),
        Kind::Float => row
            .try_get_unchecked::<Option<f64>, _>(i)?
            .map(Value::Float),
        Kind::Bytes => row
            .try_get_unchecked::<Option<Vec<u8>>, _>(i)?
            .map(Value::Bytes),
        _ => row
            .try_get_unchecked::<Option<String>, _>(i)?
            .map(Value::Text),
    };
    Ok(value.unwrap_or(Value::Null))
}

/// A timestamp as MySQL reads it: a space before the time, no offset (MySQL stores none: an
/// instant with one enters as its time in UTC, the zone sqlx's sessions use).
fn mysql_timestamp(text: &str) -> Result<String, Error> {
    let t = archive::instant::utc(text.to_owned()).replacen('T', " ", 1);
    let time = t.split(' ').nth(1).unwrap_or("");
    if time.contains(['+', '-', 'Z', 'z']) {
        return Err(Error::Unsupported {
            operation: "import",
            reason: format!(
                "timestamp {text:?} has an offset this import cannot read, and MySQL stores \
                 none; nothing was created"
            ),
        });
    }
    Ok(t)
}

impl Port<MySql> for MySqlStore {
    /// Starts the export's consistent view (InnoDB's snapshot, taken now), and returns the
    /// tables.
    async fn export_begin(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        let conn = &mut op.op.conn;
        sqlx::raw_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .execute(&mut *conn)
            .await?;
        shapes(conn, tenant).await
    }

    fn read_lines<'a>(&'a self, op: &'a mut MySqlOp, from: Source<'a>) -> Lines<'a> {
        let select = select(from.tenant, from.table);
        let rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut op.op.conn);
        archive::decoded(rows, from.table, decode)
    }

    /// Refuses a database with triggers (they would fire on every imported row, and MySQL
    /// cannot turn them off), empties the tables of what the migrations wrote, and starts the
    /// rows' transaction, foreign keys checked at the end (rows of a table referencing later
    /// ones).
    async fn import_begin(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        let conn = &mut op.op.conn;
        let triggers = super::copy::trigger_count(conn, tenant).await?;
        archive::refuse_triggers("import", tenant, triggers, "MySQL")?;
        let tables = shapes(conn, tenant).await?;
        let mut batch = String::from("SET SESSION FOREIGN_KEY_CHECKS = 0;\nSTART TRANSACTION;\n");
        for table in tables.iter().rev() {
            batch.push_str(&format!(
                "DELETE FROM {};\n",
                qualified(tenant.as_str(), &table.name)
            ));
        }
        sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&mut *conn)
            .await?;
        Ok(tables)
    }

    /// One multi-row `INSERT`; a timestamp without its offset, as MySQL reads one (an instant
    /// in UTC).
    async fn write_rows(&self, op: &mut MySqlOp, batch: Batch<'_>) -> Result<(), Error> {
        let into = batch.into;
        let table = qualified(into.tenant.as_str(), &into.table.name);
        let query = insert(&table, quote, batch, |c, value| {
            Ok(match (c.kind, value) {
                (Kind::Timestamp | Kind::TimestampTz, Value::Text(t)) => {
                    Value::Text(mysql_timestamp(t)?)
                }
                (_, v) => v.clone(),
            })
        })?;
        query.execute(&mut op.op.conn).await?;
        Ok(())
    }

    /// Commits the rows and checks foreign keys again for the session.
    async fn import_end(&self, op: &mut MySqlOp, _tenant: &Tenant) -> Result<(), Error> {
        sqlx::raw_sql("COMMIT;\nSET SESSION FOREIGN_KEY_CHECKS = 1")
            .execute(&mut op.op.conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_column_types() {
        assert_eq!(kind("tinyint", "tinyint(1)"), Kind::Bool);
        assert_eq!(kind("tinyint", "tinyint(4)"), Kind::Int);
        assert_eq!(kind("bigint", "bigint(20) unsigned"), Kind::Numeric);
        assert_eq!(kind("longtext", "longtext"), Kind::Text);
        assert_eq!(kind("binary", "binary(16)"), Kind::Bytes);
        assert_eq!(kind("timestamp", "timestamp(6)"), Kind::TimestampTz);
        assert_eq!(kind("geometry", "geometry"), Kind::Other);
    }

    #[test]
    fn timestamps_enter_in_utc_without_their_offset() {
        assert_eq!(
            mysql_timestamp("2024-01-02T03:04:05.5+00:00").unwrap(),
            "2024-01-02 03:04:05.5"
        );
        assert_eq!(mysql_timestamp("2024-01-02 03:04:05").unwrap(), "2024-01-02 03:04:05");
        assert_eq!(
            mysql_timestamp("2024-01-02T01:04:05Z").unwrap(),
            "2024-01-02 01:04:05"
        );
        assert_eq!(
            mysql_timestamp("2024-01-02T01:04:05+02:00").unwrap(),
            "2024-01-01 23:04:05"
        );
        assert!(mysql_timestamp("2024-01-02T03:04:05+2").is_err());
    }
}
