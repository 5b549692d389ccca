//! Shared fixtures of the PostgreSQL tests: the pool, fresh tenant schemas, and the `Guard` model.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tenancy::{Tenant, TenantModel};

// The model most tests use: the PostgreSQL `Guard` of the backend harness (one definition for
// every backend, see `backends`).
crate::guard_model!();

pub const GUARDS_DDL: &str = "CREATE TABLE {schema}.guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
)";

/// A model whose key the application chooses, with a unique column to make a server error.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges")]
pub struct Badge {
    #[tenancy(id)]
    pub code: String,
    pub holder: String,
}

pub const BADGES_DDL: &str =
    "CREATE TABLE {schema}.badges (code text PRIMARY KEY, holder text NOT NULL UNIQUE)";

pub fn database_url() -> String {
    tenancy_testdb::database_url().unwrap_or_else(|e| panic!("{e}"))
}

pub async fn pool() -> PgPool {
    pool_with(4).await
}

pub async fn pool_with(max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&database_url())
        .await
        .expect("connect to the test database")
}

/// Fresh tenant schemas holding the `guards` table, dropped when this value is dropped (even
/// when the test panics), on the server of the pool that made them.
pub struct Tenants {
    pub tenants: Vec<Tenant>,
    server: PgConnectOptions,
}

impl Tenants {
    /// `n` fresh tenants, each with the tables of `ddl` (`{schema}` is replaced by the quoted
    /// schema name).
    pub async fn with(pool: &PgPool, n: usize, ddl: &[&str]) -> Self {
        let tenants: Vec<Tenant> = (0..n)
            .map(|_| Tenant::new(tenancy_testdb::unique_name("it")).unwrap())
            .collect();
        for tenant in &tenants {
            let mut script = format!("CREATE SCHEMA {};", tenant.quoted());
            for stmt in ddl {
                script.push_str(&stmt.replace("{schema}", &tenant.quoted()));
                script.push(';');
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                .execute(pool)
                .await
                .expect("create test schema");
        }
        Tenants {
            tenants,
            server: (*pool.connect_options()).clone(),
        }
    }

    pub async fn new(pool: &PgPool, n: usize) -> Self {
        Self::with(pool, n, &[GUARDS_DDL]).await
    }

    pub fn get(&self, i: usize) -> &Tenant {
        &self.tenants[i]
    }
}

impl Drop for Tenants {
    fn drop(&mut self) {
        let names: Vec<String> = self.tenants.iter().map(|t| t.quoted()).collect();
        on_side_thread_at(self.server.clone(), async move |pool| {
            drop_schemas(pool, &names).await
        });
    }
}

/// Runs `cleanup` on a pool of its own, on a thread of its own, and waits for it: async work
/// cannot run in `Drop`, and the test's runtime may be the one this thread blocks. Best effort:
/// nothing happens if the database cannot be reached. `server` is the server to clean up on (a
/// pool's `connect_options()`).
pub fn on_side_thread_at(
    server: PgConnectOptions,
    cleanup: impl AsyncFnOnce(&PgPool) + Send + 'static,
) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(pool) = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(server)
                .await
            {
                cleanup(&pool).await;
                pool.close().await;
            }
        })
    })
    .join();
}

/// Drops each schema (names already quoted), ignoring failures.
pub async fn drop_schemas(pool: &PgPool, quoted: &[String]) {
    for name in quoted {
        // A failing test may leave a transaction open on a connection whose rollback cannot
        // run while the cleanup thread blocks the test's runtime: give up rather than hang.
        let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {name} CASCADE");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await;
    }
}

/// Rows of a tenant's `guards` table as (name, position), read with plain SQL, bypassing the
/// library under test.
pub async fn raw_guards(pool: &PgPool, tenant: &Tenant) -> Vec<(String, String)> {
    let sql = format!(
        "SELECT name, position FROM {}.guards ORDER BY id",
        tenant.quoted()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Every schema name in the database, sorted.
pub async fn schema_names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT nspname::text FROM pg_namespace ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Asserts a result is the given error variant, printing the actual value if not.
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {:?}", stringify!($pattern), other),
        }
    };
}
