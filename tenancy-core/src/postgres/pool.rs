//! A pool built for many tenants: [`PoolSettings`].

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::Error;

/// Statements one model can have prepared per tenant: insert, find, update, delete and a few
/// query shapes.
pub const STATEMENTS_PER_MODEL: usize = 6;

/// The settings of a pool serving many tenants.
///
/// Every statement names its tenant's schema, so each tenant's `find` is its own SQL text and
/// its own prepared statement. sqlx caches 100 prepared statements per connection by default;
/// with more tenants than that in use, almost every statement misses the cache and is prepared
/// again (two extra round trips), which at 1,000 tenants cut point lookups to about a third.
/// These settings size the cache for `tenants × models × STATEMENTS_PER_MODEL` statements,
/// and retire connections after `max_lifetime`, since a server process that has touched
/// thousands of schemas keeps their catalog entries cached for its whole life. The cost is
/// server memory, measured in BENCHMARKS.md (row 2).
///
/// ```no_run
/// # async fn demo() -> Result<(), tenancy_core::Error> {
/// use tenancy_core::postgres::PoolSettings;
/// let pool = PoolSettings::new()
///     .expected_tenants(1_000)
///     .models(3)
///     .connect("postgres://postgres@127.0.0.1:5432/app")
///     .await?;
/// # let _ = pool; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PoolSettings {
    tenants: usize,
    models: usize,
    capacity: Option<usize>,
    max_connections: u32,
    max_lifetime: Duration,
    pgbouncer: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            tenants: 100,
            models: 4,
            capacity: None,
            max_connections: 10,
            max_lifetime: Duration::from_secs(10 * 60),
            pgbouncer: false,
        }
    }
}

impl PoolSettings {
    /// Defaults: 100 tenants, 4 models, 10 connections, connections retired after 10 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tenants the application serves (at least 1).
    pub fn expected_tenants(mut self, n: usize) -> Self {
        self.tenants = n.max(1);
        self
    }

    /// How many tenant models the application uses (at least 1).
    pub fn models(mut self, n: usize) -> Self {
        self.models = n.max(1);
        self
    }

    /// Sets the statement cache's capacity directly instead of from tenants and models.
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// The pool's maximum number of connections.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a connection lives before the pool replaces it.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// For a server reached through PgBouncer in transaction mode: no statement cache (the
    /// statements must be unnamed). Pass the pool's executors wrapped in
    /// [`PgBouncer`](crate::postgres::PgBouncer), and build [`Tenants`](crate::Tenants) with
    /// [`behind_pgbouncer`](crate::Tenants::behind_pgbouncer).
    pub fn pgbouncer(mut self) -> Self {
        self.pgbouncer = true;
        self
    }

    /// The statement cache capacity per connection these settings give: 0 behind PgBouncer,
    /// else the explicit capacity, else `tenants × models × STATEMENTS_PER_MODEL` (at least
    /// sqlx's default of 100).
    pub fn statement_cache_capacity(&self) -> usize {
        if self.pgbouncer {
            return 0;
        }
        self.capacity.unwrap_or_else(|| {
            self.tenants
                .saturating_mul(self.models)
                .saturating_mul(STATEMENTS_PER_MODEL)
                .max(100)
        })
    }

    /// `options` with the statement cache sized.
    pub fn connect_options(&self, options: PgConnectOptions) -> PgConnectOptions {
        options.statement_cache_capacity(self.statement_cache_capacity())
    }

    /// Pool options with the connection count and lifetime.
    pub fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .max_lifetime(self.max_lifetime)
    }

    /// Connects a pool to `url` with these settings. The URL's own parameters (e.g.
    /// `sslmode=require`) apply.
    pub async fn connect(&self, url: &str) -> Result<PgPool, Error> {
        let options: PgConnectOptions = url.parse()?;
        Ok(self
            .pool_options()
            .connect_with(self.connect_options(options))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_holds_every_tenant_statement() {
        let s = PoolSettings::new().expected_tenants(1_000).models(3);
        assert_eq!(
            s.statement_cache_capacity(),
            1_000 * 3 * STATEMENTS_PER_MODEL
        );
        assert_eq!(
            PoolSettings::new()
                .expected_tenants(1)
                .models(1)
                .statement_cache_capacity(),
            100
        );
        assert_eq!(s.clone().statement_cache(7).statement_cache_capacity(), 7);
        assert_eq!(s.pgbouncer().statement_cache_capacity(), 0);
        assert_eq!(
            PoolSettings::new()
                .expected_tenants(usize::MAX)
                .statement_cache_capacity(),
            usize::MAX
        );
    }
}
