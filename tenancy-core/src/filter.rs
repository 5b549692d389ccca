//! The typed pieces of a query: [`Column`] constants, the [`Filter`]s they make, [`Order`]
//! terms and [`Set`] assignments. A filter holds its values, so the statement it becomes binds
//! them in the order they are written.

use std::marker::PhantomData;

use crate::model::Model;
use crate::statement::{Op, OrderTerm, Predicate};
use crate::value::{Bind, SqlValue};

/// A typed column of model `M` holding values of type `T`.
///
/// `#[derive(Model)]` generates one per field as an associated constant named after the
/// field in upper case: `Guard::NAME: Column<Guard, String>`. Comparisons take values of the
/// column's type, so `Guard::NAME.eq(42)` does not compile.
pub struct Column<M, T> {
    index: usize,
    name: &'static str,
    field: fn(&mut M) -> &mut T,
    get: fn(&M) -> &T,
}

impl<M, T> Clone for Column<M, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, T> Copy for Column<M, T> {}

impl<M, T> std::fmt::Debug for Column<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column")
            .field("index", &self.index)
            .field("name", &self.name)
            .finish()
    }
}

impl<M, T> Column<M, T> {
    /// A column at `index` of the model's `TABLE.columns`, named `name`, stored in the field
    /// `field` (and `get`) returns. Called by generated code.
    #[doc(hidden)]
    pub const fn new(
        index: usize,
        name: &'static str,
        field: fn(&mut M) -> &mut T,
        get: fn(&M) -> &T,
    ) -> Self {
        Column {
            index,
            name,
            field,
            get,
        }
    }

    /// The column's value in `model`.
    pub fn get<'m>(&self, model: &'m M) -> &'m T {
        (self.get)(model)
    }

    /// The column's name in the database.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The column's index in the model's `TABLE.columns`.
    pub const fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn field<'m>(&self, model: &'m mut M) -> &'m mut T {
        (self.field)(model)
    }

    /// `"col" ASC`.
    pub fn asc(self) -> Order<M> {
        Order::new(self.name, false)
    }

    /// `"col" DESC`.
    pub fn desc(self) -> Order<M> {
        Order::new(self.name, true)
    }
}

/// The comparison methods of [`Column`], each `name => Op` a method `name(value)` comparing the
/// column with `value` by `Op`.
macro_rules! comparisons {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(self, value: impl Into<T>) -> Filter<M> {
                self.compare(Op::$op, value.into())
            }
        )*
    };
}

impl<M: Model, T: SqlValue<M::Backend>> Column<M, T> {
    fn compare(self, op: Op, value: T) -> Filter<M> {
        Filter::leaf(self.name, op, vec![Box::new(value)])
    }

    comparisons! {
        /// `"col" = value`.
        eq => Eq;
        /// `"col" <> value`.
        ne => Ne;
        /// `"col" < value`.
        lt => Lt;
        /// `"col" <= value`.
        le => Le;
        /// `"col" > value`.
        gt => Gt;
        /// `"col" >= value`.
        ge => Ge;
    }

    /// `"col" IN (…)`; an empty list matches no row.
    pub fn is_in<V: Into<T>>(self, values: impl IntoIterator<Item = V>) -> Filter<M> {
        let values: Vec<Box<dyn Bind<M::Backend>>> = values
            .into_iter()
            .map(|v| Box::new(v.into()) as Box<dyn Bind<M::Backend>>)
            .collect();
        Filter::leaf(self.name, Op::In, values)
    }
}

impl<M: Model, T: SqlValue<M::Backend>> Column<M, T> {
    /// `"col" = value` in the `SET` of [`Query::update_all`](crate::Query::update_all) (`None` sets an `Option` column
    /// to `NULL`).
    pub fn set(self, value: impl Into<T>) -> Set<M> {
        Set {
            column: self.name,
            value: Box::new(value.into()),
        }
    }
}

/// One assignment of [`Query::update_all`](crate::Query::update_all): a column and its new value. Made by
/// [`Column::set`].
pub struct Set<M: Model> {
    column: &'static str,
    value: Box<dyn Bind<M::Backend>>,
}

impl<M: Model> Set<M> {
    /// The column and its value.
    pub(crate) fn into_parts(self) -> (&'static str, Box<dyn Bind<M::Backend>>) {
        (self.column, self.value)
    }
}

impl<M: Model> std::fmt::Debug for Set<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Set")
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

impl<M: Model> Column<M, String>
where
    String: SqlValue<M::Backend>,
{
    /// `"col" LIKE pattern` (`%` and `_` are wildcards, as in SQL).
    pub fn like(self, pattern: impl Into<String>) -> Filter<M> {
        self.compare(Op::Like, pattern.into())
    }
}

impl<M: Model> Column<M, Option<String>>
where
    Option<String>: SqlValue<M::Backend>,
{
    /// `"col" LIKE pattern` (`%` and `_` are wildcards, as in SQL).
    pub fn like(self, pattern: impl Into<String>) -> Filter<M> {
        self.compare(Op::Like, Some(pattern.into()))
    }
}

impl<M: Model, T> Column<M, Option<T>> {
    fn null_check(self, op: Op) -> Filter<M> {
        Filter::leaf(self.name, op, Vec::new())
    }

    /// `"col" IS NULL` (only on `Option` columns).
    pub fn is_null(self) -> Filter<M> {
        self.null_check(Op::IsNull)
    }

    /// `"col" IS NOT NULL` (only on `Option` columns).
    pub fn is_not_null(self) -> Filter<M> {
        self.null_check(Op::IsNotNull)
    }
}

/// A condition on the columns of model `M`, with its values: a comparison made by a
/// [`Column`]'s methods, or filters combined with [`and`](Self::and), [`or`](Self::or),
/// [`not`](Self::not) (also `&`, `|`, `!`), [`Filter::all`] and [`Filter::any`]. Groups are
/// parenthesised as written, so `a.or(b).and(c)` is `(a OR b) AND c`.
///
/// ```no_run
/// # use tenancy_core::*;
/// # fn demo<M: Model<Backend = sqlx::Postgres> + PerTenant>(tenant: &Tenant, name: Column<M, String>, rank: Column<M, i32>) {
/// // name LIKE 'A%' AND (rank < 3 OR rank > 7) AND NOT (name = 'Ann')
/// let query = M::query(tenant)
///     .filter(name.like("A%") & (rank.lt(3) | rank.gt(7)) & !name.eq("Ann"));
/// // Built at run time, like Ecto's `dynamic`: any of the given names.
/// let wanted = ["Ann", "Bob"];
/// let query = M::query(tenant).filter(Filter::any(wanted.iter().map(|n| name.eq(*n))));
/// # }
/// ```
#[must_use = "a filter does nothing until it is given to a query"]
pub struct Filter<M: Model> {
    /// The condition, holding its values.
    predicate: Predicate<M::Backend>,
    model: PhantomData<fn() -> M>,
}

impl<M: Model> std::fmt::Debug for Filter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("predicate", &self.predicate)
            .finish_non_exhaustive()
    }
}

impl<M: Model> Filter<M> {
    pub(crate) fn leaf(
        column: &'static str,
        op: Op,
        values: Vec<Box<dyn Bind<M::Backend>>>,
    ) -> Self {
        Self::from_predicate(Predicate::compare(column, op, values))
    }

    /// Combines filters in one group (`All` or `Any`), flattening groups of the same kind.
    fn group(filters: impl IntoIterator<Item = Filter<M>>, all: bool) -> Self {
        let mut parts = Vec::new();
        for filter in filters {
            match (filter.predicate, all) {
                (Predicate::All(inner), true) | (Predicate::Any(inner), false) => {
                    parts.extend(inner)
                }
                (other, _) => parts.push(other),
            }
        }
        Self::from_predicate(if all {
            Predicate::All(parts)
        } else {
            Predicate::Any(parts)
        })
    }

    /// Holds when every one of `filters` holds; when none are given, always (`TRUE`).
    pub fn all(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::group(filters, true)
    }

    /// Holds when at least one of `filters` holds; when none are given, never (`FALSE`).
    pub fn any(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::group(filters, false)
    }

    /// `self AND other` (also `self & other`).
    pub fn and(self, other: Filter<M>) -> Self {
        Self::all([self, other])
    }

    /// `self OR other` (also `self | other`).
    pub fn or(self, other: Filter<M>) -> Self {
        Self::any([self, other])
    }

    /// `NOT (self)` (also `!self`). As in SQL, a row where a compared column is `NULL`
    /// matches neither a comparison nor its negation; test for it with `is_null`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Self::from_predicate(Predicate::Not(Box::new(self.predicate)))
    }

    pub(crate) fn from_predicate(predicate: Predicate<M::Backend>) -> Self {
        Filter {
            predicate,
            model: PhantomData,
        }
    }

    pub(crate) fn into_predicate(self) -> Predicate<M::Backend> {
        self.predicate
    }
}

impl<M: Model> std::ops::BitAnd for Filter<M> {
    type Output = Filter<M>;
    fn bitand(self, other: Filter<M>) -> Filter<M> {
        self.and(other)
    }
}

impl<M: Model> std::ops::BitOr for Filter<M> {
    type Output = Filter<M>;
    fn bitor(self, other: Filter<M>) -> Filter<M> {
        self.or(other)
    }
}

impl<M: Model> std::ops::Not for Filter<M> {
    type Output = Filter<M>;
    fn not(self) -> Filter<M> {
        Filter::not(self)
    }
}

/// An `ORDER BY` term on a column of model `M`. Made by [`Column::asc`] and [`Column::desc`].
pub struct Order<M> {
    term: OrderTerm,
    model: PhantomData<fn() -> M>,
}

impl<M> Order<M> {
    /// The term as the statement writes it.
    pub(crate) fn term(&self) -> OrderTerm {
        self.term
    }

    fn new(column: &'static str, descending: bool) -> Self {
        Order {
            term: OrderTerm { column, descending },
            model: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Order<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.term.fmt(f)
    }
}
