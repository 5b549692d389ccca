//! A query over one model's table in many tenants at once: one `UNION ALL` statement per batch
//! of tenants instead of one round trip per tenant.

use sqlx::Database;

use crate::backend::{from_db, Backend, Session};
use crate::error::Error;
use crate::exec::Executor;
use crate::filter::{Filter, Order};
use crate::model::{DialectOf, Model};
use crate::query::{clause_methods, Clauses};
use crate::record::Record;
use crate::statement::{self, Predicate, Statement, Window};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::trace;
use crate::value::Scalars;

/// How many tenants one statement of an [`AcrossTenants`] query covers unless told otherwise.
///
/// Each tenant's branch reads its own table (and locks it until the end of the transaction:
/// PostgreSQL's shared lock table holds `max_locks_per_transaction` × connections locks), and
/// the planner's time grows with the branches; 100 keeps both small while cutting round trips
/// a hundredfold.
pub const DEFAULT_TENANTS_PER_STATEMENT: usize = 100;

/// A query on model `M`'s table in many tenants: the usual filters, order, limit and offset,
/// applied **within each tenant**, with the rows of every tenant returned as [`Record`]s that
/// each remember their own tenant (so a write-back goes to that tenant only). Start one with
/// `M::query_across(&tenants)`.
///
/// It runs as few statements as it can: one `UNION ALL` over up to
/// [`tenants_per_statement`](Self::tenants_per_statement) tenants
/// (`SELECT … UNION ALL SELECT …`), the batches one after the other on
/// one connection of the executor. On PostgreSQL every branch binds the same values (`$1` in
/// each), so a statement binds no more values than a query on one tenant; on MySQL each branch
/// binds its own copy (`?`), so values × tenants per statement must stay within the server's
/// limit (lower [`tenants_per_statement`](Self::tenants_per_statement) for long `IN` lists). The batches do not share a snapshot unless the
/// executor is a transaction (`REPEATABLE READ` for one consistent view).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenants: &Tenants, name: Column<M, String>) -> Result<(), Error> {
/// let all = tenants.list().await?;
/// // The first 10 rows by name of every tenant, tenant by tenant.
/// let rows = M::query_across(&all).order_by(name.asc()).limit(10).fetch_all(pool).await?;
/// for row in &rows {
///     println!("{}", row.tenant());
/// }
/// let per_tenant = M::query_across(&all).filter(name.like("A%")).count_by_tenant(pool).await?;
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until it is fetched or counted"]
pub struct AcrossTenants<M: Model> {
    tenants: Vec<Tenant>,
    clauses: Clauses<M>,
    per_statement: usize,
}

debug_fields!(AcrossTenants<M: Model> { tenants, clauses, per_statement });

/// Builds one statement over a batch of tenants.
type Build<B> =
    for<'a> fn(&[Tenant], &TableDef, &'a [Predicate<B>], &Window<'_>) -> Statement<'a, B>;

impl<M: Model> AcrossTenants<M> {
    /// A query over every row of `M`'s table in each of `tenants`, in that order.
    pub fn new(tenants: impl IntoIterator<Item = Tenant>) -> Self {
        AcrossTenants {
            tenants: tenants.into_iter().collect(),
            clauses: Clauses::default(),
            per_statement: DEFAULT_TENANTS_PER_STATEMENT,
        }
    }

    /// The tenants the query runs on, in order.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    clause_methods!("rows of each tenant");

    /// Covers at most `n` tenants (at least 1) per statement; default
    /// [`DEFAULT_TENANTS_PER_STATEMENT`].
    pub fn tenants_per_statement(mut self, n: usize) -> Self {
        self.per_statement = n.max(1);
        self
    }

    /// The SQL of the `SELECT` statements [`fetch_all`](Self::fetch_all) runs, one per batch of
    /// tenants (for logging and tests; values are placeholders).
    pub fn to_sql(&self) -> Vec<String> {
        let (conditions, window) = (self.clauses.conditions(), self.clauses.window());
        self.tenants
            .chunks(self.per_statement)
            .map(|batch| {
                statement::select_across::<DialectOf<M>, M::Backend>(
                    batch,
                    &M::TABLE,
                    conditions,
                    &window,
                )
                .into_sql()
            })
            .collect()
    }

    /// Every matching row of every tenant, grouped by tenant in the order of the tenants, each
    /// a [`Record`] of its own tenant. [`Error::UnknownTenant`] names a tenant whose table
    /// does not exist.
    pub async fn fetch_all<'c, E>(self, executor: E) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let mut records = Vec::new();
        self.run(
            executor,
            "select",
            statement::select_across::<DialectOf<M>, M::Backend>,
            |batch, rows| {
                let index = M::TABLE.columns.len();
                for row in rows {
                    let tenant = tenant_of::<M::Backend>(batch, &row, index)?;
                    records.push(Record::loaded(tenant.clone(), M::from_row(&row)?));
                }
                Ok(())
            },
        )
        .await?;
        Ok(records)
    }

    /// How many rows match in each tenant (within the limit and offset, if given), in the order
    /// of the tenants.
    pub async fn count_by_tenant<'c, E>(self, executor: E) -> Result<Vec<(Tenant, i64)>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let mut counts = Vec::with_capacity(self.tenants.len());
        self.run(
            executor,
            "count",
            statement::count_across::<DialectOf<M>, M::Backend>,
            |batch, rows| {
                let mut batch_counts = rows
                    .iter()
                    .map(|row| {
                        let tenant = tenant_of::<M::Backend>(batch, row, 0)?.clone();
                        Ok((tenant, <M::Backend as Scalars>::get_i64(row, 1)?))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                // UNION ALL keeps no order of its own; the tenant's position does.
                batch_counts.sort_by_key(|(tenant, _)| batch.iter().position(|t| t == tenant));
                counts.extend(batch_counts);
                Ok(())
            },
        )
        .await?;
        Ok(counts)
    }

    /// How many rows match in all the tenants together.
    pub async fn count<'c, E>(self, executor: E) -> Result<i64, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let counts = self.count_by_tenant(executor).await?;
        Ok(counts.iter().map(|(_, n)| n).sum())
    }

    /// Runs one statement per batch of tenants on one session, handing each batch's rows to
    /// `each`.
    async fn run<'c, E>(
        &self,
        executor: E,
        operation: &'static str,
        build: Build<M::Backend>,
        mut each: impl FnMut(&[Tenant], Vec<<M::Backend as Database>::Row>) -> Result<(), Error>,
    ) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        if self.tenants.is_empty() {
            return Ok(());
        }
        let mut session = executor.__session(None).await?;
        if let Some(bound) = session.bound() {
            return Err(Error::Unsupported {
                operation: "a query across tenants",
                reason: format!(
                    "its executor belongs to tenant \"{bound}\"; run it on the shared pool (on SQLite, where each tenant is its own file, run one query per tenant, e.g. with `Tenants::for_each`)"
                ),
            });
        }
        let (conditions, window) = (self.clauses.conditions(), self.clauses.window());
        for batch in self.tenants.chunks(self.per_statement) {
            let statement = build(batch, &M::TABLE, conditions, &window);
            let span =
                trace::across::<M::Backend>(operation, batch.len(), M::TABLE.name, statement.sql());
            let mut rows = Vec::new();
            let mut collect = |row| {
                rows.push(row);
                Ok(())
            };
            let fetched = M::Backend::fetch_each(&mut session, &statement, &mut collect);
            match trace::within(span, fetched).await {
                Ok(_) => each(batch, rows)?,
                Err(err) => return Err(explain::<M>(&mut session, batch, err).await),
            }
        }
        Ok(())
    }
}

/// The tenant of `batch` that `row` came from, by its branch index in column `column`.
fn tenant_of<'t, B: Scalars>(
    batch: &'t [Tenant],
    row: &B::Row,
    column: usize,
) -> Result<&'t Tenant, Error> {
    let index = B::get_branch(row, column)?;
    usize::try_from(index)
        .ok()
        .and_then(|i| batch.get(i))
        .ok_or_else(|| {
            let message = format!("a row of tenant #{index}, not in the statement");
            Error::from(sqlx::Error::Protocol(message))
        })
}

/// The error of a statement over `batch`: a missing table becomes [`Error::UnknownTenant`]
/// naming the first tenant of the batch without it (one catalog query, on failure only).
async fn explain<M: Model>(
    session: &mut Session<'_, M::Backend>,
    batch: &[Tenant],
    err: sqlx::Error,
) -> Error {
    if crate::statement::Refusal::of(&err).is_some() {
        let tenant = batch.iter().find(|t| t.is_row_level()).unwrap_or(&batch[0]);
        return from_db::<M::Backend>(err, tenant, M::TABLE.name);
    }
    if !M::Backend::failure(&err).is_some_and(|f| f.is_missing()) {
        return err.into();
    }
    match first_without_table(session, batch, M::TABLE.name).await {
        Ok(Some(index)) => from_db::<M::Backend>(err, &batch[index], M::TABLE.name),
        _ => err.into(),
    }
}

/// The position in `batch` of the first tenant whose container has no table named `table`
/// (one catalog query, [`statement::containers_with_table`]); `None` if every one has it, or
/// where the dialect cannot ask.
async fn first_without_table<B: Backend>(
    session: &mut Session<'_, B>,
    batch: &[Tenant],
    table: &str,
) -> Result<Option<usize>, sqlx::Error> {
    let mut present = Vec::new();
    // One value per name, and the table's: within what one statement binds.
    for chunk in batch.chunks(B::MAX_BIND_PARAMS - 1) {
        let Some(statement) = statement::containers_with_table::<B::Dialect, B>(chunk, table)
        else {
            return Ok(None);
        };
        B::fetch_each(session, &statement, &mut |row| {
            present.push(B::first_str(&row)?);
            Ok(())
        })
        .await?;
    }
    Ok(batch
        .iter()
        .position(|t| !present.iter().any(|p| p == t.container())))
}
