//! What only a PostgreSQL handle has: shared schemas on the migrations' `search_path`,
//! PgBouncer's way of sending statements, and the Citus flavour.

use sqlx::Postgres;

use super::citus::Flavour;
use super::store::PgStore;
use crate::error::Error;
use crate::lifecycle::Tenants;

impl Tenants<Postgres> {
    /// The same handle with `schemas` after the tenant's own on the `search_path` of its
    /// migrations and create hooks, so that unqualified names of shared objects there (types,
    /// extension functions, e.g. in `public`) resolve.
    ///
    /// By default the path holds the tenant's schema alone, so an unqualified name in a
    /// migration can only mean an object of the tenant (or of `pg_catalog`). With shared
    /// schemas on the path, an `ALTER` or `DROP` of a name the tenant lacks reaches the shared
    /// schema's object of that name instead of failing: qualify such statements.
    pub fn with_shared_schemas<S: Into<String>>(
        self,
        schemas: impl IntoIterator<Item = S>,
    ) -> Self {
        let schemas: Vec<String> = schemas.into_iter().map(Into::into).collect();
        self.rebuild(|s| s.store.shared_schemas = schemas)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle, for a pool that reaches PostgreSQL through PgBouncer in transaction
    /// mode: every statement of the lifecycle, and every model statement sent through the
    /// handle (`&tenants`), the [`TenantPool`](crate::TenantPool)s it gives out and their
    /// transactions, is unnamed and runs inside a transaction (see
    /// [`PgBouncer`](crate::postgres::PgBouncer)). Build the pool with
    /// [`PoolSettings::pgbouncer`](crate::postgres::PoolSettings::pgbouncer), or build both with
    /// [`PoolSettings::connect_tenants`](crate::postgres::PoolSettings::connect_tenants) and
    /// `?pgbouncer=true`.
    pub fn behind_pgbouncer(self) -> Self {
        self.rebuild(|s| s.store.pgbouncer = true)
            .expect("the rest was checked when the handle was built")
    }

    /// Whether the handle sends its statements the way PgBouncer in transaction mode can serve
    /// them ([`behind_pgbouncer`](Self::behind_pgbouncer)).
    pub fn is_behind_pgbouncer(&self) -> bool {
        !self.pg().persistent()
    }

    /// The same handle, told that the server is a Citus coordinator (or, with
    /// [`Flavour::Postgres`], that it is not), instead of finding out at its first operation.
    ///
    /// By default a handle asks the server once, when it first uses the registry, whether the
    /// `citus` extension is installed in the database. On Citus it keeps the registry local to
    /// the coordinator, makes each tenant's schema a distributed schema when creating it
    /// (whatever the database's `citus.enable_schema_based_sharding`), and sends migrations so
    /// that Citus accepts them (see the README's "Citus" section). Saying
    /// [`Flavour::Postgres`] on a Citus server gives schemas that are not distributed.
    pub fn with_flavour(self, flavour: Flavour) -> Self {
        self.rebuild(|s| s.store.flavour = Some(flavour))
            .expect("the rest was checked when the handle was built")
    }

    /// Whether the server is a Citus coordinator (see [`with_flavour`](Self::with_flavour));
    /// asked once per handle, with the registry's set-up.
    pub async fn flavour(&self) -> Result<Flavour, Error> {
        self.pg().ensure_registry().await?;
        Ok(self.pg().flavour_now())
    }

    /// The PostgreSQL store.
    pub(crate) fn pg(&self) -> &PgStore {
        self.store()
    }
}
