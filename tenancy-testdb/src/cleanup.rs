//! Dropping what a test made on a server when the test ends, also when it panics: the schemas
//! (PostgreSQL) or databases (MySQL / MariaDB) it created behind the library's back, and the
//! registries it used, with every tenant registered in them.
//!
//! A [`Leftovers`] collects the names and drops them when it is dropped. Async work cannot run
//! in `Drop`, and the test's runtime may be the one the dropping thread blocks, so the drops
//! run on a pool of one connection of their own, on a thread of their own, and `Drop` waits for
//! them. Best effort: nothing happens if the server cannot be reached, and a drop that waits
//! more than five seconds for a lock (a failing test may leave a transaction open) is given up
//! rather than hang.
//!
//! A registry is read as `tenancy` lays it out: a schema (database) holding a table `tenants`
//! whose column `name` names each tenant's schema (database).
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) {
//! use tenancy_testdb::cleanup::Leftovers;
//!
//! let registry = tenancy_testdb::unique_name("reg");
//! let _cleanup = Leftovers::on(&pool).registry(&registry);
//! // … a `Tenants` handle on `registry` creates tenants; all go when the test ends.
//! # }
//! ```

/// The server a [`Leftovers`] drops its names on: how to connect to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Server {
    /// A PostgreSQL (or Citus) server: names are schemas.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgConnectOptions),
    /// A MySQL / MariaDB server: names are databases.
    #[cfg(feature = "mysql")]
    Mysql(sqlx::mysql::MySqlConnectOptions),
}

#[cfg(feature = "postgres")]
impl From<sqlx::postgres::PgConnectOptions> for Server {
    fn from(options: sqlx::postgres::PgConnectOptions) -> Self {
        Server::Postgres(options)
    }
}

#[cfg(feature = "postgres")]
impl From<&sqlx::PgPool> for Server {
    fn from(pool: &sqlx::PgPool) -> Self {
        Server::Postgres((*pool.connect_options()).clone())
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::mysql::MySqlConnectOptions> for Server {
    fn from(options: sqlx::mysql::MySqlConnectOptions) -> Self {
        Server::Mysql(options)
    }
}

#[cfg(feature = "mysql")]
impl From<&sqlx::MySqlPool> for Server {
    fn from(pool: &sqlx::MySqlPool) -> Self {
        Server::Mysql((*pool.connect_options()).clone())
    }
}

/// What a test made on one server, dropped when this value is dropped (or at
/// [`clean`](Self::clean)): registries with every tenant registered in them, then containers
/// (schemas or databases) by name.
#[derive(Debug)]
#[must_use = "the names are dropped when the value is: keep it until the test ends"]
pub struct Leftovers {
    server: Server,
    registries: Vec<String>,
    containers: Vec<String>,
}

impl Leftovers {
    /// Nothing yet, on `server` (a pool, or its connect options).
    pub fn on(server: impl Into<Server>) -> Self {
        Leftovers {
            server: server.into(),
            registries: Vec::new(),
            containers: Vec::new(),
        }
    }

    /// On the PostgreSQL server of `url`.
    ///
    /// # Panics
    ///
    /// If `url` is not a PostgreSQL URL.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str) -> Self {
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap_or_else(|e| panic!("not a PostgreSQL URL: {url} ({e})"));
        Leftovers::on(options)
    }

    /// On the MySQL / MariaDB server of `url`.
    ///
    /// # Panics
    ///
    /// If `url` is not a MySQL URL.
    #[cfg(feature = "mysql")]
    pub fn mysql(url: &str) -> Self {
        let options = url
            .parse::<sqlx::mysql::MySqlConnectOptions>()
            .unwrap_or_else(|e| panic!("not a MySQL URL: {url} ({e})"));
        Leftovers::on(options)
    }

    /// Also drops registry `name` and every tenant registered in it.
    pub fn registry(mut self, name: impl Into<String>) -> Self {
        self.add_registry(name);
        self
    }

    /// Also drops the schema (database) `name`.
    pub fn container(mut self, name: impl Into<String>) -> Self {
        self.add_container(name);
        self
    }

    /// [`registry`](Self::registry) on a borrowed value.
    pub fn add_registry(&mut self, name: impl Into<String>) -> &mut Self {
        self.registries.push(name.into());
        self
    }

    /// [`container`](Self::container) on a borrowed value.
    pub fn add_container(&mut self, name: impl Into<String>) -> &mut Self {
        self.containers.push(name.into());
        self
    }

    /// Drops everything named so far, now, and forgets the names.
    pub fn clean(&mut self) {
        let registries = std::mem::take(&mut self.registries);
        let containers = std::mem::take(&mut self.containers);
        if registries.is_empty() && containers.is_empty() {
            return;
        }
        let server = self.server.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                match server {
                    #[cfg(feature = "postgres")]
                    Server::Postgres(options) => {
                        drop_all::<sqlx::Postgres>(options, &POSTGRES, &registries, &containers)
                            .await
                    }
                    #[cfg(feature = "mysql")]
                    Server::Mysql(options) => {
                        drop_all::<sqlx::MySql>(options, &MYSQL, &registries, &containers).await
                    }
                }
            });
        })
        .join();
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        self.clean();
    }
}

/// How a server names and drops a container.
struct Dialect {
    /// The identifier quote.
    quote: char,
    /// Drops container `{}` (quoted), giving up after five seconds of waiting for a lock.
    drop: &'static str,
}

#[cfg(feature = "postgres")]
const POSTGRES: Dialect = Dialect {
    quote: '"',
    drop: "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE",
};

#[cfg(feature = "mysql")]
const MYSQL: Dialect = Dialect {
    quote: '`',
    drop: "SET SESSION lock_wait_timeout = 5; DROP DATABASE IF EXISTS {}",
};

/// `name` between `quote`s, a `quote` inside doubled.
fn quoted(name: &str, quote: char) -> String {
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

/// On a pool of one connection to the server of `options`: drops every tenant of each
/// registry and the registry, then each container; every failure ignored.
async fn drop_all<DB>(
    options: <DB::Connection as sqlx::Connection>::Options,
    dialect: &Dialect,
    registries: &[String],
    containers: &[String],
) where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let Ok(pool) = sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .connect_with(options)
        .await
    else {
        return;
    };
    let mut names = Vec::new();
    for registry in registries {
        let sql = format!(
            "SELECT name FROM {}.tenants",
            quoted(registry, dialect.quote)
        );
        let tenants: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        names.extend(tenants);
        names.push(registry.clone());
    }
    names.extend(containers.iter().cloned());
    for name in names {
        let sql = dialect.drop.replace("{}", &quoted(&name, dialect.quote));
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
    }
    pool.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_for_their_server() {
        assert_eq!(quoted("a\"b", '"'), "\"a\"\"b\"");
        assert_eq!(quoted("a`b", '`'), "`a``b`");
    }
}
