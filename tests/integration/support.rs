//! Shared fixtures of the PostgreSQL tests: the pool, fresh tenant schemas (their tables from
//! `tenancy_testdb::fixtures`, dropped by `tenancy_testdb::cleanup`), and the `Guard` model.

use sqlx::postgres::PgPool;
use tenancy::{Tenant, TenantModel};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{in_container, POSTGRES};

// The model most tests use: the PostgreSQL `Guard` of the backend harness (one definition for
// every backend, see `backends`).
crate::guard_model!();

/// A model whose key the application chooses, with a unique column to make a server error.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges")]
pub struct Badge {
    #[tenancy(id)]
    pub code: String,
    pub holder: String,
}

pub fn database_url() -> String {
    tenancy_testdb::database_url().unwrap_or_else(|e| panic!("{e}"))
}

pub async fn pool() -> PgPool {
    pool_with(4).await
}

pub async fn pool_with(max_connections: u32) -> PgPool {
    tenancy_testdb::postgres::pool(max_connections).await
}

/// Fresh tenant schemas holding the `guards` table, dropped when this value is dropped (even
/// when the test panics), on the server of the pool that made them.
pub struct Tenants {
    pub tenants: Vec<Tenant>,
    _cleanup: Leftovers,
}

impl Tenants {
    /// `n` fresh tenants, each with the tables of `ddl` (unqualified `CREATE TABLE`s, put in
    /// the tenant's schema).
    pub async fn with(pool: &PgPool, n: usize, ddl: &[&str]) -> Self {
        let tenants: Vec<Tenant> = (0..n)
            .map(|_| Tenant::new(tenancy_testdb::unique_name("it")).unwrap())
            .collect();
        let mut cleanup = Leftovers::on(pool);
        for tenant in &tenants {
            cleanup.add_container(tenant.as_str());
            let mut script = format!("CREATE SCHEMA {};", tenant.quoted());
            for stmt in ddl {
                script.push_str(&in_container(stmt, &tenant.quoted()));
                script.push(';');
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                .execute(pool)
                .await
                .expect("create test schema");
        }
        Tenants {
            tenants,
            _cleanup: cleanup,
        }
    }

    pub async fn new(pool: &PgPool, n: usize) -> Self {
        Self::with(pool, n, &[POSTGRES.guards]).await
    }

    pub fn get(&self, i: usize) -> &Tenant {
        &self.tenants[i]
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
