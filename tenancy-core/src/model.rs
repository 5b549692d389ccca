//! What `#[derive(TenantModel)]` says about a model: [`Model`], its table, key and how to bind
//! and read each column, and whether its table is per tenant ([`PerTenant`]) or shared
//! ([`SharedModel`]). The operations every model gets are [`TenantModel`](crate::TenantModel)'s.

use std::fmt::Debug;

use sqlx::error::BoxDynError;
use sqlx::{Database, Encode, Type};

use crate::backend::Backend;
use crate::table::TableDef;
use crate::validate::Validate;
use crate::value::BindColumn;

/// The description of a model that `#[derive(TenantModel)]` generates: its backend, its table
/// and columns, its primary key, and how to bind and read each column. Generic code reads it;
/// the operations on a model are those of [`TenantModel`](crate::TenantModel), which every
/// `Model` has.
pub trait Model: Validate + Sized + Send + Sync + Unpin + 'static {
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
}

impl<M: Model> BindColumn<M::Backend> for M {
    fn bind_column(
        &self,
        index: usize,
        args: &mut <M::Backend as Database>::Arguments,
    ) -> Result<(), BoxDynError> {
        Model::bind_column(self, index, args)
    }
}

/// A [`Model`] whose table exists in every tenant: every operation takes the [`Tenant`](crate::Tenant).
/// `#[derive(TenantModel)]` implements it for every model not marked
/// `#[tenancy(shared = "...")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a shared model: its table is in one schema (MySQL: database) for every tenant, so it takes no tenant",
    label = "a shared model, not a tenant model",
    note = "use `tenancy::Shared::<{Self}>` (`Shared::<{Self}>::query()`, `::insert(value, executor)`, `::find(executor, id)`)"
)]
pub trait PerTenant: Model {}

/// A model whose table lives in one fixed schema shared by every tenant (django-tenants'
/// `SHARED_APPS`: plans, users, the tenant directory), derived with
/// `#[tenancy(shared = "public")]`. It is reached without a tenant, through
/// [`Shared`](crate::Shared); tenant models can filter on it with a
/// [`Relation`](crate::Relation) and preload it. Not on SQLite (a tenant is a file there; the
/// derive refuses it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a tenant model: its table is in every tenant's schema, database or file, so it needs a tenant",
    label = "a tenant model, not a shared model",
    note = "use `{Self}::query(&tenant)`, `value.insert(executor, &tenant)`, `{Self}::find(executor, &tenant, id)`; or mark the model `#[tenancy(shared = \"public\")]`"
)]
pub trait SharedModel: Model {
    /// The schema (MySQL: database) of the table.
    const SCHEMA: &'static str;
}

/// The backend of model `M`.
pub(crate) type BackendOf<M> = <M as Model>::Backend;
/// The SQL dialect of model `M`'s backend.
pub(crate) type DialectOf<M> = <BackendOf<M> as Backend>::Dialect;
