//! MySQL's side of `#[tenancy::test]`: the test server (`MYSQL_URL`).

use futures_util::future::BoxFuture;
use sqlx::AssertSqlSafe;

use crate::testing::{TestArg, TestBackend, TestTenant, MYSQL_URL_ENV};

/// A pool on the test server (every tenant's database is reachable through it).
impl TestArg<sqlx::MySql> for sqlx::Pool<sqlx::MySql> {
    fn from_test(test: &TestTenant<sqlx::MySql>) -> Self {
        test.pool().clone()
    }
}

impl TestBackend for sqlx::MySql {
    const URL_ENV: &'static str = MYSQL_URL_ENV;
    fn run_sql(
        conn: &mut sqlx::mysql::MySqlConnection,
        sql: String,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
            Ok(())
        })
    }

    fn private_server_url() -> Result<String, String> {
        #[cfg(unix)]
        return tenancy_testdb::mysql_url().map_err(|e| e.to_string());
        #[cfg(not(unix))]
        return Err(crate::testing::no_private_server::<Self>());
    }

    const EXAMPLE_URL: &'static str = "mysql://root@127.0.0.1:3306/test";
}
