//! Export and import of one tenant, written once for every backend over its [`Store`]: an
//! export reads the tenant from one consistent view into an [archive](super::archive), table by
//! table, a row at a time; an import creates a tenant as `create` does and fills it from an
//! archive, in the same operation, all or nothing.

use futures_util::TryStreamExt;
use tokio::io::{AsyncBufRead, AsyncWrite};

use super::archive::{
    convert_row, plan_import, ArchiveReader, ArchiveWriter, ArchivedMigration, Header, Part,
    Progress, RowLines, RowsToText,
};
use super::operations::Expected;
use super::report::Moved;
use super::store::{Operation, Port, Source, Store, Target};
use super::{TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;
use crate::trace;

/// How many rows an import writes per statement at most (fewer when the backend's limit on
/// bound values says so).
const IMPORT_BATCH: usize = 1000;

impl<B: Backend> Tenants<B> {
    /// Writes tenant `name` to `writer` as a tenant archive: every table of its container with
    /// every row (generated columns left out), and its migration history; nothing of any
    /// other tenant. The archive is text, one JSON document per line, versioned and
    /// documented in the README ("Export and import"); it is written as it is read, so memory
    /// stays flat whatever the tenant's size.
    ///
    /// The tenant is read under its lock (no migration, rename or drop of it runs meanwhile)
    /// from one consistent view: PostgreSQL a `REPEATABLE READ` snapshot, MySQL a consistent
    /// snapshot transaction, SQLite its file's write lock (its writers wait). Refused:
    /// [`Error::NotATenant`], [`Error::ContainerMissing`], [`Error::Dirty`], and a row-level
    /// tenant ([`Error::Unsupported`] naming its container, which is exported as a whole). A failing
    /// `writer` is [`Error::Io`]; what was written until then is no archive (it has no
    /// trailer, and an import refuses it).
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let file = tokio::fs::File::create("acme.tenant").await.expect("a file");
    /// let moved = tenants.export("acme", file).await?;
    /// println!("{} rows in {} tables", moved.rows, moved.tables);
    /// # Ok(()) }
    /// ```
    pub async fn export<W>(&self, name: impl AsRef<str>, writer: W) -> Result<Moved, Error>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let tenant = self.parse(name)?;
        self.refuse_row_level_source("export", "exported", &tenant)
            .await?;
        let span = trace::lifecycle::<B>("export", &tenant);
        trace::within(
            span,
            self.locked(Operation::Export, &tenant, Expected::Own, async |op| {
                self.archive_into(op, &tenant, writer).await
            }),
        )
        .await
    }

    /// Writes `tenant` (locked, read from one consistent view in `op`) to `writer` as a
    /// tenant archive: what [`export`](Self::export) and a fleet's move send.
    pub(crate) async fn archive_into<W>(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        tenant: &Tenant,
        writer: W,
    ) -> Result<Moved, Error>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let store = self.store();
        let history = store.history(op, tenant).await?;
        history.check_clean(tenant)?;
        let tables = store.export_begin(op, tenant).await?;
        let migrations = history
            .applied
            .iter()
            .map(|(version, checksum)| ArchivedMigration {
                version: *version,
                description: self
                    .migrations()
                    .ups()
                    .find(|m| m.version == *version)
                    .map_or_else(String::new, |m| m.description.to_string()),
                checksum: super::archive::hex(checksum),
            })
            .collect();
        let header = Header {
            backend: B::DB_SYSTEM.to_owned(),
            tenant: tenant.as_str().to_owned(),
            migrations,
            tables,
        };
        let mut out = ArchiveWriter::new(writer);
        out.header(&header).await?;
        for table in &header.tables {
            out.begin_table(&table.name).await?;
            let from = Source { tenant, table };
            let mut lines = store.read_lines(op, from);
            while let Some(chunk) = lines.try_next().await? {
                out.rows(&chunk).await?;
            }
            drop(lines);
            out.end_table().await?;
        }
        let (tables, rows) = out.finish().await?;
        Ok(Moved { tables, rows })
    }

    /// Creates tenant `name` from the tenant archive `reader` yields (see
    /// [`export`](Self::export)): the tenant is made and migrated with this handle's
    /// migrations, then filled with the archive's rows (what the migrations wrote replaced),
    /// in one operation: all or nothing. The archive may come from another backend wherever
    /// the column types map (SQLite to PostgreSQL: an embedded app's customers move to a
    /// server); a column that cannot ([`Error::Unmappable`], naming table, column and types)
    /// is refused before any row is written.
    ///
    /// Refused, with nothing created: an archive that is not whole and unchanged
    /// ([`Error::Archive`] naming the line: cut short, a row count or hash that differs, a
    /// value unfit for its column, another format version), one whose migration history is
    /// not exactly this handle's migrations (versions and descriptions; checksums too when it
    /// comes from the same backend), a name that is taken ([`Error::TenantExists`],
    /// [`Error::ContainerExists`]). A value the server rejects (text that is no uuid in a
    /// `uuid` column) is [`Error::Database`]. On MySQL, whose DDL commits at once, a failure
    /// drops the database again, as `create` does; a target table with triggers is refused
    /// ([`Error::Unsupported`]) there and on SQLite, where they would fire on the rows.
    /// Generated keys continue after the imported ones. Subscribers see
    /// [`TenantEvent::Created`].
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let file = tokio::fs::File::open("acme.tenant").await.expect("a file");
    /// let acme = tenants.import(tokio::io::BufReader::new(file), "acme").await?;
    /// # Ok(()) }
    /// ```
    pub async fn import<R>(&self, reader: R, name: impl AsRef<str>) -> Result<Tenant, Error>
    where
        R: AsyncBufRead + Unpin + Send,
    {
        let tenant = self.parse(name)?;
        let mut archive = ArchiveReader::new(reader);
        self.check_history(archive.header().await?)?;
        let span = trace::lifecycle::<B>("import", &tenant);
        trace::within(
            span,
            self.locked(Operation::Import, &tenant, Expected::Free, async |op| {
                self.make_migrated(op, &tenant).await?;
                let store = self.store();
                let shapes = store.import_begin(op, &tenant).await?;
                let header = archive.header_read();
                let plan = plan_import(header, &shapes, &tenant)?;
                let kinds: Vec<Vec<_>> = header
                    .tables
                    .iter()
                    .map(|t| t.columns.iter().map(|c| c.kind).collect())
                    .collect();
                while let Part::Table(index) = archive.next_part().await? {
                    let (shape, columns) = &plan[index];
                    let into = Target {
                        tenant: &tenant,
                        table: shape,
                        columns,
                    };
                    if let Some(text) = store.text_rows() {
                        let from = archive.header_read().tables[index].clone();
                        let mut text = RowsToText::new(text, &from, shape, columns);
                        let mut progress = Progress::default();
                        let archive = &mut archive;
                        // Read (and checked) while the store writes what came before.
                        let chunks = async_stream::try_stream! {
                            loop {
                                let mut out = String::with_capacity(RowLines::CHUNK + 1024);
                                let more = archive
                                    .text_rows(index, RowLines::CHUNK, &mut out, &mut progress, &mut text)
                                    .await?;
                                if !out.is_empty() {
                                    yield out;
                                }
                                if !more {
                                    break;
                                }
                            }
                        };
                        store.write_text(op, into, Box::pin(chunks)).await?;
                        continue;
                    }
                    let max = store.rows_per_write().unwrap_or_else(|| {
                        (B::MAX_BIND_PARAMS / columns.len().max(1)).clamp(1, IMPORT_BATCH)
                    });
                    let kinds = &kinds[index];
                    let archive = &mut archive;
                    // Read (and checked) while the store writes what came before.
                    let batches = async_stream::try_stream! {
                        let (mut rows, mut progress) = (Vec::new(), Progress::default());
                        loop {
                            let more = archive.rows(index, max, &mut rows, &mut progress).await?;
                            for row in rows.iter_mut() {
                                convert_row(kinds.iter().copied(), shape, columns, row)
                                    .map_err(|problem| archive.refuse(problem))?;
                            }
                            if !rows.is_empty() {
                                yield std::mem::take(&mut rows);
                            }
                            if !more {
                                break;
                            }
                        }
                    };
                    store.write_table(op, into, Box::pin(batches)).await?;
                }
                store.import_end(op, &tenant).await
            }),
        )
        .await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// Refuses an archive whose migration history is not exactly this handle's migrations.
    fn check_history(&self, header: &Header) -> Result<(), Error> {
        let ours: Vec<_> = self.migrations().ups().collect();
        let same_backend = header.backend == B::DB_SYSTEM;
        let differs = |problem: String| Error::Archive { line: 1, problem };
        if ours.len() != header.migrations.len() {
            return Err(differs(format!(
                "the archive's tenant has migrations {:?}; this handle's are {:?} (migrate the \
                 source, or import with the same migrations)",
                header
                    .migrations
                    .iter()
                    .map(|m| m.version)
                    .collect::<Vec<_>>(),
                ours.iter().map(|m| m.version).collect::<Vec<_>>(),
            )));
        }
        for (m, a) in ours.iter().zip(&header.migrations) {
            if m.version != a.version || m.description != a.description {
                return Err(differs(format!(
                    "the archive's migration {} ({}) is this handle's {} ({})",
                    a.version, a.description, m.version, m.description
                )));
            }
            if same_backend && super::archive::hex(&m.checksum) != a.checksum {
                return Err(differs(format!(
                    "the archive's migration {} ({}) has another checksum than this handle's",
                    a.version, a.description
                )));
            }
        }
        Ok(())
    }
}
