//! [`TenantModel`]: the operations every model gets — insert, find, upsert, query — each taking
//! the tenant at run time; and [`Shared`], the same for a shared model without one.

use std::future::Future;

use crate::across::AcrossTenants;
use crate::crud;
use crate::error::Error;
use crate::exec::Executor;
use crate::model::{Model, PerTenant, SharedModel};
use crate::query::Query;
use crate::record::Record;
use crate::tenant::Tenant;
use crate::upsert::OnConflict;

/// A struct stored as one row of a table that exists in every tenant's schema (database,
/// file): the operations of a [`Model`], which `#[derive(TenantModel)]` describes.
///
/// Every operation takes the [`Tenant`] at run time; there is no way to reach a tenant table
/// without one. The methods work with any [`Executor`] of the model's backend: `&PgPool`,
/// `&mut PgConnection`, or a transaction (`&mut *tx`); `&MySqlPool` and so on for a MySQL
/// model; on every backend the tenant's [`TenantPool`](crate::TenantPool) and the
/// [`Tenants`](crate::Tenants) handle (the only executors of a SQLite model).
///
/// Every statement names its tenant's schema, so sqlx prepares and caches one statement per
/// tenant and statement kind on each connection, and its cache holds 100 by default. With more
/// tenants than that per connection, size it for all of them (on PostgreSQL with
/// `tenancy::postgres::PoolSettings`).
pub trait TenantModel: Model {
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
    /// A statement binds at most [`Backend::MAX_BIND_PARAMS`](crate::Backend::MAX_BIND_PARAMS) values (65,535 on PostgreSQL);
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
            let mut stored = conflict.upsert(executor, tenant, vec![self]).await?;
            Ok(stored.pop())
        }
    }

    /// [`upsert`](Self::upsert) of every model in one statement (one round trip; on MySQL one
    /// transaction of a statement and a read back per row), returning the rows written in the
    /// order given — without those [`OnConflict::do_nothing`] kept. Nothing is written if any
    /// model is invalid; at most [`Backend::MAX_BIND_PARAMS`](crate::Backend::MAX_BIND_PARAMS) values per statement, as
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
        async move { conflict.upsert(executor, tenant, models).await }
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

impl<M: Model> TenantModel for M {}

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
        conflict.upsert(executor, Self::tenant(), models).await
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
