//! The placement guard on Citus: what refuses a row-level tenant's write through a `Tenant`
//! resolved before its drop or rename, where PostgreSQL's guard cannot run.
//!
//! PostgreSQL's guard (`placed_guard`, [`super::tier`]) reads the registry's `row_tenants`
//! from a trigger on each shared table. On Citus the shared tables' rows live on the workers
//! and the registry stays on the coordinator, so a trigger there cannot read it. Instead, the
//! registry keeps a *reference table* (a copy on every node, written in one distributed
//! transaction) of the names whose rows left a container: `row_gone (container, name)`, a
//! tombstone written by the drop's mark or the rename, in the operation's transaction, and
//! deleted when the name gets rows in that container again (a trigger on `row_tenants`,
//! `ungone`). A trigger on each shared table (`tenancy_placed`, as on PostgreSQL, by the first
//! drop or rename in the container: Citus needs `citus.enable_unsafe_triggers` for it) refuses
//! a row whose tenant has a tombstone in the table's schema with [`super::sql::NOT_PLACED`].
//!
//! The trigger's function (one per tenant column, which it reads as `NEW.<column>`) reads the
//! node's own placement of `row_gone` by its shard's name (fixed for a reference table, and on
//! every node that holds shards), which PostgreSQL plans as a plain table: the reference table
//! queried through Citus's planner cost some 100 µs more a row. It also leaves
//! [`super::sql::PLACED_SETTING`] for the transaction, so that a bulk insert of one tenant pays
//! the check once (the trigger's `WHEN`). Its cost: `benches/ab/guard_cost_citus.sh`.
//!
//! The order: the container's tables locked (`hold_tables`: their writes in flight end first,
//! the next ones wait for the commit), the trigger created, the tombstone written; the commit
//! reaches every node (two-phase) before the tables' locks are released, so a write that
//! waited reads the tombstone.

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::citus_rows::SEQUENTIAL;
use super::port::qualified;
use super::sql::{self, NOT_PLACED, PLACED_SETTING};
use crate::ident::double_quoted;
use crate::tenant::Tenant;

/// The registry's `row_gone` table, qualified and quoted.
fn gone(registry: &Tenant) -> String {
    qualified(registry, "row_gone")
}

/// Creates `row_gone` as a reference table, and the `ungone` trigger on `row_tenants` that
/// deletes a name's tombstone in a container when it is registered there again (only when
/// there is one: the read is local, a delete is a distributed write). Run once per registry,
/// under the registry's guard lock.
fn setup_sql(registry: &Tenant) -> [String; 5] {
    let (r, gone) = (registry.quoted(), gone(registry));
    [
        format!(
            "CREATE TABLE {gone} (container text NOT NULL, name text NOT NULL, \
             PRIMARY KEY (container, name))"
        ),
        format!("SELECT create_reference_table({})", sql::literal(&gone)),
        format!(
            "CREATE OR REPLACE FUNCTION {r}.ungone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tenancy$
BEGIN
    IF EXISTS (SELECT 1 FROM {gone} WHERE container = NEW.container AND name = NEW.name) THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        DELETE FROM {gone} WHERE container = NEW.container AND name = NEW.name;
    END IF;
    RETURN NEW;
END
$tenancy$"
        ),
        format!("DROP TRIGGER IF EXISTS tenancy_ungone ON {r}.row_tenants"),
        format!(
            "CREATE TRIGGER tenancy_ungone AFTER INSERT OR UPDATE OF name, container \
             ON {r}.row_tenants FOR EACH ROW EXECUTE FUNCTION {r}.ungone()"
        ),
    ]
}

/// The name of the guard's trigger function for tenant column `column` (to be quoted): one per
/// column, which it reads as `NEW.<column>` (reading a column named by an argument goes
/// through `to_jsonb(NEW)`, which cost some 60 µs a row on the workers).
fn function_name(column: &str) -> String {
    let plain = column.len() <= 40
        && column.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    match plain {
        true => format!("gone_guard_{column}"),
        false => {
            // FNV-1a: the same name for the same column in every process and version.
            let hash = column.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("gone_guard_{hash:016x}")
        }
    }
}

/// The guard's trigger function for tenant column `column` (named by [`function_name`]),
/// reading `row_gone`'s placement `shard` (qualified and quoted) on the node where the row
/// is written. Its second argument is the constant its `WHEN` compares [`PLACED_SETTING`]
/// with (its first, the column, as for PostgreSQL's `placed_guard`).
fn guard_function_sql(registry: &Tenant, column: &str, shard: &str) -> String {
    let r = registry.quoted();
    let name = double_quoted(&function_name(column));
    let tenant = format!("NEW.{}::text", double_quoted(column));
    format!(
        "CREATE OR REPLACE FUNCTION {r}.{name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tenancy$
BEGIN
    IF {tenant} IS NULL OR EXISTS (SELECT 1 FROM {shard}
                                   WHERE container = TG_TABLE_SCHEMA AND name = {tenant}) THEN
        RAISE EXCEPTION 'tenant % has no rows in % (renamed or dropped since it was resolved)',
            {tenant}, TG_TABLE_SCHEMA USING ERRCODE = '{NOT_PLACED}';
    END IF;
    PERFORM pg_catalog.set_config('{PLACED_SETTING}', TG_ARGV[1] || '/' || {tenant}, true);
    RETURN NEW;
END
$tenancy$"
    )
}

/// The id of `row_gone`'s one shard (a reference table's), whose placements are named
/// `row_gone_<id>` in the registry's schema.
const GONE_SHARD: &str = "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = to_regclass($1)";

/// Whether the object `$1` names exists: the registry's `row_gone` (`to_regclass`) or a
/// function (`to_regprocedure`).
async fn exists(conn: &mut PgConnection, persistent: bool, sql: &'static str, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(sql).persistent(persistent).bind(name).fetch_one(&mut *conn).await
}

const TABLE_EXISTS: &str = "SELECT to_regclass($1) IS NOT NULL";
const FUNCTION_EXISTS: &str = "SELECT to_regprocedure($1) IS NOT NULL";

/// Makes `row_gone` and its `ungone` trigger if the registry has none yet, and the guard's
/// function for `column` if there is none yet (each read again under the registry's guard
/// lock): the function's name (unquoted).
async fn ensure_gone(
    conn: &mut PgConnection,
    persistent: bool,
    registry: &Tenant,
    column: &str,
) -> Result<String, sqlx::Error> {
    let gone = gone(registry);
    let name = function_name(column);
    let function = format!("{}.{}()", registry.quoted(), double_quoted(&name));
    if exists(conn, persistent, TABLE_EXISTS, &gone).await?
        && exists(conn, persistent, FUNCTION_EXISTS, &function).await?
    {
        return Ok(name);
    }
    // Two first drops (or first of a column) take turns.
    let key = format!("tenancy-gone:{}", registry.as_str());
    super::tier::xact_lock(conn, persistent, &key).await?;
    if !exists(conn, persistent, TABLE_EXISTS, &gone).await? {
        // One statement at a time: Citus sends some on to the workers as the whole text.
        for statement in setup_sql(registry) {
            sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut *conn).await?;
        }
    }
    if !exists(conn, persistent, FUNCTION_EXISTS, &function).await? {
        let shard: i64 = sqlx::query_scalar(GONE_SHARD).persistent(false).bind(&gone).fetch_one(&mut *conn).await?;
        let placement = qualified(registry, &format!("row_gone_{shard}"));
        let sql = guard_function_sql(registry, column, &placement);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(name)
}

/// Before a drop, rename or promote of row-level `placed` changes its rows on Citus (on `conn`,
/// in the operation's transaction, under its lock): its transactions under row security ended
/// first and the next ones held ([`super::tier::hold_transactions`], as on PostgreSQL); `tables`
/// of its container (those with the tenant column `column`) locked, so that their writes in
/// flight end first and the next ones wait for the commit ([`super::tier::hold_tables`]); the
/// guard on each of them; and `placed`'s tombstone in its container, so that from the commit on
/// every write of its rows there is refused ([`NOT_PLACED`]).
pub(super) async fn hold_and_guard(
    conn: &mut PgConnection,
    persistent: bool,
    registry: &Tenant,
    placed: &Tenant,
    at: (&[String], &str),
) -> Result<(), sqlx::Error> {
    let (tables, column) = at;
    if tables.is_empty() {
        return Ok(());
    }
    super::tier::hold_transactions(conn, registry, placed).await?;
    sqlx::query(SEQUENTIAL).persistent(persistent).execute(&mut *conn).await?;
    super::tier::hold_tables(conn, placed, tables).await?;
    let function = ensure_gone(conn, persistent, registry, column).await?;
    let on = (persistent, registry);
    super::tier::guard_container(conn, on, placed, at, Some(&function)).await?;
    let sql = format!(
        "INSERT INTO {} (container, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        gone(registry)
    );
    sqlx::query(AssertSqlSafe(sql))
        .persistent(persistent)
        .bind(placed.container())
        .bind(placed.as_str())
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn a_guard_function_is_named_after_its_column_or_a_hash_of_it() {
        assert_eq!(function_name("tenant_id"), "gone_guard_tenant_id");
        let odd = function_name("Tenant \"Id\"");
        assert_eq!(odd, function_name("Tenant \"Id\""), "the same name every time");
        assert!(odd.starts_with("gone_guard_") && odd.len() == "gone_guard_".len() + 16, "{odd}");
        let long = function_name(&"x".repeat(63));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, function_name(&"x".repeat(62)));
    }
}
