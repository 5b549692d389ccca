//! PostgreSQL's part of a [`Fleet`](crate::Fleet): the map of tenants to databases (table
//! `fleet` in the home's registry schema), the fleet lock of a tenant name (a
//! transaction-level advisory lock, so PgBouncer in transaction mode keeps it), the fence of a
//! tenant being moved (its tables locked `EXCLUSIVE`: writes wait, reads go on) and the digest
//! of its tables (rows and a sum of each row's hash, in settings that print values alike on
//! every server).

use sqlx::{AssertSqlSafe, Postgres};

use super::args;
use super::sql::{literal, lock_tables_in, set_lock_timeout};
use super::store::{PgOp, PgStore};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::store::Store;
use crate::lifecycle::fleet::store::{Digest, FleetStore};
use crate::tenant::Tenant;

/// The map's table in the registry schema.
const MAP: &str = "fleet";

/// Settings under which a row's text is the same on every server whatever its configuration.
const DIGEST_SETTINGS: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; \
     SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; \
     SET LOCAL bytea_output = 'hex'";

impl PgStore {
    fn map_table(&self) -> String {
        format!("{}.{MAP}", self.registry().quoted())
    }

    /// The database of one tenant (`$1`) in the map.
    fn map_select(&self) -> String {
        format!("SELECT database FROM {} WHERE tenant = $1", self.map_table())
    }

    /// The key of `tenant`'s fleet lock (an SQL literal): another key than its lifecycle
    /// lock's, which the operations on the home's own tenants take meanwhile.
    fn fleet_key(&self, tenant: &Tenant) -> String {
        literal(&format!(
            "tenancy-fleet:{}:{}",
            self.registry().as_str(),
            tenant.as_str()
        ))
    }
}

impl FleetStore<Postgres> for PgStore {
    async fn map_ready(&self) -> Result<(), Error> {
        if self.on_citus() {
            return Err(Error::Unsupported {
                operation: "a fleet of databases",
                reason: "on Citus the coordinator spreads tenants over its nodes itself \
                         (tenancy::postgres::Placement, `move`)"
                    .to_owned(),
            });
        }
        self.ensure_registry().await?;
        let sql = format!(
            "SELECT pg_advisory_xact_lock(hashtextextended({}, 0)); \
             CREATE TABLE IF NOT EXISTS {} (tenant text PRIMARY KEY, database text NOT NULL)",
            literal(&format!("tenancy-fleet-map:{}", self.registry().as_str())),
            self.map_table()
        );
        let mut conn = self.pool().acquire().await?;
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        Ok(())
    }

    async fn map_all(&self) -> Result<Vec<(String, String)>, Error> {
        let sql = format!(
            "SELECT tenant, database FROM {} ORDER BY tenant COLLATE \"C\"",
            self.map_table()
        );
        self.rows(&sql, args!()).await
    }

    async fn map_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let sql = format!(
            "SELECT database, count(*) FROM {} GROUP BY database",
            self.map_table()
        );
        self.rows(&sql, args!()).await
    }

    async fn map_of(&self, tenant: &str) -> Result<Option<String>, Error> {
        let rows: Vec<(String,)> = self.rows(&self.map_select(), args!(tenant)).await?;
        Ok(rows.into_iter().next().map(|(d,)| d))
    }

    async fn hold(&self, op: &mut PgOp, tenant: &Tenant, wait: bool) -> Result<bool, Error> {
        let key = self.fleet_key(tenant);
        if wait {
            op.raw(&format!(
                "{}SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))",
                set_lock_timeout(self.batch())
            ))
            .await?;
            return Ok(true);
        }
        op.raw("SELECT 1").await?;
        let sql = format!("SELECT pg_try_advisory_xact_lock(hashtextextended({key}, 0))");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .persistent(self.persistent())
            .fetch_one(op.conn())
            .await?)
    }

    async fn map_in(&self, op: &mut PgOp, tenant: &Tenant) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar(AssertSqlSafe(self.map_select()))
            .persistent(self.persistent())
            .bind(tenant.as_str())
            .fetch_optional(op.conn())
            .await?)
    }

    async fn map_set(
        &self,
        op: &mut PgOp,
        tenant: &Tenant,
        database: Option<&str>,
    ) -> Result<(), Error> {
        let query = match database {
            Some(database) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (tenant, database) VALUES ($1, $2) \
                 ON CONFLICT (tenant) DO UPDATE SET database = EXCLUDED.database",
                self.map_table()
            )))
            .bind(tenant.as_str())
            .bind(database),
            None => sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE tenant = $1",
                self.map_table()
            )))
            .bind(tenant.as_str()),
        };
        query
            .persistent(self.persistent())
            .execute(op.conn())
            .await?;
        Ok(())
    }

    fn movable(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn fence(&self, op: &mut PgOp, tenant: &Tenant) -> Result<(), Error> {
        Ok(op.raw(&lock_tables_in(tenant, "EXCLUSIVE")).await?)
    }

    async fn digest(&self, op: &mut PgOp, tenant: &Tenant) -> Result<Vec<Digest>, Error> {
        op.raw(DIGEST_SETTINGS).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname COLLATE \"C\"",
        )
        .persistent(self.persistent())
        .bind(tenant.as_str())
        .fetch_all(op.conn())
        .await?;
        let mut digests = Vec::with_capacity(tables.len());
        for table in tables {
            let sql = format!(
                "SELECT count(*)::int8, \
                 coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text \
                 FROM ONLY {}.{} AS t",
                tenant.quoted(),
                double_quoted(&table)
            );
            let (rows, sum): (i64, String) = sqlx::query_as(AssertSqlSafe(sql))
                .persistent(false)
                .fetch_one(op.conn())
                .await?;
            digests.push(Digest { table, rows, sum });
        }
        Ok(digests)
    }
}
