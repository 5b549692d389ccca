//! Hand-written statement templates: `{table}`, `{}`, `{{` and `}}`.

use sqlx::Database;

use super::{Dialect, Sql, Statement, Value};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::Bind;

/// What is wrong with a raw statement's template ([`raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawTemplateError {
    /// `{name}` names no table the statement was given.
    UnknownTable(String),
    /// A `{` without its `}`, or a `}` that is neither `}}` nor closes a `{`.
    Unbalanced(usize),
    /// The template has this many `{}` placeholders, but another number of values was bound.
    Values {
        /// `{}` in the template.
        placeholders: usize,
        /// Values bound.
        bound: usize,
    },
}

impl std::fmt::Display for RawTemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawTemplateError::UnknownTable(name) => write!(
                f,
                "the statement names {{{name}}}, which is not a table it was given (add its model with `.table::<Model>()`)"
            ),
            RawTemplateError::Unbalanced(at) => write!(
                f,
                "unbalanced brace at byte {at} of the statement (write a literal brace as {{{{ or }}}})"
            ),
            RawTemplateError::Values {
                placeholders,
                bound,
            } => write!(
                f,
                "the statement has {placeholders} `{{}}` placeholder(s) but {bound} value(s) were bound"
            ),
        }
    }
}

/// Why a raw statement is refused to a row-level tenant.
const RAW_ROW_LEVEL: &str = "a raw statement cannot be kept to a row-level tenant's rows; use the model's query builder, or a tenant with its own container";

/// A raw statement's template rendered for `tenant`: `{table}` (a table of `tables`, by name)
/// becomes the tenant's qualified table, `{}` the placeholder of the next of `values`, `{{` and
/// `}}` literal braces; everything else is copied. Refused unless there is exactly one `{}` per
/// value.
pub(crate) fn raw<'a, D: Dialect, B: Database>(
    template: &str,
    tenant: &Tenant,
    tables: &[&TableDef],
    values: &'a [Box<dyn Bind<B>>],
) -> Result<Statement<'a, B>, RawTemplateError> {
    let mut sql = Sql::<D, B>::new("");
    let mut placeholders = 0;
    let mut rest = template;
    let mut at = 0;
    while let Some(i) = rest.find(['{', '}']) {
        sql.push(&rest[..i]);
        let brace = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if after.as_bytes().first() == Some(&brace) {
            sql.push(if brace == b'{' { "{" } else { "}" });
            rest = &after[1..];
            at += i + 2;
            continue;
        }
        if brace == b'}' {
            return Err(RawTemplateError::Unbalanced(at + i));
        }
        let close = after
            .find('}')
            .ok_or(RawTemplateError::Unbalanced(at + i))?;
        let name = &after[..close];
        if name.is_empty() {
            // Counted on past the last value, to report how many there are.
            if let Some(value) = values.get(placeholders) {
                sql.bind(Value::Bound(&**value));
            }
            placeholders += 1;
        } else {
            let table = tables
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| RawTemplateError::UnknownTable(name.to_owned()))?;
            sql.table(tenant, table);
            // The text is the caller's: no filter can be added to it. A tenant in its own
            // container holds only its own rows; a row-level tenant's would be everyone's.
            if sql.take_scope().is_some() && tenant.is_row_level() {
                sql.refuse(table.name, RAW_ROW_LEVEL);
            }
        }
        rest = &after[close + 1..];
        at += i + close + 2;
    }
    sql.push(rest);
    if placeholders != values.len() {
        return Err(RawTemplateError::Values {
            placeholders,
            bound: values.len(),
        });
    }
    Ok(sql.finish())
}
