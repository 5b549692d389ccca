//! A tenant's rows read for an export and written by an import: what the catalog says of the
//! schema's tables (each column's kind), a `SELECT` that prints every value in the archive's
//! form, and `COPY … FROM STDIN` batches that write them back with the server's own
//! input functions (so a uuid, enum, array or interval arrives as the type it is).

use futures_util::stream::BoxStream;
use futures_util::{future, StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Row};

use super::sql;
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::archive::{self, Column, Kind, Shape, Value};
use crate::tenant::Tenant;

/// Each stored column of each ordinary table of a schema, in order, with its declared type and
/// kind (built-in types by name, enums and string types as text, anything else `other`).
const COLUMNS: &str = "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
     CASE WHEN t.typtype = 'e' THEN 'text' \
          WHEN t.typnamespace <> 'pg_catalog'::regnamespace AND t.typcategory <> 'S' THEN 'other' \
          WHEN t.typname IN ('int2', 'int4', 'int8') THEN 'int' \
          WHEN t.typname IN ('float4', 'float8') THEN 'float' \
          WHEN t.typname = 'numeric' THEN 'numeric' \
          WHEN t.typname = 'bool' THEN 'bool' \
          WHEN t.typname = 'bytea' THEN 'bytes' \
          WHEN t.typname = 'uuid' THEN 'uuid' \
          WHEN t.typname IN ('json', 'jsonb') THEN 'json' \
          WHEN t.typname = 'date' THEN 'date' \
          WHEN t.typname IN ('time', 'timetz') THEN 'time' \
          WHEN t.typname = 'timestamp' THEN 'timestamp' \
          WHEN t.typname = 'timestamptz' THEN 'timestamptz' \
          WHEN t.typcategory = 'S' AND t.typtype = 'b' THEN 'text' \
          ELSE 'other' END \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
          AND a.attgenerated = '' \
     JOIN pg_type t ON t.oid = a.atttypid \
     WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname, a.attnum";

/// Each foreign key between two tables of a schema: the table and the table it references.
const REFERENCES: &str = "SELECT c.relname::text, p.relname::text FROM pg_constraint f \
     JOIN pg_class c ON c.oid = f.conrelid JOIN pg_class p ON p.oid = f.confrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND f.contype = 'f' AND p.relnamespace = c.relnamespace";

/// The tables of a schema with triggers of their own.
const TRIGGERED: &str = "SELECT DISTINCT c.relname::text FROM pg_trigger t \
     JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY 1";

/// Each sequence of a schema owned by a column (`serial`, identity): sequence, table, column.
const OWNED_SEQUENCES: &str = "SELECT s.relname::text, t.relname::text, a.attname::text \
     FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
     JOIN pg_class t ON t.oid = d.refobjid \
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
     JOIN pg_namespace n ON n.oid = s.relnamespace \
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
     AND d.deptype IN ('a', 'i') AND n.nspname = $1 ORDER BY 1";

fn qualified(schema: &Tenant, name: &str) -> String {
    format!("{}.{}", schema.quoted(), double_quoted(name))
}

/// The tables of `tenant`'s schema, referenced tables first.
pub(crate) async fn shapes(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<Shape>, Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(COLUMNS)
        .persistent(persistent)
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    let columns = rows
        .into_iter()
        .map(|(table, name, declared, kind)| {
            let kind = Kind::parse(&kind).unwrap_or(Kind::Other);
            (table, Column { name, declared, kind })
        })
        .collect();
    let references: Vec<(String, String)> = sqlx::query_as(REFERENCES)
        .persistent(persistent)
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    Ok(archive::shapes(columns, references))
}

/// The `SELECT` of `table`'s rows, each value printed as the archive carries its kind.
pub(crate) fn select(tenant: &Tenant, table: &Shape) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let name = double_quoted(&c.name);
            match c.kind {
                Kind::Int => format!("{name}::int8"),
                Kind::Float => format!("{name}::float8"),
                Kind::Bool | Kind::Bytes => name,
                // ISO 8601 whatever the session's `DateStyle`.
                Kind::Date | Kind::Time | Kind::Timestamp | Kind::TimestampTz => {
                    format!("to_json({name}) #>> '{{}}'")
                }
                _ => format!("{name}::text"),
            }
        })
        .collect();
    format!(
        "SELECT {} FROM ONLY {}",
        columns.join(", "),
        qualified(tenant, &table.name)
    )
}

fn decode(row: &PgRow, table: &Shape) -> Result<Vec<Value>, Error> {
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, c) in table.columns.iter().enumerate() {
        let value = match c.kind {
            Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
            Kind::Float => row.try_get::<Option<f64>, _>(i)?.map(Value::Float),
            Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
            Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
            _ => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(values)
}

/// The rows of `table` of `tenant`, streamed.
pub(crate) fn read_rows<'a>(
    conn: &'a mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
    table: &'a Shape,
) -> BoxStream<'a, Result<Vec<Value>, Error>> {
    sqlx::query(AssertSqlSafe(select(tenant, table)))
        .persistent(persistent)
        .fetch(conn)
        .map_err(Error::from)
        .and_then(move |row| future::ready(decode(&row, table)))
        .boxed()
}

/// Empties `tenant`'s tables (what its migrations wrote) and turns their own triggers off for
/// the import; returns its tables.
pub(crate) async fn import_begin(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<Shape>, Error> {
    let tables = shapes(conn, persistent, tenant).await?;
    let triggered = triggered(conn, persistent, tenant).await?;
    let mut batch = String::new();
    if !tables.is_empty() {
        let names: Vec<String> = tables.iter().map(|t| qualified(tenant, &t.name)).collect();
        batch.push_str(&format!("TRUNCATE {};\n", names.join(", ")));
    }
    for table in &triggered {
        let target = qualified(tenant, table);
        batch.push_str(&format!("ALTER TABLE {target} DISABLE TRIGGER USER;\n"));
    }
    if !batch.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(batch)).execute(&mut *conn).await?;
    }
    Ok(tables)
}

async fn triggered(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(TRIGGERED)
        .persistent(persistent)
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?)
}

/// Appends `text` to `out` escaped for `COPY`'s text format.
fn copy_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// `rows` in `COPY`'s text format: tab-separated, `\N` for `NULL`, bytes as `\x` hex, each
/// value otherwise in its text form (which the column's own input function reads: a uuid,
/// enum, array or interval arrives as the type it is, a `json` column's text exactly).
pub(crate) fn copy_text(rows: &[Vec<Value>]) -> String {
    let mut out = String::with_capacity(rows.len() * 64);
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            match value {
                Value::Null => out.push_str("\\N"),
                Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
                Value::Int(n) => out.push_str(&n.to_string()),
                Value::Float(f) if f.is_nan() => out.push_str("NaN"),
                Value::Float(f) if f.is_infinite() && *f > 0.0 => out.push_str("Infinity"),
                Value::Float(f) if f.is_infinite() => out.push_str("-Infinity"),
                Value::Float(f) => out.push_str(&f.to_string()),
                Value::Text(t) => copy_escaped(&mut out, t),
                Value::Bytes(b) => {
                    out.push_str("\\\\x");
                    out.push_str(&archive::hex(b));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Writes `rows` (values of `columns` of `table`) with one `COPY … FROM STDIN` (which writes
/// identity columns as given, as `OVERRIDING SYSTEM VALUE` does).
pub(crate) async fn write_rows(
    conn: &mut PgConnection,
    tenant: &Tenant,
    table: &Shape,
    columns: &[usize],
    rows: &[Vec<Value>],
) -> Result<(), Error> {
    let names: Vec<String> = columns
        .iter()
        .map(|&i| double_quoted(&table.columns[i].name))
        .collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN",
        qualified(tenant, &table.name),
        names.join(", ")
    );
    let data = copy_text(rows);
    let mut copy = conn.copy_in_raw(&statement).await?;
    let sent = copy.send(data.as_bytes()).await.map(drop);
    match sent {
        Ok(()) => {
            copy.finish().await?;
            Ok(())
        }
        Err(e) => {
            let _ = copy.abort("tenancy: the import's rows could not be sent").await;
            Err(e.into())
        }
    }
}

/// Turns `tenant`'s triggers back on and sets each column-owned sequence to continue after
/// the imported keys.
pub(crate) async fn import_end(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<(), Error> {
    let mut batch = String::new();
    for table in triggered(conn, persistent, tenant).await? {
        let target = qualified(tenant, &table);
        batch.push_str(&format!("ALTER TABLE {target} ENABLE TRIGGER USER;\n"));
    }
    let owned: Vec<(String, String, String)> = sqlx::query_as(OWNED_SEQUENCES)
        .persistent(persistent)
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    // Only ever forward: the migrations may have moved the sequence past the imported keys,
    // and on Citus a distributed schema's sequence counts in its node's own range (the
    // statement runs there, whole, so the comparison is with that range).
    for (sequence, table, column) in owned {
        let column = double_quoted(&column);
        let sequence = qualified(tenant, &sequence);
        batch.push_str(&format!(
            "SELECT setval({}::regclass, x.m) FROM (SELECT max({column})::int8 AS m FROM {}) x, {sequence} s \
             WHERE x.m > s.last_value OR (NOT s.is_called AND x.m >= s.last_value);\n",
            sql::literal(&sequence),
            qualified(tenant, &table)
        ));
    }
    if !batch.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(batch)).execute(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let rows = vec![
            vec![
                Value::Int(-7),
                Value::Text("a\tb\\c\nd".into()),
                Value::Null,
                Value::Bytes(vec![0, 255]),
            ],
            vec![
                Value::Bool(true),
                Value::Float(f64::NEG_INFINITY),
                Value::Float(0.1),
                Value::Text("\\N".into()),
            ],
        ];
        assert_eq!(
            copy_text(&rows),
            "-7\ta\\tb\\\\c\\nd\t\\N\t\\\\x00ff\nt\t-Infinity\t0.1\t\\\\N\n"
        );
    }

    #[test]
    fn the_select_prints_each_kind_as_the_archive_carries_it() {
        let col = |name: &str, kind| Column {
            name: name.into(),
            declared: String::new(),
            kind,
        };
        let table = Shape {
            name: "gu\"ards".into(),
            columns: vec![
                col("id", Kind::Int),
                col("at", Kind::TimestampTz),
                col("photo", Kind::Bytes),
                col("tags", Kind::Other),
            ],
            references: Vec::new(),
        };
        assert_eq!(
            select(&Tenant::new("acme").unwrap(), &table),
            "SELECT \"id\"::int8, to_json(\"at\") #>> '{}', \"photo\", \"tags\"::text \
             FROM ONLY \"acme\".\"gu\"\"ards\""
        );
    }
}
