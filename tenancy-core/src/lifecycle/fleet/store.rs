//! What a backend gives a [`Fleet`](super::Fleet): [`FleetStore`].

use std::future::Future;

use sqlx::Database;

use crate::error::Error;
use crate::lifecycle::store::Store;
use crate::tenant::Tenant;

/// One table's digest: its name, its rows and a checksum of them that does not depend on
/// their order.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The table.
    pub table: String,
    /// How many rows.
    pub rows: i64,
    /// A checksum of every row's values.
    pub sum: String,
}

fn unsupported<B: Database>() -> Error {
    Error::Unsupported {
        operation: "a fleet of databases",
        reason: format!(
            "tenants are spread over several databases on PostgreSQL and MySQL/MariaDB, not on {}",
            B::NAME
        ),
    }
}

/// What a backend gives a [`Fleet`]: in the home database, the map of tenants to databases and
/// a lock per tenant name that every change of the map holds; in a tenant's database, the fence
/// that holds its writes back while it is copied away and the digest its copy is compared by.
/// Written in each backend's `fleet` module; by default refused with
/// [`Error::Unsupported`] (the map and its lock on PostgreSQL and MySQL, a move on PostgreSQL
/// only).
#[doc(hidden)]
pub trait FleetStore<B: Database>: Store<B> {
    /// Makes the map (in this store's registry) if it is missing.
    fn map_ready(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { Err(unsupported::<B>()) }
    }

    /// Every tenant of the map with its database, by name.
    fn map_all(&self) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send {
        async { Err(unsupported::<B>()) }
    }

    /// How many tenants the map puts in each database that holds any.
    fn map_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>, Error>> + Send {
        async { Err(unsupported::<B>()) }
    }

    /// The database of `tenant` (a name, row-level or not), if the map has it.
    fn map_of(&self, tenant: &str) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        let _ = tenant;
        async { Err(unsupported::<B>()) }
    }

    /// Takes `tenant`'s fleet lock until the operation ends: waiting for it (at most the
    /// handle's lock timeout) if `wait`, else only if it is free. Whether it holds it.
    fn hold(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        wait: bool,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = (op, tenant, wait);
        async { Err(unsupported::<B>()) }
    }

    /// The database of `tenant`, read in the operation.
    fn map_in(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        let _ = (op, tenant);
        async { Err(unsupported::<B>()) }
    }

    /// Puts `tenant` in `database` in the map, or takes it out (`None`), in the operation.
    fn map_set(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        database: Option<&str>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (op, tenant, database);
        async { Err(unsupported::<B>()) }
    }

    /// Whether a tenant can move between this backend's databases
    /// ([`Fleet::move_tenant`](super::Fleet::move_tenant)): [`Error::Unsupported`] saying why
    /// not, else `Ok`.
    fn movable(&self) -> Result<(), Error> {
        Err(unsupported::<B>())
    }

    /// Holds every write to `tenant`'s tables back until the operation ends (its reads go
    /// on), once the writes in flight ended: what the operation reads after is all there is.
    fn fence(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (op, tenant);
        async { Err(unsupported::<B>()) }
    }

    /// The digest of each of `tenant`'s tables, by table name, read in the operation.
    fn digest(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Vec<Digest>, Error>> + Send {
        let _ = (op, tenant);
        async { Err(unsupported::<B>()) }
    }
}
