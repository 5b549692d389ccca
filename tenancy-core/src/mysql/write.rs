//! How MySQL returns the rows it writes: it has no `RETURNING` (MariaDB has it for `INSERT`
//! only, used where the session's mode says the server is MariaDB 10.5+), so each write is
//! followed by a read of the row on the same connection — by
//! `LAST_INSERT_ID()` after an insert that generated the key, else by the key or the conflict
//! target the row holds. Several rows are written inside one transaction (a savepoint in the
//! caller's), so all or none are stored.

use std::borrow::Cow;

use sqlx::mysql::MySqlRow;
use sqlx::{Connection, MySql};

use super::{MariaDbInsert, MySqlDialect};
use crate::backend::{About, Conflict, Session};
use crate::error::Error;
use crate::statement::{self, OnConflictAction, Shape, Sql, Statement, Value};
use crate::table::TableDef;
use crate::value::BindColumn;

type Row<'a> = &'a dyn BindColumn<MySql>;

/// `SELECT <all columns> FROM "t"."table" WHERE "pk" = LAST_INSERT_ID()`: the row a
/// generated-key insert just stored on this connection. Its text written once per thread, table
/// and tenant ([`Sql::reusing`]).
pub(super) fn select_last_insert<'a>(about: About<'_>, table: &TableDef) -> Statement<'a, MySql> {
    let shape = Shape::Own("select_last_insert");
    let mut sql = Sql::<MySqlDialect, MySql>::reusing("SELECT ", shape, about.tenant, table);
    sql.all_columns(table)
        .push(" FROM ")
        .table(about.tenant, table)
        .and_where(true)
        .ident(table.primary_key().name)
        .push(" = LAST_INSERT_ID()");
    sql.finish()
}

/// Reads `row` back by the key it holds (or, if the table generates its key, by
/// `LAST_INSERT_ID()` right after the insert).
async fn read_back(
    session: &mut Session<'_, MySql>,
    about: About<'_>,
    table: &TableDef,
    row: Row<'_>,
    just_inserted: bool,
) -> Result<Option<MySqlRow>, Error> {
    let statement = if just_inserted && table.primary_key().generated {
        select_last_insert(about, table)
    } else {
        let key = Value::Column(row, table.primary_key_index());
        statement::select_by_pk::<MySqlDialect, MySql>(about.tenant, table, key)
    };
    session
        .fetch_optional(about.as_operation("select"), &statement)
        .await
}

/// Inserts one row and reads it back (MariaDB, in a session whose mode says so: the insert
/// returns it, `INSERT … RETURNING`).
async fn insert_one(
    session: &mut Session<'_, MySql>,
    about: About<'_>,
    table: &TableDef,
    row: Row<'_>,
) -> Result<MySqlRow, Error> {
    if session.mode.returning {
        let statement = statement::insert::<MariaDbInsert, MySql>(about.tenant, table, &[row]);
        let stored = session.fetch_optional(about, &statement).await?;
        return Ok(stored.ok_or(sqlx::Error::RowNotFound)?);
    }
    let statement = statement::insert::<MySqlDialect, MySql>(about.tenant, table, &[row]);
    session.execute(about, &statement).await?;
    Ok(read_back(session, about, table, row, true)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?)
}

/// Runs `write` on a transaction of `session`'s connection (a savepoint if it is in one),
/// bound to the same tenant: committed if it succeeds, rolled back if it fails or is dropped.
async fn in_transaction<T>(
    session: &mut Session<'_, MySql>,
    write: impl AsyncFnOnce(&mut Session<'_, MySql>) -> Result<T, Error>,
) -> Result<T, Error> {
    let (conn, bound, mode) = session.parts();
    let mut tx = conn.begin().await?;
    let mut inner = Session::borrowing(&mut *tx, bound.map(Cow::Owned));
    inner.mode = mode;
    let written = write(&mut inner).await?;
    drop(inner);
    tx.commit().await?;
    Ok(written)
}

/// [`Backend::insert_rows`](crate::backend::Backend::insert_rows): one row inserted and read
/// back; several (or a row-level tenant's one), each so, inside one transaction.
pub(super) async fn insert_rows(
    session: &mut Session<'_, MySql>,
    about: About<'_>,
    table: &TableDef,
    rows: &[Row<'_>],
) -> Result<Vec<MySqlRow>, Error> {
    // A row-level tenant's row is read back in the insert's transaction: between two
    // transactions a promote could move it, and a write that happened would read as failed.
    // (An insert that returns its row is one statement.)
    let alone = session.mode.returning || !about.tenant.is_row_level();
    if let ([row], true) = (rows, alone) {
        return Ok(vec![insert_one(session, about, table, *row).await?]);
    }
    in_transaction(session, async |session| {
        let mut stored = Vec::with_capacity(rows.len());
        for row in rows {
            stored.push(insert_one(session, about, table, *row).await?);
        }
        Ok(stored)
    })
    .await
}

/// [`Backend::update_row`](crate::backend::Backend::update_row): the update, then the row read
/// back by its key (`None` if it is gone).
pub(super) async fn update_row(
    session: &mut Session<'_, MySql>,
    about: About<'_>,
    table: &TableDef,
    row: Row<'_>,
    columns: &[usize],
) -> Result<Option<MySqlRow>, Error> {
    let write = async |session: &mut Session<'_, MySql>| {
        let statement = statement::update::<MySqlDialect, MySql>(about.tenant, table, row, columns);
        session.execute(about, &statement).await?;
        read_back(session, about, table, row, false).await
    };
    // A row-level tenant's row is read back in the update's transaction (see `insert_rows`).
    match about.tenant.is_row_level() {
        true => in_transaction(session, write).await,
        false => write(session).await,
    }
}

/// [`Backend::upsert_rows`](crate::backend::Backend::upsert_rows): each row written, then read
/// back by its conflict target, all inside one transaction. `ON DUPLICATE KEY UPDATE` cannot
/// tell a kept row from an inserted one (sqlx counts found rows), so `do_nothing` reads the
/// target first with `FOR UPDATE` (which also locks the key's gap against a concurrent insert)
/// and inserts only if absent.
pub(super) async fn upsert_rows(
    session: &mut Session<'_, MySql>,
    about: About<'_>,
    table: &TableDef,
    rows: &[Row<'_>],
    conflict: Conflict<'_>,
) -> Result<Vec<MySqlRow>, Error> {
    let select = about.as_operation("select");
    in_transaction(session, async |session| {
        let mut stored = Vec::with_capacity(rows.len());
        for &row in rows {
            let by_target = |lock| {
                statement::select_by::<MySqlDialect, MySql>(
                    about.tenant,
                    table,
                    row,
                    conflict.target,
                    lock,
                )
            };
            let write = match conflict.action {
                OnConflictAction::Nothing => {
                    if session
                        .fetch_optional(select, &by_target(true))
                        .await?
                        .is_some()
                    {
                        continue;
                    }
                    statement::insert::<MySqlDialect, MySql>(about.tenant, table, &[row])
                }
                OnConflictAction::Update(_) => statement::upsert::<MySqlDialect, MySql>(
                    about.tenant,
                    table,
                    &[row],
                    conflict.target_names,
                    conflict.action,
                ),
            };
            match session.execute(about, &write).await {
                // Another tenant's row holds the key in a table with a tenant column: kept, as
                // `ON CONFLICT DO NOTHING` keeps it elsewhere (InnoDB undoes the one statement).
                Err(Error::Database { source, .. })
                    if table.tenant_column.is_some()
                        && conflict.action == OnConflictAction::Nothing
                        && super::is_duplicate_entry(source.as_sqlx()) =>
                {
                    continue
                }
                written => written?,
            };
            match session.fetch_optional(select, &by_target(false)).await? {
                Some(row) => stored.push(row),
                // The key is another tenant's row of a table with a tenant column: the update
                // left it as it is (as `ON CONFLICT … DO UPDATE … WHERE` does elsewhere).
                None if table.tenant_column.is_some() => {}
                None => return Err(sqlx::Error::RowNotFound.into()),
            }
        }
        Ok(stored)
    })
    .await
}
