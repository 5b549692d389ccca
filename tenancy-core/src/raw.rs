//! Hand-written SQL on one tenant's tables: [`Raw`] renders `{table}` as the tenant's
//! qualified table and binds every value.

use std::marker::PhantomData;

use futures_util::stream::BoxStream;
use sqlx::Database;

use crate::backend::{About, Backend, DefaultBackend};
use crate::crud;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::model::Model;
use crate::record::Record;
use crate::statement::{self, Statement};
use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{Bind, SqlValue};

/// A hand-written statement on one tenant's tables, for what the query API does not say.
///
/// The text is a `&'static str` template, so no run-time string (a tenant name, user input)
/// can become part of it: `{guards}` is replaced by the tenant's qualified table of a model
/// given with [`table`](Self::table) (`"acme"."guards"`; on SQLite `"main"."guards"`, the
/// tenant's own file), `{}` by the placeholder of the next value given with
/// [`bind`](Self::bind), and `{{`/`}}` by literal braces. A `{name}` that is not a given table,
/// an unbalanced brace, or a number of `{}` other than the values bound is refused with
/// [`Error::InvalidQuery`] before anything is sent. [`fetch_all`](Self::fetch_all) decodes rows
/// into [`Record`]s of the tenant (the rows must have the model's columns).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<G: TenantModel<Backend = sqlx::Postgres>, S: TenantModel<Backend = sqlx::Postgres>>(pool: &sqlx::PgPool, tenant: &Tenant) -> Result<(), Error> {
/// // Guards at sites in Paris (tables `guards` and `sites` of `tenant`).
/// let guards: Vec<Record<G>> = Raw::new(
///     "SELECT {guards}.* FROM {guards} JOIN {sites} ON {sites}.id = {guards}.site_id \
///      WHERE {sites}.city = {} ORDER BY {guards}.name",
/// )
/// .table::<G>()
/// .table::<S>()
/// .bind("Paris")
/// .fetch_all(pool, tenant)
/// .await?;
/// # Ok(()) }
/// ```
///
/// Only tables rendered from `{…}` are the tenant's: a schema written into the text itself
/// (`"other"."guards"`) is not checked — do not write one.
#[must_use = "a raw statement does nothing until it is run"]
pub struct Raw<B: Backend = DefaultBackend> {
    template: &'static str,
    tables: Vec<&'static TableDef>,
    values: Vec<Box<dyn Bind<B>>>,
    backend: PhantomData<fn() -> B>,
}

impl<B: Backend> std::fmt::Debug for Raw<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw")
            .field("template", &self.template)
            .field(
                "tables",
                &self.tables.iter().map(|t| t.name).collect::<Vec<_>>(),
            )
            .field("values", &self.values.len())
            .finish()
    }
}

impl<B: Backend> Raw<B> {
    /// A statement from `template` (see the type's documentation for its `{…}` forms).
    pub fn new(template: &'static str) -> Self {
        Raw {
            template,
            tables: Vec::new(),
            values: Vec::new(),
            backend: PhantomData,
        }
    }

    /// Lets the template name `M`'s table as `{<table name>}`. The model of
    /// [`fetch_all`](Self::fetch_all) and its siblings is given already.
    pub fn table<M: Model<Backend = B>>(mut self) -> Self {
        self.add_table(&M::TABLE);
        self
    }

    fn add_table(&mut self, table: &'static TableDef) {
        if !self.tables.iter().any(|t| t.name == table.name) {
            self.tables.push(table);
        }
    }

    /// Binds the value of the next `{}`.
    pub fn bind<T: SqlValue<B>>(mut self, value: T) -> Self {
        self.values.push(Box::new(value));
        self
    }

    /// The statement for `tenant`, checked.
    fn statement(&self, tenant: &Tenant) -> Result<Statement<'_, B>, Error> {
        statement::raw::<B::Dialect, B>(self.template, tenant, &self.tables, &self.values).map_err(
            |e| Error::InvalidQuery {
                table: self.table_name(),
                problem: e.to_string(),
            },
        )
    }

    /// The statement's SQL for `tenant`, checked.
    pub fn to_sql(&self, tenant: &Tenant) -> Result<String, Error> {
        Ok(self.statement(tenant)?.into_sql())
    }

    /// The first table the statement names, which its errors and span name (`""`: none).
    fn table_name(&self) -> &'static str {
        self.tables.first().map_or("", |t| t.name)
    }

    fn about<'t>(&self, tenant: &'t Tenant) -> About<'t> {
        About::new("raw", tenant, self.table_name())
    }

    /// Runs the statement on `tenant` and returns how many rows it affected.
    pub async fn execute<'c, E>(self, executor: E, tenant: &Tenant) -> Result<u64, Error>
    where
        E: Executor<'c, Backend = B>,
    {
        let statement = self.statement(tenant)?;
        let about = self.about(tenant);
        exec::session(executor, about)
            .await?
            .execute(about, &statement)
            .await
    }

    /// Runs the statement on `tenant` and returns its rows as sqlx rows (for aggregates and
    /// columns no model has).
    pub async fn fetch_rows<'c, E>(
        self,
        executor: E,
        tenant: &Tenant,
    ) -> Result<Vec<<B as Database>::Row>, Error>
    where
        E: Executor<'c, Backend = B>,
    {
        let statement = self.statement(tenant)?;
        let about = self.about(tenant);
        exec::session(executor, about)
            .await?
            .fetch_all(about, &statement)
            .await
    }

    /// Runs the statement on `tenant` and decodes every row as a record of `M` in `tenant`.
    pub async fn fetch_all<'c, M, E>(
        self,
        executor: E,
        tenant: &Tenant,
    ) -> Result<Vec<Record<M>>, Error>
    where
        M: Model<Backend = B>,
        E: Executor<'c, Backend = B>,
    {
        let raw = self.table::<M>();
        let statement = raw.statement(tenant)?;
        let about = raw.about(tenant);
        let mut session = exec::session(executor, about).await?;
        let mut records = Vec::new();
        let mut decode = crud::decoder(tenant, |record| records.push(record));
        session.fetch_each(about, &statement, &mut decode).await?;
        drop(decode);
        Ok(records)
    }

    /// Runs the statement on `tenant` and decodes its first row, if any, as a record of `M`.
    pub async fn fetch_optional<'c, M, E>(
        self,
        executor: E,
        tenant: &Tenant,
    ) -> Result<Option<Record<M>>, Error>
    where
        M: Model<Backend = B>,
        E: Executor<'c, Backend = B>,
    {
        let raw = self.table::<M>();
        let statement = raw.statement(tenant)?;
        let about = raw.about(tenant);
        let row = exec::session(executor, about)
            .await?
            .fetch_optional(about, &statement)
            .await?;
        row.map(|row| Ok(Record::loaded(tenant.clone(), M::from_row(&row)?)))
            .transpose()
    }

    /// Runs the statement on `tenant` and streams its rows as records of `M`, as
    /// [`Query::fetch`](crate::Query::fetch) does.
    pub fn fetch<'c, M, E>(
        self,
        executor: E,
        tenant: &Tenant,
    ) -> BoxStream<'c, Result<Record<M>, Error>>
    where
        M: Model<Backend = B>,
        E: Executor<'c, Backend = B> + 'c,
    {
        let raw = self.table::<M>();
        let statement = raw.statement(tenant).and_then(|statement| {
            let args = statement
                .arguments()
                .map_err(|e| crate::backend::from_db::<B>(e, tenant, raw.table_name()))?;
            Ok((statement.sql().to_owned(), args))
        });
        crud::stream(executor, tenant.clone(), "raw", raw.table_name(), statement)
    }
}
