//! SQLite's registry of row-level tenants (`row_tenants` in the registry file) and the
//! deletion of one tenant's rows (in its container's file, one transaction).

use sqlx::Sqlite;

use super::store::{SqliteOp, SqliteStore};
use super::{is_unique_violation, SqliteDialect};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, read_registered};
use crate::lifecycle::row_level::{rewrite_tables, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Rewrite, Store, Which};
use crate::tenant::Tenant;

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

    /// In one transaction on the container's file that takes its write lock first (`BEGIN
    /// IMMEDIATE`, waited for up to the busy timeout): a transaction of the tenant writing
    /// there ends first, and its rows are rewritten with the others. (A deferred `BEGIN` read
    /// first and then failed at once with `SQLITE_BUSY` on its upgrade to a writer.) In the same
    /// transaction the tenant's old name is shut out of the file ([`super::tier::shut_out`]).
    async fn rewrite_rows(&self, _op: &mut SqliteOp, rows: Rewrite<'_>) -> Result<u64, Error> {
        let pool = self.pool_for(&rows.tenant.container_tenant()).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = ?1 ORDER BY m.name",
        )
        .bind(rows.column)
        .fetch_all(&mut *tx)
        .await?;
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        super::tier::shut_out(&mut tx, rows.tenant, &names, rows.column).await?;
        let done = rewrite_tables::<Sqlite>(&mut tx, tables, rows, true).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn move_rows(&self, op: &mut SqliteOp, rows: &Move<'_>) -> Result<Moved, Error> {
        self.move_tier(op, rows).await
    }

    fn cannot_move(&self, _operation: &'static str) -> Option<Error> {
        None
    }
}

/// Not yet: a fleet of SQLite folders is refused ([`Error::Unsupported`]).
impl crate::lifecycle::fleet::store::FleetStore<Sqlite> for SqliteStore {}
