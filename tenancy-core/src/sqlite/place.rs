//! SQLite's registry of row-level tenants (`row_tenants` in the registry file) and the
//! deletion of one tenant's rows (in its container's file, one transaction).

use sqlx::sqlite::SqliteConnection;
use sqlx::Sqlite;

use super::store::{SqliteOp, SqliteStore};
use super::{is_unique_violation, SqliteDialect};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, read_registered};
use crate::ident::double_quoted;
use crate::lifecycle::dropping::{mark_sql, referencing_first};
use crate::lifecycle::row_level::{rewrite_tables, run_named, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Rewrite, Store, Which};
use crate::tenant::Tenant;

/// The tables of the file open on `conn` that have a column named `column`, by name.
async fn tables_with(conn: &mut SqliteConnection, column: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND p.name = ?1 ORDER BY m.name",
    )
    .bind(column)
    .fetch_all(conn)
    .await
}

impl Place<Sqlite> for SqliteStore {
    /// The registry is a file of its own, beside any operation's: read on its pool.
    async fn registered(
        &self,
        _op: Option<&mut SqliteOp>,
        which: Which<'_>,
    ) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        placed(read_registered(&self.registry_pool, "row_tenants", which, true).await?)
    }

    /// A tenant placed in a container is first taken off the container's list of tenants
    /// promoted out of it (the guard's), if a tenant of its name was.
    async fn set_placed(&self, _op: &mut SqliteOp, tenant: &Tenant, placed: bool) -> Result<(), Error> {
        if placed {
            self.clear_moved_out(tenant).await?;
        }
        let sql = placement_sql::<SqliteDialect>("row_tenants", placed);
        write_placement(&self.registry_pool, (sql, true), tenant, is_unique_violation).await
    }

    /// The registry row marked first; then, in one transaction on the container's file that
    /// takes its write lock first (`BEGIN IMMEDIATE`, so a transaction of the tenant writing
    /// there ends first), the tenant shut out of the file ([`super::tier::shut_out`]): its
    /// inserts there are refused from the commit on. The tables referencing first.
    async fn mark_dropping(&self, _op: &mut SqliteOp, rows: Rewrite<'_>) -> Result<Vec<String>, Error> {
        let names = [rows.tenant.as_str(), rows.tenant.container()];
        run_named(&self.registry_pool, (mark_sql::<SqliteDialect>("row_tenants"), true), &names).await?;
        let pool = self.pool_for(&rows.tenant.container_tenant()).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let tables = tables_with(&mut tx, rows.column).await?;
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        super::tier::shut_out(&mut tx, rows.tenant, &names, rows.column).await?;
        let references: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, f.\"table\" FROM sqlite_master m \
             JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(referencing_first(tables, &references))
    }

    /// `DELETE … WHERE rowid IN (SELECT rowid … LIMIT n)` in a transaction of its own on the
    /// container's file (`BEGIN IMMEDIATE`); a `WITHOUT ROWID` table's rows of the tenant in one
    /// statement.
    async fn delete_batch(&self, _op: &mut SqliteOp, rows: Rewrite<'_>, table: &str, limit: usize) -> Result<u64, Error> {
        let pool = self.pool_for(&rows.tenant.container_tenant()).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let without_rowid: Option<bool> =
            sqlx::query_scalar("SELECT wr FROM pragma_table_list(?1) WHERE schema = 'main'")
                .bind(table)
                .fetch_optional(&mut *tx)
                .await?;
        let (target, column) = (double_quoted(table), double_quoted(rows.column));
        let sql = match without_rowid {
            Some(true) => format!("DELETE FROM {target} WHERE {column} = ?1"),
            _ => format!(
                "DELETE FROM {target} WHERE rowid IN \
                 (SELECT rowid FROM {target} WHERE {column} = ?1 LIMIT {limit})"
            ),
        };
        let done = run_named(&mut *tx, (sql, true), &[rows.tenant.as_str()]).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// In one transaction on the container's file that takes its write lock first (`BEGIN
    /// IMMEDIATE`, waited for up to the busy timeout): a transaction of the tenant writing
    /// there ends first, and its rows are rewritten with the others. (A deferred `BEGIN` read
    /// first and then failed at once with `SQLITE_BUSY` on its upgrade to a writer.) In the same
    /// transaction the tenant's old name is shut out of the file ([`super::tier::shut_out`]).
    async fn rewrite_rows(&self, _op: &mut SqliteOp, rows: Rewrite<'_>) -> Result<u64, Error> {
        let pool = self.pool_for(&rows.tenant.container_tenant()).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let tables = tables_with(&mut tx, rows.column).await?;
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        super::tier::shut_out(&mut tx, rows.tenant, &names, rows.column).await?;
        let done = rewrite_tables::<Sqlite>(&mut tx, tables, rows, true).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn move_rows(&self, op: &mut SqliteOp, rows: &Move<'_>) -> Result<Moved, Error> {
        self.move_tier(op, rows).await
    }
}

/// Not yet: a fleet of SQLite folders is refused ([`Error::Unsupported`]).
impl crate::lifecycle::fleet::store::FleetStore<Sqlite> for SqliteStore {}
