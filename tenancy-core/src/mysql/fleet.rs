//! MySQL's and MariaDB's part of a [`Fleet`](crate::Fleet): the map of tenants to databases
//! (table `fleet` in the home's registry database) and the fleet lock of a tenant name (a
//! `GET_LOCK` on the home operation's own connection, another name than the tenant's lifecycle
//! lock). No fence: a tenant is not moved between MySQL servers ([`FleetStore::movable`]).

use sqlx::mysql::MySql;
use sqlx::AssertSqlSafe;

use super::op::fleet_lock_name;
use super::store::{MySqlOp, MySqlStore};
use crate::error::Error;
use crate::lifecycle::fleet::store::FleetStore;
use crate::lifecycle::store::{Operation, Store};
use crate::tenant::Tenant;

impl MySqlStore {
    /// The map's table in the registry database.
    fn map_table(&self) -> String {
        self.table("fleet")
    }

    /// The database of one tenant (`?`) in the map.
    fn map_select(&self) -> String {
        format!(
            "SELECT `database` FROM {} WHERE tenant = ?",
            self.map_table()
        )
    }
}

impl FleetStore<MySql> for MySqlStore {
    async fn map_ready(&self) -> Result<(), Error> {
        // `begin` makes the registry database if it is missing.
        let mut op = self.begin(Operation::Fleet).await?;
        let made = op
            .op
            .run(format!(
                "CREATE TABLE IF NOT EXISTS {} (\n\
                 \x20 tenant VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,\n\
                 \x20 `database` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n\
                 \x20 KEY (`database`)\n\
                 ) ENGINE = InnoDB",
                self.map_table()
            ))
            .await
            .map_err(Error::from);
        self.finish(op, made).await
    }

    async fn map_all(&self) -> Result<Vec<(String, String)>, Error> {
        let sql = format!(
            "SELECT tenant, `database` FROM {} ORDER BY tenant",
            self.map_table()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    async fn map_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let sql = format!(
            "SELECT `database`, COUNT(*) FROM {} GROUP BY `database`",
            self.map_table()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    async fn map_of(&self, tenant: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar(AssertSqlSafe(self.map_select()))
            .bind(tenant)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn hold(&self, op: &mut MySqlOp, tenant: &Tenant, wait: bool) -> Result<bool, Error> {
        let name = fleet_lock_name(&self.registry, tenant);
        if wait {
            op.op.lock(name, tenant, self.lock_timeout).await?;
            return Ok(true);
        }
        op.op.try_lock(name).await
    }

    async fn map_in(&self, op: &mut MySqlOp, tenant: &Tenant) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar(AssertSqlSafe(self.map_select()))
            .bind(tenant.as_str())
            .fetch_optional(&mut op.op.conn)
            .await?)
    }

    /// One statement, committed at once (the home operation holds no transaction): it runs
    /// after the database's own operation committed, as on PostgreSQL.
    async fn map_set(
        &self,
        op: &mut MySqlOp,
        tenant: &Tenant,
        database: Option<&str>,
    ) -> Result<(), Error> {
        let query = match database {
            Some(database) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (tenant, `database`) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE `database` = VALUES(`database`)",
                self.map_table()
            )))
            .bind(tenant.as_str())
            .bind(database),
            None => sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE tenant = ?",
                self.map_table()
            )))
            .bind(tenant.as_str()),
        };
        query.execute(&mut op.op.conn).await?;
        Ok(())
    }

    /// MySQL commits DDL at once: the source's tables cannot be dropped in one step with
    /// releasing the writes held back meanwhile, so a write could land in the source after its
    /// copy was taken, and be lost.
    fn movable(&self) -> Result<(), Error> {
        Err(Error::Unsupported {
            operation: "move_tenant",
            reason: "a tenant moves between databases on PostgreSQL only: MySQL commits DDL at \
                     once, so dropping the source cannot be one step with releasing the writes \
                     held back meanwhile (export the tenant and import it instead, while the \
                     application keeps away from it)"
                .to_owned(),
        })
    }
}
