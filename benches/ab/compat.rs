//! Today's `tenancy::internals` / `tenancy::postgres` names on 6273d45's library, for the A/B
//! of `benches/ab/ab.sh`: the script copies this file into the old commit's
//! `benches/tenancy/compat.rs` and rewrites the bench's paths to it, so both builds give the
//! hand-written side the library's own SQL text. Not a cargo target here (it is not
//! `benches/*.rs` nor `benches/*/main.rs`); it compiles only inside the old worktree.

#![allow(dead_code, unused_imports)]

pub use tenancy::TenantModel as Model;

/// `tenancy::internals`: the statement texts of a model, from `tenancy::sql` of its dialect.
pub mod internals {
    use tenancy::sql::{self, OnConflictAction};
    use tenancy::{Backend, Tenant, TenantModel};

    type D<M> = <<M as TenantModel>::Backend as Backend>::Dialect;

    pub fn insert<M: TenantModel>(tenant: &Tenant, rows: usize) -> String {
        sql::insert::<D<M>>(tenant, &M::TABLE, rows)
    }

    pub fn select_by_pk<M: TenantModel>(tenant: &Tenant) -> String {
        sql::select_by_pk::<D<M>>(tenant, &M::TABLE)
    }

    pub fn update<M: TenantModel>(tenant: &Tenant, columns: &[usize]) -> String {
        sql::update::<D<M>>(tenant, &M::TABLE, columns)
    }

    pub fn delete_by_pk<M: TenantModel>(tenant: &Tenant) -> String {
        sql::delete_by_pk::<D<M>>(tenant, &M::TABLE)
    }

    pub fn upsert<M: TenantModel>(
        tenant: &Tenant,
        rows: usize,
        target: &[&str],
        update: Option<&[&'static str]>,
    ) -> String {
        let action = match update {
            Some(columns) => OnConflictAction::Update(columns),
            None => OnConflictAction::Nothing,
        };
        sql::upsert::<D<M>>(tenant, &M::TABLE, rows, target, action)
    }

    /// The PostgreSQL lifecycle's SQL text.
    pub mod postgres_lifecycle {
        pub use tenancy::sql::lifecycle::*;
    }
}

/// `tenancy::postgres`: what the bench takes from it, at the crate root or in `testing` then.
pub mod postgres {
    pub use tenancy::PoolSettings;
}

/// Methods the bench calls that the old commit lacks, outside the workloads of the A/B (15's
/// notes): the nearest old figure, so that `sqlite.rs` compiles whole. The script brings these
/// into scope in every bench module (`use crate::compat::ext::*`).
pub mod ext {
    /// `PoolBudget::get_max_connections`: then a pool count times connections per pool.
    pub trait MaxConnections {
        fn get_max_connections(&self) -> usize;
    }

    impl MaxConnections for tenancy::sqlite::PoolBudget {
        fn get_max_connections(&self) -> usize {
            self.get_max_pools() * self.get_connections_per_pool() as usize
        }
    }

    /// `Tenants::<Sqlite>::open_connections`: then the open pools.
    pub trait OpenConnections {
        fn open_connections(&self) -> usize;
    }

    impl OpenConnections for tenancy::Tenants<sqlx::Sqlite> {
        fn open_connections(&self) -> usize {
            self.open_pools()
        }
    }
}
