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
        E: Executor<'c, Backend = Self::Backend>,
    {
        crud::find::<'c, Self, E>(executor, tenant.clone(), id)
    }

    /// Starts a typed query on `tenant`'s table.
    fn query(tenant: &Tenant) -> Query<Self> {
        Query::new(tenant.clone())
    }

    /// Starts a typed query on the table of each of `tenants`, run as few `UNION ALL`
    /// statements (see [`AcrossTenants`]).
    fn query_across(tenants: &[Tenant]) -> AcrossTenants<Self> {
        AcrossTenants::new(tenants.iter().cloned())
    }
}
