//! The statements the crate generates, each built in one walk by a [`Sql`] builder.

use std::fmt::Write as _;

use sqlx::Database;

use super::predicate::{query_shape, QueryKind};
use super::{Dialect, Predicate, Shape, Sql, Statement, Value, Window};
use crate::table::{ColumnDef, TableDef};
use crate::tenant::Tenant;
use crate::value::{Bind, BindColumn};

/// `INSERT INTO "t"."table" (<insertable>) VALUES (…), … RETURNING <all columns>` of `rows`.
/// Generated columns are left to their database default. A table whose every column is
/// generated gets `VALUES (DEFAULT)` per row on its primary key.
pub(crate) fn insert<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    rows: &[&'a dyn BindColumn<B>],
) -> Statement<'a, B> {
    let mut sql = match rows {
        [_] => Sql::<D, B>::reusing("INSERT INTO ", Shape::InsertOne, tenant, table),
        _ => Sql::<D, B>::new("INSERT INTO "),
    };
    sql.insert_values(tenant, table, rows).returning(table);
    sql.finish()
}

/// What an upsert does with a row whose key is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflictAction<'c> {
    /// Keeps the stored row (and returns nothing for it).
    Nothing,
    /// Sets these columns to the values the insert proposed.
    Update(&'c [&'static str]),
}

/// [`insert`] of `rows` that, where a row conflicts on the unique columns `target`, does
/// `action` instead: `… ON CONFLICT ("k") DO UPDATE SET "c" = EXCLUDED."c" RETURNING …` or
/// `DO NOTHING`. MySQL (no target: any unique key conflicts, no `RETURNING`): `… ON DUPLICATE
/// KEY UPDATE "c" = VALUES("c")`, and for nothing, the primary key set to itself.
pub(crate) fn upsert<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    rows: &[&'a dyn BindColumn<B>],
    target: &[&str],
    action: OnConflictAction<'_>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("INSERT INTO ");
    sql.insert_values(tenant, table, rows);
    let pairs = |sql: &mut Sql<'a, D, B>, columns: &[&str], value: (&str, &str)| {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.ident(column)
                .push(" = ")
                .push(value.0)
                .ident(column)
                .push(value.1);
        }
    };
    // A row of the same key in another tenant of the table (rows of several tenants share a
    // table with a tenant column) is left as it is.
    let guard = table.tenant_column.filter(|_| table.schema.is_none());
    if D::ON_DUPLICATE_KEY {
        sql.push(" ON DUPLICATE KEY UPDATE ");
        match (action, guard) {
            (OnConflictAction::Nothing, _) => {
                let pk = table.primary_key().name;
                sql.ident(pk).push(" = ").ident(pk);
            }
            (OnConflictAction::Update(columns), None) => pairs(&mut sql, columns, ("VALUES(", ")")),
            (OnConflictAction::Update(columns), Some(key)) => {
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.ident(column)
                        .push(" = IF(")
                        .ident(key)
                        .push(" = VALUES(")
                        .ident(key)
                        .push("), VALUES(")
                        .ident(column)
                        .push("), ")
                        .ident(column)
                        .push(")");
                }
            }
        }
    } else {
        sql.push(" ON CONFLICT (")
            .idents(target.iter().copied())
            .push(")");
        match action {
            OnConflictAction::Nothing => {
                sql.push(" DO NOTHING");
            }
            OnConflictAction::Update(columns) => {
                sql.push(" DO UPDATE SET ");
                pairs(&mut sql, columns, ("EXCLUDED.", ""));
                if let Some(key) = guard {
                    sql.push(" WHERE ")
                        .ident(table.name)
                        .push(".")
                        .ident(key)
                        .push(" = EXCLUDED.")
                        .ident(key);
                }
            }
        }
    }
    sql.returning(table);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" WHERE "k1" = $1 AND … [FOR UPDATE]`: the row whose
/// columns `columns` (indexes) hold `row`'s values (an upserted row read back where there is
/// no `RETURNING`; with `lock`, also locking the key's gap so no other transaction inserts it
/// meanwhile).
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) fn select_by<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    row: &'a dyn BindColumn<B>,
    columns: &[usize],
    lock: bool,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("SELECT ");
    sql.all_columns(table).push(" FROM ").table(tenant, table);
    for (i, &column) in columns.iter().enumerate() {
        sql.and_where(i == 0)
            .ident(table.columns[column].name)
            .push(" = ")
            .bind(Value::Column(row, column));
    }
    sql.close_scope();
    if lock {
        sql.push(" FOR UPDATE");
    }
    sql.finish()
}

/// `UPDATE "t"."table" SET "c" = $1, … WHERE "pk" = $n RETURNING <all columns>`: `row`'s
/// values of the given columns (none of them the primary key or generated; the caller checks),
/// on the row with its key.
pub(crate) fn update<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    row: &'a dyn BindColumn<B>,
    columns: &[usize],
) -> Statement<'a, B> {
    // The columns as a set of at most 64, in ascending order: then the set says the text.
    let ascending = columns.windows(2).all(|pair| pair[0] < pair[1]);
    let set = columns
        .iter()
        .try_fold(0u64, |set, &c| {
            Some(set | 1u64.checked_shl(u32::try_from(c).ok()?)?)
        })
        .filter(|_| ascending);
    let mut sql = match set {
        Some(set) => Sql::<D, B>::reusing("UPDATE ", Shape::Update(set), tenant, table),
        None => Sql::<D, B>::new("UPDATE "),
    };
    sql.table(tenant, table).push(" SET ");
    for (i, &c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(table.columns[c].name)
            .push(" = ")
            .bind(Value::Column(row, c));
    }
    sql.where_pk(table, Value::Column(row, table.primary_key_index()))
        .returning(table);
    sql.finish()
}

/// `DELETE FROM "t"."table" WHERE "pk" = $1`.
pub(crate) fn delete_by_pk<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    id: Value<'a, B>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::reusing("DELETE FROM ", Shape::DeleteByPk, tenant, table);
    sql.table(tenant, table).where_pk(table, id);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" WHERE "pk" = $1`.
pub(crate) fn select_by_pk<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    id: Value<'a, B>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::reusing("SELECT ", Shape::SelectByPk, tenant, table);
    sql.all_columns(table)
        .push(" FROM ")
        .table(tenant, table)
        .where_pk(table, id);
    sql.finish()
}

/// A builder for a statement over a query's `conditions` and `window` ([`Shape::Query`]), its
/// text reused where this thread wrote it before; written afresh where the shape does not say
/// the text (a semi-join).
fn for_query<'a, D: Dialect, B: Database>(
    start: &str,
    kind: QueryKind,
    tenant: &Tenant,
    table: &TableDef,
    conditions: &[Predicate<B>],
    window: &Window<'_>,
) -> Sql<'a, D, B> {
    match query_shape(kind, conditions, window) {
        Some(shape) => Sql::reusing(start, shape, tenant, table),
        None => Sql::new(start),
    }
}

/// `SELECT <all columns> FROM "t"."table" [WHERE …] [ORDER BY …] [LIMIT $n] [OFFSET $m]`.
pub(crate) fn select<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = for_query::<D, B>(
        "SELECT ",
        QueryKind::Select,
        tenant,
        table,
        conditions,
        window,
    );
    sql.all_columns(table)
        .push(" FROM ")
        .table(tenant, table)
        .conditions(conditions)
        .window(window);
    sql.finish()
}

/// `SELECT COUNT(*) FROM "t"."table" [WHERE …]`; with a limit or offset the count is taken over
/// the selected window, so it agrees with what a fetch of the same query returns.
pub(crate) fn count<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = for_query::<D, B>(
        "SELECT ",
        QueryKind::Count,
        tenant,
        table,
        conditions,
        window,
    );
    sql.count_from(tenant, table, conditions, window);
    sql.finish()
}

/// `DELETE FROM "t"."table" [WHERE …]`; with an order, limit or offset, the rows deleted are
/// those the same `SELECT` would return, chosen by primary key.
pub(crate) fn delete_where<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = for_query::<D, B>(
        "DELETE FROM ",
        QueryKind::Delete,
        tenant,
        table,
        conditions,
        window,
    );
    sql.table(tenant, table)
        .selected(tenant, table, conditions, window);
    sql.finish()
}

/// One `SET "column" = <value>` of an update.
pub(crate) type Assignment<B> = (&'static str, Box<dyn Bind<B>>);

/// `UPDATE "t"."table" SET "a" = $1, … [WHERE …]` setting each column of `sets` to its value;
/// with an order, limit or offset, the rows updated are those the same `SELECT` would return,
/// chosen by primary key.
pub(crate) fn update_where<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    sets: &'a [Assignment<B>],
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("UPDATE ");
    sql.table(tenant, table).push(" SET ");
    for (i, (column, value)) in sets.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(column).push(" = ").bind(Value::Bound(&**value));
    }
    sql.selected(tenant, table, conditions, window);
    sql.finish()
}

/// An aggregate function of [`aggregate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    /// `COUNT(*)`: the rows (of each group).
    Count,
    /// `CAST(SUM("c") AS <64-bit integer>)`: the sum of an integer column.
    SumInteger,
    /// `CAST(SUM("c") AS <double>)`: the sum of a floating-point column.
    SumFloat,
    /// `CAST(AVG("c") AS <double>)`.
    Avg,
    /// `MIN("c")`.
    Min,
    /// `MAX("c")`.
    Max,
}

/// `SELECT [<key>,] <aggregate> FROM "t"."table" [WHERE …] [GROUP BY <key> ORDER BY <key>]`:
/// one value, or one row per value of `group_by`, in the key's order. With a limit or offset
/// the rows aggregated are those the same `SELECT` would return (as [`count`]). `column` is
/// ignored for [`Aggregate::Count`]. The result is cast to one type on every backend, so a sum
/// decodes as `i64` or `f64` whatever the server's own result type.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aggregate<'a, D: Dialect, B: Database>(
    tenant: &Tenant,
    table: &TableDef,
    function: Aggregate,
    column: &str,
    group_by: Option<&str>,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("SELECT ");
    if let Some(key) = group_by {
        sql.ident(key).push(", ");
    }
    let cast = match function {
        Aggregate::Count => {
            sql.push("COUNT(*)");
            None
        }
        Aggregate::SumInteger => Some(("SUM(", D::INTEGER_TYPE)),
        Aggregate::SumFloat => Some(("SUM(", D::FLOAT_TYPE)),
        Aggregate::Avg => Some(("AVG(", D::FLOAT_TYPE)),
        Aggregate::Min => {
            sql.push("MIN(").ident(column).push(")");
            None
        }
        Aggregate::Max => {
            sql.push("MAX(").ident(column).push(")");
            None
        }
    };
    if let Some((function, ty)) = cast {
        sql.push("CAST(")
            .push(function)
            .ident(column)
            .push(") AS ")
            .push(ty)
            .push(")");
    }
    sql.push(" FROM ");
    if window.chooses() {
        sql.push("(SELECT * FROM ")
            .table(tenant, table)
            .conditions(conditions)
            .window(window)
            .push(") AS chosen");
    } else {
        sql.table(tenant, table).conditions(conditions);
    }
    if let Some(key) = group_by {
        sql.push(" GROUP BY ")
            .ident(key)
            .push(" ORDER BY ")
            .ident(key);
    }
    sql.finish()
}

/// The column a statement across tenants adds to every row: the position, in the statement's
/// list of tenants, of the tenant the row is from. An integer the library writes, so no tenant
/// name is rendered as a value.
pub(crate) const ACROSS_TENANT_COLUMN: &str = "__tenant";

/// One `SELECT` over the same table in several tenants:
/// `(SELECT <all columns>, 0 AS "__tenant" FROM "t1"."table" [WHERE …] [ORDER BY …] [LIMIT $n]
/// [OFFSET $m]) UNION ALL (… 1 AS "__tenant" FROM "t2"."table" …) … ORDER BY "__tenant"[, …]`.
///
/// Conditions, order, limit and offset apply within each tenant; rows come grouped by tenant,
/// in the order of `tenants`. Where placeholders name their values (`$1`), every branch uses
/// the same ones, so the statement binds as many values as a query on one tenant, however many
/// tenants it covers; with `?`, each branch binds its own. Empty `tenants` gives an empty text.
pub(crate) fn select_across<'a, D: Dialect, B: Database>(
    tenants: &[Tenant],
    table: &TableDef,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("");
    if tenants.is_empty() {
        return sql.finish();
    }
    for (index, tenant) in tenants.iter().enumerate() {
        sql.push(if index == 0 {
            "(SELECT "
        } else {
            " UNION ALL (SELECT "
        })
        .branch(index, table)
        .all_columns(table)
        .push(", ")
        .branch_index(index)
        .push(" FROM ")
        .table(tenant, table)
        .conditions(conditions)
        .window(window)
        .push(")");
    }
    sql.push(" ORDER BY ").ident(ACROSS_TENANT_COLUMN);
    for term in window.order {
        sql.push(", ").order_term(term);
    }
    sql.finish()
}

/// Per-tenant counts over the same table in several tenants, one row per tenant:
/// `SELECT 0 AS "__tenant", COUNT(*) FROM "t1"."table" [WHERE …] UNION ALL SELECT 1 AS
/// "__tenant", COUNT(*) FROM "t2"."table" …`, each branch as [`count`], binding as
/// [`select_across`] does. Empty `tenants` gives an empty text.
pub(crate) fn count_across<'a, D: Dialect, B: Database>(
    tenants: &[Tenant],
    table: &TableDef,
    conditions: &'a [Predicate<B>],
    window: &Window<'_>,
) -> Statement<'a, B> {
    let mut sql = Sql::<D, B>::new("");
    for (index, tenant) in tenants.iter().enumerate() {
        sql.push(if index == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        })
        .branch(index, table)
        .branch_index(index)
        .push(", ")
        .count_from(tenant, table, conditions, window);
    }
    sql.finish()
}

impl<'a, D: Dialect, B: Database> Sql<'a, D, B> {
    /// Every column of `table`, in order.
    pub(crate) fn all_columns(&mut self, table: &TableDef) -> &mut Self {
        self.idents(table.columns.iter().map(|c| c.name))
    }

    /// `RETURNING <all columns>` where the dialect has it.
    pub(crate) fn returning(&mut self, table: &TableDef) -> &mut Self {
        if !D::RETURNING {
            return self;
        }
        self.push(" RETURNING ").all_columns(table)
    }

    /// ` WHERE "pk" = <key>`.
    pub(crate) fn where_pk(&mut self, table: &TableDef, key: Value<'a, B>) -> &mut Self {
        self.and_where(true)
            .ident(table.primary_key().name)
            .push(" = ")
            .bind(key)
    }

    /// `"t"."table" (<insertable>) VALUES (…), …` of an insert of `rows`.
    fn insert_values(
        &mut self,
        tenant: &Tenant,
        table: &TableDef,
        rows: &[&'a dyn BindColumn<B>],
    ) -> &mut Self {
        let insertable: Vec<(usize, &ColumnDef)> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_insertable())
            .collect();
        self.table(tenant, table).push(" (");
        // The tenant column, set to the tenant's name on every row.
        let scope = self.take_scope();
        if insertable.is_empty() && scope.is_none() {
            self.ident(table.primary_key().name);
        } else {
            self.idents(insertable.iter().map(|(_, c)| c.name));
        }
        if let Some((column, _)) = &scope {
            if !insertable.is_empty() {
                self.push(", ");
            }
            self.ident(column);
        }
        self.push(") VALUES ");
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                self.push(", ");
            }
            self.push("(");
            if insertable.is_empty() && scope.is_none() {
                self.push("DEFAULT");
            }
            for (i, (index, _)) in insertable.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.bind(Value::Column(*row, *index));
            }
            if let Some((_, key)) = &scope {
                if !insertable.is_empty() {
                    self.push(", ");
                }
                self.bind(Value::Key(std::sync::Arc::clone(key)));
            }
            self.push(")");
        }
        self
    }

    /// `COUNT(*) FROM …` of [`count`].
    fn count_from(
        &mut self,
        tenant: &Tenant,
        table: &TableDef,
        conditions: &'a [Predicate<B>],
        window: &Window<'_>,
    ) -> &mut Self {
        self.push("COUNT(*) FROM ");
        if window.chooses() {
            self.push("(SELECT 1 FROM ")
                .table(tenant, table)
                .conditions(conditions)
                .window(window)
                .push(") AS counted")
        } else {
            self.table(tenant, table).conditions(conditions)
        }
    }

    /// `<i> AS "__tenant"`: which tenant of the statement a row is from.
    fn branch_index(&mut self, index: usize) -> &mut Self {
        let _ = write!(self.text, "{index} AS ");
        self.ident(ACROSS_TENANT_COLUMN)
    }

    /// ` [WHERE …]` choosing the rows a `SELECT` with these conditions and window returns: the
    /// conditions themselves, or with a window, the primary keys the window selects.
    fn selected(
        &mut self,
        tenant: &Tenant,
        table: &TableDef,
        conditions: &'a [Predicate<B>],
        window: &Window<'_>,
    ) -> &mut Self {
        if window.is_empty() {
            return self.conditions(conditions);
        }
        let pk = table.primary_key().name;
        self.and_where(true)
            .ident(pk)
            .push(" IN (SELECT ")
            .ident(pk);
        if D::DELETE_THROUGH_DERIVED_TABLE {
            self.push(" FROM (SELECT ").ident(pk);
        }
        self.push(" FROM ")
            .table(tenant, table)
            .conditions(conditions)
            .window(window);
        if D::DELETE_THROUGH_DERIVED_TABLE {
            self.push(") AS chosen");
        }
        self.push(")")
    }
}

/// Which of the containers of `batch` have a table named `table` (one text column, each such
/// container's name; [`Dialect::CONTAINERS_WITH_TABLE`]), or `None` in a dialect that does not
/// name tables with their container.
pub(crate) fn containers_with_table<'a, D: Dialect, B: Database>(
    batch: &[Tenant],
    table: &str,
) -> Option<Statement<'a, B>> {
    let [select, among] = D::CONTAINERS_WITH_TABLE?;
    let mut sql = Sql::<D, B>::new(select);
    sql.bind(Value::Key(table.into())).push(among);
    for (i, tenant) in batch.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(Value::Key(std::sync::Arc::clone(tenant.container_arc())));
    }
    sql.push(")");
    Some(sql.finish())
}
