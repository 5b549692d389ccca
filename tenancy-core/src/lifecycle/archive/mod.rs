//! The tenant archive that [`Tenants::export`](super::Tenants::export) writes and
//! [`Tenants::import`](super::Tenants::import) reads: its format, the values it carries, and
//! which column types map onto which. Written once for every backend; the backends only read
//! and write rows of [`Value`]s (in their `port` modules).
//!
//! # Format, version 1
//!
//! UTF-8 text, one JSON document per line (JSON Lines):
//!
//! 1. A header object: `{"tenancy_archive":1, "backend":"sqlite", "tenant":"acme",
//!    "migrations":[{"version":1,"description":"guards","checksum":"<hex>"}, …],
//!    "tables":[{"name":"guards","columns":[{"name":"id","type":"INTEGER","kind":"int"}, …]},
//!    …]}`. `backend` is the source's `db.system` (`postgresql`, `mysql`, `sqlite`), `type` the
//!    column's type as the source declares it, `kind` what the archive carries (see [`Kind`]).
//!    Tables come referenced tables first, the order an import fills them in.
//! 2. For each table, in the header's order: `{"table":"guards"}`, then one JSON array per row
//!    with the values of the header's columns in order, then
//!    `{"end":"guards","rows":<count>,"fnv1a64":"<16 hex digits>"}`: the row count and the
//!    64-bit FNV-1a hash of the table's row lines (each with its `\n`).
//! 3. A trailer: `{"end":null,"tables":<count>,"rows":<total>,"header_fnv1a64":"<hex>"}`, the
//!    last the hash of the header line. An archive without it was cut short.
//!
//! A value is `null`, or by its column's kind: `int` a JSON integer, `float` a JSON number or
//! one of the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, `bool` `true`/`false`, `bytes` a
//! string of lowercase hex digits, every other kind a string in the form the source printed
//! (ISO 8601 for dates and times, canonical text for uuids, the JSON text for `json`).

use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::error::{Error, Unmappable};

mod canon;
mod codec;
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) mod insert;
pub(crate) mod instant;
mod lines;
mod model;
mod text;

use crate::tenant::Tenant;
#[cfg_attr(not(feature = "sqlite"), allow(unused_imports))]
pub(crate) use canon::canonical;
pub(crate) use canon::{convert_row, maps};
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) use codec::refuse_triggers;
#[cfg_attr(not(feature = "sqlite"), allow(unused_imports))]
pub(crate) use codec::uuid_bytes;
pub(crate) use codec::{first_special, hex};
use codec::{fnv1a64, FNV_OFFSET};
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) use lines::decoded;
use lines::parse_row;
pub(crate) use lines::{push_hex_digits, push_int};
pub use lines::{Lines, RowLines};
pub use model::{Column, Kind, Shape, Value, ValueRef};
pub(crate) use text::RowsToText;
pub use text::TextRows;

/// The archive format version this build writes and reads.
pub const ARCHIVE_VERSION: u64 = 1;

/// `SELECT <each column of table, as `read` reads it by its name quoted with `quote`> FROM
/// <from>`: what an export reads a table's rows with.
pub(crate) fn select(
    table: &Shape,
    from: &str,
    quote: fn(&str) -> String,
    read: impl Fn(&Column, String) -> String,
) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| read(c, quote(&c.name)))
        .collect();
    format!("SELECT {} FROM {from}", columns.join(", "))
}

/// The tables made of `columns` (each with its table's name, in each table's column order) and
/// `references` (a table and a table it references), referenced tables first: the order an
/// export writes them and an import fills them in.
pub(crate) fn shapes(
    columns: Vec<(String, Column)>,
    references: Vec<(String, String)>,
) -> Vec<Shape> {
    let mut tables: Vec<Shape> = Vec::new();
    for (table, column) in columns {
        match tables.iter_mut().find(|t| t.name == table) {
            Some(shape) => shape.columns.push(column),
            None => tables.push(Shape {
                name: table,
                columns: vec![column],
                references: Vec::new(),
            }),
        }
    }
    for (table, referenced) in references {
        if let Some(shape) = tables.iter_mut().find(|t| t.name == table) {
            shape.references.push(referenced);
        }
    }
    let graph = tables
        .iter()
        .map(|t| (t.name.clone(), t.references.clone()))
        .collect();
    let order = super::copy::referenced_first(graph);
    order
        .into_iter()
        .filter_map(|name| {
            let i = tables.iter().position(|t| t.name == name)?;
            Some(tables.swap_remove(i))
        })
        .collect()
}

/// One migration of an archive's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchivedMigration {
    pub(crate) version: i64,
    pub(crate) description: String,
    pub(crate) checksum: String,
}

/// What an archive's header says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    /// The source's `db.system`.
    pub(crate) backend: String,
    /// The tenant it was exported from.
    pub(crate) tenant: String,
    pub(crate) migrations: Vec<ArchivedMigration>,
    pub(crate) tables: Vec<Shape>,
}

impl Header {
    fn to_json(&self) -> Json {
        let migrations: Vec<Json> = self
            .migrations
            .iter()
            .map(|m| json!({"version": m.version, "description": m.description, "checksum": m.checksum}))
            .collect();
        let tables: Vec<Json> = self
            .tables
            .iter()
            .map(|t| {
                let columns: Vec<Json> = t
                    .columns
                    .iter()
                    .map(|c| json!({"name": c.name, "type": c.declared, "kind": c.kind.name()}))
                    .collect();
                json!({"name": t.name, "columns": columns})
            })
            .collect();
        json!({
            "tenancy_archive": ARCHIVE_VERSION,
            "backend": self.backend,
            "tenant": self.tenant,
            "migrations": migrations,
            "tables": tables,
        })
    }

    fn from_json(doc: &Json) -> Result<Header, String> {
        let version = doc.get("tenancy_archive").and_then(Json::as_u64).ok_or(
            "this is not a tenancy archive (its first line has no \"tenancy_archive\" version)",
        )?;
        if version != ARCHIVE_VERSION {
            return Err(format!(
                "archive format version {version}; this build reads version {ARCHIVE_VERSION}"
            ));
        }
        let text = |v: &Json, key: &str| -> Result<String, String> {
            v.get(key)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or(format!("the header has no text \"{key}\""))
        };
        let list = |v: &Json, key: &str| -> Result<Vec<Json>, String> {
            v.get(key)
                .and_then(Json::as_array)
                .cloned()
                .ok_or(format!("the header has no list \"{key}\""))
        };
        let mut migrations = Vec::new();
        for m in list(doc, "migrations")? {
            migrations.push(ArchivedMigration {
                version: m
                    .get("version")
                    .and_then(Json::as_i64)
                    .ok_or("a migration has no integer \"version\"")?,
                description: text(&m, "description")?,
                checksum: text(&m, "checksum")?,
            });
        }
        let mut tables = Vec::new();
        for t in list(doc, "tables")? {
            let mut columns = Vec::new();
            for c in list(&t, "columns")? {
                let kind = text(&c, "kind")?;
                columns.push(Column {
                    name: text(&c, "name")?,
                    declared: text(&c, "type")?,
                    kind: Kind::parse(&kind).ok_or(format!("unknown column kind {kind:?}"))?,
                });
            }
            tables.push(Shape {
                name: text(&t, "name")?,
                columns,
                references: Vec::new(),
            });
        }
        Ok(Header {
            backend: text(doc, "backend")?,
            tenant: text(doc, "tenant")?,
            migrations,
            tables,
        })
    }
}

/// Writes an archive, a line at a time.
pub(crate) struct ArchiveWriter<W> {
    out: BufWriter<W>,
    header_hash: u64,
    table: Option<(String, u64, u64)>,
    tables: u64,
    rows: u64,
}

impl<W: AsyncWrite + Unpin> ArchiveWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        ArchiveWriter {
            out: BufWriter::with_capacity(64 * 1024, out),
            header_hash: FNV_OFFSET,
            table: None,
            tables: 0,
            rows: 0,
        }
    }

    async fn put(&mut self, doc: &Json) -> Result<u64, Error> {
        let mut line = doc.to_string();
        line.push('\n');
        self.out.write_all(line.as_bytes()).await.map_err(written)?;
        Ok(fnv1a64(FNV_OFFSET, line.as_bytes()))
    }

    pub(crate) async fn header(&mut self, header: &Header) -> Result<(), Error> {
        self.header_hash = self.put(&header.to_json()).await?;
        Ok(())
    }

    pub(crate) async fn begin_table(&mut self, name: &str) -> Result<(), Error> {
        let _ = self.put(&json!({"table": name})).await?;
        self.table = Some((name.to_owned(), 0, FNV_OFFSET));
        Ok(())
    }

    /// Writes `lines`, rows of the table begun last.
    pub(crate) async fn rows(&mut self, lines: &RowLines) -> Result<(), Error> {
        if let Some((_, rows, hash)) = &mut self.table {
            *rows += lines.rows();
            *hash = fnv1a64(*hash, lines.text().as_bytes());
        }
        self.out
            .write_all(lines.text().as_bytes())
            .await
            .map_err(written)
    }

    pub(crate) async fn end_table(&mut self) -> Result<(), Error> {
        if let Some((name, rows, hash)) = self.table.take() {
            self.tables += 1;
            self.rows += rows;
            let end = json!({"end": name, "rows": rows, "fnv1a64": format!("{hash:016x}")});
            let _ = self.put(&end).await?;
        }
        Ok(())
    }

    /// Writes the trailer and flushes; the table and row counts.
    pub(crate) async fn finish(mut self) -> Result<(u64, u64), Error> {
        let (tables, rows) = (self.tables, self.rows);
        let header = format!("{:016x}", self.header_hash);
        let end = json!({"end": null, "tables": tables, "rows": rows, "header_fnv1a64": header});
        let _ = self.put(&end).await?;
        self.out.flush().await.map_err(written)?;
        Ok((tables, rows))
    }
}

fn written(source: std::io::Error) -> Error {
    Error::Io {
        operation: "writing the tenant archive",
        source,
    }
}

/// How far the rows of one table were read: their count and hash so far.
pub(crate) struct Progress {
    rows: u64,
    hash: u64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            rows: 0,
            hash: FNV_OFFSET,
        }
    }
}

/// What the next part of an archive is.
pub(crate) enum Part {
    /// The rows of a table follow (its index in the header).
    Table(usize),
    /// The trailer was read: the archive is whole.
    End,
}

/// Reads an archive, checking every line as it goes: a line that is not what the format says
/// comes next, a row count or hash that differs from the table's end line, or an archive that
/// stops before its trailer, is an [`Error::Archive`] naming the line.
pub(crate) struct ArchiveReader<R> {
    input: R,
    line: String,
    number: u64,
    header: Option<Header>,
    header_hash: u64,
    next_table: usize,
    total: u64,
}

impl<R: AsyncBufRead + Unpin> ArchiveReader<R> {
    pub(crate) fn new(input: R) -> Self {
        ArchiveReader {
            input,
            line: String::new(),
            number: 0,
            header: None,
            header_hash: 0,
            next_table: 0,
            total: 0,
        }
    }

    fn bad(&self, problem: impl Into<String>) -> Error {
        at_line(self.number, problem)
    }

    /// The next line, without its `\n`; an error if there is none.
    async fn next_line(&mut self) -> Result<(), Error> {
        self.line.clear();
        self.number += 1;
        let read = self.input.read_line(&mut self.line).await;
        match read {
            Ok(0) => Err(self.bad("the archive ends here, before its trailer: it was cut short")),
            Ok(_) if !self.line.ends_with('\n') => {
                Err(self.bad("the archive's last line is cut short"))
            }
            Ok(_) => {
                self.line.pop();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(self.bad("the line is not UTF-8 text"))
            }
            Err(source) => Err(Error::Io {
                operation: "reading the tenant archive",
                source,
            }),
        }
    }

    fn doc(&self) -> Result<Json, Error> {
        serde_json::from_str(&self.line).map_err(|e| self.bad(format!("not JSON: {e}")))
    }

    /// Reads and checks the header.
    pub(crate) async fn header(&mut self) -> Result<&Header, Error> {
        self.next_line().await?;
        let doc = self.doc()?;
        self.header_hash = fnv1a64(fnv1a64(FNV_OFFSET, self.line.as_bytes()), b"\n");
        let header = Header::from_json(&doc).map_err(|p| self.bad(p))?;
        Ok(self.header.insert(header))
    }

    /// The header read by [`header`](Self::header).
    pub(crate) fn header_read(&self) -> &Header {
        self.header.as_ref().expect("the header was read first")
    }

    /// [`Error::Archive`] at the line read last.
    pub(crate) fn refuse(&self, problem: String) -> Error {
        self.bad(problem)
    }

    fn tables(&self) -> &[Shape] {
        self.header.as_ref().map_or(&[], |h| &h.tables)
    }

    /// The next table's start, or the trailer.
    pub(crate) async fn next_part(&mut self) -> Result<Part, Error> {
        self.next_line().await?;
        let doc = self.doc()?;
        let expected = self.tables().get(self.next_table).map(|t| t.name.clone());
        if let Some(name) = doc.get("table") {
            return match (name.as_str(), &expected) {
                (Some(name), Some(expected)) if name == expected => {
                    self.next_table += 1;
                    Ok(Part::Table(self.next_table - 1))
                }
                _ => Err(self.bad(format!(
                    "expected the rows of table {expected:?} (the header's next), found {name}"
                ))),
            };
        }
        match (doc.get("end"), expected) {
            (Some(Json::Null), None) => {
                let tables = doc.get("tables").and_then(Json::as_u64);
                let rows = doc.get("rows").and_then(Json::as_u64);
                if tables != Some(self.next_table as u64) || rows != Some(self.total) {
                    return Err(self.bad(format!(
                        "the trailer counts {tables:?} tables and {rows:?} rows; the archive holds {} and {}",
                        self.next_table, self.total
                    )));
                }
                let header = doc.get("header_fnv1a64").and_then(Json::as_str);
                if header != Some(format!("{:016x}", self.header_hash).as_str()) {
                    return Err(
                        self.bad("the header does not match its hash: the archive was changed")
                    );
                }
                Ok(Part::End)
            }
            (_, Some(expected)) => Err(self.bad(format!(
                "expected the rows of table {expected:?} (the header's next)"
            ))),
            _ => Err(self.bad("expected the archive's trailer")),
        }
    }

    /// Reads up to `max` rows of table `index` into `rows` (cleared first); `false` once the
    /// table's end line was read and checked.
    pub(crate) async fn rows(
        &mut self,
        index: usize,
        max: usize,
        rows: &mut Vec<Vec<Value>>,
        state: &mut Progress,
    ) -> Result<bool, Error> {
        rows.clear();
        while rows.len() < max {
            self.next_line().await?;
            if self.line.starts_with('[') {
                state.rows += 1;
                state.hash = fnv1a64(state.hash, self.line.as_bytes());
                state.hash = fnv1a64(state.hash, b"\n");
                let row = parse_row(&self.line, &self.tables()[index]);
                rows.push(row.map_err(|p| self.bad(p))?);
                continue;
            }
            self.end_of_rows(index, state)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Checks the line read last as the end line of table `index`, whose rows `state` read.
    fn end_of_rows(&mut self, index: usize, state: &Progress) -> Result<(), Error> {
        let doc = self.doc()?;
        let table = &self.tables()[index];
        let end = doc.get("end").and_then(Json::as_str);
        if end != Some(table.name.as_str()) {
            return Err(self.bad(format!(
                "expected a row or the end of table {:?}",
                table.name
            )));
        }
        let count = doc.get("rows").and_then(Json::as_u64);
        let hash = doc.get("fnv1a64").and_then(Json::as_str);
        if count != Some(state.rows) {
            return Err(self.bad(format!(
                "table {:?} ends saying {count:?} rows; {} were read",
                table.name, state.rows
            )));
        }
        if hash != Some(format!("{:016x}", state.hash).as_str()) {
            return Err(self.bad(format!(
                "the rows of table {:?} do not match their hash: the archive was changed",
                table.name
            )));
        }
        self.total += state.rows;
        Ok(())
    }

    /// Reads rows of table `index` as [`rows`](Self::rows) does, each turned by `text` into a
    /// text row appended to `out` (cleared first), until `out` holds `max` bytes or more;
    /// `false` once the table's end line was read and checked. The lines whole in the input's
    /// buffer are read where they are, not copied.
    pub(crate) async fn text_rows(
        &mut self,
        index: usize,
        max: usize,
        out: &mut String,
        state: &mut Progress,
        text: &mut RowsToText<'_>,
    ) -> Result<bool, Error> {
        out.clear();
        while out.len() < max {
            let buffered = self.input.fill_buf().await.map_err(|source| Error::Io {
                operation: "reading the tenant archive",
                source,
            })?;
            if buffered.first() != Some(&b'[') {
                // The table's end line (or what stands in its place), read as a line.
                self.next_line().await?;
                self.end_of_rows(index, state)?;
                return Ok(false);
            }
            // The whole lines buffered, as far as they are UTF-8 (a line that is not is left
            // to be read as a line, and refused).
            let whole = match buffered.iter().rposition(|&b| b == b'\n') {
                Some(last) => &buffered[..=last],
                None => &[],
            };
            let lines = std::str::from_utf8(whole).unwrap_or_else(|e| {
                std::str::from_utf8(&whole[..e.valid_up_to()]).unwrap_or_default()
            });
            let mut used = 0;
            while out.len() < max {
                let rest = &lines[used..];
                if !rest.starts_with('[') {
                    break;
                }
                let Some(end) = rest.find('\n') else { break };
                self.number += 1;
                state.rows += 1;
                state.hash = fnv1a64(state.hash, &rest.as_bytes()[..=end]);
                text.row(&rest[..end], out)
                    .map_err(|p| at_line(self.number, p))?;
                used += end + 1;
            }
            if used > 0 {
                self.input.consume(used);
                continue;
            }
            // A row line longer than what is buffered, read as a line.
            self.next_line().await?;
            state.rows += 1;
            state.hash = fnv1a64(state.hash, self.line.as_bytes());
            state.hash = fnv1a64(state.hash, b"\n");
            text.row(&self.line, out).map_err(|p| self.bad(p))?;
        }
        Ok(true)
    }
}

/// [`Error::Archive`] at line `line`.
fn at_line(line: u64, problem: impl Into<String>) -> Error {
    Error::Archive {
        line,
        problem: problem.into(),
    }
}

/// The header's tables matched to the tenant's: for each archive table its target shape and,
/// per archive column, the target column's index. Refuses a table or column the tenant lacks
/// ([`Error::Archive`]) and a column whose type cannot map ([`Error::Unmappable`]).
pub(crate) fn plan_import(
    header: &Header,
    target: &[Shape],
    tenant: &Tenant,
) -> Result<Vec<(Shape, Vec<usize>)>, Error> {
    let mut plan = Vec::new();
    for table in &header.tables {
        let Some(shape) = target.iter().find(|s| s.name == table.name) else {
            return Err(Error::Archive {
                line: 1,
                problem: format!(
                    "the archive holds table {:?}, which tenant \"{tenant}\" has not after its migrations",
                    table.name
                ),
            });
        };
        let mut columns = Vec::new();
        for column in &table.columns {
            let Some(i) = shape.columns.iter().position(|c| c.name == column.name) else {
                return Err(Error::Archive {
                    line: 1,
                    problem: format!(
                        "the archive holds column {:?} of table {:?}, which tenant \"{tenant}\" has not (or generates)",
                        column.name, table.name
                    ),
                });
            };
            let to = &shape.columns[i];
            if !maps(column, to) {
                return Err(Error::Unmappable(Box::new(Unmappable {
                    table: table.name.clone(),
                    column: column.name.clone(),
                    from: format!("{} ({})", column.declared, column.kind.name()),
                    to: format!("{} ({})", to.declared, to.kind.name()),
                })));
            }
            columns.push(i);
        }
        plan.push((shape.clone(), columns));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;
