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

/// Sweeps until `name` is no tenant of `tenants` any more, a few seconds at most: one process
/// sweeps at a time (an advisory lock), and a sweep that finds another running (the other
/// sweep test's, or the first `#[tenancy::test]`'s of the process) does nothing.
async fn sweep_until_gone(pool: &PgPool, tenants: &Tenants, name: &str) {
    for _ in 0..50 {
        tenancy::testing::sweep(pool.clone()).await.unwrap();
        if !tenants.exists(name).await.unwrap() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
    sweep_until_gone(&pool, &tenants, old.as_str()).await;
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
async fn a_failing_setup_prints_its_causes_on_postgres() {}

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

// `#[tenancy::test(row_level)]`: the test's tenant is a row-level tenant in a fresh, migrated
// container made for it (tests/integration/migrations/rows/<backend>: `guards` with
// `tenant_id`); the fixture's rows naming `test_tenant` become the tenant's. Each backend's
// test records what it ran in, and a following test asserts both are gone.

thread_local! {
    /// The row-level tenant (placed in its container) the last `row_level` test got, and what
    /// it saw of them in the registry, on the thread that ran it.
    static ROW_LEVEL_RAN_IN: RefCell<Option<Tenant>> = const { RefCell::new(None) };
}

/// The tenant and the rows a `row_level` test sees, asserted the same on every backend: `db`
/// is the tenant's executor, `stored` the container's `guards` as stored (tenant, name), read
/// with raw SQL bypassing the library.
macro_rules! row_level_test {
    ($test:ident, $model:ident, $backend:literal, $db:ty, $migrations:literal, $stored:path) => {
        /// The row-level tests' `guards` of this backend, its rows' tenant in `tenant_id`.
        #[derive(TenantModel, Debug, Clone, PartialEq)]
        #[tenancy(table = "guards", tenant_column = "tenant_id", backend = $backend)]
        struct $model {
            #[tenancy(id, generated)]
            id: i64,
            name: String,
            position: String,
        }

        #[tenancy::test(row_level, backend = $backend, migrations = $migrations, fixtures("guards"))]
        async fn $test(tenant: Tenant, tenants: Tenants<$db>, db: tenancy::TenantPool<$db>) {
            ROW_LEVEL_RAN_IN.with(|t| *t.borrow_mut() = Some(tenant.clone()));
            assert!(tenant.is_row_level(), "{tenant:?}");
            assert_ne!(tenant.as_str(), tenant.container());
            assert!(tenant.as_str().starts_with("t_"), "{tenant}");
            assert!(tenant.container().starts_with("t_"), "{tenant:?}");
            assert_eq!(tenants.registry().as_str(), TEST_REGISTRY);
            // Registered as row-level in that container, the container as a tenant of its own.
            let resolved = tenants.tenant(tenant.as_str()).await.unwrap();
            assert_eq!(
                (resolved.is_row_level(), resolved.container()),
                (true, tenant.container())
            );
            assert!(!tenants
                .tenant(tenant.container())
                .await
                .unwrap()
                .is_row_level());
            assert_eq!(db.tenant(), &tenant);

            // The fixture's rows naming `test_tenant` are the tenant's; the other one is not.
            let seeded: Vec<String> = $model::query(&tenant)
                .order_by($model::ID.asc())
                .fetch_all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.into_inner().name)
                .collect();
            assert_eq!(seeded, ["Abu", "Kira"]);

            // A model with the tenant column inserts and reads back through the tenant.
            let ana = $model {
                id: 0,
                name: "Ana".into(),
                position: "Cook".into(),
            }
            .insert(&db, &tenant)
            .await
            .unwrap();
            assert_eq!(ana.tenant(), &tenant);
            let found = $model::find(&db, &tenant, ana.id).await.unwrap().unwrap();
            assert_eq!((found.name.as_str(), found.position.as_str()), ("Ana", "Cook"));
            assert_eq!($model::query(&tenant).count(&db).await.unwrap(), 3);

            // As stored in the container's table: each of its rows carries its name.
            let me = tenant.as_str().to_owned();
            let row = |who: &str, name: &str| (who.to_owned(), name.to_owned());
            assert_eq!(
                $stored(&db, tenant.container()).await,
                [
                    row(&me, "Abu"),
                    row("someone_else", "Zed"),
                    row(&me, "Kira"),
                    row(&me, "Ana")
                ]
            );
        }
    };
}

/// The container's `guards` as stored, (tenant_id, name) by id, on PostgreSQL.
async fn stored_in_schema(
    db: &tenancy::TenantPool<Postgres>,
    container: &str,
) -> Vec<(String, String)> {
    let container = Tenant::new(container).unwrap();
    let sql = format!(
        "SELECT tenant_id, name FROM {}.guards ORDER BY id",
        container.quoted()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.sqlx_pool())
        .await
        .unwrap()
}

/// The same on MySQL / MariaDB.
async fn stored_in_database(
    db: &tenancy::TenantPool<sqlx::MySql>,
    container: &str,
) -> Vec<(String, String)> {
    let sql = format!("SELECT tenant_id, name FROM `{container}`.guards ORDER BY id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.sqlx_pool())
        .await
        .unwrap()
}

/// The same on SQLite: the tenant's executor is its container's file (recorded, with its
/// folder, in `SQLITE_RAN_IN`).
async fn stored_in_file(
    db: &tenancy::TenantPool<sqlx::Sqlite>,
    container: &str,
) -> Vec<(String, String)> {
    let file = db.sqlx_pool().connect_options().get_filename().to_owned();
    assert_eq!(
        file.file_name().unwrap().to_str(),
        Some(format!("{container}.db").as_str())
    );
    assert!(file.is_file(), "{}", file.display());
    let folder = file.parent().unwrap().to_owned();
    SQLITE_RAN_IN.with(|r| *r.borrow_mut() = Some((folder, file)));
    sqlx::query_as("SELECT tenant_id, name FROM guards ORDER BY id")
        .fetch_all(db.sqlx_pool())
        .await
        .unwrap()
}

row_level_test!(
    row_level_tenant_in_a_container_of_its_own_on_postgres,
    PgRowSentry,
    "postgres",
    Postgres,
    "tests/integration/migrations/rows/postgres",
    stored_in_schema
);

row_level_test!(
    mysql_row_level_tenant_in_a_container_of_its_own,
    MySqlRowSentry,
    "mysql",
    sqlx::MySql,
    "tests/integration/migrations/rows/mysql",
    stored_in_database
);

row_level_test!(
    row_level_tenant_in_a_container_of_its_own_on_sqlite,
    SqliteRowSentry,
    "sqlite",
    sqlx::Sqlite,
    "tests/integration/migrations/rows/sqlite",
    stored_in_file
);

/// Runs the generated `#[test]` function `test` on a thread of its own; the row-level tenant
/// it got.
fn row_level_run(test: fn()) -> Tenant {
    std::thread::spawn(move || {
        test();
        ROW_LEVEL_RAN_IN.with(|t| t.borrow_mut().take()).unwrap()
    })
    .join()
    .unwrap()
}

/// After a `row_level` test, its tenant and its container are gone: neither registered nor
/// the container's schema there.
#[tokio::test]
async fn a_row_level_test_drops_its_tenant_and_its_container() {
    let tenant = row_level_run(row_level_tenant_in_a_container_of_its_own_on_postgres);
    let pool = support::pool().await;
    let tenants = Tenants::new(pool.clone(), sqlx::migrate::Migrator::DEFAULT)
        .unwrap()
        .with_registry(TEST_REGISTRY)
        .unwrap();
    assert!(!tenants.exists(tenant.as_str()).await.unwrap(), "{tenant}");
    assert!(
        !tenants.exists(tenant.container()).await.unwrap(),
        "{tenant:?}"
    );
    assert_eq!(
        schema_and_registration(&pool, tenant.container()).await,
        (false, false)
    );
}

/// The same on MySQL / MariaDB: the container's database is gone too.
#[tokio::test]
async fn mysql_a_row_level_test_drops_its_tenant_and_its_container() {
    let tenant = row_level_run(mysql_row_level_tenant_in_a_container_of_its_own);
    let my = sqlx::MySqlPool::connect(&crate::backends::mysql::mysql_url())
        .await
        .unwrap();
    let tenants = Tenants::new(my.clone(), sqlx::migrate::Migrator::DEFAULT)
        .unwrap()
        .with_registry(TEST_REGISTRY)
        .unwrap();
    assert!(!tenants.exists(tenant.as_str()).await.unwrap(), "{tenant}");
    assert!(
        !tenants.exists(tenant.container()).await.unwrap(),
        "{tenant:?}"
    );
    let databases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(tenant.container())
    .fetch_one(&my)
    .await
    .unwrap();
    assert_eq!(databases, 0, "{tenant:?}");
}

/// On SQLite the test ran in a folder of its own, holding the registry and the container's
/// file: after the test, the folder is gone (the teardown dropped the tenant, then the
/// container, or it would have failed the test).
#[test]
fn a_row_level_test_removes_its_folder_on_sqlite() {
    let (tenant, (folder, file)) = std::thread::spawn(|| {
        row_level_tenant_in_a_container_of_its_own_on_sqlite();
        let tenant = ROW_LEVEL_RAN_IN.with(|t| t.borrow_mut().take()).unwrap();
        (
            tenant,
            SQLITE_RAN_IN.with(|r| r.borrow_mut().take()).unwrap(),
        )
    })
    .join()
    .unwrap();
    assert!(tenant.is_row_level());
    assert!(!file.exists(), "{}", file.display());
    assert!(!folder.exists(), "{}", folder.display());
}

/// What a killed `row_level` test leaves (its container and the row-level tenant in it, both
/// old and of a gone process) is swept, the row-level tenant first: the container sorts
/// before it by name, and a container holding a row-level tenant cannot be dropped.
#[tokio::test]
async fn sweep_drops_a_row_level_leftover_and_its_container() {
    let pool = support::pool().await;
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/migrations/rows/postgres"
    )))
    .await
    .unwrap();
    let tenants = Tenants::new(pool.clone(), migrator)
        .unwrap()
        .with_registry(TEST_REGISTRY)
        .unwrap();
    let old = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - SWEEP_AFTER.as_secs()
        - 60;
    let dead = 4_194_304 + unique() as u64;
    let name = |counter: u32| format!("t_leftrows_{dead}_{counter}_{:08x}0000", old as u32);
    let container = tenants.create(name(0)).await.unwrap();
    let tenant = tenants.create_in(name(1), &container).await.unwrap();
    assert!(tenant.is_row_level());
    sweep_until_gone(&pool, &tenants, tenant.as_str()).await;
    let left = (
        tenants.exists(tenant.as_str()).await.unwrap(),
        schema_and_registration(&pool, container.as_str()).await,
    );
    if left.0 {
        let _ = tenants.drop(&tenant).await;
    }
    let _ = tenants.drop(&container).await;
    assert_eq!(left, (false, (false, false)), "swept, both");
}
