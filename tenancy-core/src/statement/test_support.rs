//! Fixtures for the tests of each backend's statements: tables, tenants, rows that only stand
//! in for their values, and predicates with as many values as their comparison takes.

use sqlx::error::BoxDynError;
use sqlx::Database;

use super::{Op, OrderTerm, Predicate, Statement, Window};
use crate::table::{ColumnDef, TableDef};
use crate::tenant::Tenant;
use crate::value::{Bind, BindColumn, SqlValue};

pub(crate) const GUARDS: TableDef = TableDef {
    name: "guards",
    columns: &[
        ColumnDef::new("id").primary_key().generated(),
        ColumnDef::new("name"),
        ColumnDef::new("position"),
        ColumnDef::new("inserted_at").generated(),
    ],
    schema: None,
    tenant_column: None,
};

pub(crate) const ONLY_ID: TableDef = TableDef {
    name: "counters",
    columns: &[ColumnDef::new("id").primary_key().generated()],
    schema: None,
    tenant_column: None,
};

pub(crate) const SITES: TableDef = TableDef {
    name: "sites",
    columns: &[ColumnDef::new("id").primary_key(), ColumnDef::new("city")],
    schema: None,
    tenant_column: None,
};

/// Every column of [`GUARDS`], quoted as PostgreSQL and SQLite do.
pub(crate) const ALL: &str = r#""id", "name", "position", "inserted_at""#;

pub(crate) fn t1() -> Tenant {
    Tenant::new("tenant_1").unwrap()
}

pub(crate) fn t2() -> Tenant {
    Tenant::new("tenant_2").unwrap()
}

/// A row whose values are never encoded: the tests read the text.
pub(crate) struct Row;

impl<B: Database> BindColumn<B> for Row {
    fn bind_column(&self, _: usize, _: &mut B::Arguments) -> Result<(), BoxDynError> {
        Ok(())
    }
}

/// `n` rows.
pub(crate) fn rows<B: Database>(n: usize) -> Vec<&'static dyn BindColumn<B>> {
    (0..n).map(|_| &Row as &dyn BindColumn<B>).collect()
}

/// `column <op>` with the values its comparison takes (`In`: three).
pub(crate) fn cmp<B: Database>(column: &'static str, op: Op) -> Predicate<B>
where
    i64: SqlValue<B>,
{
    let n = match op {
        Op::IsNull | Op::IsNotNull => 0,
        Op::In => 3,
        _ => 1,
    };
    let values = (0..n)
        .map(|i| Box::new(i as i64) as Box<dyn Bind<B>>)
        .collect();
    Predicate::compare(column, op, values)
}

/// `"name" = ?`, `"id" IN (?, ?, ?)`, `"position" IS NULL`, `"position" LIKE ?`, `"id" >= ?`.
pub(crate) fn conds<B: Database>() -> Vec<Predicate<B>>
where
    i64: SqlValue<B>,
{
    vec![
        cmp("name", Op::Eq),
        cmp("id", Op::In),
        cmp("position", Op::IsNull),
        cmp("position", Op::Like),
        cmp("id", Op::Ge),
    ]
}

/// `ORDER BY` terms.
pub(crate) const BY_NAME_THEN_ID_DESC: &[OrderTerm] = &[
    OrderTerm {
        column: "name",
        descending: false,
    },
    OrderTerm {
        column: "id",
        descending: true,
    },
];

pub(crate) const BY_ID: &[OrderTerm] = &[OrderTerm {
    column: "id",
    descending: false,
}];

pub(crate) const BY_NAME_DESC: &[OrderTerm] = &[OrderTerm {
    column: "name",
    descending: true,
}];

/// A window of `order`, with a limit and an offset if asked.
pub(crate) fn window(order: &'static [OrderTerm], limit: bool, offset: bool) -> Window<'static> {
    Window {
        order,
        limit: limit.then_some(10),
        offset: offset.then_some(20),
    }
}

/// The text of a statement, with the check that it binds `values` values.
pub(crate) fn text<B: crate::value::Scalars>(statement: Statement<'_, B>, values: usize) -> String {
    assert_eq!(
        statement.len(),
        values,
        "values recorded for {:?}",
        statement.sql()
    );
    statement.into_sql()
}

/// Checks that [`statement::containers_with_table`](super::containers_with_table) in dialect
/// `D` is `expected` for two tenants and a table (three values bound), or none.
pub(crate) fn asks_which_containers<D: super::Dialect, B: crate::value::Scalars>(
    expected: Option<&str>,
) {
    let statement = super::containers_with_table::<D, B>(&[t1(), t1()], "guards");
    assert_eq!(statement.map(|s| text(s, 3)).as_deref(), expected);
}
