//! The description of a tenant model, which `#[derive(TenantModel)]` generates, and the
//! operations every model gets from it.

use std::fmt::Debug;
use std::future::Future;

use sqlx::error::BoxDynError;
use sqlx::{Database, Encode, Type};

use crate::across::AcrossTenants;
use crate::backend::Backend;
use crate::crud;
use crate::error::Error;
use crate::exec::Executor;
use crate::query::Query;
use crate::record::Record;
use crate::tenant::Tenant;
use crate::upsert::OnConflict;
use crate::validate::Validate;

/// One column of a model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name in the database.
    pub name: &'static str,
    /// Whether this is the primary key (exactly one column of a table is).
    pub primary_key: bool,
    /// Whether the database fills it (serial/identity, a `DEFAULT`): never written by insert or
    /// update, always read back through `RETURNING`.
    pub generated: bool,
}

impl ColumnDef {
    /// A plain column, written on insert and update.
    pub const fn new(name: &'static str) -> Self {
        ColumnDef {
            name,
            primary_key: false,
            generated: false,
        }
    }

    /// Marks the column as the primary key.
    pub const fn primary_key(mut self) -> Self {
        self.primary_key = true;
        self
    }

    /// Marks the column as filled by the database.
    pub const fn generated(mut self) -> Self {
        self.generated = true;
        self
    }

    /// Whether insert writes this column.
    pub const fn is_insertable(&self) -> bool {
        !self.generated
    }

    /// Whether update writes this column.
    pub const fn is_updatable(&self) -> bool {
        !self.generated && !self.primary_key
    }
}

/// A model's table: its name (unqualified; the tenant supplies the schema) and its columns in
/// field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The table's name, the same in every tenant schema.
    pub name: &'static str,
    /// The columns, in the order of the struct's fields (skipped fields have none).
    pub columns: &'static [ColumnDef],
    /// For a [`SharedModel`]: the one schema (MySQL: database) the table lives in for every
    /// tenant, which every statement names instead of a tenant's. `None` for a tenant table.
    pub schema: Option<&'static str>,
}

impl TableDef {
    /// The primary key column.
    ///
    /// # Panics
    /// If no column is marked primary key; the derive guarantees exactly one.
    pub fn primary_key(&self) -> &ColumnDef {
        &self.columns[self.primary_key_index()]
    }

    /// The index of the primary key column.
    ///
    /// # Panics
    /// If no column is marked primary key; the derive guarantees exactly one.
    pub fn primary_key_index(&self) -> usize {
        self.columns
            .iter()
            .position(|c| c.primary_key)
            .unwrap_or_else(|| panic!("table {:?} has no primary key column", self.name))
    }

    /// Columns written by insert, in order.
    pub fn insertable(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.is_insertable())
    }

    /// Indexes of the columns written by a full update, in order.
    pub fn updatable_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_updatable())
            .map(|(i, _)| i)
    }
}

/// A struct stored as one row of a table that exists in every tenant's schema.
///
/// Implement it with `#[derive(TenantModel)]` (from the `tenancy` crate), which also generates
/// [`Validate`] and one [`Column`](crate::Column) constant per field. Every operation takes the
/// [`Tenant`] at run time; there is no way to reach a tenant table without one.
///
/// The provided methods work with any [`Executor`] of the model's [`Backend`](Self::Backend):
/// `&PgPool`, `&mut PgConnection`, or a transaction (`&mut *tx`); `&MySqlPool` and so on for a
/// MySQL model; on every backend the tenant's [`TenantPool`](crate::TenantPool) and the
/// [`Tenants`](crate::Tenants) handle (the only executors of a SQLite model).
///
/// Every statement names its tenant's schema, so sqlx prepares and caches one statement per
/// tenant and statement kind on each connection, and its cache holds 100 by default. With more
/// tenants than that per connection, size it for all of them with
/// `PgConnectOptions::statement_cache_capacity(tenants × statement kinds in use)`: at 1,000
/// tenants this took point lookups from 0.34× to 0.82× of the 1-tenant rate (BENCHMARKS.md).
pub trait TenantModel: Validate + Sized + Send + Sync + Unpin + 'static {
    /// The database the model lives in: [`DefaultBackend`](crate::DefaultBackend)
    /// (PostgreSQL) unless the derive is told `#[tenancy(backend = "mysql")]` or
    /// `#[tenancy(backend = "sqlite")]`.
    type Backend: Backend;

    /// The primary key's type.
    type Id: for<'q> Encode<'q, Self::Backend>
        + Type<Self::Backend>
        + Clone
        + Debug
        + Send
        + Sync
        + 'static;

    /// The table and its columns.
    const TABLE: TableDef;

    /// Builds the model from a row holding every column of [`TABLE`](Self::TABLE).
    fn from_row(row: &<Self::Backend as Database>::Row) -> Result<Self, sqlx::Error>;

    /// Binds the value of column `index` (an index into `TABLE.columns`) as the next argument.
    fn bind_column(
        &self,
        index: usize,
        args: &mut <Self::Backend as Database>::Arguments,
    ) -> Result<(), BoxDynError>;

    /// The primary key's value.
    fn id(&self) -> Self::Id;

    /// Validates, then inserts the model into `tenant`'s table and returns the stored row (with
    /// generated columns filled) as a loaded [`Record`].
    fn insert<'c, E>(
        self,
        executor: E,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Record<Self>, Error>> + Send
    where
        Self: PerTenant,
        E: Executor<'c, Backend = Self::Backend>,
    {
        crud::insert::<'c, Self, E>(executor, tenant.clone(), self)
    }

    /// Validates every model, then inserts them all with one statement (one round trip) and
    /// returns the stored rows in the order given. Nothing is written if any model is invalid.
    ///
    /// A statement binds at most [`Backend::MAX_BIND_PARAMS`] values (65,535 on PostgreSQL);
    /// a larger batch is refused with [`Error::BatchTooLarge`] before anything is sent. On a
    /// backend without `RETURNING` (MySQL) the rows are inserted and read back one by one
    /// inside one transaction (the caller's, or one of its own), so all or none are stored.
    fn insert_many<'c, E>(
        executor: E,
        tenant: &Tenant,
        models: Vec<Self>,
    ) -> impl Future<Output = Result<Vec<Record<Self>>, Error>> + Send
    where
        Self: PerTenant,
        E: Executor<'c, Backend = Self::Backend>,
    {
        crud::insert_many::<'c, Self, E>(executor, tenant.clone(), models)
    }

    /// Validates, then inserts the model into `tenant`'s table, or where it conflicts with a
    /// stored row on `conflict`'s unique key, updates that row as `conflict` says (one
    /// statement on PostgreSQL and SQLite). Returns the stored row, or `None` when
    /// [`OnConflict::do_nothing`] kept an existing one.
    fn upsert<'c, E>(
        self,
        executor: E,
        tenant: &Tenant,
        conflict: OnConflict<Self>,
    ) -> impl Future<Output = Result<Option<Record<Self>>, Error>> + Send
    where
        Self: PerTenant,
        E: Executor<'c, Backend = Self::Backend>,
    {
        let tenant = tenant.clone();
        async move {
            let mut stored =
                crate::upsert::upsert_many(executor, tenant, vec![self], &conflict).await?;
            Ok(stored.pop())
        }
    }

    /// [`upsert`](Self::upsert) of every model in one statement (one round trip; on MySQL one
    /// transaction of a statement and a read back per row), returning the rows written in the
    /// order given — without those [`OnConflict::do_nothing`] kept. Nothing is written if any
    /// model is invalid; at most [`Backend::MAX_BIND_PARAMS`] values per statement, as
    /// [`insert_many`](Self::insert_many). On PostgreSQL two rows of one batch with the same
    /// key are refused by the server (a row cannot be updated twice by one statement).
    fn upsert_many<'c, E>(
        executor: E,
        tenant: &Tenant,
        models: Vec<Self>,
        conflict: OnConflict<Self>,
    ) -> impl Future<Output = Result<Vec<Record<Self>>, Error>> + Send
    where
        Self: PerTenant,
        E: Executor<'c, Backend = Self::Backend>,
    {
        let tenant = tenant.clone();
        async move { crate::upsert::upsert_many(executor, tenant, models, &conflict).await }
    }

    /// Loads the row with this primary key from `tenant`'s table, or `None`.
    fn find<'c, E>(
        executor: E,
        tenant: &Tenant,
        id: Self::Id,
    ) -> impl Future<Output = Result<Option<Record<Self>>, Error>> + Send
    where
        Self: PerTenant,
        E: Executor<'c, Backend = Self::Backend>,
    {
        crud::find::<'c, Self, E>(executor, tenant.clone(), id)
    }

    /// Starts a typed query on `tenant`'s table.
    fn query(tenant: &Tenant) -> Query<Self>
    where
        Self: PerTenant,
    {
        Query::new(tenant.clone())
    }

    /// Starts a typed query on the table of each of `tenants`, run as few `UNION ALL`
    /// statements (see [`AcrossTenants`]).
    fn query_across(tenants: &[Tenant]) -> AcrossTenants<Self>
    where
        Self: PerTenant,
    {
        AcrossTenants::new(tenants.iter().cloned())
    }
}

/// A [`TenantModel`] whose table exists in every tenant's schema: every operation takes the
/// [`Tenant`]. `#[derive(TenantModel)]` implements it for every model not marked
/// `#[tenancy(shared = "...")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a shared model: its table is in one schema for every tenant, so it takes no tenant",
    label = "a shared model, not a tenant model",
    note = "use `tenancy::Shared::<{Self}>` (`Shared::<{Self}>::query()`, `::insert(value, executor)`, `::find(executor, id)`)"
)]
pub trait PerTenant: TenantModel {}

/// A model whose table lives in one fixed schema shared by every tenant (django-tenants'
/// `SHARED_APPS`: plans, users, the tenant directory), derived with
/// `#[tenancy(shared = "public")]`. It is reached without a tenant, through [`Shared`]; tenant
/// models can filter on it with a [`Relation`](crate::Relation) and preload it. Not on SQLite
/// (a tenant is a file there; the derive refuses it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a tenant model: its table is in every tenant's schema, so it needs a tenant",
    label = "a tenant model, not a shared model",
    note = "use `{Self}::query(&tenant)`, `value.insert(executor, &tenant)`, `{Self}::find(executor, &tenant, id)`; or mark the model `#[tenancy(shared = \"public\")]`"
)]
pub trait SharedModel: TenantModel {
    /// The schema (MySQL: database) of the table.
    const SCHEMA: &'static str;
}

/// The operations of a [`SharedModel`] `M`, which take no tenant: every statement names
/// `M::SCHEMA`. Records it returns report that schema as their [`tenant`](Record::tenant).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<P: SharedModel<Backend = sqlx::Postgres>>(pool: &sqlx::PgPool, plan: P, name: Column<P, String>) -> Result<(), Error> {
/// let stored = Shared::<P>::insert(plan, pool).await?;
/// let pro = Shared::<P>::query().filter(name.eq("pro")).fetch_optional(pool).await?;
/// # Ok(()) }
/// ```
pub struct Shared<M: SharedModel>(std::marker::PhantomData<fn() -> M>);

impl<M: SharedModel> std::fmt::Debug for Shared<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl<M: SharedModel> Shared<M> {
    /// The schema as the tenant the shared table's records carry.
    pub fn tenant() -> Tenant {
        Tenant::shared(M::SCHEMA)
    }

    /// Validates, then inserts `value` and returns the stored row.
    pub async fn insert<'c, E>(value: M, executor: E) -> Result<Record<M>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        crud::insert::<'c, M, E>(executor, Self::tenant(), value).await
    }

    /// Validates every model, then inserts them with one statement (as
    /// [`TenantModel::insert_many`]).
    pub async fn insert_many<'c, E>(executor: E, models: Vec<M>) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        crud::insert_many::<'c, M, E>(executor, Self::tenant(), models).await
    }

    /// Inserts or, on conflict, updates (as [`TenantModel::upsert_many`]).
    pub async fn upsert_many<'c, E>(
        executor: E,
        models: Vec<M>,
        conflict: OnConflict<M>,
    ) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        crate::upsert::upsert_many(executor, Self::tenant(), models, &conflict).await
    }

    /// Loads the row with this primary key, or `None`.
    pub async fn find<'c, E>(executor: E, id: M::Id) -> Result<Option<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        crud::find::<'c, M, E>(executor, Self::tenant(), id).await
    }

    /// Starts a typed query on the shared table.
    pub fn query() -> Query<M> {
        Query::new(Self::tenant())
    }
}
