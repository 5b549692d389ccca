//! The typed query builder: column constants, filters, ordering, and the [`Query`] that runs them
//! on one tenant's table.

use std::marker::PhantomData;

use sqlx::error::BoxDynError;
use sqlx::{Arguments, Database, Decode, Encode, Type};

use crate::backend::{Backend, DefaultBackend};

use crate::crud::on;
use crate::error::Error;
use crate::exec::{self, Executor, Session};
use crate::model::TenantModel;
use crate::record::Record;
use crate::relation::{KeyOf, Relation};
use crate::sql::{self, Condition, Op, OrderTerm, Predicate, Window};
use crate::tenant::Tenant;
use futures_util::stream::BoxStream;

/// A value that can be bound as a parameter of backend `B` and kept until the statement runs.
pub trait SqlValue<B: Backend = DefaultBackend>:
    for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}
impl<B: Backend, T> SqlValue<B> for T where
    T: for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}

/// A value that can be read from a row of backend `B` (an aggregate, a group's key).
pub trait SqlDecode<B: Backend = DefaultBackend>:
    for<'r> Decode<'r, B> + Type<B> + Send + 'static
{
}
impl<B: Backend, T> SqlDecode<B> for T where T: for<'r> Decode<'r, B> + Type<B> + Send + 'static {}

/// A typed column of model `M` holding values of type `T`.
///
/// `#[derive(TenantModel)]` generates one per field as an associated constant named after the
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

impl<M: TenantModel, T: SqlValue<M::Backend>> Column<M, T> {
    fn compare(self, op: Op, value: T) -> Filter<M> {
        Filter::leaf(self.name, op, vec![Box::new(value)])
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
        Filter::leaf(self.name, Op::In(values.len()), values)
    }
}

impl<M: TenantModel, T: SqlValue<M::Backend>> Column<M, T> {
    /// `"col" = value` in the `SET` of [`Query::update_all`] (`None` sets an `Option` column
    /// to `NULL`).
    pub fn set(self, value: impl Into<T>) -> Set<M> {
        Set {
            column: self.name,
            value: Box::new(value.into()),
        }
    }
}

/// One assignment of [`Query::update_all`]: a column and its new value. Made by
/// [`Column::set`].
pub struct Set<M: TenantModel> {
    column: &'static str,
    value: Box<dyn Bind<M::Backend>>,
}

impl<M: TenantModel> std::fmt::Debug for Set<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Set")
            .field("column", &self.column)
            .finish_non_exhaustive()
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

/// A bound value waiting for its statement on backend `B`.
pub(crate) trait Bind<B: Backend>: Send + Sync {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError>;
}

impl<B: Backend, T: SqlValue<B>> Bind<B> for T {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError> {
        args.add(self)
    }
}

/// A condition on the columns of model `M`, with its values: a comparison made by a
/// [`Column`]'s methods, or filters combined with [`and`](Self::and), [`or`](Self::or),
/// [`not`](Self::not) (also `&`, `|`, `!`), [`Filter::all`] and [`Filter::any`]. Groups are
/// parenthesised as written, so `a.or(b).and(c)` is `(a OR b) AND c`.
///
/// ```no_run
/// # use tenancy_core::*;
/// # fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(tenant: &Tenant, name: Column<M, String>, rank: Column<M, i32>) {
/// // name LIKE 'A%' AND (rank < 3 OR rank > 7) AND NOT (name = 'Ann')
/// let query = M::query(tenant)
///     .filter(name.like("A%") & (rank.lt(3) | rank.gt(7)) & !name.eq("Ann"));
/// // Built at run time, like Ecto's `dynamic`: any of the given names.
/// let wanted = ["Ann", "Bob"];
/// let query = M::query(tenant).filter(Filter::any(wanted.iter().map(|n| name.eq(*n))));
/// # }
/// ```
#[must_use = "a filter does nothing until it is given to a query"]
pub struct Filter<M: TenantModel> {
    predicate: Predicate,
    /// The values of the predicate's comparisons, in the order they are rendered.
    values: Vec<Box<dyn Bind<M::Backend>>>,
    model: PhantomData<fn() -> M>,
}

impl<M: TenantModel> std::fmt::Debug for Filter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("predicate", &self.predicate)
            .finish_non_exhaustive()
    }
}

impl<M: TenantModel> Filter<M> {
    pub(crate) fn leaf(
        column: &'static str,
        op: Op,
        values: Vec<Box<dyn Bind<M::Backend>>>,
    ) -> Self {
        Self::from_parts(Predicate::Compare(Condition { column, op }), values)
    }

    /// Combines filters in one group (`All` or `Any`), flattening groups of the same kind.
    fn group(
        filters: impl IntoIterator<Item = Filter<M>>,
        make: fn(Vec<Predicate>) -> Predicate,
    ) -> Self {
        let mut parts = Vec::new();
        let mut values = Vec::new();
        let probe = make(Vec::new());
        for filter in filters {
            values.extend(filter.values);
            match (filter.predicate, &probe) {
                (Predicate::All(inner), Predicate::All(_))
                | (Predicate::Any(inner), Predicate::Any(_)) => parts.extend(inner),
                (other, _) => parts.push(other),
            }
        }
        Self::from_parts(make(parts), values)
    }

    /// Holds when every one of `filters` holds; when none are given, always (`TRUE`).
    pub fn all(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::group(filters, Predicate::All)
    }

    /// Holds when at least one of `filters` holds; when none are given, never (`FALSE`).
    pub fn any(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::group(filters, Predicate::Any)
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
        Self::from_parts(Predicate::Not(Box::new(self.predicate)), self.values)
    }

    pub(crate) fn from_parts(predicate: Predicate, values: Vec<Box<dyn Bind<M::Backend>>>) -> Self {
        Filter {
            predicate,
            values,
            model: PhantomData,
        }
    }

    pub(crate) fn into_parts(self) -> (Predicate, Vec<Box<dyn Bind<M::Backend>>>) {
        (self.predicate, self.values)
    }
}

impl<M: TenantModel> std::ops::BitAnd for Filter<M> {
    type Output = Filter<M>;
    fn bitand(self, other: Filter<M>) -> Filter<M> {
        self.and(other)
    }
}

impl<M: TenantModel> std::ops::BitOr for Filter<M> {
    type Output = Filter<M>;
    fn bitor(self, other: Filter<M>) -> Filter<M> {
        self.or(other)
    }
}

impl<M: TenantModel> std::ops::Not for Filter<M> {
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
/// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, name: Column<M, String>) -> Result<(), Error> {
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
    pub(crate) tenant: Tenant,
    pub(crate) clauses: Clauses<M>,
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
    /// The top-level predicates (joined with `AND`).
    predicates: Vec<Predicate>,
    /// Their values, in placeholder order.
    values: Vec<Box<dyn Bind<M::Backend>>>,
    order: Vec<Order<M>>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl<M: TenantModel> Default for Clauses<M> {
    fn default() -> Self {
        Clauses {
            predicates: Vec::new(),
            values: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

impl<M: TenantModel> std::fmt::Debug for Clauses<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clauses")
            .field("predicates", &self.predicates)
            .field("order", &self.order)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<M: TenantModel> Clauses<M> {
    pub(crate) fn filter(&mut self, filter: Filter<M>) {
        let (predicate, values) = filter.into_parts();
        self.predicates.push(predicate);
        self.values.extend(values);
    }

    /// Makes the conditions so far one alternative and `filter` the other.
    pub(crate) fn or_filter(&mut self, filter: Filter<M>) {
        let (predicate, values) = filter.into_parts();
        let so_far = match std::mem::take(&mut self.predicates).as_mut_slice() {
            [] => None,
            [only] => Some(std::mem::replace(only, Predicate::All(Vec::new()))),
            all => Some(Predicate::All(all.to_vec())),
        };
        let mut alternatives = Vec::from_iter(so_far);
        alternatives.push(predicate);
        self.predicates.push(Predicate::Any(alternatives));
        self.values.extend(values);
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

    pub(crate) fn conditions(&self) -> &[Predicate] {
        &self.predicates
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

    pub(crate) fn bind_into(
        &self,
        args: &mut <M::Backend as Database>::Arguments,
    ) -> Result<(), sqlx::Error> {
        for value in &self.values {
            value.bind(args).map_err(sqlx::Error::Encode)?;
        }
        for n in [self.limit, self.offset].into_iter().flatten() {
            M::Backend::bind_i64(args, n)?;
        }
        Ok(())
    }
}

impl<M: TenantModel> Query<M> {
    /// A query over every row of `tenant`'s table (of a shared model: of its schema's, whatever
    /// `tenant` is).
    pub fn new(tenant: Tenant) -> Self {
        let tenant = match M::TABLE.schema {
            Some(schema) => Tenant::shared(schema),
            None => tenant,
        };
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

    /// Adds an alternative: a row matches if it matches every condition given so far, or
    /// `filter` (Ecto's `or_where`). `q.filter(a).filter(b).or_filter(c)` is
    /// `(a AND b) OR c`; a `filter` after it is `AND`ed with that whole group.
    pub fn or_filter(mut self, filter: Filter<M>) -> Self {
        self.clauses.or_filter(filter);
        self
    }

    /// Keeps the rows with a related row of `C` (by `relation`) that matches `filter`: a join
    /// used to choose rows, in the same tenant (see [`Relation::any`]).
    pub fn join<C, K, T>(self, relation: Relation<M, C, K, T>, filter: Filter<C>) -> Self
    where
        C: TenantModel<Backend = M::Backend>,
        K: KeyOf<T>,
        T: SqlValue<M::Backend> + Clone + Eq + std::hash::Hash,
    {
        self.filter(relation.any(filter))
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
            self.conditions(),
            &self.window(),
        )
    }

    pub(crate) fn conditions(&self) -> &[Predicate] {
        self.clauses.conditions()
    }

    pub(crate) fn window(&self) -> Window {
        self.clauses.window()
    }

    pub(crate) fn arguments(&self) -> Result<<M::Backend as Database>::Arguments, sqlx::Error> {
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
        let mut records = Vec::new();
        let mut decode = crate::crud::decoder(&self.tenant, |record| records.push(record));
        exec::fetch_each(
            executor,
            on::<M>("select", &self.tenant),
            &sql,
            &args,
            &mut decode,
        )
        .await?;
        drop(decode);
        Ok(records)
    }

    /// Hands every matching row to `each` as it arrives, on a session already taken (one of
    /// several statements).
    pub(crate) async fn for_each_on(
        self,
        session: &mut Session<'_, M::Backend>,
        each: impl FnMut(Record<M>) + Send,
    ) -> Result<(), Error> {
        let sql = self.to_sql();
        let args = || self.arguments();
        on::<M>("select", &self.tenant)
            .fetch_each(
                session,
                &sql,
                &args,
                &mut crate::crud::decoder(&self.tenant, each),
            )
            .await
    }

    /// Every matching row as a stream, read from the server as it is consumed: memory holds
    /// the rows in flight (sqlx's read buffer, and at most 256 records decoded from it), not
    /// the result (Ecto's `Repo.stream`). The stream holds one connection of the executor until
    /// it ends or is dropped; an error (the server's, or a row that does not decode) ends it
    /// after the rows before it.
    ///
    /// ```no_run
    /// # use tenancy_core::*;
    /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant) -> Result<(), Error> {
    /// use futures_util::TryStreamExt;
    /// let mut rows = M::query(tenant).fetch(pool);
    /// while let Some(record) = rows.try_next().await? {
    ///     // one record at a time
    /// #   let _ = record;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fetch<'c, E>(self, executor: E) -> BoxStream<'c, Result<Record<M>, Error>>
    where
        E: Executor<'c, Backend = M::Backend> + 'c,
    {
        let statement = self
            .arguments()
            .map(|args| (self.to_sql(), args))
            .map_err(Error::from);
        crate::crud::stream(executor, self.tenant, "select", M::TABLE.name, statement)
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
            self.conditions(),
            &self.window(),
        );
        let args = || self.arguments();
        let row = exec::fetch_optional(executor, on::<M>("count", &self.tenant), &sql, &args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(M::Backend::get_i64(&row, 0)?)
    }

    /// Sets the given columns of every matching row (within the order, limit and offset, if
    /// given) in one statement and returns how many rows were updated (Ecto's `update_all`).
    /// Validation does not run and records already in memory are not changed. Refused with
    /// [`Error::InvalidQuery`] before anything is sent if `sets` is empty or sets a column
    /// twice.
    ///
    /// ```no_run
    /// # use tenancy_core::*;
    /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, position: Column<M, String>) -> Result<(), Error> {
    /// let moved = M::query(tenant)
    ///     .filter(position.eq("gate"))
    ///     .update_all([position.set("lobby")], pool)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_all<'c, E>(
        self,
        sets: impl IntoIterator<Item = Set<M>>,
        executor: E,
    ) -> Result<u64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let sets: Vec<Set<M>> = sets.into_iter().collect();
        let columns: Vec<&str> = sets.iter().map(|s| s.column).collect();
        let problem = if columns.is_empty() {
            Some("update_all was given no column to set".to_owned())
        } else {
            columns
                .iter()
                .enumerate()
                .find(|(i, c)| columns[..*i].contains(c))
                .map(|(_, c)| format!("update_all sets column {c:?} twice"))
        };
        if let Some(problem) = problem {
            return Err(Error::InvalidQuery {
                table: M::TABLE.name,
                problem,
            });
        }
        let sql = sql::update_where::<<M::Backend as Backend>::Dialect>(
            &self.tenant,
            &M::TABLE,
            &columns,
            self.conditions(),
            &self.window(),
        );
        let args = || {
            let mut args = <M::Backend as Database>::Arguments::default();
            for set in &sets {
                set.value.bind(&mut args).map_err(sqlx::Error::Encode)?;
            }
            self.clauses.bind_into(&mut args)?;
            Ok(args)
        };
        exec::execute(executor, on::<M>("update", &self.tenant), &sql, &args).await
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
            self.conditions(),
            &self.window(),
        );
        let args = || self.arguments();
        exec::execute(executor, on::<M>("delete", &self.tenant), &sql, &args).await
    }
}
