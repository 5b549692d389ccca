//! A tenant's rows moved between a shared tenant file and a file of its own
//! ([`Place::move_rows`](crate::lifecycle::store::Place::move_rows)). SQLite commits each file
//! on its own (a transaction over attached files in WAL mode is atomic per file only), so a
//! move is ordered so that, at every moment, the registry names a file that holds the
//! tenant's rows whole:
//!
//! - **Promote.** The operation holds the shared file's write lock (`BEGIN IMMEDIATE`, taken
//!   when its history was read), so the tenant's writes wait. Its rows are copied into the new
//!   file (built under a temporary name, the shared file attached read-only in spirit: only
//!   read), which is then linked into place and registered: from then on the tenant resolves
//!   to it. Then the shared file's transaction deletes the rows and adds the guard (the
//!   tenant's name in [`MOVED_OUT`], which a trigger on each shared table reads) and commits,
//!   and the row-level registration goes last.
//! - **Demote.** The operation holds the tenant's own file's write lock. Its rows are copied
//!   into the shared file in a transaction that also clears its name from [`MOVED_OUT`]; the
//!   tenant is registered as row-level, the shared file committed, the own file unregistered,
//!   and only then are the own file's writes let through, into triggers that refuse them
//!   ([`Error::NotPlaced`]): a write held by the lock is never acknowledged into a file about
//!   to be removed.

use std::time::{Duration, Instant};

use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, Executor as _};

use super::errors::NOT_PLACED_MESSAGE;
use super::port::shapes;
use super::store::{SqliteOp, SqliteStore};
use super::{is_unique_violation, SqliteDialect};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::archive::Shape;
use crate::lifecycle::report::RelocatePhase;
use crate::lifecycle::row_level::{placement_sql, run_named, write_placement};
use crate::lifecycle::store::{Move, Moved, Place, Toward};
use crate::lifecycle::tier::{counts_differ, nowhere_to_go, refuse_changing_keys};
use crate::tenant::Tenant;

/// The table of a shared file naming the tenants promoted out of it (until one of that name
/// is placed there again): what its guard triggers read.
pub(crate) const MOVED_OUT: &str = "_tenancy_moved_out";

/// The schema name under which a move attaches the file it reads from.
const SOURCE: &str = "tenancy_from";

/// The foreign keys of the file open on a connection whose `ON DELETE` changes the
/// referencing row: the referencing table, the key (by its number: SQLite keys have no
/// names) and the referenced table.
const CHANGING_KEYS: &str = "SELECT m.name, 'foreign key ' || f.id, f.\"table\" \
     FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
     WHERE m.type = 'table' AND f.on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
     ORDER BY 1, 2";

/// The guard's triggers on a shared `table`: an insert, or an update setting `column`, of a
/// row whose tenant is in [`MOVED_OUT`] is refused.
fn guard_sql(table: &str, column: &str) -> [String; 2] {
    let when = format!(
        "WHEN EXISTS (SELECT 1 FROM {} WHERE tenant = NEW.{}) BEGIN SELECT RAISE(ABORT, '{}'); END",
        double_quoted(MOVED_OUT),
        double_quoted(column),
        not_placed("the tenant of the row was moved out of this file since it was resolved"),
    );
    [("i", "INSERT".to_owned()), ("u", format!("UPDATE OF {}", double_quoted(column)))].map(
        |(tag, event)| {
            format!(
                "CREATE TRIGGER IF NOT EXISTS {} BEFORE {event} ON {} {when}",
                double_quoted(&format!("_tenancy_placed_{tag}_{table}")),
                double_quoted(table),
            )
        },
    )
}

/// The triggers that close `table` of a tenant's own file once a demote has moved its rows
/// out: every write refused.
fn closing_sql(table: &str) -> [String; 3] {
    ["INSERT", "UPDATE", "DELETE"].map(|event| {
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} BEFORE {event} ON {} BEGIN SELECT RAISE(ABORT, '{}'); END",
            double_quoted(&format!("_tenancy_closed_{}_{table}", &event[..1])),
            double_quoted(table),
            not_placed("the rows of the tenant were moved into a shared file since it was resolved"),
        )
    })
}

/// The message of a guard's refusal: [`NOT_PLACED_MESSAGE`] and why (a SQL string literal's
/// content: no quote in it).
fn not_placed(why: &str) -> String {
    debug_assert!(!why.contains('\''));
    format!("{NOT_PLACED_MESSAGE}: {why}")
}

/// `INSERT INTO main.<table> (<columns>) SELECT <columns> FROM <SOURCE>.<table>`, filtered by
/// the tenant column (`?1`) on a promote, or with the tenant column set to `?1` on a demote.
fn copy_sql(table: &Shape, column: &str, toward: Toward) -> String {
    let names: Vec<String> = table.columns.iter().map(|c| double_quoted(&c.name)).collect();
    let selected: Vec<&str> = table
        .columns
        .iter()
        .zip(&names)
        .map(|(c, quoted)| match toward == Toward::Shared && c.name == column {
            true => "?1",
            false => quoted.as_str(),
        })
        .collect();
    let filter = match toward {
        Toward::Own => format!(" WHERE {} = ?1", double_quoted(column)),
        Toward::Shared => String::new(),
    };
    format!(
        "INSERT INTO main.{t} ({}) SELECT {} FROM {SOURCE}.{t}{filter}",
        names.join(", "),
        selected.join(", "),
        t = double_quoted(&table.name),
    )
}

/// `DELETE FROM main.<table> WHERE <column> = ?1`: a tenant's rows of `table`.
fn delete_sql(table: &Shape, column: &str) -> String {
    format!(
        "DELETE FROM main.{} WHERE {} = ?1",
        double_quoted(&table.name),
        double_quoted(column)
    )
}

/// Takes `tenant` off [`MOVED_OUT`] in the file open on `conn` (if it has the table), so the
/// guard lets its rows in.
async fn let_in(conn: &mut SqliteConnection, tenant: &Tenant) -> Result<(), sqlx::Error> {
    if has_table(conn, MOVED_OUT).await? {
        let sql = format!("DELETE FROM {} WHERE tenant = ?1", double_quoted(MOVED_OUT));
        run(conn, sql, Some(tenant)).await?;
    }
    Ok(())
}

/// Puts `gone` (a row-level tenant promoted, dropped or renamed out of the shared file open on
/// `conn`, inside the caller's transaction) on the file's [`MOVED_OUT`], and the guard on each
/// of `tables` (those with the tenant column `column`) that lacks it: an insert or update of a
/// row of `gone` there, through a `Tenant` resolved before, is refused (`NotPlaced`) until a
/// tenant of that name is placed there again ([`let_in`]).
pub(super) async fn shut_out(
    conn: &mut SqliteConnection,
    gone: &Tenant,
    tables: &[&str],
    column: &str,
) -> Result<(), sqlx::Error> {
    let moved_out = double_quoted(MOVED_OUT);
    conn.execute(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {moved_out} (tenant TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID"
    )))
    .await?;
    let sql = format!("INSERT OR IGNORE INTO {moved_out} (tenant) VALUES (?1)");
    run(conn, sql, Some(gone)).await?;
    for table in tables {
        for sql in guard_sql(table, column) {
            conn.execute(AssertSqlSafe(sql)).await?;
        }
    }
    Ok(())
}

/// The guard's insert trigger of some table of the file open on `conn`, as SQLite keeps its
/// text ([`guard_sql`]).
const A_GUARD: &str = "SELECT sql FROM main.sqlite_schema WHERE type = 'trigger' \
     AND name LIKE '\\_tenancy\\_placed\\_i\\_%' ESCAPE '\\' LIMIT 1";

/// The tables of the file open on `conn` with column `?1` and without the guard's insert
/// trigger.
const UNGUARDED: &str = "SELECT m.name FROM main.sqlite_schema m WHERE m.type = 'table' \
     AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = ?1) \
     AND NOT EXISTS (SELECT 1 FROM main.sqlite_schema t \
                     WHERE t.type = 'trigger' AND t.name = '_tenancy_placed_i_' || m.name) \
     ORDER BY m.name";

/// The tenant column a guard trigger's text ([`guard_sql`]) reads.
fn guarded_column(trigger_text: &str) -> Option<String> {
    crate::ident::unquote_from(trigger_text.split_once("WHERE tenant = NEW.\"")?.1, '"')
}

/// After a migration of the file open on `conn` (in its transaction): where the file has the
/// placement guard (a drop, rename or promote of a row-level tenant put it there), the same
/// guard on each table that has the guarded column and lacks it, such as a table the
/// migration added or made again (SQLite's way to change a column drops the table's
/// triggers with it). Without it, a write through a `Tenant` resolved before that drop or
/// rename would land there, under a name a tenant made later may take.
pub(super) async fn guard_added(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let guard: Option<String> = sqlx::query_scalar(A_GUARD).fetch_optional(&mut *conn).await?;
    let Some(column) = guard.as_deref().and_then(guarded_column) else {
        return Ok(());
    };
    let tables: Vec<String> = sqlx::query_scalar(UNGUARDED).bind(&column).fetch_all(&mut *conn).await?;
    for table in tables {
        for sql in guard_sql(&table, &column) {
            conn.execute(AssertSqlSafe(sql)).await?;
        }
    }
    Ok(())
}

/// Runs `sql` on `conn` with nothing or `tenant` bound: the rows it affected.
async fn run(conn: &mut SqliteConnection, sql: String, tenant: Option<&Tenant>) -> Result<u64, sqlx::Error> {
    let names: Vec<&str> = tenant.map(Tenant::as_str).into_iter().collect();
    Ok(run_named(&mut *conn, (sql, false), &names).await?.rows_affected())
}

/// Whether the file open on `conn` (`main`) has table `name`.
async fn has_table(conn: &mut SqliteConnection, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// Copies the rows of `moving` (referenced tables first) from the file attached as
/// [`SOURCE`] into `conn`'s main file, inside the caller's transaction, each table told to
/// the move's watch: the rows copied per table, and how long the copies took.
async fn copy_tables(
    conn: &mut SqliteConnection,
    moving: &[Shape],
    rows: &Move<'_>,
) -> Result<(Vec<u64>, Duration), sqlx::Error> {
    let mut copied = Vec::with_capacity(moving.len());
    let mut copying = Duration::ZERO;
    let mut told = rows.tables(RelocatePhase::Copying, moving.len());
    for table in moving {
        let sql = copy_sql(table, rows.column, rows.toward);
        let started = Instant::now();
        let count = run(conn, sql, Some(rows.placed)).await?;
        copying += started.elapsed();
        copied.push(count);
        told.done(&table.name, count);
    }
    Ok((copied, copying))
}

/// Attaches `path` to `conn` as [`SOURCE`].
async fn attach(conn: &mut SqliteConnection, path: &std::path::Path, tenant: &Tenant) -> Result<(), Error> {
    let Some(path) = path.to_str() else {
        return Err(Error::Unsupported {
            operation: "move",
            reason: format!("the file of tenant \"{tenant}\" has a path that is not valid UTF-8"),
        });
    };
    sqlx::query(AssertSqlSafe(format!("ATTACH DATABASE ?1 AS {SOURCE}")))
        .bind(path)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqliteStore {
    /// Takes row-level `placed`'s name off its container's [`MOVED_OUT`] (a tenant of that
    /// name promoted out of it earlier, since dropped or renamed), so the guard lets its rows
    /// in: before it is registered there. On the container's pool if it is open, else on a
    /// connection of its own (the caller holds the container's lock, which opening its pool
    /// would wait for).
    pub(super) async fn clear_moved_out(&self, placed: &Tenant) -> Result<(), Error> {
        let container = placed.container_tenant();
        let pool = self.lru().get(&container);
        let mut conn = match pool {
            Some(pool) => Held::Pooled(pool.acquire().await?),
            None => Held::Own(self.connect(&container).await?),
        };
        let cleared = let_in(&mut conn, placed).await;
        if let Held::Own(conn) = conn {
            let _ = conn.close().await;
        }
        cleared.map_err(|e| Error::from(e).about(placed))
    }

    /// Deletes the rows of `left` from the tables with `column` of the file open on `conn`
    /// (inside the caller's transaction): a copy of a tenant of its own that a move killed
    /// part-way left behind.
    async fn forget_copy(conn: &mut SqliteConnection, left: &Tenant, column: &str) -> Result<(), Error> {
        let (tables, _) = Self::split(conn, column).await?;
        for table in tables.iter().rev() {
            run(conn, delete_sql(table, column), Some(left)).await?;
        }
        Ok(())
    }

    /// The tables of the file open on `conn` ([`shapes`]: referenced tables first), split
    /// into those with `column` and those without.
    async fn split(conn: &mut SqliteConnection, column: &str) -> Result<(Vec<Shape>, Vec<Shape>), Error> {
        Ok(shapes(conn)
            .await?
            .into_iter()
            .partition(|t| t.columns.iter().any(|c| c.name == column)))
    }

    /// Moves row-level `rows.placed`'s rows `toward` a file of its own or its container's
    /// (see the module's documentation).
    pub(super) async fn move_tier(&self, op: &mut SqliteOp, rows: &Move<'_>) -> Result<Moved, Error> {
        match rows.toward {
            Toward::Own => self.promote_rows(op, rows).await,
            Toward::Shared => self.demote_rows(op, rows).await,
        }
    }

    /// A promote: the operation's connection is the new file's (migrated, not committed), its
    /// held one the shared file's, inside `BEGIN IMMEDIATE`.
    async fn promote_rows(&self, op: &mut SqliteOp, rows: &Move<'_>) -> Result<Moved, Error> {
        let Move { placed, ref from, ref to, .. } = *rows;
        let mut shared = match op.held.take() {
            Some(conn) => conn,
            None => self.begin_immediate(from).await?,
        };
        let moved = self.promote_with(op, &mut shared, rows).await;
        let moved = match moved {
            Ok(moved) => moved,
            Err(e) => {
                op.held = Some(shared);
                return Err(e);
            }
        };
        // The rows are in the tenant's own file, registered: the shared file lets go of them.
        if let Err(e) = shared.execute("COMMIT").await {
            let _ = shared.close().await;
            let _ = self.remove_file(to).await;
            return Err(self.locked(from, e));
        }
        let _ = shared.close().await;
        self.set_placed(op, placed, false).await?;
        Ok(moved)
    }

    /// The part of a promote up to the shared file's commit: the rows copied into the new
    /// file, which is linked into place and registered; the rows deleted from the shared file
    /// and the guard added there (not committed).
    async fn promote_with(
        &self,
        op: &mut SqliteOp,
        shared: &mut SqliteConnection,
        rows: &Move<'_>,
    ) -> Result<Moved, Error> {
        let Move { column, ref from, ref to, .. } = *rows;
        let (moving, _) = Self::split(op.conn(), column).await?;
        let keys: Vec<(String, String, String)> = sqlx::query_as(CHANGING_KEYS)
            .fetch_all(&mut *shared)
            .await?;
        let keys = keys.into_iter().map(|(t, k, r)| (from.to_string(), t, k, r)).collect();
        refuse_changing_keys(from, |table| moving.iter().any(|t| t.name == table), keys)?;
        // What the migrations put in the new file's moving tables goes: it holds the tenant's
        // rows.
        let conn = op.conn();
        for table in moving.iter().rev() {
            run(conn, format!("DELETE FROM main.{}", double_quoted(&table.name)), None).await?;
        }
        conn.execute("COMMIT").await?;
        attach(conn, &self.path(from), from).await?;
        let copied = async {
            conn.execute("BEGIN").await?;
            let copied = copy_tables(conn, &moving, rows).await?;
            continue_keys(conn).await?;
            conn.execute("COMMIT").await?;
            Ok::<_, sqlx::Error>(copied)
        }
        .await;
        let (copied, copying) = copied?;
        // Closed before it is linked: closing checkpoints its WAL into the file.
        if let Some(conn) = op.conn.take() {
            let _ = conn.close().await;
        }
        let (tenant, temp) = op.building.take().expect("a promote builds its tenant's file");
        self.mark_moving(&tenant, true).await?;
        let linked = self.link_and_register(&tenant, &temp, &self.path(&tenant)).await;
        let _ = super::store::remove_with_sidecars(&temp);
        linked?;
        self.mark_moving(&tenant, false).await?;
        let guarded = async {
            let names: Vec<&str> = moving.iter().map(|t| t.name.as_str()).collect();
            shut_out(shared, rows.placed, &names, column).await?;
            let mut deleted = Vec::with_capacity(moving.len());
            let mut told = rows.tables(RelocatePhase::Deleting, moving.len());
            for table in moving.iter().rev() {
                let sql = delete_sql(table, column);
                let count = run(shared, sql, Some(rows.placed)).await?;
                deleted.push((table.name.as_str(), count));
                told.done(&table.name, count);
            }
            Ok::<_, sqlx::Error>(deleted)
        }
        .await;
        let checked = guarded.map_err(Error::from).and_then(|deleted| {
            for ((table, deleted), copied) in deleted.into_iter().zip(copied.iter().rev()) {
                if deleted != *copied {
                    return Err(counts_differ(table, to, *copied, deleted));
                }
            }
            Ok(())
        });
        if let Err(e) = checked {
            // Not committed: the shared file keeps the rows; the new file goes again.
            let _ = self.remove_file(to).await;
            return Err(e);
        }
        let moved = Moved::of(&copied, copying);
        rows.switching(moving.len(), moved.rows);
        Ok(moved)
    }

    /// A demote: the operation's connection is the tenant's own file's, inside `BEGIN
    /// IMMEDIATE` (its history was read).
    async fn demote_rows(&self, op: &mut SqliteOp, rows: &Move<'_>) -> Result<Moved, Error> {
        let Move { placed, column, ref from, ref to, .. } = *rows;
        self.open_file(op, from).await?;
        let (moving, staying) = Self::split(op.conn(), column).await?;
        for table in &staying {
            let sql = format!("SELECT 1 FROM main.{} LIMIT 1", double_quoted(&table.name));
            let any: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_optional(op.conn())
                .await?;
            if any.is_some() {
                return Err(nowhere_to_go(&table.name, from, to, column));
            }
        }
        // Registered row-level too while it is a tenant of its own: by a move killed part-way
        // (its own file answers first).
        let left = self.placement(&from.own()).await?;
        let mut shared = self.connect(to).await?;
        let moved = async {
            attach(&mut shared, &self.path(from), from).await?;
            // Deferred: `BEGIN IMMEDIATE` would take the write lock of the attached file too,
            // which the operation holds. The first write takes the shared file's.
            shared.execute("BEGIN").await?;
            // Its name's rows here are a copy a killed move left behind (it is a tenant of its
            // own, and no other tenant has its name): they go, as does a row-level registration
            // left with them.
            Self::forget_copy(&mut shared, placed, column).await?;
            if let Some(left) = &left {
                self.set_placed(op, left, false).await?;
            }
            // Off the guard's list first, so its rows are let in.
            let_in(&mut shared, placed).await?;
            let (copied, copying) = copy_tables(&mut shared, &moving, rows).await?;
            rows.switching(moving.len(), copied.iter().sum());
            let sql = placement_sql::<SqliteDialect>("row_tenants", true);
            write_placement(&self.registry_pool, (sql, true), placed, is_unique_violation).await?;
            if let Err(e) = shared.execute("COMMIT").await {
                let _ = self.set_placed(op, placed, false).await;
                return Err(self.locked(to, e));
            }
            Ok(Moved::of(&copied, copying))
        }
        .await;
        let _ = shared.close().await;
        let moved = moved?;
        // The rows are in the shared file and the tenant is registered there: its own file is
        // no tenant any more (marked as in a move first, so a kill from here on leaves a file
        // the next operation on its name removes), and the writes its lock held are refused
        // from now on.
        self.mark_moving(from, true).await?;
        self.unregister(from).await?;
        let conn = op.conn();
        for table in moving.iter().chain(&staying) {
            for sql in closing_sql(&table.name) {
                conn.execute(AssertSqlSafe(sql)).await?;
            }
        }
        conn.execute("COMMIT").await?;
        if let Some(conn) = op.conn.take() {
            let _ = conn.close().await;
        }
        self.close_pool(from).await;
        self.remove_file(from).await?;
        self.mark_moving(from, false).await?;
        Ok(moved)
    }
}

/// A connection to a container's file: from its pool, or one of its own (closed after).
enum Held {
    Pooled(sqlx::pool::PoolConnection<Sqlite>),
    Own(SqliteConnection),
}

impl std::ops::Deref for Held {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            Held::Pooled(conn) => conn,
            Held::Own(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Held::Pooled(conn) => conn,
            Held::Own(conn) => conn,
        }
    }
}

/// Moves each `AUTOINCREMENT` counter of the new file (`main`) past the one of the table of
/// the same name in the shared file ([`SOURCE`]), so the tenant's new rows take keys no row
/// there has, as PostgreSQL's sequences do. (A table without `AUTOINCREMENT` takes its
/// largest key plus one, its own.)
async fn continue_keys(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let counters: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT 1 FROM {SOURCE}.sqlite_schema WHERE name = 'sqlite_sequence'"
    )))
    .fetch_optional(&mut *conn)
    .await?;
    if counters.is_none() || !has_table(conn, "sqlite_sequence").await? {
        return Ok(());
    }
    conn.execute(AssertSqlSafe(format!(
        "UPDATE main.sqlite_sequence SET seq = s.seq FROM {SOURCE}.sqlite_sequence s \
         WHERE s.name = main.sqlite_sequence.name AND s.seq > main.sqlite_sequence.seq"
    )))
    .await?;
    conn.execute(AssertSqlSafe(format!(
        "INSERT INTO main.sqlite_sequence (name, seq) SELECT s.name, s.seq \
         FROM {SOURCE}.sqlite_sequence s \
         WHERE s.name IN (SELECT name FROM main.sqlite_schema WHERE type = 'table') \
           AND s.name NOT IN (SELECT name FROM main.sqlite_sequence)"
    )))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_by_the_moved_out_table_and_quotes_what_it_names() {
        let [insert, update] = guard_sql("we\"ird", "tenant_id");
        assert!(insert.contains("BEFORE INSERT ON \"we\"\"ird\""), "{insert}");
        assert!(update.contains("BEFORE UPDATE OF \"tenant_id\" ON"), "{update}");
        assert!(insert.contains(&format!("RAISE(ABORT, '{NOT_PLACED_MESSAGE}")));
        assert!(insert.contains("WHERE tenant = NEW.\"tenant_id\""));
        for column in ["tenant_id", "te\"n\"\"t", "a b"] {
            let [insert, update] = guard_sql("guards", column);
            assert_eq!(guarded_column(&insert).as_deref(), Some(column), "{insert}");
            assert_eq!(guarded_column(&update).as_deref(), Some(column), "{update}");
        }
        assert_eq!(guarded_column("CREATE TRIGGER x BEFORE INSERT ON t BEGIN SELECT 1; END"), None);
        let closing = closing_sql("guards");
        assert!(closing[2].contains("BEFORE DELETE ON \"guards\""), "{}", closing[2]);
    }
}
