//! MySQL's registry of row-level tenants (`row_tenants` in the registry database) and the
//! deletion of one tenant's rows.

use sqlx::MySql;

use super::store::{no_registry, MySqlOp, MySqlStore};
use super::{is_duplicate_entry, MySqlDialect};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, read_registered};
use crate::lifecycle::row_level::{rewrite_tables, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Rewrite, Store, Which};
use crate::tenant::Tenant;

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

    async fn rewrite_rows(&self, op: &mut MySqlOp, rows: Rewrite<'_>) -> Result<u64, Error> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(c.table_name AS CHAR) FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = ? AND c.column_name = ? AND t.table_type = 'BASE TABLE' \
             ORDER BY c.table_name",
        )
        .bind(rows.tenant.container())
        .bind(rows.column)
        .fetch_all(&mut op.op.conn)
        .await?;
        let done = rewrite_tables::<MySql>(&mut op.op.conn, tables, rows, true).await?;
        Ok(done.rows_affected())
    }

    async fn move_rows(&self, op: &mut MySqlOp, rows: &Move<'_>) -> Result<Moved, Error> {
        super::tier::move_rows(&mut op.op.conn, &self.registry, rows).await
    }

    fn cannot_move(&self, _operation: &'static str) -> Option<Error> {
        None
    }
}

/// Not yet: a fleet of MySQL servers is refused ([`Error::Unsupported`]).
impl crate::lifecycle::fleet::store::FleetStore<MySql> for MySqlStore {}
