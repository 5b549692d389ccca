//! PostgreSQL's registry of row-level tenants (`row_tenants` in the registry schema, each
//! row's container a registered tenant) and the deletion of one tenant's rows.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Postgres};

use super::backend::{RENAMED_TO_SETTING, TENANT_SETTING};
use super::citus_rows::{IS_ROW_DISTRIBUTED, SEQUENTIAL};
use super::store::{PgOp, PgStore};
use super::{args, is_unique_violation, schema_rows, PgDialect};
use crate::error::Error;
use crate::lifecycle::row_level::{placed, placement_sql, read_registered, registered_sql};
use super::port::qualified;
use crate::ident::double_quoted;
use crate::lifecycle::dropping::{mark_sql, referencing_first};
use crate::lifecycle::row_level::{rewrite_tables, run_named, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Placing, PlacingMany, Rewrite, Toward, Which};
use crate::tenant::Tenant;

/// The tables of schema `container` that have a column named `column`, by name.
pub(super) async fn tables_with(
    conn: &mut PgConnection,
    persistent: bool,
    container: &str,
    column: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND a.attname = $2 AND a.attnum > 0 \
           AND NOT a.attisdropped AND c.relkind IN ('r', 'p') \
         ORDER BY c.relname",
    )
    .persistent(persistent)
    .bind(container)
    .bind(column)
    .fetch_all(conn)
    .await
}

/// The foreign keys between tables of schema `$1`: the referencing and the referenced table.
const REFERENCES: &str = "SELECT c.relname::text, r.relname::text \
     FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_class r ON r.oid = k.confrelid \
     WHERE k.contype = 'f' AND n.nspname = $1 AND r.relnamespace = n.oid";

impl PgStore {
    /// Says `tenant` to the row-level security policies for the rest of the operation's
    /// transaction (as `enter_rows` does for the tenant's own transactions, without its
    /// placement check: a drop or rename may reach rows of a name not registered), so that a
    /// role the policies hold (the tables' owner under `FORCE`, a role without `BYPASSRLS`)
    /// reaches the tenant's rows in a drop, rename or move, instead of none of them while the
    /// registry changes. Nothing for a role the policies do not hold. On Citus a `SET LOCAL`
    /// that Citus sends on to the workers, where the policies run.
    async fn say_tenant(
        &self,
        op: &mut PgOp,
        tenant: &Tenant,
        renamed_to: Option<&Tenant>,
    ) -> Result<(), Error> {
        let renamed_to = renamed_to.map_or("", |t| t.as_str());
        if self.on_citus() {
            let sql = format!(
                "SET LOCAL citus.propagate_set_commands = 'local'; \
                 SET LOCAL {TENANT_SETTING} = {}; SET LOCAL {RENAMED_TO_SETTING} = {}",
                super::sql::literal(tenant.as_str()),
                super::sql::literal(renamed_to),
            );
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(op.conn()).await?;
        } else {
            sqlx::query("SELECT set_config($1, $2, true), set_config($3, $4, true)")
                .persistent(self.persistent())
                .bind(TENANT_SETTING)
                .bind(tenant.as_str())
                .bind(RENAMED_TO_SETTING)
                .bind(renamed_to)
                .execute(op.conn())
                .await?;
        }
        Ok(())
    }
}

impl PgStore {
    /// Before a drop or rename of row-level `tenant` changes its rows (`at`: the tables of its
    /// container with the tenant column, and that column): the placement guard on them and
    /// the tenant's writes in flight ended, the next ones held to the commit
    /// ([`super::tier::hold_tenant`]; on Citus, the tables' writes, and the tenant's tombstone
    /// that Citus's guard reads: [`super::citus_guard::hold_and_guard`]).
    async fn hold(&self, op: &mut PgOp, tenant: &Tenant, at: (&[String], &str)) -> Result<(), sqlx::Error> {
        let (persistent, registry) = (self.persistent(), self.registry());
        match self.on_citus() {
            true => super::citus_guard::hold_and_guard(op.conn(), persistent, registry, tenant, at).await,
            false => super::tier::hold_tenant(op.conn(), persistent, registry, tenant, at).await,
        }
    }
}

impl Place<Postgres> for PgStore {
    async fn registered(&self, op: Option<&mut PgOp>, which: Which<'_>) -> Result<Vec<Tenant>, Error> {
        self.ensure_registry().await?;
        let table = format!("{}.row_tenants", self.registry().quoted());
        let rows = match op {
            Some(op) => read_registered(op.conn(), &table, which, self.persistent()).await?,
            None => {
                let sql = registered_sql::<PgDialect>(&table, which);
                match which.value() {
                    Some(value) => self.rows(&sql, args!(value)).await?,
                    None => self.rows(&sql, args!()).await?,
                }
            }
        };
        placed(rows)
    }

    /// One call of the registry's `create_in` ([`super::sql::create_in`]).
    async fn place_at_once(&self, tenant: &Tenant) -> Result<Option<Placing>, Error> {
        self.create_in(tenant).await
    }

    /// One call of the registry's `create_in_many` ([`super::sql::create_in_many`]).
    async fn place_many_at_once(&self, tenants: &[Tenant]) -> Result<Option<PlacingMany>, Error> {
        self.create_in_many(tenants).await
    }

    async fn set_placed(&self, op: &mut PgOp, tenant: &Tenant, placed: bool) -> Result<(), Error> {
        let table = format!("{}.row_tenants", self.registry().quoted());
        let sql = placement_sql::<PgDialect>(&table, placed);
        write_placement(op.conn(), (sql, self.persistent()), tenant, is_unique_violation).await
    }

    async fn rewrite_rows(&self, op: &mut PgOp, rows: Rewrite<'_>) -> Result<u64, Error> {
        let Rewrite { tenant, column, to } = rows;
        self.say_tenant(op, tenant, to).await?;
        let persistent = self.persistent();
        let tables = tables_with(op.conn(), persistent, tenant.container(), column).await?;
        self.hold(op, tenant, (tables.as_slice(), column)).await?;
        if self.on_citus() {
            if let Some(to) = to {
                let (distributed,): (bool,) = sqlx::query_as(IS_ROW_DISTRIBUTED)
                    .persistent(false)
                    .bind(tenant.container())
                    .fetch_one(op.conn())
                    .await?;
                if distributed {
                    // Citus does not change a row's distribution column: the rows are copied
                    // under the new name and the old ones deleted.
                    let at = (&tenant.container_tenant(), column);
                    return super::tier::rekey_rows(op.conn(), persistent, at, tenant, to).await;
                }
            }
        }
        let done = rewrite_tables::<Postgres>(op.conn(), tables, rows, false).await?;
        Ok(done.rows_affected())
    }

    /// Under the tenant's lock: the placement guard on its container's tables and its writes
    /// in flight ended ([`hold`](Self::hold)), then its registry row marked, so that the guard
    /// refuses its writes from the commit on. The tables referencing first.
    async fn mark_dropping(&self, op: &mut PgOp, rows: Rewrite<'_>) -> Result<Vec<String>, Error> {
        let Rewrite { tenant, column, .. } = rows;
        let (persistent, registry) = (self.persistent(), self.registry().clone());
        let tables = tables_with(op.conn(), persistent, tenant.container(), column).await?;
        self.hold(op, tenant, (tables.as_slice(), column)).await?;
        let sql = mark_sql::<PgDialect>(&format!("{}.row_tenants", registry.quoted()));
        run_named(op.conn(), (sql, persistent), &[tenant.as_str(), tenant.container()]).await?;
        let container = tenant.container_tenant();
        let references = schema_rows(op.conn(), persistent, REFERENCES, &container).await?;
        Ok(referencing_first(tables, &references))
    }

    /// `DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT n))`: a TID scan of the rows one
    /// scan found (the tenant column checked again, as the `ctid` of a partitioned table's
    /// rows repeats across partitions), the tenant said to the row-level security policies.
    /// The check is written `(… = $1) IS TRUE`, which no index answers: with `… = $1` the
    /// planner, estimating a row or two for a tenant its statistics do not know yet (one
    /// filled since the last `ANALYZE`, or one of many small ones), scanned the tenant's index
    /// and compared each row's `ctid` with every one of the array's: a batch of 10,000 took
    /// 0.5–1.9 s instead of some 20 ms (benchmark 29e). Not on Citus, whose router needs the
    /// equality to send the statement to the tenant's shard (refused otherwise: "Recursively
    /// planned distributed modifications with ctid on where clause are not supported").
    async fn delete_batch(&self, op: &mut PgOp, rows: Rewrite<'_>, table: &str, limit: usize) -> Result<u64, Error> {
        self.say_tenant(op, rows.tenant, None).await?;
        let target = qualified(&rows.tenant.container_tenant(), table);
        let column = double_quoted(rows.column);
        let check = match self.on_citus() {
            true => format!("{column} = $1"),
            false => format!("({column} = $1) IS TRUE"),
        };
        let sql = format!(
            "DELETE FROM {target} WHERE {check} AND ctid = ANY(ARRAY(\
             SELECT ctid FROM {target} WHERE {column} = $1 LIMIT {limit}))"
        );
        let done = run_named(op.conn(), (sql, self.persistent()), &[rows.tenant.as_str()]).await?;
        Ok(done.rows_affected())
    }

    async fn move_rows(&self, op: &mut PgOp, rows: &Move<'_>) -> Result<Moved, Error> {
        let (persistent, registry, citus) = (self.persistent(), self.registry().clone(), self.on_citus());
        if rows.toward == Toward::Shared {
            if citus {
                // One connection per worker for the whole move: the rows a demote copies are
                // checked by the guard against the worker's own copy of `row_gone`, from which
                // the registration below deletes the name's tombstone (`ungone`) in this
                // transaction (the tests pass without it as well: this makes it sure, not only
                // likely). A promote's hold (`hold_and_guard`) sets it.
                sqlx::query(SEQUENTIAL).persistent(persistent).execute(op.conn()).await?;
            }
            self.set_placed(op, rows.placed, true).await?;
        }
        self.say_tenant(op, rows.placed, None).await?;
        if citus && rows.toward == Toward::Own {
            // What a drop or rename holds, the same tables in the same order.
            let tables = tables_with(op.conn(), persistent, rows.placed.container(), rows.column).await?;
            self.hold(op, rows.placed, (tables.as_slice(), rows.column)).await?;
        }
        let moved = super::tier::move_rows(op.conn(), (persistent, citus), &registry, rows).await?;
        if rows.toward == Toward::Own {
            self.set_placed(op, rows.placed, false).await?;
        }
        Ok(moved)
    }

}
