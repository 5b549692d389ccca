//! The statement as a value: SQL text and its arguments built in one walk.
//!
//! Every generated statement is made by a [`Sql`] builder whose [`bind`](Sql::bind) writes a
//! placeholder and records the value it stands for in the same call (as sqlx's
//! `QueryBuilder::push_bind` and diesel's `AstPass::push_bind_param` do), so the order of the
//! arguments cannot drift from the order of the placeholders. The result, a [`Statement`],
//! holds the text and references to its values; [`Statement::arguments`] encodes them, as
//! often as the statement is sent (a retry binds again).
//!
//! Every table is named as `<container>.<table>` with each part quoted by the backend's
//! [`Dialect`]; values never enter the text. What differs between backends (quoting,
//! placeholders, `RETURNING` or not, paging) is the dialect's, which each backend's folder
//! implements.

mod build;
mod predicate;
mod raw;
mod sql;
#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use build::*;
pub(crate) use predicate::{Exists, Op, OrderTerm, Predicate, Window};
pub(crate) use raw::raw;
#[cfg(test)]
pub(crate) use raw::RawTemplateError;
pub use sql::{Dialect, Statement};
pub(crate) use sql::{Refusal, RowsOf, Shape, Sql, Value, NO_TENANT_COLUMN};
