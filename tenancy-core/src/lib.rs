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
//!   ([`Flavour::Citus`](postgres::Flavour::Citus), detected) each tenant schema is a distributed schema on one worker:
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

/// A `Debug` impl of a struct writing the named fields, with no bound on its type parameters
/// (a derive would ask each for `Debug`): `field` writes `self.field`, `label(path)` writes
/// `self.path` (e.g. `keys(rows.len())`) as `label`; `..` after them: some are left out.
macro_rules! debug_fields {
    ($name:ident $(<$($param:ident $(: $bound:path)?),*>)? {
        $($field:ident $(($($value:tt)+))?),* $(,)?
    }) => {
        debug_fields!(@impl finish, $name $(<$($param $(: $bound)?),*>)? {
            $($field $(($($value)+))?),*
        });
    };
    ($name:ident $(<$($param:ident $(: $bound:path)?),*>)? {
        $($field:ident $(($($value:tt)+))?,)* ..
    }) => {
        debug_fields!(@impl finish_non_exhaustive, $name $(<$($param $(: $bound)?),*>)? {
            $($field $(($($value)+))?),*
        });
    };
    (@impl $finish:ident, $name:ident $(<$($param:ident $(: $bound:path)?),*>)? {
        $($field:ident $(($($value:tt)+))?),*
    }) => {
        impl$(<$($param $(: $bound)?),*>)? std::fmt::Debug for $name$(<$($param),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(
                        stringify!($field),
                        &debug_fields!(@value self, $field $(($($value)+))?),
                    ))*
                    .$finish()
            }
        }
    };
    (@value $self:ident, $field:ident) => {
        $self.$field
    };
    (@value $self:ident, $label:ident ($($value:tt)+)) => {
        $self.$($value)+
    };
}

#[cfg(test)]
mod debug_fields_tests {
    struct Opaque;

    struct Plain<T> {
        a: u8,
        b: Vec<u8>,
        #[allow(dead_code)]
        hidden: T,
    }
    debug_fields!(Plain<T> { a, b, .. });

    struct Computed {
        rows: Vec<u8>,
    }
    debug_fields!(Computed { keys(rows.len()) });

    #[test]
    fn writes_the_named_fields_as_debug_struct_does() {
        let plain = Plain {
            a: 1,
            b: vec![2],
            hidden: Opaque,
        };
        assert_eq!(format!("{plain:?}"), "Plain { a: 1, b: [2], .. }");
        let computed = Computed { rows: vec![1, 2] };
        assert_eq!(format!("{computed:?}"), "Computed { keys: 2 }");
    }
}

mod across;
mod aggregate;
mod backend;
mod changeset;
pub mod context;
mod crud;
mod error;
mod exec;
mod filter;
mod ident;
mod lifecycle;
mod model;
mod private;
mod query;
mod raw;
mod record;
mod relation;
mod statement;
mod table;
pub mod tenant;
mod tenant_model;
mod tenant_pool;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "internals")]
mod texts;
mod trace;
mod upsert;
pub mod validate;
mod value;

pub use across::{AcrossTenants, DEFAULT_TENANTS_PER_STATEMENT};
pub use aggregate::{Grouped, Summable};
#[doc(hidden)]
pub use backend::Failure;
pub use backend::{Backend, DefaultBackend, SharedPool};
pub use changeset::Changeset;
pub use error::{DatabaseError, Error, LockHolder, Unmappable};
pub use exec::{Executor, OnBackend};
pub use filter::{Column, Filter, Order, Set};
pub use lifecycle::archive::ARCHIVE_VERSION;
pub use lifecycle::fleet::moving::TenantMoved;
pub use lifecycle::fleet::reconcile::Reconciled;
pub use lifecycle::fleet::{Fleet, DEFAULT_ROUTE_TTL};
pub use lifecycle::report::{
    DropOptions, DropProgress, DropProgressFn, Dropped, MigrateOptions, Moved, Outcome, Planned,
    Progress, ProgressFn, RelocateOptions, RelocatePhase, RelocateProgress, RelocateProgressFn,
    Relocated, Report, TenantResult, TenantStatus, DROP_BATCH_ROWS,
};
pub use lifecycle::row_level::MAX_CREATE_IN_MANY;
pub use lifecycle::runs::{EachOptions, EachProgressFn};
pub use lifecycle::store::CreateHook;
pub use lifecycle::{Lifecycle, TenantEvent, Tenants, DEFAULT_REGISTRY};
pub use model::{Model, PerTenant, SharedModel};
pub use query::Query;
pub use raw::Raw;
pub use record::{Record, State};
pub use relation::{KeyOf, PreloadKey, Preloaded, Relation, PRELOAD_KEYS_PER_STATEMENT};
pub use table::{ColumnDef, TableDef};
pub use tenant::{InvalidTenantName, NameRule, Tenant, TenantNamePolicy, MAX_TENANT_NAME_LEN};
pub use tenant_model::{Shared, TenantModel};
pub use tenant_pool::{TenantPool, TenantTransaction};
pub use upsert::OnConflict;
pub use validate::{FieldError, Validate, ValidationErrors};
pub use value::{SqlDecode, SqlValue};

/// What generated code needs; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}

/// The text of generated statements, for this workspace's tests and benchmarks, which send the
/// same SQL by hand to compare against (feature `internals`; not a stable API, not for
/// applications).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::texts::*;

    /// The PostgreSQL lifecycle's SQL text, for the tests that send its batches by hand.
    pub mod postgres_lifecycle {
        pub use crate::postgres::sql::*;
    }
}

/// Registers the backends: each has a folder of its own (its dialect, how statements are sent,
/// what its errors mean, its lifecycle store, its test support) and a line here, which makes
/// the folder the public module of that name, seals [`Backend`] for its sqlx database, gives
/// its column types to the derive and has it write its server errors ([`DatabaseError`]'s
/// `Display`).
macro_rules! backends {
    ($($(#[cfg($cfg:meta)])? $room:ident: $db:ty,)*) => {
        $(
            $(#[cfg($cfg)])?
            pub mod $room;
            $(#[cfg($cfg)])?
            impl backend::sealed::Sealed for $db {}
            $(#[cfg($cfg)])?
            private::column_type!($db);
        )*

        /// A server error is written by the backend whose error it is.
        impl std::fmt::Display for DatabaseError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if let sqlx::Error::Database(db) = self.as_sqlx() {
                    $(
                        $(#[cfg($cfg)])?
                        if let Some(done) = <$db as Backend>::render(&**db, f) {
                            return done;
                        }
                    )*
                }
                std::fmt::Display::fmt(self.as_sqlx(), f)
            }
        }
    };
}

backends! {
    postgres: sqlx::Postgres,
    #[cfg(feature = "mysql")] mysql: sqlx::MySql,
    #[cfg(feature = "sqlite")] sqlite: sqlx::Sqlite,
}
