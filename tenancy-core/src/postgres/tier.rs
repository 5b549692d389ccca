//! A tenant's rows moved between a shared container and one of its own, in the operation's
//! transaction ([`Place::move_rows`](crate::lifecycle::store::Place::move_rows)): the
//! placement guard installed on the shared tables, the tenant's writes held, its rows copied
//! table by table (referenced tables first) and, on a promote, deleted from the shared tables
//! (referencing tables first), each table's counts compared.

use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::copy::{tables_of, Table, SEQUENCES};
use super::port::qualified;
use super::{guard_sql, schema_rows, sql};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::copy::referenced_first;
use crate::lifecycle::report::RelocatePhase;
use crate::lifecycle::row_level::run_named;
use crate::lifecycle::store::{Move, Moved, Toward};
use crate::lifecycle::tier::{counts_differ, nowhere_to_go, refuse_changing_keys};
use crate::tenant::Tenant;

/// The primary key of each table of a schema that has one: its columns, in key order.
const PRIMARY_KEYS: &str = "SELECT c.relname::text, array_agg(a.attname::text ORDER BY k.ord) \
     FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
     WHERE n.nspname = $1 AND i.indisprimary GROUP BY c.relname";

/// The foreign keys into the tables of schema `$1` whose `ON DELETE` changes the referencing
/// row (`CASCADE`, `SET NULL`, `SET DEFAULT`): the referencing schema and table, the key's
/// name and the referenced table.
const CHANGING_KEYS: &str = "SELECT rn.nspname::text, r.relname::text, k.conname::text, \
     t.relname::text FROM pg_constraint k \
     JOIN pg_class t ON t.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
     JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace \
     WHERE k.contype = 'f' AND k.conparentid = 0 AND tn.nspname = $1 \
       AND k.confdeltype IN ('c', 'n', 'd') ORDER BY 1, 2, 3";

/// Refuses a promote out of `from` whose deletes would reach rows that do not move (see
/// [`refuse_changing_keys`]).
async fn refuse_changing(
    conn: &mut PgConnection,
    persistent: bool,
    from: &Tenant,
    moving: &[Table],
) -> Result<(), Error> {
    let keys = schema_rows(conn, persistent, CHANGING_KEYS, from).await?;
    refuse_changing_keys(from, |table| moving.iter().any(|t| t.name == table), keys)
}

/// The tables of `schema` (read on `conn`), split into those with a column named `column`
/// (referenced tables first) and those without.
async fn tables(
    conn: &mut PgConnection,
    persistent: bool,
    schema: &Tenant,
    column: &str,
) -> Result<(Vec<Table>, Vec<Table>), sqlx::Error> {
    let (with, without): (Vec<Table>, Vec<Table>) = tables_of(conn, persistent, schema)
        .await?
        .into_iter()
        .partition(|t| t.columns.iter().any(|c| c == column));
    let graph = with
        .iter()
        .map(|t| (t.name.clone(), t.references.clone()))
        .collect();
    let mut ordered = Vec::with_capacity(with.len());
    for name in referenced_first(graph) {
        if let Some(table) = with.iter().find(|t| t.name == name) {
            ordered.push(table.clone());
        }
    }
    Ok((ordered, without))
}

/// `INSERT INTO <to>.<table> (…) SELECT … FROM ONLY <from>.<table>`: each column as it is
/// (a type of `from`'s own read as text and cast to `to`'s type of that name), the tenant
/// column `column` as `$1` if `set` (else it is filtered by it, `WHERE <column> = $1`), with
/// `missing_by` only the rows whose key (those columns) `to`'s table does not have yet; the
/// rows it reads by the tenant locked unless `unlocked` (Citus: the tables are, see
/// [`move_rows`]).
fn copy_sql(
    table: &Table,
    (from, to): (&Tenant, &Tenant),
    column: &str,
    (set, unlocked): (bool, bool),
    missing_by: Option<&[String]>,
) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| double_quoted(c)).collect();
    let selected: Vec<String> = table
        .columns
        .iter()
        .zip(&columns)
        .zip(&table.own_types)
        .map(|((name, quoted), own)| match own {
            _ if set && name == column => "$1".to_owned(),
            Some(ty) => format!("{quoted}::text::{}", qualified(to, ty)),
            None => quoted.clone(),
        })
        .collect();
    let mut filter = match set {
        true => String::new(),
        false => format!(" WHERE {} = $1", double_quoted(column)),
    };
    if let Some(key) = missing_by {
        let key: Vec<String> = key.iter().map(|c| double_quoted(c)).collect();
        let pairs: Vec<String> = key.iter().map(|k| format!("x.{k} = y.{k}")).collect();
        filter.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {} x WHERE {})",
            qualified(to, &table.name),
            pairs.join(" AND ")
        ));
    }
    // The tenant's shared rows are locked by the copy itself, as it reads them: none changes
    // between its copy and the delete.
    let lock = match set || unlocked {
        true => "",
        false => " FOR UPDATE OF y",
    };
    format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM ONLY {} y{filter}{lock}",
        qualified(to, &table.name),
        columns.join(", "),
        selected.join(", "),
        qualified(from, &table.name),
    )
}

/// Runs `sql` (not kept prepared: each is sent once) with the tenant's name bound: the rows
/// it affected.
async fn run(conn: &mut PgConnection, sql: String, tenant: &Tenant) -> Result<u64, sqlx::Error> {
    Ok(run_named(conn, (sql, false), &[tenant.as_str()]).await?.rows_affected())
}

/// Gives `old`'s rows of every table of `container` with the tenant column `column` to `new`
/// by copying them under the new name (referenced tables first) and deleting the old ones
/// (referencing tables first), on `conn` in the operation's transaction: a rename where the
/// column cannot be updated in place (Citus does not change a row's distribution column).
/// Each table's copied and deleted counts are compared; returns the rows given.
pub(super) async fn rekey_rows(
    conn: &mut PgConnection,
    persistent: bool,
    (container, column): (&Tenant, &str),
    old: &Tenant,
    new: &Tenant,
) -> Result<u64, Error> {
    let (ordered, _) = tables(conn, persistent, container, column).await?;
    // Its rows are locked first (referenced tables first), so that none changes between its
    // copy and its delete; a row inserted meanwhile fails the counts below.
    for table in &ordered {
        let sql = format!(
            "SELECT 1 FROM ONLY {} WHERE {} = $1 FOR UPDATE",
            qualified(container, &table.name),
            double_quoted(column)
        );
        run(conn, sql, old).await?;
    }
    let mut copied = Vec::with_capacity(ordered.len());
    for table in &ordered {
        let columns: Vec<String> = table.columns.iter().map(|c| double_quoted(c)).collect();
        let selected: Vec<String> = table
            .columns
            .iter()
            .zip(&columns)
            .map(|(name, quoted)| match name == column {
                true => "$2".to_owned(),
                false => quoted.clone(),
            })
            .collect();
        let sql = format!(
            "INSERT INTO {t} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM ONLY {t} WHERE {} = $1",
            columns.join(", "),
            selected.join(", "),
            double_quoted(column),
            t = qualified(container, &table.name),
        );
        let names = [old.as_str(), new.as_str()];
        let written = run_named(&mut *conn, (sql, false), &names).await;
        copied.push(written.map_err(|e| copy_refused(e, &table.name))?.rows_affected());
    }
    let mut given = 0;
    for (table, copied) in ordered.iter().zip(copied).rev() {
        let sql = format!(
            "DELETE FROM ONLY {} WHERE {} = $1",
            qualified(container, &table.name),
            double_quoted(column)
        );
        let deleted = run(conn, sql, old).await?;
        if deleted != copied {
            return Err(Error::Unsupported {
                operation: "rename",
                reason: format!(
                    "table {:?}: {copied} row(s) of tenant \"{old}\" copied under the new name \
                     but {deleted} deleted (written meanwhile); nothing was renamed",
                    table.name
                ),
            });
        }
        given += deleted;
    }
    Ok(given)
}

/// Citus sends rows whose distribution column changes to their new shards with `COPY`, which
/// row-level security refuses (`0A000`) for a role its policies hold: the rename is
/// [`Error::Unsupported`], saying so and what to do, and nothing was renamed.
fn copy_refused(e: sqlx::Error, table: &str) -> Error {
    match super::errors::is_not_supported(&e) {
        true => Error::Unsupported {
            operation: "rename",
            reason: format!(
                "table {table:?}: Citus copies the rows to the new name's shard with COPY, which \
                 row-level security refuses for a role its policies hold ({e}); rename as a role \
                 that bypasses them; nothing was renamed"
            ),
        },
        false => e.into(),
    }
}

/// Whether one of the tables named `$2` in schema `$1`, plain tables and partitions (`relkind
/// 'r'`, as a promote lists them: a partitioned parent's trigger would be copied onto
/// partitions that may have their own), has no placement guard yet.
const UNGUARDED: &str = "SELECT EXISTS (SELECT 1 FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname = ANY($2) \
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t \
                       WHERE t.tgrelid = c.oid AND t.tgname = 'tenancy_placed'))";

/// Whether a table of `names` (of `container`) lacks the placement guard ([`UNGUARDED`]).
async fn unguarded(
    conn: &mut PgConnection,
    persistent: bool,
    container: &Tenant,
    names: &[&str],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(UNGUARDED)
        .persistent(persistent)
        .bind(container.as_str())
        .bind(names)
        .fetch_one(&mut *conn)
        .await
}

/// The tables a guard goes on: `names` of schema `container`, each with the tenant column
/// `column`.
struct Guarded<'a> {
    container: &'a Tenant,
    names: &'a [&'a str],
    column: &'a str,
}

/// The placement guard ([`sql::PLACED_TRIGGER`]) on each table of `names` (of `container`,
/// each with the tenant column `column`) that lacks it: once per table, by the first promote,
/// drop or rename of a row-level tenant there. The trigger is rendered once, in the registry's
/// PL/pgSQL ([`guard_sql::guard_tables`], the block `guard_added` runs too for a table a migration
/// adds); it is sent only when a table lacks it ([`UNGUARDED`], a prepared read), and checks
/// again under the container's guard lock. On Citus, `citus` is the column's own function (see
/// `citus_guard`); else `placed_guard`.
async fn guard(
    conn: &mut PgConnection,
    persistent: bool,
    registry: &Tenant,
    at: Guarded<'_>,
    citus: Option<&str>,
) -> Result<(), sqlx::Error> {
    let Guarded { container, names, column } = at;
    if !unguarded(conn, persistent, container, names).await? {
        return Ok(());
    }
    let function = citus.unwrap_or("placed_guard");
    let block = guard_sql::guard_tables(registry, container, (names, column), function, citus.is_some());
    sqlx::raw_sql(AssertSqlSafe(block)).execute(&mut *conn).await.map(|_| ())
}

/// Takes the transaction-level advisory lock of `key` (hashed).
pub(super) async fn xact_lock(conn: &mut PgConnection, persistent: bool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .persistent(persistent)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// [`guard`] (PostgreSQL's, or with `citus` the Citus function of that name) on `tables` of
/// `placed`'s container, each with the tenant column `column`.
pub(super) async fn guard_container(
    conn: &mut PgConnection,
    (persistent, registry): (bool, &Tenant),
    placed: &Tenant,
    (tables, column): (&[String], &str),
    citus: Option<&str>,
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let container = placed.container_tenant();
    let at = Guarded { container: &container, names: &names, column };
    guard(conn, persistent, registry, at, citus).await
}

/// Before a drop or rename of row-level `placed` changes its rows (on `conn`, in the
/// operation's transaction, under its lock): the placement guard on `tables` (those of its
/// container with the tenant column `column`), then its transactions under row security and
/// its writes in flight ended (each insert's guard holds its registry row `KEY SHARE`), and
/// the next ones held to the commit, after which the guard refuses them (the registry row is
/// gone or renamed). So a row it inserts in a transaction open across the drop is committed
/// before the drop's delete reads, and deleted with the rest (a delete does not see rows
/// inserted and not yet committed: without this, such a row outlived its tenant and a tenant
/// made again under the name saw it).
pub(super) async fn hold_tenant(
    conn: &mut PgConnection,
    persistent: bool,
    registry: &Tenant,
    placed: &Tenant,
    at: (&[String], &str),
) -> Result<(), sqlx::Error> {
    guard_container(conn, (persistent, registry), placed, at, None).await?;
    hold_transactions(conn, registry, placed).await?;
    hold_inserts(conn, registry, placed).await
}

/// Before a drop or rename of row-level `placed` changes its rows on Citus (on `conn`, in the
/// operation's transaction, under its lock), where no registry row can be locked (it is on the
/// coordinator, the rows on the workers): `tables` of its container (those with the tenant
/// column) locked `SHARE ROW EXCLUSIVE`, so that their writes in flight, every tenant's, end
/// first (a row `placed`'s transaction inserted is then deleted or renamed with the others),
/// and the next ones wait for the commit, when Citus's guard refuses them
/// ([`super::citus_guard`]).
pub(super) async fn hold_tables(
    conn: &mut PgConnection,
    placed: &Tenant,
    tables: &[String],
) -> Result<(), sqlx::Error> {
    if tables.is_empty() {
        return Ok(());
    }
    let container = placed.container_tenant();
    let all: Vec<String> = tables.iter().map(|t| qualified(&container, t)).collect();
    let sql = format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", all.join(", "));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await.map(|_| ())
}

/// Locks `placed`'s registry row (`FOR UPDATE`): the placement guard's `KEY SHARE` of its
/// inserts waits from here, and the inserts in flight end first.
async fn hold_inserts(
    conn: &mut PgConnection,
    registry: &Tenant,
    placed: &Tenant,
) -> Result<(), sqlx::Error> {
    let sql = format!("SELECT 1 FROM {}.row_tenants WHERE name = $1 FOR UPDATE", registry.quoted());
    run(conn, sql, placed).await.map(|_| ())
}

/// Takes the exclusive advisory lock of `placed`'s rows: its transactions under row security
/// (`enter_rows`'s shared lock) end first and the next ones wait for the promote. Taken before
/// its rows are locked, so that none of those transactions waits on a row lock of the promote
/// while the promote waits on it.
pub(super) async fn hold_transactions(
    conn: &mut PgConnection,
    registry: &Tenant,
    placed: &Tenant,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended({} || $1, 0))",
        sql::literal(&sql::rows_lock_prefix(registry))
    );
    run(conn, sql, placed).await.map(|_| ())
}

/// Runs `sql` (a [`copy_sql`] into `to`'s `table`): the rows copied. Triggers of the tenant's
/// new schema (made a moment ago) do not fire on its rows, as in a clone; the shared tables' do,
/// on a demote (they serve other tenants meanwhile).
async fn copy_table(
    conn: &mut PgConnection,
    table: &Table,
    to: &Tenant,
    toward: Toward,
    sql: String,
    placed: &Tenant,
) -> Result<u64, sqlx::Error> {
    let target = qualified(to, &table.name);
    let quiet = table.triggers && toward == Toward::Own;
    if quiet {
        let sql = format!("ALTER TABLE {target} DISABLE TRIGGER USER");
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    let copied = run(conn, sql, placed).await?;
    if quiet {
        let sql = format!("ALTER TABLE {target} ENABLE TRIGGER USER");
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(copied)
}

/// A promote's hold on PostgreSQL, before its copy: the guard on `moving` (the shared tables
/// with the tenant column), its transactions under row security ended, and its inserts held
/// now unless every table has a primary key: then each one's key, for the catch-up after the
/// first copy (they are held then).
async fn hold_own(
    conn: &mut PgConnection,
    (persistent, registry): (bool, &Tenant),
    rows: &Move<'_>,
    moving: &[Table],
) -> Result<Option<Vec<Vec<String>>>, Error> {
    let Move { placed, column, ref from, .. } = *rows;
    // The guard first: its `CREATE TRIGGER` waits for the table's writes in flight and
    // holds the table's writes (every tenant's) to the commit, on the first promote,
    // drop or rename of a row-level tenant in a container only.
    let names: Vec<&str> = moving.iter().map(|t| t.name.as_str()).collect();
    let at = Guarded { container: from, names: &names, column };
    guard(conn, persistent, registry, at, None).await?;
    // With a primary key on every table, its rows are locked as they are copied, before
    // its inserts are held (by its registry row, which the guard's `KEY SHARE` waits on),
    // and the rows inserted meanwhile are copied after: inserts wait only for that
    // catch-up, the delete and the commit; updates and deletes from the first copy on.
    let keys: Vec<(String, Vec<String>)> =
        schema_rows(conn, persistent, PRIMARY_KEYS, from).await?;
    let key_of = |table: &Table| keys.iter().find(|(t, _)| *t == table.name).map(|(_, k)| k.clone());
    let catch_up = moving.iter().map(key_of).collect::<Option<Vec<_>>>();
    hold_transactions(conn, registry, placed).await?;
    // Without a catch-up, its inserts are held before the copy. Either way the copy
    // locks the rows it copies.
    if catch_up.is_none() {
        hold_inserts(conn, registry, placed).await?;
    }
    Ok(catch_up)
}

/// Moves row-level `placed`'s rows `toward` its own schema or its container's (`rows`), on
/// `conn` in the operation's transaction (both names locked; on a promote its own schema made and
/// migrated, on a demote `placed` registered in its container). Registry schema `registry`.
/// On Citus (`citus`), a promote's caller has held the tenant's transactions and the shared
/// tables' writes (every tenant's) to the commit and written its tombstone, which Citus's
/// guard reads ([`super::citus_guard::hold_and_guard`]): that guard cannot hold one tenant's
/// inserts (an insert does not wait for a tombstone not yet committed, as PostgreSQL's waits for
/// the registry row `hold_inserts` locks), so there is no catch-up, and no row locks are needed.
pub(super) async fn move_rows(
    conn: &mut PgConnection,
    (persistent, citus): (bool, bool),
    registry: &Tenant,
    rows: &Move<'_>,
) -> Result<Moved, Error> {
    let Move { placed, column, toward, ref from, ref to, .. } = *rows;
    let (moving, staying) = tables(conn, persistent, from, column).await?;
    let mut catch_up = None;
    match toward {
        Toward::Own => {
            refuse_changing(conn, persistent, from, &moving).await?;
            // On Citus held already (`PgStore::move_rows`, as a drop or rename holds them).
            if !citus {
                catch_up = hold_own(conn, (persistent, registry), rows, &moving).await?;
            }
            // What the migrations put there goes: the tenant's own container holds its rows.
            for table in moving.iter().rev() {
                let sql = format!("DELETE FROM {}", qualified(to, &table.name));
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
            }
        }
        Toward::Shared => {
            for table in &staying {
                let rows: Option<(i32,)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT 1 FROM ONLY {} LIMIT 1",
                    qualified(from, &table.name)
                )))
                .persistent(false)
                .fetch_optional(&mut *conn)
                .await?;
                if rows.is_some() {
                    return Err(nowhere_to_go(&table.name, from, to, column));
                }
            }
            let all: Vec<String> = moving
                .iter()
                .chain(&staying)
                .map(|t| qualified(from, &t.name))
                .collect();
            if !all.is_empty() {
                sqlx::raw_sql(AssertSqlSafe(format!("LOCK TABLE {} IN EXCLUSIVE MODE", all.join(", "))))
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    let mut moved = Vec::with_capacity(moving.len());
    let mut copying = Duration::ZERO;
    let mut copied = rows.tables(RelocatePhase::Copying, moving.len());
    for table in &moving {
        let sql = copy_sql(table, (from, to), column, (toward == Toward::Shared, citus), None);
        let start = Instant::now();
        let count = copy_table(conn, table, to, toward, sql, placed).await?;
        copying += start.elapsed();
        moved.push(count);
        copied.done(&table.name, count);
    }
    if let Some(keys) = &catch_up {
        hold_inserts(conn, registry, placed).await?;
        let mut caught = rows.tables(RelocatePhase::CatchingUp, moving.len());
        for ((table, key), count) in moving.iter().zip(keys).zip(&mut moved) {
            let sql = copy_sql(table, (from, to), column, (false, false), Some(key));
            let start = Instant::now();
            let more = copy_table(conn, table, to, toward, sql, placed).await?;
            copying += start.elapsed();
            *count += more;
            caught.done(&table.name, more);
        }
    }
    if toward == Toward::Own {
        let mut deletes = rows.tables(RelocatePhase::Deleting, moving.len());
        for (table, copied) in moving.iter().zip(&moved).rev() {
            let sql = format!(
                "DELETE FROM ONLY {} WHERE {} = $1",
                qualified(from, &table.name),
                double_quoted(column)
            );
            let deleted = run(conn, sql, placed).await?;
            if deleted != *copied {
                return Err(counts_differ(&table.name, to, *copied, deleted));
            }
            deletes.done(&table.name, deleted);
        }
    }
    let moved = Moved::of(&moved, copying);
    rows.switching(moving.len(), moved.rows);
    let sequences: Vec<(String,)> = schema_rows(conn, persistent, SEQUENCES, from).await?;
    let mut batch = String::new();
    for (sequence,) in sequences {
        let (source, target) = (qualified(from, &sequence), qualified(to, &sequence));
        batch.push_str(&format!(
            "SELECT setval({}::regclass, GREATEST(s.last_value, t.last_value), true) FROM {source} s, {target} t;\n",
            sql::literal(&target),
        ));
    }
    if !batch.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(batch)).execute(&mut *conn).await?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_filters_by_the_tenant_or_sets_it() {
        let table = Table {
            name: "guards".into(),
            columns: vec!["id".into(), "tenant_id".into(), "mood".into()],
            own_types: vec![None, None, Some("mood".into())],
            references: vec![],
            triggers: false,
        };
        let (free, acme) = (Tenant::new("free").unwrap(), Tenant::new("acme").unwrap());
        assert_eq!(
            copy_sql(&table, (&free, &acme), "tenant_id", (false, false), None),
            "INSERT INTO \"acme\".\"guards\" (\"id\", \"tenant_id\", \"mood\") OVERRIDING SYSTEM VALUE \
             SELECT \"id\", \"tenant_id\", \"mood\"::text::\"acme\".\"mood\" FROM ONLY \"free\".\"guards\" y WHERE \"tenant_id\" = $1 FOR UPDATE OF y"
        );
        assert_eq!(
            copy_sql(&table, (&acme, &free), "tenant_id", (true, false), None),
            "INSERT INTO \"free\".\"guards\" (\"id\", \"tenant_id\", \"mood\") OVERRIDING SYSTEM VALUE \
             SELECT \"id\", $1, \"mood\"::text::\"free\".\"mood\" FROM ONLY \"acme\".\"guards\" y"
        );
    }
}
