//! SQLite's registry of row-level tenants (`row_tenants` in the registry file) and the
//! deletion of one tenant's rows (in its container's file, one transaction).

use sqlx::{AssertSqlSafe, Sqlite};

use super::is_unique_violation;
use super::store::{SqliteOp, SqliteStore};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::row_level::{placed, placement_sql, rewrite, write_placement};
use crate::lifecycle::store::{Place, Store, Which};
use crate::tenant::Tenant;

impl Place<Sqlite> for SqliteStore {
    /// The registry is a file of its own, beside any operation's: read on its pool.
    async fn registered(
        &self,
        _op: Option<&mut SqliteOp>,
        which: Which<'_>,
    ) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let sql = format!(
            "SELECT name, container FROM row_tenants{} ORDER BY name",
            which.filter()
        );
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        if let Some(value) = which.value() {
            query = query.bind(value);
        }
        placed(query.fetch_all(&self.registry_pool).await?)
    }

    async fn set_placed(&self, _op: &mut SqliteOp, tenant: &Tenant, placed: bool) -> Result<(), Error> {
        let sql = placement_sql("row_tenants", placed, ("?1", "?2"));
        write_placement(&self.registry_pool, (sql, true), tenant, is_unique_violation).await
    }

    async fn rewrite_rows(
        &self,
        _op: &mut SqliteOp,
        tenant: &Tenant,
        column: &str,
        to: Option<&Tenant>,
    ) -> Result<u64, Error> {
        let pool = self.pool_for(&tenant.container_tenant()).await?;
        let mut tx = pool.begin().await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = ?1 ORDER BY m.name",
        )
        .bind(column)
        .fetch_all(&mut *tx)
        .await?;
        let mut deleted = 0;
        for table in tables {
            let sql = rewrite(&double_quoted(&table), &double_quoted(column), to.is_some(), ("?1", "?2"));
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
            if let Some(to) = to {
                query = query.bind(to.as_str());
            }
            deleted += query
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
