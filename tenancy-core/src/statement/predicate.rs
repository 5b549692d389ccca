//! `WHERE` predicates, `ORDER BY`, `LIMIT` and `OFFSET`, and how a [`Sql`] builder writes them.
//! A predicate holds its own values, so writing it binds them in the order they appear.

use sqlx::Database;

use super::sql::QueryWords;
use super::{Dialect, Shape, Sql, Value, NO_TENANT_COLUMN};
use crate::table::TableDef;
use crate::value::Bind;

/// A comparison in a `WHERE` clause, rendered as `"column" <op> <placeholders>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `= $n`
    Eq,
    /// `<> $n`
    Ne,
    /// `< $n`
    Lt,
    /// `<= $n`
    Le,
    /// `> $n`
    Gt,
    /// `>= $n`
    Ge,
    /// `LIKE $n`
    Like,
    /// `IN ($n, …)`, one placeholder per value; `IN` of nothing is rendered `FALSE`.
    In,
    /// `= ANY($n)`: one bound array of values (PostgreSQL).
    AnyOf,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

/// One comparison on a column, with its values (a leaf of a [`Predicate`]).
pub(crate) struct Comparison<B: Database> {
    /// The column's name (quoted when rendered).
    pub(crate) column: &'static str,
    /// The comparison.
    pub(crate) op: Op,
    /// Its values: none for `IS [NOT] NULL`, any number for `IN`, else one.
    pub(crate) values: Vec<Box<dyn Bind<B>>>,
}

/// A `WHERE` predicate: one comparison, or a group of predicates. A statement's top-level
/// predicates are joined with `AND`.
pub(crate) enum Predicate<B: Database> {
    /// One comparison on a column.
    Compare(Comparison<B>),
    /// Every predicate holds (`a AND b …`); none given is `TRUE`.
    All(Vec<Predicate<B>>),
    /// At least one predicate holds (`a OR b …`); none given is `FALSE`.
    Any(Vec<Predicate<B>>),
    /// The predicate does not hold (`NOT (…)`; as in SQL, a comparison with `NULL` is neither
    /// true nor false, so its negation does not match that row either).
    Not(Box<Predicate<B>>),
    /// A row of another table of the same tenant is related and matches (a semi-join).
    Exists(Box<Exists<B>>),
}

impl<B: Database> std::fmt::Debug for Predicate<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Predicate::Compare(c) => f
                .debug_struct("Compare")
                .field("column", &c.column)
                .field("op", &c.op)
                .field("values", &c.values.len())
                .finish(),
            Predicate::All(parts) => f.debug_tuple("All").field(parts).finish(),
            Predicate::Any(parts) => f.debug_tuple("Any").field(parts).finish(),
            Predicate::Not(inner) => f.debug_tuple("Not").field(inner).finish(),
            Predicate::Exists(e) => f
                .debug_struct("Exists")
                .field("table", &e.table.name)
                .field("column", &e.column)
                .field("outer_column", &e.outer_column)
                .field("predicate", &e.predicate)
                .finish(),
        }
    }
}

impl<B: Database> Predicate<B> {
    /// `column <op> values`.
    pub(crate) fn compare(column: &'static str, op: Op, values: Vec<Box<dyn Bind<B>>>) -> Self {
        Predicate::Compare(Comparison { column, op, values })
    }

    /// Whether this is the predicate that always holds (an empty `All`).
    pub(crate) fn is_true(&self) -> bool {
        matches!(self, Predicate::All(parts) if parts.is_empty())
    }
}

/// `EXISTS (SELECT 1 FROM "<same tenant>"."<table>" AS "__jN" WHERE "__jN"."<column>" =
/// <outer>."<outer_column>" AND <predicate>)`: the inner table is always named in the outer
/// statement's tenant.
pub(crate) struct Exists<B: Database> {
    /// The related table.
    pub(crate) table: &'static TableDef,
    /// Its column that must equal the outer row's `outer_column`.
    pub(crate) column: &'static str,
    /// The outer row's column.
    pub(crate) outer_column: &'static str,
    /// What the related row must also satisfy (its columns are the related table's).
    pub(crate) predicate: Predicate<B>,
}

/// One `ORDER BY` term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderTerm {
    /// The column's name (quoted when rendered).
    pub(crate) column: &'static str,
    /// Descending when true.
    pub(crate) descending: bool,
}

/// What a `SELECT` reads beyond its conditions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window<'w> {
    /// `ORDER BY` terms, in order.
    pub(crate) order: &'w [OrderTerm],
    /// `LIMIT`, bound after the conditions' values.
    pub(crate) limit: Option<i64>,
    /// `OFFSET`, bound after the limit.
    pub(crate) offset: Option<i64>,
}

impl Window<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty() && self.limit.is_none() && self.offset.is_none()
    }

    /// Whether it chooses rows (a limit or offset), not only orders them.
    pub(crate) fn chooses(&self) -> bool {
        self.limit.is_some() || self.offset.is_some()
    }
}

/// Which statement over a query's conditions and window a [`Shape::Query`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryKind {
    /// The `SELECT` of [`select`](super::select).
    Select = 1,
    /// The `COUNT(*)` of [`count`](super::count).
    Count,
    /// The `DELETE` of [`delete_where`](super::delete_where).
    Delete,
}

/// The first word of each predicate in a [`Shape::Query`] (each followed by a fixed number of
/// words, then its parts: no two shapes write the same words).
const COMPARE: usize = 1;
const ALL: usize = 2;
const ANY: usize = 3;
const NOT: usize = 4;

/// The shape of the statement `kind` over `conditions` and `window`: every part its text
/// depends on besides the dialect, table and tenant, and none of the values. A column is
/// named by the address and length of its `'static` name (the same words are the same name).
/// `None` for conditions with a semi-join, whose text repeats the outer table's as written.
pub(crate) fn query_shape<B: Database>(
    kind: QueryKind,
    conditions: &[Predicate<B>],
    window: &Window<'_>,
) -> Option<Shape> {
    let mut words = QueryWords::new();
    words.push(kind as usize);
    words.push(conditions.len());
    for predicate in conditions {
        predicate_words(predicate, &mut words)?;
    }
    words.push(window.order.len());
    for term in window.order {
        words.extend([
            term.column.as_ptr() as usize,
            term.column.len(),
            usize::from(term.descending),
        ]);
    }
    words.push(usize::from(window.limit.is_some()) | usize::from(window.offset.is_some()) << 1);
    Some(Shape::Query(words))
}

/// Appends `predicate`'s words to a query's shape; `None` at a semi-join.
fn predicate_words<B: Database>(predicate: &Predicate<B>, words: &mut QueryWords) -> Option<()> {
    match predicate {
        Predicate::Compare(cmp) => words.extend([
            COMPARE,
            cmp.op as usize,
            cmp.values.len(),
            cmp.column.as_ptr() as usize,
            cmp.column.len(),
        ]),
        Predicate::All(parts) | Predicate::Any(parts) => {
            let tag = if matches!(predicate, Predicate::All(_)) {
                ALL
            } else {
                ANY
            };
            words.extend([tag, parts.len()]);
            for part in parts {
                predicate_words(part, words)?;
            }
        }
        Predicate::Not(inner) => {
            words.push(NOT);
            predicate_words(inner, words)?;
        }
        Predicate::Exists(_) => return None,
    }
    Some(())
}

impl<'a, D: Dialect, B: Database> Sql<'a, D, B> {
    /// ` WHERE a AND b …` of the statement's top-level predicates (nothing if none).
    pub(crate) fn conditions(&mut self, predicates: &'a [Predicate<B>]) -> &mut Self {
        let several = predicates.len() > 1;
        for (i, predicate) in predicates.iter().enumerate() {
            self.and_where(i == 0);
            self.predicate(predicate, None, several, 1);
        }
        self.close_scope()
    }

    /// One predicate, its columns qualified with `alias` when given; `nested` when it is an
    /// operand of `AND`/`OR`/`NOT` (a group is then parenthesised); `depth` numbers the
    /// aliases of nested semi-joins.
    fn predicate(
        &mut self,
        predicate: &'a Predicate<B>,
        alias: Option<&str>,
        nested: bool,
        depth: usize,
    ) -> &mut Self {
        match predicate {
            Predicate::Exists(exists) => self.exists(exists, alias, depth),
            Predicate::Compare(cmp) => self.comparison(cmp, alias),
            Predicate::All(parts) | Predicate::Any(parts) => {
                let (joiner, empty) = match predicate {
                    Predicate::All(_) => (" AND ", "TRUE"),
                    _ => (" OR ", "FALSE"),
                };
                match parts.as_slice() {
                    [] => self.push(empty),
                    [only] => self.predicate(only, alias, nested, depth),
                    parts => {
                        if nested {
                            self.push("(");
                        }
                        for (i, part) in parts.iter().enumerate() {
                            if i > 0 {
                                self.push(joiner);
                            }
                            self.predicate(part, alias, true, depth);
                        }
                        if nested {
                            self.push(")");
                        }
                        self
                    }
                }
            }
            Predicate::Not(inner) => {
                self.push("NOT (");
                self.predicate(inner, alias, false, depth);
                self.push(")")
            }
        }
    }

    /// `EXISTS (…)` of a semi-join whose outer row is `outer` (an alias, or the last table
    /// named), at nesting `depth`; the inner table is in the last table's container (a tenant
    /// table in the same tenant), or its own schema if shared.
    fn exists(&mut self, exists: &'a Exists<B>, outer: Option<&str>, depth: usize) -> &mut Self {
        let (start, mid, end) = self.last_table;
        let container = self.text[start..mid].to_owned();
        let outer = match outer {
            Some(alias) => {
                let mut quoted = String::new();
                D::quote_ident(&mut quoted, alias);
                quoted
            }
            None => self.text[start..end].to_owned(),
        };
        let alias = format!("__j{depth}");
        self.push("EXISTS (SELECT 1 FROM ");
        match exists.table.schema {
            Some(schema) => self.ident(schema),
            None => self.push(&container),
        };
        self.push(".")
            .ident(exists.table.name)
            .push(" AS ")
            .ident(&alias)
            .push(" WHERE ")
            .column(Some(&alias), exists.column)
            .push(" = ")
            .push(&outer)
            .push(".")
            .ident(exists.outer_column);
        // The related rows of the outer row's tenant only, where a table holds several
        // tenants' rows.
        if exists.table.schema.is_none() {
            if let Some((key, row_level)) = self.tenant.clone() {
                match exists.table.tenant_column {
                    Some(column) => {
                        self.push(" AND ")
                            .column(Some(&alias), column)
                            .push(" = ")
                            .bind(Value::Key(key));
                    }
                    None if row_level => self.refuse(exists.table.name, NO_TENANT_COLUMN),
                    None => {}
                }
            }
        }
        if !exists.predicate.is_true() {
            self.push(" AND ");
            self.predicate(&exists.predicate, Some(&alias), true, depth + 1);
        }
        self.last_table = (start, mid, end);
        self.push(")")
    }

    fn comparison(&mut self, cmp: &'a Comparison<B>, alias: Option<&str>) -> &mut Self {
        let op = match cmp.op {
            Op::In if cmp.values.is_empty() => return self.push("FALSE"),
            Op::IsNull => return self.column(alias, cmp.column).push(" IS NULL"),
            Op::IsNotNull => return self.column(alias, cmp.column).push(" IS NOT NULL"),
            Op::Eq => " = ",
            Op::Ne => " <> ",
            Op::Lt => " < ",
            Op::Le => " <= ",
            Op::Gt => " > ",
            Op::Ge => " >= ",
            Op::Like => " LIKE ",
            Op::In => " IN (",
            Op::AnyOf => " = ANY(",
        };
        self.column(alias, cmp.column).push(op);
        for (j, value) in cmp.values.iter().enumerate() {
            if j > 0 {
                self.push(", ");
            }
            self.bind(Value::Bound(&**value));
        }
        match cmp.op {
            Op::In | Op::AnyOf => self.push(")"),
            _ => self,
        }
    }

    /// ` ORDER BY … LIMIT $n OFFSET $m` (the parts given).
    pub(crate) fn window(&mut self, window: &Window<'_>) -> &mut Self {
        self.order(window.order);
        if let Some(limit) = window.limit {
            self.push(" LIMIT ").bind(Value::I64(limit));
        }
        if let Some(offset) = window.offset {
            if let (None, Some(limit)) = (window.limit, D::LIMIT_FOR_OFFSET) {
                self.push(limit);
            }
            self.push(" OFFSET ").bind(Value::I64(offset));
        }
        self
    }

    /// ` ORDER BY "a" ASC, …` (nothing if no term).
    pub(crate) fn order(&mut self, order: &[OrderTerm]) -> &mut Self {
        for (i, term) in order.iter().enumerate() {
            self.push(if i == 0 { " ORDER BY " } else { ", " });
            self.order_term(term);
        }
        self
    }

    pub(crate) fn order_term(&mut self, term: &OrderTerm) -> &mut Self {
        self.ident(term.column)
            .push(if term.descending { " DESC" } else { " ASC" })
    }
}
