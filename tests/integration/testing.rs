//! `#[tenancy::test]` and `tenancy::testing::TestTenant`: a fresh, migrated tenant per test,
//! gone afterwards, also after a panic. `#[tenancy::test]` reads `DATABASE_URL` itself; the
//! other tests here use `support::database_url()`, which is the same when it is set.

use std::cell::RefCell;

use sqlx::PgPool;
use tenancy::testing::{TestTenant, TEST_REGISTRY};
use tenancy::{Tenant, Tenants};

use crate::support;

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations/tenant");

/// Whether `tenant`'s schema exists, and whether it is registered in the test registry.
async fn schema_and_registration(pool: &PgPool, tenant: &str) -> (bool, bool) {
    let schema: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap();
    let registered: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _tenancy_test.tenants WHERE name = $1)")
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap();
    (schema, registered)
}

#[tenancy::test(migrations = "examples/migrations/tenant")]
async fn the_tenant_exists_and_is_migrated(tenant: Tenant, pool: PgPool, tenants: Tenants) {
    assert_eq!(tenants.registry().as_str(), TEST_REGISTRY);
    assert!(tenants.exists(&tenant).await.unwrap());
    assert!(tenant
        .as_str()
        .starts_with("t_the_tenant_exists_and_is_migrated_"));
    assert_eq!(
        schema_and_registration(&pool, tenant.as_str()).await,
        (true, true)
    );
    // The example's migration made `guards` in the tenant's schema.
    let sql = format!(
        "INSERT INTO {}.guards (name, position) VALUES ('Abu', 'Captain') RETURNING id",
        tenant.quoted()
    );
    let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(id, 1);
    let status = tenants.status_of(&tenant).await.unwrap();
    assert!(status.pending.is_empty(), "{status:?}");
}

/// Arguments in any order and number, a `Result` return type, `sqlx::Pool<Postgres>` spelt out.
#[tenancy::test(migrations = "examples/migrations/tenant")]
async fn takes_arguments_in_any_order(
    pool: sqlx::Pool<sqlx::Postgres>,
    tenant: Tenant,
    again: Tenant,
) -> Result<(), sqlx::Error> {
    assert_eq!(tenant, again);
    let sql = format!("SELECT count(*) FROM {}.guards", tenant.quoted());
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await?;
    assert_eq!(rows, 0);
    Ok(())
}

/// Two tests never share a tenant (each sees an empty `guards`, see above).
#[tenancy::test(migrations = "examples/migrations/tenant")]
async fn takes_no_argument() {}

thread_local! {
    /// The tenant `panics_after_writing` got, on the thread that ran it.
    static PANICKED_IN: RefCell<Option<Tenant>> = const { RefCell::new(None) };
}

/// Panics holding an open transaction that wrote to its tenant. Run by the harness (which
/// expects the panic) and by `a_panicking_test_drops_its_tenant`.
#[tenancy::test(migrations = "examples/migrations/tenant")]
#[should_panic(expected = "on purpose")]
async fn panics_after_writing(tenant: Tenant, pool: PgPool) {
    PANICKED_IN.with(|t| *t.borrow_mut() = Some(tenant.clone()));
    let mut tx = pool.begin().await.unwrap();
    let sql = format!(
        "INSERT INTO {}.guards (name, position) VALUES ('Abu', 'Captain')",
        tenant.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .unwrap();
    panic!("on purpose");
}

/// A failing `Result` fails the test (after its tenant is dropped).
#[tenancy::test(migrations = "examples/migrations/tenant")]
#[should_panic(expected = "Error: \"on purpose\"")]
async fn an_err_fails_the_test() -> Result<(), &'static str> {
    Err("on purpose")
}

#[tokio::test]
async fn a_panicking_test_drops_its_tenant() {
    // The generated `#[test]` function, called on this thread: it panics after dropping.
    let panic = std::thread::spawn(|| {
        let panic = std::panic::catch_unwind(panics_after_writing).unwrap_err();
        (panic, PANICKED_IN.with(|t| t.borrow_mut().take()).unwrap())
    })
    .join()
    .unwrap();
    let (payload, tenant) = panic;
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"on purpose"));
    let pool = support::pool().await;
    assert_eq!(
        schema_and_registration(&pool, tenant.as_str()).await,
        (false, false)
    );
}

#[tokio::test]
async fn run_drops_the_tenant_after_the_body() {
    let pool = support::pool().await;
    let test = TestTenant::create(pool.clone(), MIGRATIONS, "tests::run_drops")
        .await
        .unwrap();
    let tenant = test.tenant().clone();
    assert!(tenant.as_str().starts_with("t_run_drops_"), "{tenant}");
    let inside = test
        .clone()
        .run(schema_and_registration(&pool, tenant.as_str()))
        .await;
    assert_eq!(inside, (true, true));
    assert_eq!(
        schema_and_registration(&pool, tenant.as_str()).await,
        (false, false)
    );
}

#[tokio::test]
async fn run_drops_the_tenant_when_the_body_panics() {
    let pool = support::pool().await;
    let test = TestTenant::create(pool.clone(), MIGRATIONS, "tests::run_panics")
        .await
        .unwrap();
    let tenant = test.tenant().clone();
    let body = async { panic!("in the body") };
    let payload = tokio::spawn(test.run(body)).await.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the body"));
    assert_eq!(
        schema_and_registration(&pool, tenant.as_str()).await,
        (false, false)
    );
}
