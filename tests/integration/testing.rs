//! `#[tenancy::test]` and `tenancy::testing::TestTenant`: a fresh, migrated tenant per test,
//! gone afterwards, also after a panic. `#[tenancy::test]` finds its server itself
//! (`DATABASE_URL`, or the private cluster of `tenancy_testdb::database_url`); the other tests
//! here use `support::database_url()`, the same server.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tenancy::testing::{TestTenant, SWEEP_AFTER, TEST_REGISTRY};
use tenancy::{Tenant, TenantModel, Tenants};

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

/// The examples' `guards` table as a model.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards")]
struct Sentry {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
    position: String,
}

thread_local! {
    /// The tenant the last rollback test got, on the thread that ran it.
    static ROLLED_BACK_IN: RefCell<Option<Tenant>> = const { RefCell::new(None) };
}

/// Everything in one transaction: the tenant exists, migrated, on this connection only.
#[tenancy::test(rollback, migrations = "examples/migrations/tenant")]
async fn rollback_sees_its_tenant_alone(tenant: Tenant, conn: &mut PgConnection) {
    ROLLED_BACK_IN.with(|t| *t.borrow_mut() = Some(tenant.clone()));
    let abu = Sentry {
        id: 0,
        name: "Abu".into(),
        position: "Captain".into(),
    }
    .insert(&mut *conn, &tenant)
    .await
    .unwrap();
    // The search_path is the tenant's: unqualified names are its tables.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM guards")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((abu.id, rows), (1, 1));
    // Another connection sees neither the schema nor the registration.
    let other = support::pool().await;
    assert_eq!(
        schema_and_registration(&other, tenant.as_str()).await,
        (false, false)
    );
}

/// `&mut Transaction` instead of the connection, before the tenant; a savepoint inside.
#[tenancy::test(rollback, migrations = "examples/migrations/tenant")]
async fn rollback_takes_the_transaction(
    tx: &mut Transaction<'_, Postgres>,
    tenant: Tenant,
) -> Result<(), tenancy::Error> {
    ROLLED_BACK_IN.with(|t| *t.borrow_mut() = Some(tenant.clone()));
    let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
    Sentry {
        id: 0,
        name: "Kira".into(),
        position: "Guard".into(),
    }
    .insert(&mut *savepoint, &tenant)
    .await?;
    savepoint.rollback().await?;
    assert!(Sentry::find(&mut **tx, &tenant, 1_i64).await?.is_none());
    Ok(())
}

/// Fixtures run after the migrations, in the rollback transaction.
#[tenancy::test(
    rollback,
    migrations = "examples/migrations/tenant",
    fixtures("guards")
)]
async fn rollback_runs_fixtures(tenant: Tenant, conn: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM {}.guards ORDER BY id",
        tenant.quoted()
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(names, ["Abu", "Kira"]);
}

#[tenancy::test(rollback, migrations = "examples/migrations/tenant")]
#[should_panic(expected = "on purpose")]
async fn rollback_panics(tenant: Tenant, conn: &mut PgConnection) {
    ROLLED_BACK_IN.with(|t| *t.borrow_mut() = Some(tenant.clone()));
    sqlx::query("INSERT INTO guards (name, position) VALUES ('Abu', 'Captain')")
        .execute(&mut *conn)
        .await
        .unwrap();
    panic!("on purpose");
}

/// A failing `Result` fails a rollback test too (after the rollback).
#[tenancy::test(rollback, migrations = "examples/migrations/tenant")]
#[should_panic(expected = "Error: RowNotFound")]
async fn rollback_err_fails_the_test(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM guards")
        .fetch_one(&mut *conn)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_rollback_test_leaves_nothing() {
    fn run(test: fn()) -> Tenant {
        std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(test);
            ROLLED_BACK_IN.with(|t| t.borrow_mut().take()).unwrap()
        })
        .join()
        .unwrap()
    }
    let pool = support::pool().await;
    for test in [
        rollback_sees_its_tenant_alone as fn(),
        rollback_takes_the_transaction,
        rollback_panics,
    ] {
        let tenant = run(test);
        assert_eq!(
            schema_and_registration(&pool, tenant.as_str()).await,
            (false, false),
            "{tenant}"
        );
    }
}

/// Fixtures in committed mode: seeded in the creating transaction.
#[tenancy::test(migrations = "examples/migrations/tenant", fixtures("guards"))]
async fn committed_runs_fixtures(tenant: Tenant, pool: PgPool) {
    let found = Sentry::find(&pool, &tenant, 2_i64).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.position.as_str()),
        ("Kira", "Guard")
    );
}

thread_local! {
    /// The tenants `creates_tenants_of_its_own` made, on the thread that ran it.
    static MADE: RefCell<Vec<Tenant>> = const { RefCell::new(Vec::new()) };
}

/// Tenants the test makes through its `Tenants` argument are dropped with its own.
#[tenancy::test(migrations = "examples/migrations/tenant")]
async fn creates_tenants_of_its_own(tenants: Tenants) {
    let suffix = format!("{}_{}", std::process::id(), unique());
    let kept = tenants.create(format!("own_kept_{suffix}")).await.unwrap();
    let renamed = tenants.create(format!("own_old_{suffix}")).await.unwrap();
    let renamed = tenants
        .rename(&renamed, format!("own_new_{suffix}"))
        .await
        .unwrap();
    let dropped = tenants.create(format!("own_gone_{suffix}")).await.unwrap();
    tenants.drop(&dropped).await.unwrap();
    MADE.with(|m| *m.borrow_mut() = vec![kept, renamed, dropped]);
}

fn unique() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000
}

#[tokio::test]
async fn tenants_a_test_creates_are_dropped() {
    let made = std::thread::spawn(|| {
        creates_tenants_of_its_own();
        MADE.with(|m| m.borrow_mut().split_off(0))
    })
    .join()
    .unwrap();
    assert_eq!(made.len(), 3);
    let pool = support::pool().await;
    for tenant in made {
        assert_eq!(
            schema_and_registration(&pool, tenant.as_str()).await,
            (false, false),
            "{tenant}"
        );
    }
}

/// A leftover of a killed run (a process that is gone, older than `SWEEP_AFTER`) is swept; a
/// young one is not.
#[tokio::test]
async fn sweep_drops_leftovers_of_gone_processes() {
    let pool = support::pool().await;
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(MIGRATIONS))
        .await
        .unwrap();
    let tenants = Tenants::new(pool.clone(), migrator)
        .unwrap()
        .with_registry(TEST_REGISTRY)
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // No process has pid 4194304 or above on Linux (its maximum pid).
    let dead = 4_194_304 + unique() as u64;
    let name = |secs: u64| format!("t_leftover_{dead}_0_{:08x}0000", secs as u32);
    let old = tenants
        .create(name(now - SWEEP_AFTER.as_secs() - 60))
        .await
        .unwrap();
    let young = tenants.create(name(now)).await.unwrap();
    tenancy::testing::sweep(pool.clone()).await.unwrap();
    let old_left = schema_and_registration(&pool, old.as_str()).await;
    let young_left = schema_and_registration(&pool, young.as_str()).await;
    tenants.drop(&young).await.unwrap();
    assert_eq!(old_left, (false, false), "swept");
    assert_eq!(young_left, (true, true), "too young to sweep");
}

/// MySQL / MariaDB (`MYSQL_URL`): a committed tenant database with fixtures.
#[tenancy::test(
    backend = "mysql",
    migrations = "examples/migrations/mysql/tenant",
    fixtures("guards")
)]
async fn mysql_tenant_with_fixtures(
    tenant: Tenant,
    pool: sqlx::MySqlPool,
    tenants: Tenants<sqlx::MySql>,
) {
    assert!(tenants.exists(&tenant).await.unwrap());
    let sql = format!("SELECT name FROM `{}`.guards ORDER BY id", tenant.as_str());
    let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["Abu", "Kira"]);
}

/// A failing fixture fails the creation and leaves no tenant (PostgreSQL: in the creating
/// transaction; MySQL: the tenant is dropped again).
#[tokio::test]
async fn a_failing_fixture_leaves_no_tenant() {
    let test = format!("tests::bad_fixture_{}", unique());
    let pool = support::pool().await;
    let err = TestTenant::create_with_fixtures(
        pool.clone(),
        MIGRATIONS,
        &test,
        &[
            "INSERT INTO guards (name, position) VALUES ('Abu', 'Guard')",
            "INSERT INTO nowhere VALUES (1)",
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, tenancy::Error::Hook { .. }), "{err:?}");
    let prefix = format!(
        "t_bad_fixture_{}_{}_%",
        unique_suffix(&test),
        std::process::id()
    );
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _tenancy_test.tenants WHERE name LIKE $1")
            .bind(&prefix)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, 0, "{prefix}");

    let my = sqlx::MySqlPool::connect(&crate::backends::mysql::mysql_url())
        .await
        .unwrap();
    let mysql_migrations = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/mysql/tenant"
    );
    let err = TestTenant::create_with_fixtures(
        my.clone(),
        mysql_migrations,
        &test,
        &["INSERT INTO nowhere VALUES (1)"],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, tenancy::Error::Hook { .. }), "{err:?}");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE ?",
    )
    .bind(&prefix)
    .fetch_one(&my)
    .await
    .unwrap();
    assert_eq!(left, 0, "{prefix}");
}

/// The numeric part of a `tests::bad_fixture_<n>` name.
fn unique_suffix(test: &str) -> &str {
    test.rsplit('_').next().unwrap()
}

/// A set-up that fails panics with the whole cause chain: the database's own message (which
/// names the missing table) is in the `source()` of the migration's error only.
#[tenancy::test(migrations = "tests/integration/migrations/failing")]
#[should_panic(expected = "no_such_table_for_the_chain")]
async fn a_failing_setup_prints_its_causes() {}

/// The same on SQLite.
#[tenancy::test(
    backend = "sqlite",
    migrations = "tests/integration/migrations/failing"
)]
#[should_panic(expected = "no_such_table_for_the_chain")]
async fn a_failing_setup_prints_its_causes_on_sqlite() {}

thread_local! {
    /// The folder and tenant file `sqlite_tenant_with_fixtures_on_sqlite` ran in, on its thread.
    static SQLITE_RAN_IN: RefCell<Option<(std::path::PathBuf, std::path::PathBuf)>> =
        const { RefCell::new(None) };
}

/// SQLite: no server, a temporary folder per test; the tenant is a migrated, seeded file in it,
/// reached through its own `TenantPool`.
#[tenancy::test(
    backend = "sqlite",
    migrations = "examples/migrations/sqlite/tenant",
    fixtures("guards")
)]
async fn sqlite_tenant_with_fixtures_on_sqlite(
    tenant: Tenant,
    db: tenancy::TenantPool<sqlx::Sqlite>,
    tenants: Tenants<sqlx::Sqlite>,
) {
    assert_eq!(tenants.registry().as_str(), TEST_REGISTRY);
    assert!(tenants.exists(&tenant).await.unwrap());
    assert_eq!(db.tenant(), &tenant);
    let folder = tenants.folder().to_owned();
    let file = folder.join(format!("{}.db", tenant.as_str()));
    assert!(file.is_file(), "{}", file.display());
    assert!(
        folder.starts_with(std::env::temp_dir()),
        "{}",
        folder.display()
    );
    SQLITE_RAN_IN.with(|r| *r.borrow_mut() = Some((folder, file)));
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM guards ORDER BY id")
        .fetch_all(db.sqlx_pool())
        .await
        .unwrap();
    assert_eq!(names, ["Abu", "Kira"]);
    // A model operation through the tenant's executor.
    let found = SqliteSentry::find(&db, &tenant, 2_i64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.position, "Guard");
}

/// The examples' SQLite `guards` table as a model.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "sqlite")]
struct SqliteSentry {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
    position: String,
}

/// Two SQLite tests never share a folder, and the folder is gone after the test.
#[test]
fn a_sqlite_test_removes_its_folder_on_sqlite() {
    let ran_in = |test: fn()| {
        std::thread::spawn(move || {
            test();
            SQLITE_RAN_IN.with(|r| r.borrow_mut().take()).unwrap()
        })
        .join()
        .unwrap()
    };
    let (first, file) = ran_in(sqlite_tenant_with_fixtures_on_sqlite);
    let (second, _) = ran_in(sqlite_tenant_with_fixtures_on_sqlite);
    assert_ne!(first, second);
    assert!(!file.exists(), "{}", file.display());
    assert!(!first.exists(), "{}", first.display());
    assert!(!second.exists(), "{}", second.display());
}

/// A panicking SQLite test removes its folder too.
#[tenancy::test(backend = "sqlite", migrations = "examples/migrations/sqlite/tenant")]
#[should_panic(expected = "on purpose")]
async fn panics_on_sqlite(tenants: Tenants<sqlx::Sqlite>, tenant: Tenant) {
    let file = tenants.folder().join(format!("{}.db", tenant.as_str()));
    SQLITE_RAN_IN.with(|r| *r.borrow_mut() = Some((tenants.folder().to_owned(), file)));
    panic!("on purpose");
}

#[test]
fn a_panicking_sqlite_test_removes_its_folder_on_sqlite() {
    let (folder, _) = std::thread::spawn(|| {
        let _ = std::panic::catch_unwind(panics_on_sqlite);
        SQLITE_RAN_IN.with(|r| r.borrow_mut().take()).unwrap()
    })
    .join()
    .unwrap();
    assert!(!folder.exists(), "{}", folder.display());
}

/// On a Citus coordinator (`DATABASE_URL=$CITUS_URL`, see `.ci/run`) the test's handle knows
/// it is Citus and the tenant is a distributed schema, its tables on one worker; on plain
/// PostgreSQL the handle says so. Each test's handle is built anew, so this also covers the
/// shortcut that lets later tests skip the registry's check (the flavour comes with it).
#[tenancy::test(migrations = "examples/migrations/tenant")]
async fn the_flavour_is_the_servers(tenant: Tenant, pool: PgPool, tenants: Tenants) {
    use tenancy::postgres::Flavour;
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&pool)
            .await
            .unwrap();
    let flavour = tenants.flavour().await.unwrap();
    if !citus {
        assert_eq!(flavour, Flavour::Postgres);
        return;
    }
    assert_eq!(flavour, Flavour::Citus);
    let distributed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1))",
    )
    .bind(tenant.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(distributed, "{tenant} is not a distributed schema");
    let placement = tenants.placement_of(&tenant).await.unwrap();
    assert!(placement.is_some(), "{tenant} has no worker: {placement:?}");
}
