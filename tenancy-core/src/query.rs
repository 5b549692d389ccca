//! The [`Query`] on one tenant's table: filters, order, limit and offset, and what runs them.

use futures_util::stream::BoxStream;

use crate::backend::Session;
use crate::crud;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::filter::{Filter, Order, Set};
use crate::model::{DialectOf, Model};
use crate::record::Record;
use crate::statement::{self, Assignment, OrderTerm, Predicate, Statement, Window};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::Scalars;

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
pub struct Query<M: Model> {
    pub(crate) tenant: Tenant,
    pub(crate) clauses: Clauses<M>,
}

debug_fields!(Query<M: Model> { tenant, clauses });

/// The builder methods of a query holding its [`Clauses`] in field `clauses`; `$rows` says whose
/// rows a limit and an offset count (`"rows"`, `"rows of each tenant"`).
macro_rules! clause_methods {
    ($rows:literal) => {
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

        #[doc = concat!("Adds an ordering term after those already given; it orders the ", $rows, ".")]
        pub fn order_by(mut self, order: Order<M>) -> Self {
            self.clauses.order_by(order);
            self
        }

        #[doc = concat!("Returns at most `n` ", $rows, ".")]
        pub fn limit(mut self, n: u64) -> Self {
            self.clauses.limit(n);
            self
        }

        #[doc = concat!("Skips the first `n` ", $rows, ".")]
        pub fn offset(mut self, n: u64) -> Self {
            self.clauses.offset(n);
            self
        }
    };
}
pub(crate) use clause_methods;

/// The most rows [`Clauses::expected_rows`] makes room for ahead (a bigger result grows as
/// it arrives).
const EXPECTED_ROWS_MAX: usize = 64;

/// What a query selects besides its table: filters, order, limit and offset. Shared by
/// [`Query`] and [`AcrossTenants`](crate::AcrossTenants).
pub(crate) struct Clauses<M: Model> {
    /// The top-level predicates (joined with `AND`), holding their values.
    predicates: Vec<Predicate<M::Backend>>,
    order: Vec<OrderTerm>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl<M: Model> Default for Clauses<M> {
    fn default() -> Self {
        Clauses {
            predicates: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

debug_fields!(Clauses<M: Model> { predicates, order, limit, offset });

impl<M: Model> Clauses<M> {
    pub(crate) fn filter(&mut self, filter: Filter<M>) {
        self.predicates.push(filter.into_predicate());
    }

    /// Makes the conditions so far one alternative and `filter` the other.
    pub(crate) fn or_filter(&mut self, filter: Filter<M>) {
        let mut so_far = std::mem::take(&mut self.predicates);
        let mut alternatives = Vec::with_capacity(2);
        match so_far.len() {
            0 => {}
            1 => alternatives.extend(so_far.pop()),
            _ => alternatives.push(Predicate::All(so_far)),
        }
        alternatives.push(filter.into_predicate());
        self.predicates.push(Predicate::Any(alternatives));
    }

    pub(crate) fn order_by(&mut self, order: Order<M>) {
        self.order.push(order.term());
    }

    /// How many rows to make room for before any arrives: the limit, up to
    /// [`EXPECTED_ROWS_MAX`] (none without a limit).
    pub(crate) fn expected_rows(&self) -> usize {
        self.limit
            .map_or(0, |n| n.clamp(0, EXPECTED_ROWS_MAX as i64) as usize)
    }

    pub(crate) fn limit(&mut self, n: u64) {
        self.limit = Some(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn offset(&mut self, n: u64) {
        self.offset = Some(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn conditions(&self) -> &[Predicate<M::Backend>] {
        &self.predicates
    }

    pub(crate) fn window(&self) -> Window<'_> {
        Window {
            order: &self.order,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// Builds one statement on a tenant's table from a query's conditions and window.
type Build<B> = for<'a> fn(&Tenant, &TableDef, &'a [Predicate<B>], &Window<'_>) -> Statement<'a, B>;

impl<M: Model> Query<M> {
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

    clause_methods!("rows");

    /// The statement `build` makes of this query's tenant, table, conditions and window.
    fn build<'q>(&'q self, build: Build<M::Backend>) -> Statement<'q, M::Backend> {
        build(&self.tenant, &M::TABLE, self.conditions(), &self.window())
    }

    /// The `SELECT` this query runs.
    fn select(&self) -> Statement<'_, M::Backend> {
        self.build(statement::select::<DialectOf<M>, M::Backend>)
    }

    /// Sends `statement`, this query's `operation`, and returns how many rows it affected.
    async fn execute<'c, E>(
        &self,
        executor: E,
        operation: &'static str,
        statement: &Statement<'_, M::Backend>,
    ) -> Result<u64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let about = crud::about::<M>(operation, &self.tenant);
        exec::session(executor, about)
            .await?
            .execute(about, statement)
            .await
    }

    /// The SQL of the `SELECT` this query runs (for logging and tests; values are placeholders).
    pub fn to_sql(&self) -> String {
        self.select().into_sql()
    }

    pub(crate) fn conditions(&self) -> &[Predicate<M::Backend>] {
        self.clauses.conditions()
    }

    pub(crate) fn window(&self) -> Window<'_> {
        self.clauses.window()
    }

    /// Every matching row.
    pub async fn fetch_all<'c, E>(self, executor: E) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let about = crud::about::<M>("select", &self.tenant);
        let mut session = exec::session(executor, about).await?;
        let mut records = Vec::with_capacity(self.clauses.expected_rows());
        self.for_each_on(&mut session, |record| records.push(record))
            .await?;
        Ok(records)
    }

    /// Hands every matching row to `each` as it arrives, on a session already taken (one of
    /// several statements).
    pub(crate) async fn for_each_on(
        &self,
        session: &mut Session<'_, M::Backend>,
        each: impl FnMut(Record<M>) + Send,
    ) -> Result<(), Error> {
        let about = crud::about::<M>("select", &self.tenant);
        let statement = self.select();
        session
            .fetch_each(about, &statement, &mut crud::decoder(&self.tenant, each))
            .await?;
        Ok(())
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
        let select = self.select();
        let statement = select
            .arguments()
            .map(|args| (select.sql().to_owned(), args))
            .map_err(|e| crate::backend::from_db::<M::Backend>(e, &self.tenant, M::TABLE.name));
        drop(select);
        crud::stream(executor, self.tenant, "select", M::TABLE.name, statement)
    }

    /// The first matching row, or `None`.
    pub async fn fetch_optional<'c, E>(self, executor: E) -> Result<Option<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let about = crud::about::<M>("select", &self.tenant);
        let statement = self.select();
        let row = exec::session(executor, about)
            .await?
            .fetch_optional(about, &statement)
            .await?;
        row.map(|row| Ok(Record::loaded(self.tenant.clone(), M::from_row(&row)?)))
            .transpose()
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
        let about = crud::about::<M>("count", &self.tenant);
        let statement = self.build(statement::count::<DialectOf<M>, M::Backend>);
        let row = exec::session(executor, about)
            .await?
            .fetch_optional(about, &statement)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(<M::Backend as Scalars>::get_i64(&row, 0)?)
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
        let sets: Vec<Assignment<M::Backend>> = sets.into_iter().map(Set::into_parts).collect();
        let problem = if sets.is_empty() {
            Some("update_all was given no column to set".to_owned())
        } else {
            sets.iter()
                .enumerate()
                .find(|(i, (c, _))| sets[..*i].iter().any(|(d, _)| d == c))
                .map(|(_, (c, _))| format!("update_all sets column {c:?} twice"))
        };
        if let Some(problem) = problem {
            return Err(Error::InvalidQuery {
                table: M::TABLE.name,
                problem,
            });
        }
        let statement = statement::update_where::<DialectOf<M>, M::Backend>(
            &self.tenant,
            &M::TABLE,
            &sets,
            self.conditions(),
            &self.window(),
        );
        self.execute(executor, "update", &statement).await
    }

    /// Deletes every matching row (within the order, limit and offset, if given) and returns
    /// how many were deleted. Records of deleted rows already in memory are not changed.
    pub async fn delete<'c, E>(self, executor: E) -> Result<u64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let statement = self.build(statement::delete_where::<DialectOf<M>, M::Backend>);
        self.execute(executor, "delete", &statement).await
    }
}
