//! MySQL's registry of row-level tenants (`row_tenants` in the registry database) and the
//! deletion of one tenant's rows.

use sqlx::{AssertSqlSafe, MySql};

use super::is_duplicate_entry;
use super::op::{qualified, quote};
use super::store::{no_registry, MySqlOp, MySqlStore};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, rewrite, write_placement};
use crate::lifecycle::store::{Place, Store, Toward, Which};
use crate::tenant::Tenant;

impl Place<MySql> for MySqlStore {
    /// None if the registry is not there yet (an operation makes it).
    async fn registered(
        &self,
        op: Option<&mut MySqlOp>,
        which: Which<'_>,
    ) -> Result<Vec<Tenant>, Error> {
        let sql = format!(
            "SELECT name, container FROM {}{} ORDER BY name",
            self.table("row_tenants"),
            which.filter()
        );
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        if let Some(value) = which.value() {
            query = query.bind(value);
        }
        let rows = match op {
            Some(op) => query.fetch_all(&mut op.op.conn).await,
            None => query.fetch_all(self.pool()).await,
        };
        match rows {
            Ok(rows) => placed(rows),
            Err(e) if no_registry(&e) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_placed(&self, op: &mut MySqlOp, tenant: &Tenant, placed: bool) -> Result<(), Error> {
        let sql = placement_sql(&self.table("row_tenants"), placed, ("?", "?"));
        write_placement(&mut op.op.conn, (sql, true), tenant, is_duplicate_entry).await
    }

    async fn rewrite_rows(
        &self,
        op: &mut MySqlOp,
        tenant: &Tenant,
        column: &str,
        to: Option<&Tenant>,
    ) -> Result<u64, Error> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(c.table_name AS CHAR) FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = ? AND c.column_name = ? AND t.table_type = 'BASE TABLE' \
             ORDER BY c.table_name",
        )
        .bind(tenant.container())
        .bind(column)
        .fetch_all(&mut op.op.conn)
        .await?;
        let mut deleted = 0;
        for table in tables {
            let table = qualified(tenant.container(), &table);
            let sql = rewrite(&table, &quote(column), to.is_some(), ("?", "?"));
            let query = sqlx::query(AssertSqlSafe(sql));
            // `?` takes values in order: the new name first where it comes first.
            let query = match to {
                Some(to) => query.bind(to.as_str()).bind(tenant.as_str()),
                None => query.bind(tenant.as_str()),
            };
            deleted += query
                .execute(&mut op.op.conn)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    async fn move_rows(
        &self,
        op: &mut MySqlOp,
        placed: &Tenant,
        column: &str,
        toward: Toward,
    ) -> Result<u64, Error> {
        super::tier::move_rows(&mut op.op.conn, &self.registry, placed, column, toward).await
    }

    fn cannot_move(&self, _operation: &'static str) -> Option<Error> {
        None
    }
}
