//! MySQL's registry of row-level tenants (`row_tenants` in the registry database) and the
//! deletion of one tenant's rows.

use sqlx::mysql::MySqlConnection;
use sqlx::MySql;

use super::store::{no_registry, MySqlOp, MySqlStore};
use super::{is_duplicate_entry, MySqlDialect};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, read_registered};
use super::op::quote;
use crate::lifecycle::dropping::{mark_sql, referencing_first};
use crate::lifecycle::row_level::{rewrite_tables, run_named, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Rewrite, Store, Which};
use crate::tenant::Tenant;

impl MySqlStore {
    /// The tables of `rows.tenant`'s container with the tenant column ([`super::tier::tables_with`]), the
    /// placement guard ([`super::tier::guard`]) put on those that lack it.
    async fn guarded_tables(
        &self,
        conn: &mut MySqlConnection,
        rows: Rewrite<'_>,
    ) -> Result<Vec<String>, Error> {
        let tables = super::tier::tables_with(conn, rows.tenant.container(), rows.column).await?;
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        let container = rows.tenant.container_tenant();
        super::tier::guard(conn, &self.registry, (&container, &names), rows.column).await?;
        Ok(tables)
    }

    /// Marks row-level `tenant` `dropping` in the registry ([`mark_sql`]).
    async fn mark(&self, conn: &mut MySqlConnection, tenant: &Tenant) -> Result<(), Error> {
        let sql = mark_sql::<MySqlDialect>(&self.table("row_tenants"));
        run_named(conn, (sql, true), &[tenant.as_str(), tenant.container()]).await?;
        Ok(())
    }
}

impl Place<MySql> for MySqlStore {
    /// None if the registry is not there yet (an operation makes it).
    async fn registered(
        &self,
        op: Option<&mut MySqlOp>,
        which: Which<'_>,
    ) -> Result<Vec<Tenant>, Error> {
        let table = self.table("row_tenants");
        let rows = match op {
            Some(op) => read_registered(&mut op.op.conn, &table, which, true).await,
            None => read_registered(self.pool(), &table, which, true).await,
        };
        match rows {
            Ok(rows) => placed(rows),
            Err(e) if no_registry(&e) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_placed(&self, op: &mut MySqlOp, tenant: &Tenant, placed: bool) -> Result<(), Error> {
        let sql = placement_sql::<MySqlDialect>(&self.table("row_tenants"), placed);
        write_placement(&mut op.op.conn, (sql, true), tenant, is_duplicate_entry).await
    }

    /// The placement guard on the container's tables that lack it (`CREATE TRIGGER` commits at
    /// once, after the tables' transactions in flight), then the registry row marked: the
    /// guard refuses the tenant's writes from then on (the mark waits for those in flight,
    /// whose rows the batches delete). The tables referencing first.
    async fn mark_dropping(&self, op: &mut MySqlOp, rows: Rewrite<'_>) -> Result<Vec<String>, Error> {
        let tables = self.guarded_tables(&mut op.op.conn, rows).await?;
        self.mark(&mut op.op.conn, rows.tenant).await?;
        let references: Vec<(String, String)> = sqlx::query_as(
            "SELECT CAST(table_name AS CHAR), CAST(referenced_table_name AS CHAR) \
             FROM information_schema.referential_constraints \
             WHERE constraint_schema = ? AND unique_constraint_schema = constraint_schema",
        )
        .bind(rows.tenant.container())
        .fetch_all(&mut op.op.conn)
        .await?;
        Ok(referencing_first(tables, &references))
    }

    /// `DELETE … LIMIT n` in the operation's transaction.
    async fn delete_batch(&self, op: &mut MySqlOp, rows: Rewrite<'_>, table: &str, limit: usize) -> Result<u64, Error> {
        let sql = format!(
            "DELETE FROM {}.{} WHERE {} = ? LIMIT {limit}",
            quote(rows.tenant.container()),
            quote(table),
            quote(rows.column)
        );
        let done = run_named(&mut op.op.conn, (sql, true), &[rows.tenant.as_str()]).await?;
        Ok(done.rows_affected())
    }

    /// The placement guard first (on the tables that lack it: `CREATE TRIGGER` commits at
    /// once), then one transaction that marks the tenant `dropping` (the guard refuses its
    /// writes from then on; the mark waits for those in flight, whose rows are rewritten with
    /// the others) and rewrites its rows. A rename unregisters the old name next; a process
    /// that stops before leaves it marked, without rows, for a `drop` to finish.
    async fn rewrite_rows(&self, op: &mut MySqlOp, rows: Rewrite<'_>) -> Result<u64, Error> {
        let conn = &mut op.op.conn;
        let tables = self.guarded_tables(conn, rows).await?;
        sqlx::raw_sql("START TRANSACTION").execute(&mut *conn).await?;
        self.mark(conn, rows.tenant).await?;
        let done = rewrite_tables::<MySql>(conn, tables, rows, true).await?;
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
        Ok(done.rows_affected())
    }

    async fn move_rows(&self, op: &mut MySqlOp, rows: &Move<'_>) -> Result<Moved, Error> {
        super::tier::move_rows(&mut op.op.conn, &self.registry, rows).await
    }
}
