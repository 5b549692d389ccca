//! The runtime side of `#[tenancy::test]` (feature `testing`): a fresh, migrated tenant for
//! one test, dropped when the test ends, also when it panics.
//!
//! The attribute expands to a plain `#[test]` calling [`run`](crate::testing::__run) with
//! the test's body; [`TestTenant`] is the same machinery for tests written without the
//! attribute.
//!
//! Test tenants live in their own registry, [`TEST_REGISTRY`] (`_tenancy_test`), so they never
//! show up in the application's registry, and every test gets a uniquely named one (the test's
//! name, the process id, a counter and the clock), so tests run in parallel, in one process
//! (`cargo test`) or in many (`cargo nextest`), against one database.

use std::fmt::Debug;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use crate::error::Error;
use crate::lifecycle::{Dropped, Tenants};
use crate::tenant::{Tenant, MAX_TENANT_NAME_LEN};

/// The registry of the tenants made for tests.
pub const TEST_REGISTRY: &str = "_tenancy_test";

/// The environment variable naming the test database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// How many connections the pool of one `#[tenancy::test]` opens at most.
pub const TEST_POOL_CONNECTIONS: u32 = 4;

/// A fresh tenant, with every tenant migration applied, made for one test.
///
/// [`run`](Self::run) runs the test and drops the tenant afterwards, also when the test
/// panics; [`drop_tenant`](Self::drop_tenant) drops it by hand. A `TestTenant` dropped without
/// either leaves its tenant behind (dropping a schema needs the database, which `Drop` cannot
/// wait for).
#[derive(Debug, Clone)]
pub struct TestTenant {
    tenant: Tenant,
    tenants: Tenants<Postgres>,
}

impl TestTenant {
    /// Creates a tenant named after `test` (made unique), with the migrations in the folder
    /// `migrations`, in the registry [`TEST_REGISTRY`] of `pool`'s database.
    pub async fn create(
        pool: PgPool,
        migrations: impl AsRef<Path>,
        test: &str,
    ) -> Result<Self, Error> {
        let migrator = Migrator::new(migrations.as_ref())
            .await
            .map_err(sqlx::Error::from)?;
        let tenants = Tenants::new(pool, migrator)?.with_registry(TEST_REGISTRY)?;
        let tenant = tenants.create(unique_name(test)).await?;
        Ok(TestTenant { tenant, tenants })
    }

    /// The test's tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The handle that created the tenant (registry [`TEST_REGISTRY`]).
    pub fn tenants(&self) -> &Tenants<Postgres> {
        &self.tenants
    }

    /// The pool on the test database.
    pub fn pool(&self) -> &PgPool {
        self.tenants.pool()
    }

    /// Runs `body`, then drops the tenant, whether `body` returned or panicked; a panic of
    /// `body` is resumed after the drop. Panics if the tenant cannot be dropped after `body`
    /// returned (after a panic of `body`, the drop's error is printed and the panic resumed).
    pub async fn run<F: Future>(self, body: F) -> F::Output {
        let result = AssertUnwindSafe(body).catch_unwind().await;
        let dropped = self.drop_tenant().await;
        match (result, dropped) {
            (Ok(output), Ok(_)) => output,
            (Ok(_), Err((tenant, e))) => {
                panic!("#[tenancy::test]: cannot drop the test tenant {tenant}: {e}")
            }
            (Err(panic), dropped) => {
                if let Err((tenant, e)) = dropped {
                    eprintln!("#[tenancy::test]: cannot drop the test tenant {tenant}: {e}");
                }
                resume_unwind(panic)
            }
        }
    }

    /// Drops the tenant (its schema and everything in it).
    pub async fn drop_tenant(self) -> Result<Dropped, (Tenant, Error)> {
        match self.tenants.drop(&self.tenant).await {
            Ok(dropped) => Ok(dropped),
            Err(e) => Err((self.tenant, e)),
        }
    }
}

/// A value a `#[tenancy::test]` function can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a `#[tenancy::test]` function",
    label = "not an argument a test can ask for",
    note = "a `#[tenancy::test]` function takes any of: `tenancy::Tenant` (its tenant), `sqlx::PgPool` (a pool on the test database), `tenancy::Tenants` (the handle that created the tenant)"
)]
pub trait TestArg: Sized {
    /// The value for the test of `test`.
    fn from_test(test: &TestTenant) -> Self;
}

impl TestArg for Tenant {
    fn from_test(test: &TestTenant) -> Self {
        test.tenant.clone()
    }
}

impl TestArg for PgPool {
    fn from_test(test: &TestTenant) -> Self {
        test.pool().clone()
    }
}

impl TestArg for Tenants<Postgres> {
    fn from_test(test: &TestTenant) -> Self {
        test.tenants.clone()
    }
}

/// What a `#[tenancy::test]` function can return: `()`, or a `Result<(), E>` that fails the
/// test when it is an `Err`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of a `#[tenancy::test]` function",
    note = "a `#[tenancy::test]` function returns `()` or `Result<(), E>` with `E: Debug`"
)]
pub trait TestOutput {
    /// `Err` with the message to fail the test with.
    fn into_result(self) -> Result<(), String>;
}

impl TestOutput for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestOutput for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }
}

/// The body of the `#[test]` function `#[tenancy::test]` generates: on a current-thread tokio
/// runtime, connects to `DATABASE_URL`, creates the test's tenant with the migrations in the
/// folder `migrations`, runs `body` with it and drops the tenant.
#[doc(hidden)]
pub fn __run<F, Fut>(test: &str, migrations: &str, body: F)
where
    F: FnOnce(&TestTenant) -> Fut,
    Fut: Future,
    Fut::Output: TestOutput,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("#[tenancy::test]: cannot build a tokio runtime");
    let output = runtime.block_on(async move {
        let url = database_url();
        let pool = PgPoolOptions::new()
            .max_connections(TEST_POOL_CONNECTIONS)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!("#[tenancy::test]: cannot connect to {DATABASE_URL_ENV} ({url}): {e}")
            });
        let test_tenant = TestTenant::create(pool, migrations, test)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "#[tenancy::test]: cannot create the tenant of {test} \
                     with the migrations of {migrations}: {e}"
                )
            });
        let future = body(&test_tenant);
        test_tenant.run(future).await
    });
    if let Err(message) = output.into_result() {
        panic!("{message}");
    }
}

/// `DATABASE_URL`, or a panic saying how to set it.
fn database_url() -> String {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "#[tenancy::test]: {DATABASE_URL_ENV} is not set: set it to a PostgreSQL database \
             the tests may create schemas in, e.g. \
             {DATABASE_URL_ENV}=postgres://postgres@127.0.0.1:5432/test"
        ),
    }
}

/// A tenant name for `test` (its last path segment), unique across threads and processes.
fn unique_name(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).wrapping_mul(0x9E37_79B9))
        .unwrap_or(0);
    let suffix = format!(
        "_{}_{}_{:06x}",
        std::process::id(),
        counter,
        nanos & 0xff_ffff
    );
    let name = test.rsplit("::").next().unwrap_or(test);
    let mut head: String = "t_".to_owned();
    head.extend(name.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        }
    }));
    // `head` is ASCII, so truncating at any byte index is valid.
    head.truncate(MAX_TENANT_NAME_LEN - suffix.len());
    head + &suffix
}

#[cfg(test)]
mod tests {
    use super::unique_name;
    use crate::tenant::Tenant;

    #[test]
    fn names_are_valid_and_unique() {
        let long = format!("tests::{}", "x".repeat(100));
        for test in ["a::b::creates_a_guard", "Ünïcode-Name", "", &long] {
            let (a, b) = (unique_name(test), unique_name(test));
            assert_ne!(a, b);
            Tenant::new(&a).unwrap_or_else(|e| panic!("{test:?} -> {a:?}: {e}"));
        }
        assert!(unique_name("m::creates_a_guard").starts_with("t_creates_a_guard_"));
    }
}
