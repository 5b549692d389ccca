//! The typed query builder: column constants, filters, ordering, and the [`Query`] that runs them
//! on one tenant's table.

use std::marker::PhantomData;

use sqlx::error::BoxDynError;
use sqlx::{Arguments, Database, Encode, Type};

use crate::backend::{Backend, DefaultBackend};

use crate::crud::on;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::model::TenantModel;
use crate::record::Record;
use crate::sql::{self, Condition, Op, OrderTerm, Window};
use crate::tenant::Tenant;

/// A value that can be bound as a parameter of backend `B` and kept until the statement runs.
pub trait SqlValue<B: Backend = DefaultBackend>:
    for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}
impl<B: Backend, T> SqlValue<B> for T where
    T: for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}

/// A typed column of model `M` holding values of type `T`.
///
/// `#[derive(TenantModel)]` generates one per field as an associated constant named after the
/// field in upper case: `Guard::NAME: Column<Guard, String>`. Comparisons take values of the
/// column's type, so `Guard::NAME.eq(42)` does not compile.
pub struct Column<M, T> {
    index: usize,
    name: &'static str,
    field: fn(&mut M) -> &mut T,
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
    /// `field` returns. Called by generated code.
    #[doc(hidden)]
    pub const fn new(index: usize, name: &'static str, field: fn(&mut M) -> &mut T) -> Self {
        Column { index, name, field }
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

impl<M: TenantModel, T: SqlValue<M::Backend>> Column<M, T> {
    fn compare(self, op: Op, value: T) -> Filter<M> {
        Filter {
            condition: Condition {
                column: self.name,
                op,
            },
            values: vec![Box::new(value)],
            model: PhantomData,
        }
    }

    /// `"col" = value`.
    pub fn eq(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Eq, value.into())
    }

    /// `"col" <> value`.
    pub fn ne(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Ne, value.into())
    }

    /// `"col" < value`.
    pub fn lt(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Lt, value.into())
    }

    /// `"col" <= value`.
    pub fn le(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Le, value.into())
    }

    /// `"col" > value`.
    pub fn gt(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Gt, value.into())
    }

    /// `"col" >= value`.
    pub fn ge(self, value: impl Into<T>) -> Filter<M> {
        self.compare(Op::Ge, value.into())
    }

    /// `"col" IN (…)`; an empty list matches no row.
    pub fn is_in<V: Into<T>>(self, values: impl IntoIterator<Item = V>) -> Filter<M> {
        let values: Vec<Box<dyn Bind<M::Backend>>> = values
            .into_iter()
            .map(|v| Box::new(v.into()) as Box<dyn Bind<M::Backend>>)
            .collect();
        Filter {
            condition: Condition {
                column: self.name,
                op: Op::In(values.len()),
            },
            values,
            model: PhantomData,
        }
    }
}

impl<M: TenantModel> Column<M, String>
where
    String: SqlValue<M::Backend>,
{
    /// `"col" LIKE pattern` (`%` and `_` are wildcards, as in SQL).
    pub fn like(self, pattern: impl Into<String>) -> Filter<M> {
        self.compare(Op::Like, pattern.into())
    }
}

impl<M: TenantModel> Column<M, Option<String>>
where
    Option<String>: SqlValue<M::Backend>,
{
    /// `"col" LIKE pattern` (`%` and `_` are wildcards, as in SQL).
    pub fn like(self, pattern: impl Into<String>) -> Filter<M> {
        self.compare(Op::Like, Some(pattern.into()))
    }
}

impl<M: TenantModel, T> Column<M, Option<T>> {
    fn null_check(self, op: Op) -> Filter<M> {
        Filter {
            condition: Condition {
                column: self.name,
                op,
            },
            values: Vec::new(),
            model: PhantomData,
        }
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

/// A bound value waiting for its statement on backend `B`.
pub(crate) trait Bind<B: Backend>: Send + Sync {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError>;
}

impl<B: Backend, T: SqlValue<B>> Bind<B> for T {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError> {
        args.add(self)
    }
}

/// A condition on one column of model `M`, with its values. Made by [`Column`]'s methods.
pub struct Filter<M: TenantModel> {
    condition: Condition,
    values: Vec<Box<dyn Bind<M::Backend>>>,
    model: PhantomData<fn() -> M>,
}

impl<M: TenantModel> std::fmt::Debug for Filter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("condition", &self.condition)
            .finish_non_exhaustive()
    }
}

/// An `ORDER BY` term on a column of model `M`. Made by [`Column::asc`] and [`Column::desc`].
pub struct Order<M> {
    term: OrderTerm,
    model: PhantomData<fn() -> M>,
}

impl<M> Order<M> {
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

/// A query on one tenant's table of model `M`: filters (joined with `AND`), order, limit and
/// offset. Start one with `M::query(&tenant)`; run it with a `fetch_*`, [`count`](Self::count)
/// or [`delete`](Self::delete).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<M: TenantModel<Backend = sqlx::Postgres>>(pool: &sqlx::PgPool, tenant: &Tenant, name: Column<M, String>) -> Result<(), Error> {
/// let first_ten = M::query(tenant)
///     .filter(name.like("A%"))
///     .order_by(name.asc())
///     .limit(10)
///     .fetch_all(pool)
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until it is fetched, counted or deleted"]
pub struct Query<M: TenantModel> {
    tenant: Tenant,
    clauses: Clauses<M>,
}

impl<M: TenantModel> std::fmt::Debug for Query<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("tenant", &self.tenant)
            .field("clauses", &self.clauses)
            .finish()
    }
}

/// What a query selects besides its table: filters, order, limit and offset. Shared by
/// [`Query`] and [`AcrossTenants`](crate::AcrossTenants).
pub(crate) struct Clauses<M: TenantModel> {
    filters: Vec<Filter<M>>,
    order: Vec<Order<M>>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl<M: TenantModel> Default for Clauses<M> {
    fn default() -> Self {
        Clauses {
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

impl<M: TenantModel> std::fmt::Debug for Clauses<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clauses")
            .field("filters", &self.filters)
            .field("order", &self.order)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<M: TenantModel> Clauses<M> {
    pub(crate) fn filter(&mut self, filter: Filter<M>) {
        self.filters.push(filter);
    }

    pub(crate) fn order_by(&mut self, order: Order<M>) {
        self.order.push(order);
    }

    pub(crate) fn limit(&mut self, n: u64) {
        self.limit = Some(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn offset(&mut self, n: u64) {
        self.offset = Some(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn conditions(&self) -> Vec<Condition> {
        self.filters.iter().map(|f| f.condition).collect()
    }

    pub(crate) fn window(&self) -> Window {
        Window {
            order: self.order.iter().map(|o| o.term).collect(),
            limit: self.limit.is_some(),
            offset: self.offset.is_some(),
        }
    }

    /// The bound values, in placeholder order: the filters', then the limit and offset.
    pub(crate) fn arguments(&self) -> Result<<M::Backend as Database>::Arguments, sqlx::Error> {
        self.arguments_repeated(1)
    }

    /// The bound values `times` times over, for a statement whose branches each take their own
    /// (`?` placeholders).
    pub(crate) fn arguments_repeated(
        &self,
        times: usize,
    ) -> Result<<M::Backend as Database>::Arguments, sqlx::Error> {
        let mut args = <M::Backend as Database>::Arguments::default();
        for _ in 0..times {
            self.bind_into(&mut args)?;
        }
        Ok(args)
    }

    fn bind_into(&self, args: &mut <M::Backend as Database>::Arguments) -> Result<(), sqlx::Error> {
        let values = self.filters.iter().flat_map(|f| &f.values);
        for value in values {
            value.bind(args).map_err(sqlx::Error::Encode)?;
        }
        for n in [self.limit, self.offset].into_iter().flatten() {
            M::Backend::bind_i64(args, n)?;
        }
        Ok(())
    }
}

impl<M: TenantModel> Query<M> {
    /// A query over every row of `tenant`'s table.
    pub fn new(tenant: Tenant) -> Self {
        Query {
            tenant,
            clauses: Clauses::default(),
        }
    }

    /// The tenant the query runs on.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Adds a condition; all conditions must hold.
    pub fn filter(mut self, filter: Filter<M>) -> Self {
        self.clauses.filter(filter);
        self
    }

    /// Adds an ordering term after those already given.
    pub fn order_by(mut self, order: Order<M>) -> Self {
        self.clauses.order_by(order);
        self
    }

    /// Returns at most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.clauses.limit(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.clauses.offset(n);
        self
    }

    /// The SQL of the `SELECT` this query runs (for logging and tests; values are placeholders).
    pub fn to_sql(&self) -> String {
        sql::select::<<M::Backend as Backend>::Dialect>(
            &self.tenant,
            &M::TABLE,
            &self.conditions(),
            &self.window(),
        )
    }

    fn conditions(&self) -> Vec<Condition> {
        self.clauses.conditions()
    }

    fn window(&self) -> Window {
        self.clauses.window()
    }

    fn arguments(&self) -> Result<<M::Backend as Database>::Arguments, sqlx::Error> {
        self.clauses.arguments()
    }

    fn decode(&self, row: &<M::Backend as Database>::Row) -> Result<Record<M>, Error> {
        Ok(Record::loaded(self.tenant.clone(), M::from_row(row)?))
    }

    /// Every matching row.
    pub async fn fetch_all<'c, E>(self, executor: E) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let sql = self.to_sql();
        let args = || self.arguments();
        let rows = exec::fetch_all(executor, on::<M>("select", &self.tenant), &sql, &args).await?;
        rows.iter().map(|row| self.decode(row)).collect()
    }

    /// The first matching row, or `None`.
    pub async fn fetch_optional<'c, E>(self, executor: E) -> Result<Option<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let sql = self.to_sql();
        let args = || self.arguments();
        let on = on::<M>("select", &self.tenant);
        let row = exec::fetch_optional(executor, on, &sql, &args).await?;
        row.map(|row| self.decode(&row)).transpose()
    }

    /// The first matching row, or [`Error::NotFound`].
    pub async fn fetch_one<'c, E>(self, executor: E) -> Result<Record<M>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let tenant = self.tenant.clone();
        self.fetch_optional(executor).await?.ok_or(Error::NotFound {
            tenant,
            table: M::TABLE.name,
        })
    }

    /// How many rows match (within the limit and offset, if given).
    pub async fn count<'c, E>(self, executor: E) -> Result<i64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let sql = sql::count::<<M::Backend as Backend>::Dialect>(
            &self.tenant,
            &M::TABLE,
            &self.conditions(),
            &self.window(),
        );
        let args = || self.arguments();
        let row = exec::fetch_optional(executor, on::<M>("count", &self.tenant), &sql, &args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(M::Backend::get_i64(&row, 0)?)
    }

    /// Deletes every matching row (within the order, limit and offset, if given) and returns
    /// how many were deleted. Records of deleted rows already in memory are not changed.
    pub async fn delete<'c, E>(self, executor: E) -> Result<u64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let sql = sql::delete_where::<<M::Backend as Backend>::Dialect>(
            &self.tenant,
            &M::TABLE,
            &self.conditions(),
            &self.window(),
        );
        let args = || self.arguments();
        exec::execute(executor, on::<M>("delete", &self.tenant), &sql, &args).await
    }
}
