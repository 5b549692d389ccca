//! Runtime of [`tenancy`](https://docs.rs/tenancy): multi-tenancy on sqlx for PostgreSQL (a
//! schema per tenant), MySQL/MariaDB (a database per tenant, feature `mysql`) and SQLite (a
//! database file per tenant, feature `sqlite`). Most users
//! depend on the `tenancy` crate, which re-exports this one and adds `#[derive(TenantModel)]`.
//!
//! # Pieces
//!
//! - [`Tenant`]: a validated tenant name (a schema or database). Its constructors are the only way to get one, so every
//!   tenant reaching SQL has passed the [naming rule](tenant), and it is always rendered quoted.
//! - [`TenantModel`]: the description of a model (table, columns, how to bind and decode), which
//!   the derive generates, and the operations every model gets: `insert`, `insert_many`,
//!   `find`, `query`. Each takes the tenant at run time.
//! - [`Record`]: a model value plus its metadata, the tenant it came from and its [`State`].
//! - [`Query`], [`Column`], [`Filter`]: the typed query builder; [`AcrossTenants`] runs one
//!   query over many tenants in few statements.
//! - [`context`]: the current tenant of a task (for background jobs and spawned tasks).
//! - [`Changeset`]: a partial update that writes only the columns it sets.
//! - [`Validate`]: every broken rule at once, per field, before anything is written.
//! - [`Tenants`]: the lifecycle handle: create (atomic, with migrations), drop, rename, list,
//!   per-tenant migrations (`migrate`, `migrate_all`, `rollback`, `status`), and
//!   [`for_each`](Tenants::for_each) to run any work for every tenant. On a Citus coordinator
//!   ([`Flavour::Citus`], detected) each tenant schema is a distributed schema on one worker:
//!   [`placement`](Tenants::placement) says which, [`move_to`](Tenants::move_to) moves it.
//! - [`Backend`]: the seam each database implements (sqlx's `Postgres`, `MySql` with the
//!   `mysql` feature, `Sqlite` with the `sqlite` feature): its SQL dialect, error meanings and
//!   tenant store. A model names its backend; a [`Tenants`] handle's backend is its pool's;
//!   [`Lifecycle`] names the operations every backend's handle has.
//! - [`TenantPool`]: one tenant's executor on every backend ([`Tenants::pool_for`]); the
//!   [`Tenants`] handle itself is an executor that routes each statement to its tenant's pool.
//!   On SQLite these are the only executors (module `sqlite`: a pool per tenant file, in an
//!   LRU).
//!
//! # Why a `Record<M>` wrapper
//!
//! Ecto keeps a record's prefix in a hidden `__meta__` field. In Rust the choice is between a
//! field the derive recognises in the user's struct and a wrapper type; this crate uses a
//! wrapper, [`Record<M>`], because:
//! - the model stays a plain struct, constructible with a literal, with no field the user must
//!   fill with a placeholder;
//! - the only way to get a `Record` in the `Loaded` state is from the database, so its tenant is
//!   a fact, not a claim: nothing can set it to a different tenant afterwards;
//! - `Record` dereferences to the model, so reading and assigning fields is unchanged.
//!
//! Writes of a record (`update`, `apply`, `delete`) still take the tenant, so every call site
//! names the tenant it writes to, and a mismatch with the record's own tenant is a typed
//! [`Error::TenantMismatch`] rather than a silent cross-tenant write.
//!
//! # Isolation
//!
//! Every statement is qualified by its tenant (`"tenant_1"."guards"`, `` `tenant_1`.`guards` ``);
//! CRUD never reads or changes the session's `search_path` or default database, so a pooled
//! connection carries no tenant state between borrowers. Every value is a bound parameter.

#![warn(missing_docs)]

mod across;
mod aggregate;
mod backend;
pub mod context;
mod crud;
mod error;
mod exec;
mod fan_out;
mod handle;
mod lifecycle;
mod model;
#[cfg(feature = "mysql")]
mod mysql;
mod pg;
mod plan;
mod pool;
mod query;
mod raw;
mod record;
mod relation;
mod report;
#[doc(hidden)]
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "mysql", feature = "sqlite"))]
mod store;
pub mod tenant;
mod tenant_pool;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
mod upsert;
pub mod validate;

pub use across::{AcrossTenants, DEFAULT_TENANTS_PER_STATEMENT};
pub use aggregate::{Grouped, Summable};
#[doc(hidden)]
pub use backend::Failure;
pub use backend::{Backend, DefaultBackend, SharedPool};
pub use crud::MAX_BIND_PARAMS;
pub use error::{DatabaseError, Error, LockHolder};
#[doc(hidden)]
pub use exec::{Args, Fetched, Session, Want};
pub use exec::{Executor, OnBackend, PgBouncer};
pub use fan_out::{EachOptions, EachProgressFn};
pub use handle::Lifecycle;
pub use lifecycle::{Dropped, TenantEvent, Tenants, DEFAULT_REGISTRY};
pub use model::{ColumnDef, PerTenant, Shared, SharedModel, TableDef, TenantModel};
pub use pg::citus::{CitusRefusal, Flavour, InvalidNode, MoveMode, Node, Placement};
pub use pg::lifecycle::CreateHook;
pub use pool::{PoolSettings, STATEMENTS_PER_MODEL};
pub use query::{Column, Filter, Order, Query, Set, SqlDecode, SqlValue};
pub use raw::Raw;
pub use record::{Changeset, Record, State};
pub use relation::{KeyOf, PreloadKey, Preloaded, Relation, PRELOAD_KEYS_PER_STATEMENT};
pub use report::{
    MigrateOptions, Outcome, Planned, Progress, ProgressFn, Report, TenantResult, TenantStatus,
};
pub use tenant::{InvalidTenantName, NameRule, Tenant, TenantNamePolicy, MAX_TENANT_NAME_LEN};
pub use tenant_pool::{TenantPool, TenantTransaction};
pub use upsert::OnConflict;
pub use validate::{FieldError, Validate, ValidationErrors};

/// What generated code needs; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::validate::rules;
    pub use sqlx;

    use sqlx::error::BoxDynError;
    use sqlx::Database;

    use crate::backend::Backend;

    /// A type a model's column can have on backend `B`. The one bound the derive checks per
    /// field, so a wrong type gives one clear error at the field's type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be the type of a column",
        label = "not a column type of the model's database",
        note = "a column's type implements sqlx's `Type`, `Encode` and `Decode` for the model's database: derive `sqlx::Type` for your own types, enable the `tenancy` feature for uuid, time, chrono or json types, or mark the field #[tenancy(skip)]"
    )]
    pub trait ColumnType<B: Backend>: Sized {
        /// Reads the column named `column` from `row`.
        fn decode(row: &B::Row, column: &str) -> Result<Self, sqlx::Error>;
        /// Binds the value as the next argument.
        fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError>;
    }

    /// One blanket impl per backend: sqlx's traits for that database.
    macro_rules! column_type {
        ($backend:ty) => {
            impl<T> ColumnType<$backend> for T
            where
                T: crate::SqlValue<$backend> + for<'r> sqlx::Decode<'r, $backend>,
            {
                fn decode(
                    row: &<$backend as Database>::Row,
                    column: &str,
                ) -> Result<Self, sqlx::Error> {
                    sqlx::Row::try_get(row, column)
                }
                fn bind(
                    &self,
                    args: &mut <$backend as Database>::Arguments,
                ) -> Result<(), BoxDynError> {
                    sqlx::Arguments::add(args, self)
                }
            }
        };
    }

    column_type!(sqlx::Postgres);
    #[cfg(feature = "mysql")]
    column_type!(sqlx::MySql);
    #[cfg(feature = "sqlite")]
    column_type!(sqlx::Sqlite);

    /// How to read and bind one column on backend `B`, as function pointers.
    pub struct Codec<B: Backend, T> {
        /// Reads the column.
        pub decode: fn(&B::Row, &str) -> Result<T, sqlx::Error>,
        /// Binds the value.
        pub bind: fn(&T, &mut B::Arguments) -> Result<(), BoxDynError>,
    }

    /// The codec of a column type on backend `B`.
    pub const fn codec<B: Backend, T: ColumnType<B>>() -> Codec<B, T> {
        Codec {
            decode: <T as ColumnType<B>>::decode,
            bind: <T as ColumnType<B>>::bind,
        }
    }
}

/// The unit tests that need a server (the MySQL store's) run where one can be reached or
/// started, and are left out, saying so, where none can (tenancy-testdb's selection).
#[cfg(test)]
fn unit_test_needs(test: &str) -> &'static [tenancy_testdb::select::Backend] {
    if test.contains("mysql::store::") {
        &[tenancy_testdb::select::Backend::Mysql]
    } else {
        &[]
    }
}

#[cfg(test)]
tenancy_testdb::select_tests!(unit_test_needs);
