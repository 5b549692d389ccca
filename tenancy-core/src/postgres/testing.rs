//! PostgreSQL's side of `#[tenancy::test]`: the test database (`DATABASE_URL`), one sweep at a
//! time, and the rollback mode (`#[tenancy::test(rollback)]`), where everything the test does
//! stays in one transaction that is never committed.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::migrate::{Migration, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Pool, Postgres, Transaction};

use super::citus::Flavour;
use super::sql;
use crate::error::Error;
use crate::lifecycle::Tenants;
use crate::tenant::Tenant;
use crate::testing::{
    causes, database_url, drop_stale, runtime, unique_name, TestArg, TestBackend, TestOutput,
    TestTenant, DATABASE_URL_ENV, TEST_REGISTRY,
};

/// A pool on the test database (every tenant's schema is reachable through it).
impl TestArg<Postgres> for Pool<Postgres> {
    fn from_test(test: &TestTenant<Postgres>) -> Self {
        test.pool().clone()
    }
}

impl TestBackend for Postgres {
    const URL_ENV: &'static str = DATABASE_URL_ENV;

    #[cfg(unix)]
    fn private_server_url() -> Result<String, String> {
        tenancy_testdb::database_url().map_err(|e| e.to_string())
    }

    const EXAMPLE_URL: &'static str = "postgres://postgres@127.0.0.1:5432/test";

    fn handle(pool: Pool<Self>, migrator: Migrator) -> Result<Tenants<Self>, Error> {
        let tenants = Tenants::new(pool, migrator)?.with_registry(TEST_REGISTRY)?;
        if let Some(flavour) = registry_ready(tenants.pool(), None) {
            tenants.pg().assume_registry(flavour);
        }
        Ok(tenants)
    }

    fn created(tenants: &Tenants<Self>, created: bool) {
        if created {
            registry_ready(tenants.pool(), Some(tenants.pg().flavour_now()));
        }
    }

    fn sweep(tenants: &Tenants<Self>) -> BoxFuture<'_, Result<usize, Error>> {
        Box::pin(async move {
            tenants.pg().ensure_registry().await?;
            // The lock lives as long as this transaction; drops run on other connections.
            let mut lock = tenants.pool().begin().await?;
            let got: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(format!("tenancy-test-sweep:{TEST_REGISTRY}"))
                    .fetch_one(&mut *lock)
                    .await?;
            if !got {
                return Ok(0);
            }
            let swept = drop_stale(tenants).await;
            lock.rollback().await?;
            swept
        })
    }
}

/// The flavour of the server of `pool`'s database if this process made sure of the test
/// registry there (a connection per test then saves a round trip, and a Citus server is known
/// as one); `ready` records that it did, on a server of that flavour.
fn registry_ready(pool: &Pool<Postgres>, ready: Option<Flavour>) -> Option<Flavour> {
    static READY: Mutex<Vec<(String, Flavour)>> = Mutex::new(Vec::new());
    let options = pool.connect_options();
    let key = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    let mut known = READY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, flavour)) = known.iter().find(|(k, _)| *k == key) {
        return Some(*flavour);
    }
    if let Some(flavour) = ready {
        known.push((key, flavour));
    }
    ready
}

/// A fresh tenant, migrated (and seeded with fixtures, if any) inside one transaction on one
/// connection that is never committed: the rollback mode of `#[tenancy::test(rollback)]`
/// (PostgreSQL).
///
/// The transaction holds the tenant's registration in [`TEST_REGISTRY`], its `CREATE SCHEMA`,
/// its migrations and fixtures, then whatever the test does through
/// [`conn`](Self::conn) / [`transaction`](Self::transaction); [`rollback`](Self::rollback)
/// (or dropping it) undoes all of it and closes the connection. Other connections never see
/// the tenant. The transaction's `search_path` is the tenant's schema, so unqualified names in
/// the test's SQL mean the tenant's tables. `conn.begin()` inside makes a savepoint.
///
/// ```no_run
/// # async fn demo() -> Result<(), tenancy_core::Error> {
/// use tenancy_core::postgres::RollbackTenant;
/// let url = "postgres://postgres@127.0.0.1:5432/test";
/// let mut test = RollbackTenant::begin(url, "migrations/tenant", "seeds", &[]).await?;
/// sqlx::query("INSERT INTO guards (name, position) VALUES ('Abu', 'Guard')")
///     .execute(test.conn())
///     .await?;
/// test.rollback().await?; // nothing of it was ever committed
/// # Ok(()) }
/// ```
pub struct RollbackTenant {
    tenant: Tenant,
    tx: Transaction<'static, Postgres>,
    pool: Pool<Postgres>,
}

debug_fields!(RollbackTenant { tenant, .. });

impl RollbackTenant {
    /// Opens one connection to `url`, begins a transaction and creates in it a tenant named
    /// after `test` (made unique) with the migrations in the folder `migrations`, then runs
    /// each of `fixtures` in it. The test registry itself is created (committed) if missing.
    pub async fn begin(
        url: &str,
        migrations: impl AsRef<Path>,
        test: &str,
        fixtures: &[&str],
    ) -> Result<Self, Error> {
        let migrator = crate::testing::migrator(migrations).await?;
        let pool = PoolOptions::<Postgres>::new()
            .max_connections(1)
            .connect(url)
            .await?;
        let tenants = Postgres::handle(pool.clone(), migrator)?;
        let store = tenants.pg();
        store.ensure_registry().await?;
        registry_ready(&pool, Some(store.flavour_now()));
        let tenant = tenants.parse(unique_name(test))?;
        let ups: Vec<&Migration> = tenants.migrations().ups().collect();
        let sent = store.as_sent(&tenant, &ups);
        let sent: Vec<&Migration> = sent.iter().collect();
        let mut batch = String::new();
        if store.on_citus() {
            // The tenant's schema is distributed, as a committed create makes it.
            batch.push_str(super::citus::SHARDING_ON);
            batch.push_str(";\n");
        }
        batch.push_str(&sql::create_batch(
            tenants.registry(),
            &tenant,
            &sent,
            store.batch(),
        ));
        batch.push_str(&sql::set_local_search_path(&tenant, store.batch()));
        batch.push_str(";\n");
        for fixture in fixtures {
            batch.push_str(fixture);
            batch.push_str("\n;\n");
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(batch))
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::from(e).about(&tenant))?;
        Ok(RollbackTenant { tenant, tx, pool })
    }

    /// The test's tenant (it exists in this transaction only).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The connection, inside the transaction.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The transaction.
    pub fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }

    /// Rolls everything back and closes the connection.
    pub async fn rollback(self) -> Result<(), Error> {
        let rolled_back = self.tx.rollback().await;
        self.pool.close().await;
        Ok(rolled_back?)
    }
}

/// A value a `#[tenancy::test(rollback)]` function can take as an argument: its tenant, or
/// (one of) its connection or transaction, borrowed for the test.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a `#[tenancy::test(rollback)]` function",
    label = "not an argument a rollback test can ask for",
    note = "a `#[tenancy::test(rollback)]` function takes any of: `tenancy::Tenant` (its tenant) and one of `&mut sqlx::PgConnection` or `&mut sqlx::Transaction<'_, sqlx::Postgres>` (the one connection, inside the transaction that is rolled back); a pool or `Tenants` would use other connections, which cannot see the uncommitted tenant: for those, remove `rollback`"
)]
pub trait RollbackArg<'c>: Sized {
    /// The value for the test of `test`.
    fn from_rollback(test: &'c mut RollbackTenant) -> Self;
}

impl<'c> RollbackArg<'c> for Tenant {
    fn from_rollback(test: &'c mut RollbackTenant) -> Self {
        test.tenant.clone()
    }
}

impl<'c> RollbackArg<'c> for &'c mut PgConnection {
    fn from_rollback(test: &'c mut RollbackTenant) -> Self {
        test.conn()
    }
}

impl<'c> RollbackArg<'c> for &'c mut Transaction<'static, Postgres> {
    fn from_rollback(test: &'c mut RollbackTenant) -> Self {
        test.transaction()
    }
}

/// The body of the `#[test]` function `#[tenancy::test(rollback)]` generates: on a
/// current-thread tokio runtime, begins the test's [`RollbackTenant`] on `DATABASE_URL`, runs
/// `body` with it and rolls everything back, also when `body` panics.
#[doc(hidden)]
pub fn __run_rollback<F, O>(test: &str, migrations: &str, fixtures: &[&str], body: F)
where
    F: for<'c> FnOnce(&'c mut RollbackTenant) -> Pin<Box<dyn Future<Output = O> + 'c>>,
    O: TestOutput,
{
    let output = runtime().block_on(async move {
        let url = database_url::<Postgres>();
        let mut test_tenant = RollbackTenant::begin(&url, migrations, test, fixtures)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "#[tenancy::test(rollback)]: cannot create the tenant of {test} \
                     with the migrations of {migrations} on {DATABASE_URL_ENV} ({url}): {}",
                    causes(&e)
                )
            });
        let result = AssertUnwindSafe(body(&mut test_tenant))
            .catch_unwind()
            .await;
        let tenant = test_tenant.tenant().clone();
        let rolled_back = test_tenant.rollback().await;
        match (result, rolled_back) {
            (Ok(output), Ok(())) => output,
            // Nothing was committed: a failed rollback (a broken connection) leaves nothing.
            (Ok(output), Err(e)) => {
                eprintln!(
                    "#[tenancy::test(rollback)]: rolling back {tenant}: {}",
                    causes(&e)
                );
                output
            }
            (Err(panic), _) => resume_unwind(panic),
        }
    });
    if let Err(message) = output.into_result() {
        panic!("{message}");
    }
}
