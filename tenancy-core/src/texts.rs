//! The text of generated statements (re-exported as `internals` with the feature of that name):
//! this workspace's tests and benchmarks send the same SQL by hand to compare against.

use sqlx::error::BoxDynError;
use sqlx::Database;

use crate::backend::Backend;
use crate::model::{DialectOf, Model};
use crate::statement::{self, OnConflictAction, Value};
use crate::tenant::Tenant;
use crate::value::BindColumn;

/// A row that only stands in for its values: the text of a statement is all that is taken.
struct TextOnly;

impl<B: Database> BindColumn<B> for TextOnly {
    fn bind_column(&self, _: usize, _: &mut B::Arguments) -> Result<(), BoxDynError> {
        Err("text only".into())
    }
}

fn rows<B: Database>(n: usize) -> Vec<&'static dyn BindColumn<B>> {
    (0..n).map(|_| &TextOnly as &dyn BindColumn<B>).collect()
}

/// `INSERT INTO <tenant>.<table> (…) VALUES (…) × rows [RETURNING …]` of model `M`.
pub fn insert<M: Model>(tenant: &Tenant, rows_: usize) -> String {
    statement::insert::<DialectOf<M>, M::Backend>(tenant, &M::TABLE, &rows(rows_)).into_sql()
}

/// `SELECT <all columns> … WHERE <key> = <placeholder>` of model `M`.
pub fn select_by_pk<M: Model>(tenant: &Tenant) -> String {
    let key = Value::Column(&TextOnly, M::TABLE.primary_key_index());
    statement::select_by_pk::<DialectOf<M>, M::Backend>(tenant, &M::TABLE, key).into_sql()
}

/// `UPDATE … SET <columns> … WHERE <key> = … [RETURNING …]` of model `M`.
pub fn update<M: Model>(tenant: &Tenant, columns: &[usize]) -> String {
    statement::update::<DialectOf<M>, M::Backend>(tenant, &M::TABLE, &TextOnly, columns).into_sql()
}

/// `DELETE FROM … WHERE <key> = …` of model `M`.
pub fn delete_by_pk<M: Model>(tenant: &Tenant) -> String {
    let key = Value::Column(&TextOnly, M::TABLE.primary_key_index());
    statement::delete_by_pk::<DialectOf<M>, M::Backend>(tenant, &M::TABLE, key).into_sql()
}

/// The upsert of `rows` rows of model `M` on conflict with `target`: `update` names the columns
/// set on a conflict (`None`: do nothing).
pub fn upsert<M: Model>(
    tenant: &Tenant,
    rows_: usize,
    target: &[&str],
    update: Option<&[&'static str]>,
) -> String {
    let action = match update {
        Some(columns) => OnConflictAction::Update(columns),
        None => OnConflictAction::Nothing,
    };
    statement::upsert::<DialectOf<M>, M::Backend>(tenant, &M::TABLE, &rows(rows_), target, action)
        .into_sql()
}

/// `ident` as backend `B`'s statements quote it.
pub fn quote_ident<B: Backend>(ident: &str) -> String {
    let mut out = String::new();
    <B::Dialect as statement::Dialect>::quote_ident(&mut out, ident);
    out
}
