//! MySQL's side of `#[tenancy::test]`: the test server (`MYSQL_URL`).

use crate::testing::{TestArg, TestBackend, TestTenant, MYSQL_URL_ENV};

/// A pool on the test server (every tenant's database is reachable through it).
impl TestArg<sqlx::MySql> for sqlx::Pool<sqlx::MySql> {
    fn from_test(test: &TestTenant<sqlx::MySql>) -> Self {
        test.pool().clone()
    }
}

impl TestBackend for sqlx::MySql {
    const URL_ENV: &'static str = MYSQL_URL_ENV;

    #[cfg(unix)]
    fn private_server_url() -> Result<String, String> {
        tenancy_testdb::mysql_url().map_err(|e| e.to_string())
    }

    const EXAMPLE_URL: &'static str = "mysql://root@127.0.0.1:3306/test";
}
