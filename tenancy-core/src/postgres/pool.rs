//! A pool built for many tenants: [`PoolSettings`].

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Postgres;

use crate::error::Error;
use crate::lifecycle::Tenants;

/// The URL parameter that says the server is reached through PgBouncer in transaction mode
/// (`?pgbouncer=true`, the name Prisma uses); read and removed before sqlx sees the URL.
pub const PGBOUNCER_PARAM: &str = "pgbouncer";

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

    /// For a server reached through PgBouncer in transaction mode, as `?pgbouncer=true` on the
    /// URL says: no statement cache (the statements must be unnamed), and the handle
    /// [`connect_tenants`](Self::connect_tenants) builds sends every statement the way
    /// PgBouncer can serve. A pool built with [`connect`](Self::connect) is a plain sqlx pool:
    /// build [`Tenants`](crate::Tenants) on it with
    /// [`behind_pgbouncer`](crate::Tenants::behind_pgbouncer), and wrap its own executors in
    /// [`PgBouncer`](crate::postgres::PgBouncer).
    pub fn pgbouncer(mut self) -> Self {
        self.pgbouncer = true;
        self
    }

    /// Whether these settings are for a server behind PgBouncer ([`pgbouncer`](Self::pgbouncer)).
    pub fn is_pgbouncer(&self) -> bool {
        self.pgbouncer
    }

    /// These settings with what `url` says of them (`?pgbouncer=true` turns on
    /// [`pgbouncer`](Self::pgbouncer); `false` leaves the settings as they are), and the
    /// connect options of `url` without that parameter, the statement cache sized.
    ///
    /// An unparseable URL, or a `pgbouncer` value other than `true` or `false`, is an
    /// [`Error::Database`] holding sqlx's configuration error.
    pub fn with_url(self, url: &str) -> Result<(Self, PgConnectOptions), Error> {
        let (pgbouncer, url) = take_pgbouncer(url)?;
        let settings = if pgbouncer { self.pgbouncer() } else { self };
        let options = settings.connect_options(url.parse()?);
        Ok((settings, options))
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
    /// `sslmode=require`) apply; `pgbouncer=true` sizes the statement cache to 0 (see
    /// [`with_url`](Self::with_url)), but a plain pool cannot carry the mode to the statements
    /// sent through it: prefer [`connect_tenants`](Self::connect_tenants).
    pub async fn connect(&self, url: &str) -> Result<PgPool, Error> {
        let (settings, options) = self.clone().with_url(url)?;
        Ok(settings.pool_options().connect_with(options).await?)
    }

    /// Connects a pool to `url` with these settings and builds the lifecycle handle on it with
    /// the tenant migrations of `migrator`. Behind PgBouncer (`?pgbouncer=true` on the URL, or
    /// [`pgbouncer`](Self::pgbouncer)) the handle carries the mode: every statement sent through
    /// it, the [`TenantPool`](crate::TenantPool)s it gives out and their transactions is an
    /// unnamed statement inside a transaction, with no `PgBouncer(…)` wrapper.
    ///
    /// ```no_run
    /// # async fn demo(migrator: sqlx::migrate::Migrator) -> Result<(), tenancy_core::Error> {
    /// use tenancy_core::postgres::PoolSettings;
    /// let tenants = PoolSettings::new()
    ///     .connect_tenants("postgres://app@pgbouncer:6432/app?pgbouncer=true", migrator)
    ///     .await?;
    /// assert!(tenants.is_behind_pgbouncer());
    /// # Ok(()) }
    /// ```
    pub async fn connect_tenants(
        &self,
        url: &str,
        migrator: Migrator,
    ) -> Result<Tenants<Postgres>, Error> {
        let (settings, options) = self.clone().with_url(url)?;
        let pool = settings.pool_options().connect_with(options).await?;
        let tenants = Tenants::new(pool, migrator)?;
        Ok(if settings.pgbouncer {
            tenants.behind_pgbouncer()
        } else {
            tenants
        })
    }
}

/// Whether `url` says `pgbouncer=true`, and `url` without its `pgbouncer` parameters.
fn take_pgbouncer(url: &str) -> Result<(bool, String), Error> {
    let (head, fragment) = match url.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (url, None),
    };
    let Some((base, query)) = head.split_once('?') else {
        return Ok((false, url.to_owned()));
    };
    let mut pgbouncer = false;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != PGBOUNCER_PARAM {
            kept.push(pair);
            continue;
        }
        pgbouncer = match value {
            "true" => true,
            "false" => false,
            other => {
                return Err(sqlx::Error::Configuration(
                    format!("{PGBOUNCER_PARAM}={other:?} in the URL: it is true or false").into(),
                )
                .into())
            }
        };
    }
    let kept: Vec<&str> = kept.into_iter().filter(|p| !p.is_empty()).collect();
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Ok((pgbouncer, out))
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

    #[test]
    fn the_url_says_pgbouncer_and_loses_the_parameter() {
        let take = |url: &str| take_pgbouncer(url).unwrap();
        assert_eq!(take("postgres://h/db"), (false, "postgres://h/db".into()));
        assert_eq!(
            take("postgres://h/db?pgbouncer=true"),
            (true, "postgres://h/db".into())
        );
        assert_eq!(
            take("postgres://h/db?sslmode=require&pgbouncer=true&application_name=a"),
            (
                true,
                "postgres://h/db?sslmode=require&application_name=a".into()
            )
        );
        assert_eq!(
            take("postgres://h/db?pgbouncer=false&sslmode=disable"),
            (false, "postgres://h/db?sslmode=disable".into())
        );
        assert!(matches!(
            take_pgbouncer("postgres://h/db?pgbouncer=yes"),
            Err(Error::Database { .. })
        ));
        let (settings, options) = PoolSettings::new()
            .with_url("postgres://h:6432/db?pgbouncer=true")
            .unwrap();
        assert!(settings.is_pgbouncer());
        assert_eq!(settings.statement_cache_capacity(), 0);
        assert_eq!(options.get_port(), 6432);
        let (settings, _) = PoolSettings::new().with_url("postgres://h/db").unwrap();
        assert!(!settings.is_pgbouncer());
    }
}
