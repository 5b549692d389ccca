//! A tenant's rows moved between a shared database and one of its own
//! ([`Place::move_rows`](crate::lifecycle::store::Place::move_rows)): the placement guard (two
//! triggers per shared table, made before the transaction: MySQL's DDL commits at once), then
//! one transaction that holds the tenant's registry row and rows, copies them (referenced
//! tables first), on a promote deletes them (referencing tables first, counts compared), switches
//! the placement and commits. `AUTO_INCREMENT` moves past copied keys by itself.

use std::time::{Duration, Instant};

use sqlx::mysql::MySqlConnection;
use sqlx::AssertSqlSafe;

use super::copy::tables_in_order;
use super::errors::NOT_PLACED_STATE;
use super::op::{qualified, quote};
use super::{is_duplicate_entry, MySqlDialect};
use crate::error::Error;
use crate::lifecycle::report::RelocatePhase;
use crate::lifecycle::row_level::{placement_sql, run_named, write_placement};
use crate::lifecycle::store::{Move, Moved, Toward};
use crate::lifecycle::tier::{counts_differ, nowhere_to_go, refuse_changing_keys};
use crate::tenant::Tenant;

/// The part of a trigger's name that says its table: a hash of the table's name, so that the
/// name fits MySQL's 64 characters whatever the table's. FNV-1a: stable across builds and
/// platforms.
fn table_hash(table: &str) -> u64 {
    table
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The guard's triggers of `table`: their names (`tenancy_<event>_<hash of the table's name>`)
/// and events.
fn trigger_names(table: &str) -> [(String, &'static str); 2] {
    let hash = table_hash(table);
    [
        (format!("tenancy_i_{hash:016x}"), "INSERT"),
        (format!("tenancy_u_{hash:016x}"), "UPDATE"),
    ]
}

/// A trigger refusing a row of `container`'s `table` whose `column` names neither `container`
/// nor a row-level tenant registered in it and not being dropped (in `registry`'s
/// `row_tenants`, read by its primary
/// key with a shared lock that a promote's `FOR UPDATE` of the tenant's row waits for, and
/// waits on; by that key alone, so both lock the same record and cannot deadlock). The row's
/// tenant is converted to the key's character set: compared as it is (`utf8mb4` against
/// `ascii`), the key could not be used and every insert read, and share-locked, the whole
/// table of row-level tenants (0.7 ms an insert over 1,000 tenants, against 0.05 ms:
/// `benches/ab/guard_cost_mysql.sh`).
fn guard_sql(
    registry: &Tenant,
    container: &Tenant,
    table: &str,
    column: &str,
    (name, event): (&str, &str),
) -> String {
    let c = container.as_str();
    let changed = match event {
        "UPDATE" => format!("NOT (NEW.{col} <=> OLD.{col}) AND ", col = quote(column)),
        _ => String::new(),
    };
    format!(
        "CREATE TRIGGER {} BEFORE {event} ON {} FOR EACH ROW BEGIN \
           DECLARE placed VARCHAR(255) DEFAULT NULL; \
           IF {changed}NOT (NEW.{col} <=> '{c}') THEN \
             SELECT IF(dropping, NULL, container) INTO placed FROM {} FORCE INDEX (PRIMARY) WHERE name = CONVERT(NEW.{col} USING ascii) COLLATE ascii_bin LOCK IN SHARE MODE; \
             IF NOT (placed <=> '{c}') THEN \
               SIGNAL SQLSTATE '{NOT_PLACED_STATE}' SET MESSAGE_TEXT = 'tenancy: the row''s tenant has no rows in this database (promoted, renamed or dropped since it was resolved)'; \
             END IF; \
           END IF; \
         END",
        qualified(c, name),
        qualified(c, table),
        qualified(registry.as_str(), "row_tenants"),
        col = quote(column),
    )
}

/// The names of the triggers that close `table` of a tenant's own database while a demote
/// moves its rows out, each with when it fires. Each reads the registry only once the row it
/// writes is locked (after an insert, before an update or delete, which lock the row first),
/// as the demote locks the rows before it registers the tenant: the two cannot wait for each
/// other.
fn closing_names(table: &str) -> [(String, &'static str); 3] {
    let hash = format!("{:016x}", table_hash(table));
    [
        (format!("tenancy_ci_{hash}"), "AFTER INSERT"),
        (format!("tenancy_cu_{hash}"), "BEFORE UPDATE"),
        (format!("tenancy_cd_{hash}"), "BEFORE DELETE"),
    ]
}

/// A trigger of tenant `own`'s `table` refusing every write once `own` is registered as a
/// row-level tenant (in `registry`'s `row_tenants`, read by its primary key with a shared
/// lock, which waits for a demote's uncommitted registration): what a demote puts on the
/// tables it moves out of before its transaction (`CREATE TRIGGER` commits), so that a write
/// through a `Tenant` resolved before it, held by the demote's locks, fails after its commit
/// ([`Error::NotPlaced`]) instead of landing in a database about to be dropped.
fn closing_sql(registry: &Tenant, own: &Tenant, table: &str, (name, event): (&str, &str)) -> String {
    format!(
        "CREATE TRIGGER {} {event} ON {} FOR EACH ROW BEGIN \
           DECLARE placed VARCHAR(255) DEFAULT NULL; \
           SELECT container INTO placed FROM {} FORCE INDEX (PRIMARY) WHERE name = '{}' LOCK IN SHARE MODE; \
           IF placed IS NOT NULL THEN \
             SIGNAL SQLSTATE '{NOT_PLACED_STATE}' SET MESSAGE_TEXT = 'tenancy: the tenant''s rows were moved into a shared database since it was resolved'; \
           END IF; \
         END",
        qualified(own.as_str(), name),
        qualified(own.as_str(), table),
        qualified(registry.as_str(), "row_tenants"),
        own.as_str(),
    )
}

/// Moves the `AUTO_INCREMENT` of each of `to`'s `tables` past the greatest key of `from`'s
/// table of that name (before the move's transaction: `ALTER TABLE` commits), so that the
/// tenant's new rows take keys no row of `from` has, as PostgreSQL's sequences do.
async fn continue_keys(
    conn: &mut MySqlConnection,
    from: &Tenant,
    to: &Tenant,
    tables: &[(String, Vec<String>)],
) -> Result<(), Error> {
    let counters: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND EXTRA LIKE '%auto_increment%'",
    )
    .bind(from.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for (table, column) in counters {
        if !tables.iter().any(|(t, _)| *t == table) {
            continue;
        }
        let sql = format!(
            "SELECT CAST(COALESCE(MAX({}), 0) + 1 AS CHAR) FROM {}",
            quote(&column),
            qualified(from.as_str(), &table)
        );
        let next: String = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
        let next: u64 = next.parse().map_err(|_| Error::Unsupported {
            operation: "promote",
            reason: format!("table {table:?}: the greatest key {next:?} is not a whole number"),
        })?;
        let sql = format!("ALTER TABLE {} AUTO_INCREMENT = {next}", qualified(to.as_str(), &table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `LIKE` pattern of the names of the triggers tenancy makes (the placement guard's, a
/// demote's: [`trigger_names`], [`closing_names`]), to be bound.
pub(super) const OWN_TRIGGERS: &str = "tenancy\\_%";

/// The names of the triggers of database `db` that tenancy made ([`OWN_TRIGGERS`]). By
/// `EVENT_OBJECT_SCHEMA` (a trigger's database is its table's), which MariaDB looks up: by
/// `TRIGGER_SCHEMA` it read every database's (70 ms with 5,000 databases, against 0.5 ms).
pub(super) async fn own_triggers(conn: &mut MySqlConnection, db: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS \
         WHERE EVENT_OBJECT_SCHEMA = ? AND TRIGGER_NAME LIKE ?",
    )
    .bind(db)
    .bind(OWN_TRIGGERS)
    .fetch_all(conn)
    .await
}

/// Puts the placement guard ([`guard_sql`]) on each of `tables` of `container` (tenant column
/// `column`) that lacks it. `CREATE TRIGGER` commits at once, and waits for the table's
/// transactions in flight (their writes then go through the guard): call it outside a
/// transaction. Registry database `registry`.
pub(super) async fn guard(
    conn: &mut MySqlConnection,
    registry: &Tenant,
    at: (&Tenant, &[&str]),
    column: &str,
) -> Result<(), Error> {
    let guarded = own_triggers(conn, at.0.as_str()).await?;
    guard_lacking(conn, registry, at, column, &guarded).await
}

/// [`guard`], `guarded` the names of the triggers of tenancy's that the database has.
async fn guard_lacking(
    conn: &mut MySqlConnection,
    registry: &Tenant,
    (container, tables): (&Tenant, &[&str]),
    column: &str,
    guarded: &[String],
) -> Result<(), Error> {
    for table in tables {
        for (name, event) in trigger_names(table) {
            if !guarded.contains(&name) {
                let sql = guard_sql(registry, container, table, column, (&name, event));
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

/// The base tables of database `db` that have a column named `column`, by name.
pub(super) async fn tables_with(
    conn: &mut MySqlConnection,
    db: &str,
    column: &str,
) -> Result<Vec<String>, sqlx::Error> {
    // Each information_schema table filtered by the database on its own: a join of the two
    // read every database's tables (0.2-0.4 s with 5,000 databases on MariaDB 10.11, against
    // 0.6 ms).
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.columns \
         WHERE table_schema = ? AND column_name = ? AND table_name IN \
           (SELECT table_name FROM information_schema.tables \
            WHERE table_schema = ? AND table_type = 'BASE TABLE') \
         ORDER BY table_name",
    )
    .bind(db)
    .bind(column)
    .bind(db)
    .fetch_all(conn)
    .await
}

/// The tenant column a guard trigger's statement ([`guard_sql`], its insert trigger's) reads.
fn guarded_column(trigger_text: &str) -> Option<String> {
    crate::ident::unquote_from(trigger_text.split_once("NOT (NEW.`")?.1, '`')
}

/// After a migration of `container`: where its database has the placement guard (a drop,
/// rename or promote of a row-level tenant put it there), the same guard ([`guard`]) on each
/// table that has the guarded column and lacks it, such as a table the migration added or
/// made again. Without it, a write through a `Tenant` resolved before that drop or rename
/// would land there, under a name a tenant made later may take. MySQL commits each DDL
/// statement on its own: such a table is unguarded from its `CREATE TABLE` to here.
pub(super) async fn guard_added(
    conn: &mut MySqlConnection,
    registry: &Tenant,
    container: &Tenant,
) -> Result<(), Error> {
    // One read of the database's own triggers: the guarded column from an insert trigger's
    // statement, and which tables have theirs.
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(TRIGGER_NAME AS CHAR), CAST(ACTION_STATEMENT AS CHAR) \
         FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND TRIGGER_NAME LIKE ?",
    )
    .bind(container.as_str())
    .bind(OWN_TRIGGERS)
    .fetch_all(&mut *conn)
    .await?;
    let inserts = triggers.iter().filter(|(name, _)| name.starts_with("tenancy_i_"));
    let Some(column) = inserts.filter_map(|(_, statement)| guarded_column(statement)).next() else {
        return Ok(());
    };
    let guarded: Vec<String> = triggers.into_iter().map(|(name, _)| name).collect();
    let tables = tables_with(conn, container.as_str(), &column).await?;
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    guard_lacking(conn, registry, (container, &names), &column, &guarded).await
}

/// Runs `sql` with the tenant's name bound: the rows it affected.
async fn run(conn: &mut MySqlConnection, sql: String, tenant: &Tenant) -> Result<u64, sqlx::Error> {
    Ok(run_named(conn, (sql, true), &[tenant.as_str()]).await?.rows_affected())
}

/// Moves row-level `placed`'s rows `toward` its own database or its container's (`rows`) and
/// switches its placement, on the operation's connection `conn` (both names locked; on a
/// promote its own database made and migrated). Registry database `registry`.
pub(super) async fn move_rows(
    conn: &mut MySqlConnection,
    registry: &Tenant,
    rows: &Move<'_>,
) -> Result<Moved, Error> {
    let Move { column, toward, ref from, ref to, .. } = *rows;
    let (moving, staying): (Vec<_>, Vec<_>) = tables_in_order(conn, from)
        .await?
        .into_iter()
        .partition(|(_, columns)| columns.iter().any(|c| c == column));
    if toward == Toward::Own {
        // Before the guard (DDL, committed at once): a refusal changes nothing.
        let keys: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT CAST(CONSTRAINT_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), \
             CAST(CONSTRAINT_NAME AS CHAR), CAST(REFERENCED_TABLE_NAME AS CHAR) \
             FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE UNIQUE_CONSTRAINT_SCHEMA = ? \
               AND DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
             ORDER BY 1, 2, 3",
        )
        .bind(from.as_str())
        .fetch_all(&mut *conn)
        .await?;
        refuse_changing_keys(from, |table| moving.iter().any(|(t, _)| t == table), keys)?;
        let tables: Vec<&str> = moving.iter().map(|(t, _)| t.as_str()).collect();
        guard(conn, registry, (from, &tables), column).await?;
        continue_keys(conn, from, to, &moving).await?;
    } else {
        for (table, _) in &moving {
            for (name, event) in closing_names(table) {
                let sql = closing_sql(registry, from, table, (&name, event));
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
            }
        }
    }
    let moved = switch(conn, registry, rows, (&moving, &staying)).await;
    if moved.is_err() && toward == Toward::Shared {
        // The tenant stays in its own database: its writes are let through again (after the
        // rollback, since `DROP TRIGGER` commits). If this fails too, the triggers only refuse
        // writes once the tenant is registered as a row-level one.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        for (table, _) in &moving {
            for (name, _) in closing_names(table) {
                let sql = format!("DROP TRIGGER IF EXISTS {}", qualified(from.as_str(), &name));
                let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await;
            }
        }
    }
    moved
}

/// A table's name and its columns' names.
type Columns = (String, Vec<String>);

/// The transaction of [`move_rows`]: the registry switched, the moving tables' rows locked,
/// copied, and (on a promote) deleted from the shared database, committed together.
async fn switch(
    conn: &mut MySqlConnection,
    registry: &Tenant,
    rows: &Move<'_>,
    (moving, staying): (&[Columns], &[Columns]),
) -> Result<Moved, Error> {
    let Move { placed, column, toward, ref from, ref to, .. } = *rows;
    let registry_table = qualified(registry.as_str(), "row_tenants");
    sqlx::raw_sql("START TRANSACTION").execute(&mut *conn).await?;
    match toward {
        Toward::Own => {
            let sql = format!("SELECT COUNT(*) FROM {registry_table} WHERE name = ? FOR UPDATE");
            run(conn, sql, placed).await?;
        }
        Toward::Shared => {
            for (table, _) in staying {
                let sql = format!("SELECT 1 FROM {} LIMIT 1", qualified(from.as_str(), table));
                let any: Option<(i32,)> = sqlx::query_as(AssertSqlSafe(sql))
                    .fetch_optional(&mut *conn)
                    .await?;
                if any.is_some() {
                    return Err(nowhere_to_go(table, from, to, column));
                }
            }
        }
    }
    if toward == Toward::Own {
        // What the migrations put there goes: the tenant's own database holds its rows.
        for (table, _) in moving.iter().rev() {
            let sql = format!("DELETE FROM {}", qualified(to.as_str(), table));
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
    }
    // The rows that move, locked (on a demote, every row of the tenant's tables).
    for (table, _) in moving {
        let source = qualified(from.as_str(), table);
        match toward {
            Toward::Own => {
                let sql = format!("SELECT COUNT(*) FROM {source} WHERE {} = ? FOR UPDATE", quote(column));
                run(conn, sql, placed).await?;
            }
            Toward::Shared => {
                let sql = format!("SELECT COUNT(*) FROM {source} FOR UPDATE");
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
            }
        }
    }
    if toward == Toward::Shared {
        // Registered once its rows are locked: a write held by those locks reads the
        // registration when the demote commits, and is refused (`closing_sql`).
        let sql = placement_sql::<MySqlDialect>(&registry_table, true);
        write_placement(&mut *conn, (sql, true), placed, is_duplicate_entry).await?;
    }
    let mut moved = Vec::with_capacity(moving.len());
    let mut copying = Duration::ZERO;
    let mut copied = rows.tables(RelocatePhase::Copying, moving.len());
    for (table, columns) in moving {
        let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let selected: Vec<String> = columns
            .iter()
            .zip(&names)
            .map(|(name, quoted)| match toward == Toward::Shared && name == column {
                true => "?".to_owned(),
                false => quoted.clone(),
            })
            .collect();
        let filter = match toward {
            Toward::Own => format!(" WHERE {} = ?", quote(column)),
            Toward::Shared => String::new(),
        };
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}{filter}",
            qualified(to.as_str(), table),
            names.join(", "),
            selected.join(", "),
            qualified(from.as_str(), table),
        );
        let start = Instant::now();
        let count = run(conn, sql, placed).await?;
        copying += start.elapsed();
        moved.push(count);
        copied.done(table, count);
    }
    if toward == Toward::Own {
        let mut deletes = rows.tables(RelocatePhase::Deleting, moving.len());
        for ((table, _), copied) in moving.iter().zip(&moved).rev() {
            let sql = format!(
                "DELETE FROM {} WHERE {} = ?",
                qualified(from.as_str(), table),
                quote(column)
            );
            let deleted = run(conn, sql, placed).await?;
            if deleted != *copied {
                return Err(counts_differ(table, to, *copied, deleted));
            }
            deletes.done(table, deleted);
        }
    }
    let moved = Moved::of(&moved, copying);
    rows.switching(moving.len(), moved.rows);
    if toward == Toward::Own {
        let sql = placement_sql::<MySqlDialect>(&registry_table, false);
        let names = [placed.as_str(), placed.container()];
        let unplaced = run_named(&mut *conn, (sql, true), &names).await?.rows_affected();
        if unplaced != 1 {
            return Err(Error::Unsupported {
                operation: "promote",
                reason: format!("tenant \"{to}\" was not placed in \"{from}\" any more; nothing was moved"),
            });
        }
    }
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guards_names_fit_and_differ_by_table_and_event() {
        let long = "t".repeat(64);
        for table in ["guards", long.as_str()] {
            let [(insert, _), (update, _)] = trigger_names(table);
            assert!(insert.len() <= 64 && update.len() <= 64);
            assert_ne!(insert, update);
        }
        assert_ne!(trigger_names("guards")[0].0, trigger_names("badges")[0].0);
    }

    #[test]
    fn the_guarded_column_is_read_back_from_the_insert_trigger() {
        let (registry, container) = (Tenant::new("_tenancy").unwrap(), Tenant::new("rows").unwrap());
        for column in ["tenant_id", "te`n``t", "a b"] {
            let [(name, event), _] = trigger_names("guards");
            let sql = guard_sql(&registry, &container, "guards", column, (&name, event));
            assert_eq!(guarded_column(&sql).as_deref(), Some(column), "{sql}");
        }
        assert_eq!(guarded_column("BEGIN SET @x = 1; END"), None);
    }
}
