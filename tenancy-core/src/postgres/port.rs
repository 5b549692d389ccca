//! A tenant's rows read for an export and written by an import: what the catalog says of the
//! schema's tables (each column's kind), a `SELECT` that casts every value to what the archive
//! carries of its kind, read through a binary `COPY (SELECT …) TO STDOUT` into the archive's
//! lines ([`binary`](super::binary)), and `COPY … FROM STDIN` batches that write them back with
//! the server's own input functions (so a uuid, enum, array or interval arrives as the type it
//! is).

use std::fmt::Write as _;
use std::future::Future;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnection, Postgres};
use sqlx::AssertSqlSafe;

use super::store::{PgOp, PgStore};
use super::{schema_rows, sql};
use crate::error::Error;
use crate::ident::double_quoted;
use super::binary::BinaryRows;
use crate::lifecycle::archive::{self, Column, Kind, Lines, Shape, TextRows, Value, ValueRef};
use crate::lifecycle::store::{Batch, Port, Source, Target};
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

/// `"<schema>"."<name>"`, both quoted.
pub(super) fn qualified(schema: &Tenant, name: &str) -> String {
    format!("{}.{}", schema.quoted(), double_quoted(name))
}

/// The tables of `tenant`'s schema, referenced tables first.
pub(crate) async fn shapes(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<Shape>, Error> {
    let rows: Vec<(String, String, String, String)> =
        schema_rows(conn, persistent, COLUMNS, tenant).await?;
    let columns = rows
        .into_iter()
        .map(|(table, name, declared, kind)| {
            let kind = Kind::parse(&kind).unwrap_or(Kind::Other);
            (table, Column { name, declared, kind })
        })
        .collect();
    let references = schema_rows(conn, persistent, REFERENCES, tenant).await?;
    Ok(archive::shapes(columns, references))
}

/// The `SELECT` of `table`'s rows, each value cast to what the archive carries of its kind (in
/// the binary form [`BinaryRows`] reads).
pub(crate) fn select(tenant: &Tenant, table: &Shape) -> String {
    let from = format!("ONLY {}", qualified(tenant, &table.name));
    archive::select(table, &from, double_quoted, |c, name| match c.kind {
        Kind::Int => format!("{name}::int8"),
        Kind::Float => format!("{name}::float8"),
        // Dates and times as they are sent (binary: days or microseconds), printed here;
        // `timetz` (a time and an offset) as `to_json` prints it.
        Kind::Time if c.declared.starts_with("time with time zone") => {
            format!("to_json({name}) #>> '{{}}'")
        }
        Kind::Bool | Kind::Bytes | Kind::Date | Kind::Time => name,
        Kind::Timestamp | Kind::TimestampTz => name,
        _ => format!("{name}::text"),
    })
}

/// Each index of a schema's tables and each constraint an index serves or a foreign key, as
/// the statements that drop it and that make it again, foreign keys first (to drop; last to
/// make), unless the schema holds a partitioned table (whose partitions' indexes hang on the
/// parent's). `pg_get_*def` print names as the transaction's `search_path` (the tenant's, for
/// the import) resolves them, so the statements run in the same transaction.
const DEFERRABLE: &str = "WITH t AS (SELECT c.oid, c.relname FROM pg_class c \
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r') \
     SELECT t.relname::text, con.conname::text, pg_get_constraintdef(con.oid), \
            CASE con.contype WHEN 'f' THEN 0 ELSE 1 END AS rank, true AS constraint, \
            obj_description(con.oid, 'pg_constraint'), i.relname::text, \
            obj_description(i.oid, 'pg_class'), COALESCE(x.indisclustered, false), \
            COALESCE(x.indisreplident, false) \
     FROM pg_constraint con JOIN t ON t.oid = con.conrelid \
     LEFT JOIN pg_index x ON con.contype IN ('p', 'u', 'x') AND x.indexrelid = con.conindid \
     LEFT JOIN pg_class i ON i.oid = x.indexrelid \
     WHERE con.contype IN ('f', 'p', 'u', 'x') \
     UNION ALL \
     SELECT t.relname::text, i.relname::text, pg_get_indexdef(i.oid), 2, false, \
            NULL, i.relname::text, obj_description(i.oid, 'pg_class'), x.indisclustered, \
            x.indisreplident \
     FROM pg_index x JOIN t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
     WHERE NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid \
                       AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')) \
       AND NOT EXISTS (SELECT 1 FROM pg_class p JOIN pg_namespace n ON n.oid = p.relnamespace \
                       WHERE n.nspname = $1 AND p.relkind = 'p') \
     ORDER BY 4, 1, 2";

/// A row of [`DEFERRABLE`]: table, name, definition, rank, whether a constraint, its comment,
/// its index (the index itself, or the one a key or exclusion constraint owns), the index's
/// comment, whether the table is clustered on it, whether it is the table's replica identity.
type DeferrableRow = (
    String,
    String,
    String,
    i32,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    bool,
);

/// Drops `tenant`'s indexes, unique and primary key constraints and foreign keys (unless a
/// partitioned table is there), and returns the statements that make them again: what an
/// import or a clone drops before it writes the rows and makes again after (built once over
/// all the rows, as `pg_dump`'s restore does, instead of maintained row by row).
pub(crate) async fn defer_indexes(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<String>, Error> {
    let Deferred { drop, remake } = deferrable(conn, persistent, tenant).await?;
    if !drop.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut *conn).await?;
    }
    Ok(remake)
}

/// What [`defer_indexes`] runs and returns, read from the catalog but not yet run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Deferred {
    /// The statements that drop them, each ending in `;\n`.
    pub(crate) drop: String,
    /// The statements that make them again, in the order to run them: indexes, then the keys,
    /// then the foreign keys; then what dropping them lost: their comments, the index a table
    /// is clustered on, the index that is a table's replica identity.
    pub(crate) remake: Vec<String>,
}

/// `tenant`'s indexes, unique and primary key constraints and foreign keys (none if a
/// partitioned table is there) as the statements that drop them and those that make them
/// again ([`Deferred`]); nothing is run. A clone puts the drops in its copy batch (one round
/// trip fewer); an import runs them through [`defer_indexes`].
pub(crate) async fn deferrable(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Deferred, Error> {
    let rows: Vec<DeferrableRow> = schema_rows(conn, persistent, DEFERRABLE, tenant).await?;
    let mut drop = String::new();
    let mut remake = Vec::new();
    let mut restore = Vec::new();
    for row in rows {
        let (table, name, definition, _, constraint, comment, index, index_comment) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
        let (clustered, replica_identity) = (row.8, row.9);
        let target = qualified(tenant, &table);
        let name_q = double_quoted(&name);
        if constraint {
            drop.push_str(&format!("ALTER TABLE {target} DROP CONSTRAINT {name_q};\n"));
            remake.push(format!("ALTER TABLE {target} ADD CONSTRAINT {name_q} {definition}"));
        } else {
            drop.push_str(&format!("DROP INDEX {};\n", qualified(tenant, &name)));
            remake.push(definition);
        }
        if let Some(comment) = comment {
            let comment = sql::literal(&comment);
            restore.push(format!("COMMENT ON CONSTRAINT {name_q} ON {target} IS {comment}"));
        }
        let Some(index) = index else { continue };
        if let Some(comment) = index_comment {
            let (index, comment) = (qualified(tenant, &index), sql::literal(&comment));
            restore.push(format!("COMMENT ON INDEX {index} IS {comment}"));
        }
        let index = double_quoted(&index);
        if clustered {
            restore.push(format!("ALTER TABLE {target} CLUSTER ON {index}"));
        }
        if replica_identity {
            restore.push(format!("ALTER TABLE {target} REPLICA IDENTITY USING INDEX {index}"));
        }
    }
    // Made again in the reverse order: indexes, then the keys, then the foreign keys; then
    // what was set on them.
    remake.reverse();
    remake.extend(restore);
    Ok(Deferred { drop, remake })
}

async fn triggered(
    conn: &mut PgConnection,
    persistent: bool,
    tenant: &Tenant,
) -> Result<Vec<String>, Error> {
    let tables: Vec<(String,)> = schema_rows(conn, persistent, TRIGGERED, tenant).await?;
    Ok(tables.into_iter().map(|(table,)| table).collect())
}

/// Appends `text` to `out` escaped for `COPY`'s text format.
fn copy_escaped(out: &mut String, text: &str) {
    // Most text holds no byte a JSON string escapes, and so none that `COPY` does.
    if archive::first_special(text.as_bytes()).is_none() {
        out.push_str(text);
        return;
    }
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        // Bytes of multi-byte characters are 0x80 and above: never split here.
        let escaped = match b {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// `rows` in `COPY`'s text format: tab-separated, `\N` for `NULL`, bytes as `\x` hex, each
/// value otherwise in its text form (which the column's own input function reads: a uuid,
/// enum, array or interval arrives as the type it is, a `json` column's text exactly).
pub(crate) fn copy_text(rows: &[Vec<Value>]) -> String {
    let mut out = String::with_capacity(rows.len() * 64);
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(COPY_TEXT.between);
            }
            copy_value(&mut out, value.as_ref());
        }
        out.push(COPY_TEXT.after);
    }
    out
}

/// `COPY`'s text format, which an import writes the archive's row lines straight into.
const COPY_TEXT: TextRows = TextRows {
    push: copy_value,
    between: '\t',
    after: '\n',
};

/// Appends `value` as `COPY`'s text format writes it ([`copy_text`]).
fn copy_value(out: &mut String, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.push_str("\\N"),
        ValueRef::Bool(b) => out.push(if b { 't' } else { 'f' }),
        ValueRef::Int(n) => archive::push_int(out, n),
        ValueRef::Float(f) if f.is_nan() => out.push_str("NaN"),
        ValueRef::Float(f) if f.is_infinite() && f > 0.0 => out.push_str("Infinity"),
        ValueRef::Float(f) if f.is_infinite() => out.push_str("-Infinity"),
        ValueRef::Float(f) => {
            let _ = write!(out, "{f}");
        }
        ValueRef::Text(t) => copy_escaped(out, t),
        ValueRef::Bytes(b) => {
            out.push_str("\\\\x");
            archive::push_hex_digits(out, b);
        }
    }
}

/// Writes every chunk of `COPY` text rows `chunks` yields into `into` with one
/// `COPY … FROM STDIN`, sending each chunk as it comes (the server stores rows while the next
/// are read), which writes identity columns as given, as `OVERRIDING SYSTEM VALUE` does.
async fn copy_in(
    conn: &mut PgConnection,
    into: Target<'_>,
    mut chunks: BoxStream<'_, Result<String, Error>>,
) -> Result<(), Error> {
    let Some(first) = chunks.try_next().await? else {
        return Ok(());
    };
    let names: Vec<String> = into
        .columns
        .iter()
        .map(|&i| double_quoted(&into.table.columns[i].name))
        .collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN",
        qualified(into.tenant, &into.table.name),
        names.join(", ")
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    let sent: Result<(), Error> = async {
        copy.send(first.into_bytes()).await?;
        while let Some(chunk) = chunks.try_next().await? {
            copy.send(chunk.into_bytes()).await?;
        }
        Ok(())
    }
    .await;
    match sent {
        Ok(()) => {
            copy.finish().await?;
            Ok(())
        }
        Err(e) => {
            let _ = copy.abort("tenancy: the import stopped").await;
            Err(e)
        }
    }
}

impl Port<Postgres> for PgStore {
    /// The operation's `REPEATABLE READ` snapshot is the consistent view.
    async fn export_begin(&self, op: &mut PgOp, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        shapes(op.conn(), self.persistent(), tenant).await
    }

    /// `COPY (<select>) TO STDOUT (FORMAT binary)`: the server sends each value in the binary
    /// form of what the `SELECT` casts it to, which is written into the lines as it arrives.
    fn read_lines<'a>(&'a self, op: &'a mut PgOp, from: Source<'a>) -> Lines<'a> {
        let copy = format!(
            "COPY ({}) TO STDOUT (FORMAT binary)",
            select(from.tenant, from.table)
        );
        Box::pin(async_stream::try_stream! {
            let mut data = op.conn().copy_out_raw(&copy).await?;
            let mut rows = BinaryRows::new(from.table);
            while let Some(chunk) = data.try_next().await? {
                rows.feed(&chunk)?;
                if rows.lines.full() {
                    yield rows.lines.take();
                }
            }
            rows.finish()?;
            if rows.lines.rows() > 0 {
                yield rows.lines.take();
            }
        })
    }

    /// Empties `tenant`'s tables (what its migrations wrote), turns their own triggers off for
    /// the import and drops their indexes and keys to make them again at the end (not on
    /// Citus, whose distributed tables keep theirs).
    async fn import_begin(&self, op: &mut PgOp, tenant: &Tenant) -> Result<Vec<Shape>, Error> {
        let persistent = self.persistent();
        let conn = op.conn();
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
            sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(&mut *conn)
                .await?;
        }
        if !self.on_citus() {
            op.deferred = defer_indexes(op.conn(), persistent, tenant).await?;
        }
        Ok(tables)
    }

    /// Batches of a thousand rows, fed into one `COPY` per table.
    fn rows_per_write(&self) -> Option<usize> {
        Some(1_000)
    }

    /// Never called: an import streams each table as text ([`write_text`](Self::write_text)).
    async fn write_rows(&self, op: &mut PgOp, batch: Batch<'_>) -> Result<(), Error> {
        let text = futures_util::stream::once(async { Ok(copy_text(batch.rows)) }).boxed();
        copy_in(op.conn(), batch.into, text).await
    }

    /// One `COPY` per table (not called by an import, which writes text).
    fn write_table<'a>(
        &'a self,
        op: &'a mut PgOp,
        into: Target<'a>,
        batches: BoxStream<'a, Result<Vec<Vec<Value>>, Error>>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        let text = batches.map_ok(|rows| copy_text(&rows)).boxed();
        copy_in(op.conn(), into, text)
    }

    /// `COPY`'s text format: the archive's row lines are turned straight into it.
    fn text_rows(&self) -> Option<TextRows> {
        Some(COPY_TEXT)
    }

    /// One `COPY … FROM STDIN` per table, each chunk sent as it comes.
    fn write_text<'a>(
        &'a self,
        op: &'a mut PgOp,
        into: Target<'a>,
        chunks: BoxStream<'a, Result<String, Error>>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        copy_in(op.conn(), into, chunks)
    }

    /// Makes the deferred indexes and keys again (checking the rows: a duplicate key or a
    /// dangling reference fails the import), turns `tenant`'s triggers back on and sets each
    /// column-owned sequence to continue after the imported keys.
    async fn import_end(&self, op: &mut PgOp, tenant: &Tenant) -> Result<(), Error> {
        let persistent = self.persistent();
        let deferred = std::mem::take(&mut op.deferred);
        let conn = op.conn();
        let mut batch = String::new();
        for statement in deferred {
            batch.push_str(&statement);
            batch.push_str(";\n");
        }
        for table in triggered(conn, persistent, tenant).await? {
            let target = qualified(tenant, &table);
            batch.push_str(&format!("ALTER TABLE {target} ENABLE TRIGGER USER;\n"));
        }
        let owned: Vec<(String, String, String)> =
            schema_rows(conn, persistent, OWNED_SEQUENCES, tenant).await?;
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
            "SELECT \"id\"::int8, \"at\", \"photo\", \"tags\"::text \
             FROM ONLY \"acme\".\"gu\"\"ards\""
        );
    }
}
