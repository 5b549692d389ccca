//! The shared behaviours on MySQL / MariaDB, a database per tenant, against a real server:
//! `MYSQL_URL`, or else a private throwaway server started from the installed `mariadbd` /
//! `mysqld` (`tenancy_testdb::mysql_url`). Without either these tests are not run (the binary
//! says so), unless `MYSQL_URL` or `TENANCY_TEST_BACKENDS` asks for them: then they fail, saying
//! how to point them at a server. Then what only MySQL does.

use sqlx::migrate::{Migration, MigrationType};
use tenancy::{Changeset, Error, Tenant, TenantModel, Tenants};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{in_container, migration, migrator, MYSQL};

use crate::assert_err;

// The shared behaviours, one module per concern (the harness's whole point).
crate::backends::shared::mount!(all);

pub type Db = sqlx::MySql;
pub type Pool = sqlx::MySqlPool;

/// Whether a row-level tenant's drop or rename puts the placement guard on its container's
/// tables, so that a write through a `Tenant` resolved before it is refused (`NotPlaced`).
pub const GUARDS_ROWS: bool = true;
/// DDL commits implicitly: a failed migration keeps what it did and is reported, not undone.
/// Whether `promote`/`demote` move tenants between tiers here (elsewhere they are refused).
pub const MOVES_TIERS: bool = true;
/// Whether an insert reads its row back in a statement of its own (no `RETURNING`): one for a
/// tenant's own container can then report `UnknownTenant` for a row a demote took along (see
/// README, "a tenant that outgrows the shared tables").
/// Not through the handle on MariaDB 10.5+, the tests' server: an insert returns its row there
/// (`on_mariadb_an_insert_through_the_handle_returns_its_row_in_one_statement`).
pub const INSERT_READS_BACK: bool = false;
/// Whether a promote copies, after its first pass, the rows inserted meanwhile (a step of its
/// progress of its own, `RelocatePhase::CatchingUp`).
pub const CATCHES_UP: bool = false;
pub const ATOMIC_DDL: bool = false;
pub const MAX_BIND_PARAMS: usize = <Db as tenancy::Backend>::MAX_BIND_PARAMS;
/// A database that always exists.
/// The `db.system` of its statements' spans.
pub const DB_SYSTEM: &str = "mysql";
pub const SERVER_CONTAINER: &str = "mysql";
/// A migration statement the server refuses.
pub const FAILING: &str = "ALTER TABLE nope ADD x INT";
/// A migration that fails only in a tenant whose name starts with `bad` (the clone tests'
/// failure in the clone's own migrations).
pub const FAILS_WHERE_BAD: Option<&str> = Some(
    "CREATE PROCEDURE gate() BEGIN IF DATABASE() LIKE 'bad%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF; END;
CALL gate();
DROP PROCEDURE gate",
);
/// Adds the column v2 adds, so v2 fails in that tenant (`{t}`: the database).
pub const ADD_BADGE_INT: &str = "ALTER TABLE {t}.guards ADD COLUMN badge INT";

crate::guard_model!("mysql");

/// A model whose key the application chooses, with a unique column to make a server error.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges", backend = "mysql")]
pub struct Badge {
    #[tenancy(id)]
    pub code: String,
    pub holder: String,
}

/// A model with an unsigned generated key (MySQL only: PostgreSQL has no unsigned integers).
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "tickets", backend = "mysql")]
pub struct Ticket {
    #[tenancy(id, generated)]
    pub id: u64,
    pub seat: u32,
}

pub const V1_GUARDS: &str = MYSQL.guards;
const TICKETS: &str =
    "CREATE TABLE tickets (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, seat INT UNSIGNED NOT NULL)";

pub fn v1() -> Vec<Migration> {
    MYSQL.v1()
}

pub fn v2() -> Vec<Migration> {
    MYSQL.v2()
}

/// `MYSQL_URL`, or a private server (started once per test process).
pub fn mysql_url() -> String {
    tenancy_testdb::mysql_url().unwrap_or_else(|e| panic!("{e}"))
}

pub async fn pool() -> Pool {
    pool_with(4).await
}

pub async fn pool_with(max_connections: u32) -> Pool {
    tenancy_testdb::mysql::pool(max_connections).await
}

/// A transaction for statements on `tenant` (any tenant: statements name their container).
pub async fn begin(pool: &Pool, _tenant: &Tenant) -> sqlx::Transaction<'static, Db> {
    pool.begin().await.unwrap()
}

/// A plain connection of the pool, for statements on `tenant` (any tenant).
pub async fn acquire(pool: &Pool, _tenant: &Tenant) -> sqlx::pool::PoolConnection<Db> {
    pool.acquire().await.unwrap()
}

/// The sqlx pool a `Tenants` handle is built from.
pub fn sqlx_pool(pool: &Pool) -> Pool {
    pool.clone()
}

/// `name` as a MySQL identifier.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `tenant`'s database, quoted.
pub fn q(tenant: &Tenant) -> String {
    quote(tenant.as_str())
}

/// Runs `sql` (one or more statements) with plain sqlx.
pub async fn exec(pool: &Pool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

/// Makes `registry`'s `row_tenants` as versions before drops went in steps made it: without the
/// `dropping` mark.
pub async fn forget_dropping(pool: &Pool, registry: &str) {
    exec(
        pool,
        format!(
            "ALTER TABLE {}.row_tenants DROP COLUMN dropping",
            quote(registry)
        ),
    )
    .await;
}

/// Fresh tenant databases holding `guards`, `badges` and `tickets`, made with plain DDL and
/// dropped when this value is dropped (even when the test panics).
pub struct Fresh {
    tenants: Vec<Tenant>,
    _cleanup: Leftovers,
}

impl Fresh {
    pub async fn new(pool: &Pool, n: usize) -> Self {
        let tenants: Vec<Tenant> = (0..n)
            .map(|_| Tenant::new(tenancy_testdb::unique_name("it")).unwrap())
            .collect();
        let mut cleanup = Leftovers::on(pool);
        for tenant in &tenants {
            cleanup.add_container(tenant.as_str());
            let db = q(tenant);
            let mut script = format!("CREATE DATABASE {db} CHARACTER SET utf8mb4;");
            for stmt in [MYSQL.guards, MYSQL.badges, TICKETS] {
                script.push_str(&in_container(stmt, &db));
                script.push(';');
            }
            exec(pool, script).await;
        }
        Fresh {
            tenants,
            _cleanup: cleanup,
        }
    }

    pub fn get(&self, i: usize) -> &Tenant {
        &self.tenants[i]
    }
}

/// Rows of a tenant's `guards` as (name, position), read with plain SQL.
pub async fn raw_guards(pool: &Pool, tenant: &Tenant) -> Vec<(String, String)> {
    let sql = format!(
        "SELECT name, position FROM {}.guards ORDER BY id",
        q(tenant)
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
}

pub async fn has_table(pool: &Pool, db: &str, table: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?)",
    )
    .bind(db)
    .bind(table)
    .fetch_one(pool)
    .await
    .map(|found: i64| found == 1)
    .unwrap()
}

pub async fn has_column(pool: &Pool, db: &str, table: &str, column: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?)",
    )
    .bind(db)
    .bind(table)
    .bind(column)
    .fetch_one(pool)
    .await
    .map(|found: i64| found == 1)
    .unwrap()
}

/// How many rows of `container`'s `table` hold `tenant` in `tenant_id`, read with plain SQL.
pub async fn count_rows(pool: &Pool, container: &Tenant, table: &str, tenant: &Tenant) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM {}.{table} WHERE tenant_id = ?",
        quote(container.container())
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// How many triggers the tables of `tenant`'s database have.
pub async fn triggers_in(pool: &Pool, tenant: &Tenant) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?")
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn container_exists(pool: &Pool, name: &str) -> bool {
    container_names(pool).await.iter().any(|n| n == name)
}

/// Every database on the server, sorted.
pub async fn container_names(pool: &Pool) -> Vec<String> {
    sqlx::query_scalar("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A database that is no tenant, holding table `keep`.
pub async fn create_container(pool: &Pool, name: &str) {
    let db = quote(name);
    exec(
        pool,
        format!("CREATE DATABASE {db}; CREATE TABLE {db}.keep (id INT)"),
    )
    .await;
}

pub async fn drop_container(pool: &Pool, name: &str) {
    exec(pool, format!("DROP DATABASE {}", quote(name))).await;
}

/// A `Tenants<MySql>` handle on a private registry database; every tenant it registered and
/// the registry are dropped when the fixture is dropped.
pub struct Lifecycle {
    pub tenants: Tenants<Db>,
    pub registry: String,
    _cleanup: Leftovers,
}

impl Lifecycle {
    pub async fn new(pool: &Pool, migrations: Vec<Migration>) -> Self {
        let registry = tenancy_testdb::unique_name("myreg");
        let tenants = Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&registry)
            .unwrap();
        Lifecycle {
            tenants,
            _cleanup: Leftovers::on(pool).registry(&registry),
            registry,
        }
    }

    /// Another handle on the same registry with other migrations (a newer build of the app).
    pub fn with_migrations(&self, pool: &Pool, migrations: Vec<Migration>) -> Tenants<Db> {
        Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&self.registry)
            .unwrap()
    }
}

/// MySQL's registry keeps no record of runs (a documented difference): nothing to check.
pub async fn assert_last_run_migrated(_pool: &Pool, _registry: &str, _migrated: i64) {}

// ---------------------------------------------------------------------------------------------
// MySQL only.

// The store's lifecycle through the handle, its registry and databases read with plain SQL.
mod store;

// Tenants over two servers.
mod fleet;

#[tokio::test]
async fn unsigned_keys_round_trip() {
    let pool = pool().await;
    let t = Fresh::new(&pool, 1).await;
    let a = t.get(0);
    let mut ticket = Ticket { id: 0, seat: 7 }.insert(&pool, a).await.unwrap();
    assert_eq!(ticket.id, 1, "the generated key is read back");
    ticket
        .apply(&pool, a, Changeset::new().set(Ticket::SEAT, u32::MAX))
        .await
        .unwrap();
    let found = Ticket::find(&pool, a, 1).await.unwrap().unwrap();
    assert_eq!(found.seat, u32::MAX);
}

#[tokio::test]
async fn a_session_default_database_does_not_redirect_crud() {
    // One connection, deliberately left on tenant b's database, as a leaky pool would leave it.
    let pool = pool_with(1).await;
    let t = Fresh::new(&pool, 2).await;
    let (a, b) = (t.get(0), t.get(1));
    exec(&pool, format!("USE {}", q(b))).await;
    let abu = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 1);
    assert_eq!(Guard::query(b).count(&pool).await.unwrap(), 0);
    let unqualified: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM guards")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unqualified, 0, "the row must not land in the USE database");
    assert!(Guard::find(&pool, b, abu.id).await.unwrap().is_none());
}

#[tokio::test]
async fn server_databases_and_the_registry_are_refused() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    for server in ["mysql", "sys", "performance_schema", "information_schema"] {
        assert_err!(l.tenants.create(server).await, Error::InvalidTenantName(_));
    }
    assert_err!(
        l.tenants.create(&l.registry).await,
        Error::InvalidTenantName(_)
    );
}

#[tokio::test]
async fn a_clone_or_import_into_a_database_holding_triggers_is_refused_and_leaves_nothing() {
    // A trigger made by the migrations would fire on every copied row: refused, after `to` was
    // made and migrated, so the refusal is also undone by the compensation.
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "CREATE TRIGGER guards_upper BEFORE INSERT ON guards FOR EACH ROW \
         SET NEW.name = UPPER(NEW.name)",
    ));
    let l = Lifecycle::new(&pool, migrations).await;
    let tpl = l
        .tenants
        .create(tenancy_testdb::unique_name("tpl"))
        .await
        .unwrap();
    let to = tenancy_testdb::unique_name("to");
    assert_err!(
        l.tenants.clone_tenant(&tpl, &to).await,
        Error::Unsupported { operation: "clone", ref reason } if reason.contains("1 trigger")
    );
    assert!(!container_exists(&pool, &to).await);
    assert_eq!(registry_rows(&pool, &l.registry, &to).await, 0);
    assert!(!l.tenants.exists(&to).await.unwrap());

    // An import into such a database is refused alike (it exports fine).
    let mut archive = Vec::new();
    l.tenants.export(&tpl, &mut archive).await.unwrap();
    assert_err!(
        l.tenants.import(&archive[..], &to).await,
        Error::Unsupported { operation: "import", ref reason } if reason.contains("1 trigger")
    );
    assert!(!container_exists(&pool, &to).await);
    assert_eq!(registry_rows(&pool, &l.registry, &to).await, 0);
}

/// [`v1`] with the tenant column on `guards`.
fn row_level_v1() -> Vec<Migration> {
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN tenant_id VARCHAR(63) NOT NULL DEFAULT ''",
    ));
    migrations
}

/// A container of `db` whose tables have the placement guard: a row-level tenant was made in
/// it and dropped.
async fn guarded_container(pool: &Pool, db: &Tenants<Db>) -> Tenant {
    let container = db
        .create(tenancy_testdb::unique_name("rows"))
        .await
        .unwrap();
    let gone = db
        .create_in(tenancy_testdb::unique_name("a"), &container)
        .await
        .unwrap();
    db.drop(gone.as_str()).await.unwrap();
    assert_eq!(triggers_in(pool, &container).await, 2, "the guard");
    container
}

/// A row-level drop puts the placement guard (two triggers per table with the tenant column)
/// on its container; the container can still be renamed (`RENAME TABLE` refuses tables with
/// triggers: the guard's are dropped first), and the next drop there puts it back; a clone of
/// it leaves the guard out.
#[tokio::test]
async fn a_container_guarded_by_a_row_level_drop_can_still_be_renamed_and_cloned() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, row_level_v1()).await;
    let db = &l.tenants;
    let container = guarded_container(&pool, db).await;

    let moved = db
        .rename(&container, tenancy_testdb::unique_name("moved"))
        .await
        .unwrap();
    assert!(!container_exists(&pool, container.as_str()).await);
    assert_eq!(triggers_in(&pool, &moved).await, 0);
    let b = db
        .create_in(tenancy_testdb::unique_name("b"), &moved)
        .await
        .unwrap();
    RowGuard::new("Bea", "Guard").insert(db, &b).await.unwrap();
    db.drop(b.as_str()).await.unwrap();
    assert_eq!(triggers_in(&pool, &moved).await, 2, "the guard, back");
    assert_err!(
        RowGuard::new("Late", "Guard").insert(db, &b).await,
        Error::NotPlaced { .. }
    );
    let sql = format!("SELECT COUNT(*) FROM {}.guards", q(&moved));
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "no row of the dropped tenants is left");
    // A clone of it leaves the guard out.
    let copy = db
        .clone_tenant(&moved, tenancy_testdb::unique_name("copy"))
        .await
        .unwrap();
    assert_eq!(triggers_in(&pool, &copy).await, 0);
}

/// The guard reads the row's tenant in the registry by its key: an insert of one row-level
/// tenant in an open transaction locks that tenant's registry row only, and another tenant is
/// created in the container meanwhile (when the lookup could not use the key, it share-locked
/// every registry row and the create waited for the transaction: `LockTimeout`).
#[tokio::test]
async fn a_guarded_insert_in_an_open_transaction_does_not_hold_back_a_create() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, row_level_v1()).await;
    let db = l
        .tenants
        .clone()
        .with_lock_timeout(std::time::Duration::from_secs(2));
    let container = guarded_container(&pool, &db).await;
    let b = db
        .create_in(tenancy_testdb::unique_name("b"), &container)
        .await
        .unwrap();

    let mut tx = db.pool_for(&b).await.unwrap().begin().await.unwrap();
    RowGuard::new("Bea", "Guard")
        .insert(&mut tx, &b)
        .await
        .unwrap();
    let c = db
        .create_in(tenancy_testdb::unique_name("c"), &container)
        .await;
    tx.rollback().await.unwrap();
    let c = c.unwrap_or_else(|e| panic!("a create while b's insert is open: {e:?}"));
    RowGuard::new("Cem", "Guard").insert(&db, &c).await.unwrap();
}

#[tokio::test]
async fn a_failed_create_is_compensated() {
    // The database is made and the first migration commits before the second fails: what the
    // server cannot roll back, create undoes.
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        &format!("CREATE TABLE posts (id INT); {FAILING}"),
    ));
    let l = Lifecycle::new(&pool, migrations).await;
    let n = tenancy_testdb::unique_name("comp");
    assert_err!(
        l.tenants.create(&n).await,
        Error::Migration { version: 2, .. }
    );
    assert!(!container_exists(&pool, &n).await, "compensated");
    assert!(!l.tenants.exists(&n).await.unwrap());
    // Nothing is left to block the name.
    let fixed = l.with_migrations(&pool, v1());
    fixed.create(&n).await.unwrap();
}

/// Also the store's former `rename_refuses_a_database_with_a_view` (see `store`): the data
/// stays where it was.
#[tokio::test]
async fn rename_refuses_a_database_holding_a_view_and_changes_nothing() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let old = l
        .tenants
        .create(tenancy_testdb::unique_name("view"))
        .await
        .unwrap();
    Guard::new("Abu", "Guard")
        .insert(&pool, &old)
        .await
        .unwrap();
    exec(
        &pool,
        format!(
            "CREATE VIEW {0}.names AS SELECT name FROM {0}.guards",
            q(&old)
        ),
    )
    .await;
    let new = tenancy_testdb::unique_name("viewnew");
    assert_err!(
        l.tenants.rename(old.as_str(), &new).await,
        Error::Unsupported { operation: "rename", ref reason } if reason.contains("1 view")
    );
    assert!(l.tenants.exists(old.as_str()).await.unwrap());
    assert!(!l.tenants.exists(&new).await.unwrap());
    assert!(!container_exists(&pool, &new).await);
    assert!(has_table(&pool, old.as_str(), "guards").await);
    assert_eq!(
        raw_guards(&pool, &old).await,
        [("Abu".to_owned(), "Guard".to_owned())]
    );
}

#[tokio::test]
async fn a_query_across_tenants_and_a_fan_out_serve_mysql_too() {
    let pool = pool().await;
    let fresh = Fresh::new(&pool, 2).await;
    let (a, b) = (fresh.get(0).clone(), fresh.get(1).clone());
    for (tenant, names) in [(&a, ["Abu", "Aladdin"]), (&b, ["Jafar", "Abis"])] {
        for name in names {
            Guard::new(name, "Guard")
                .insert(&pool, tenant)
                .await
                .unwrap();
        }
    }
    // `?` placeholders: each branch binds its own copy of the filter's value.
    let rows = Guard::query_across(&[a.clone(), b.clone()])
        .filter(Guard::NAME.like("A%"))
        .order_by(Guard::NAME.asc())
        .fetch_all(&pool)
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tenant().as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (a.as_str(), "Abu"),
            (a.as_str(), "Aladdin"),
            (b.as_str(), "Abis")
        ]
    );
    let counts = Guard::query_across(&[b.clone(), a.clone()])
        .count_by_tenant(&pool)
        .await
        .unwrap();
    assert_eq!(counts, [(b.clone(), 2), (a.clone(), 2)]);

    // A tenant without the table is named.
    let ghost = Tenant::new(tenancy_testdb::unique_name("ghost")).unwrap();
    let err = Guard::query_across(&[a.clone(), ghost.clone()])
        .count(&pool)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tenancy::Error::UnknownTenant { tenant, .. } if *tenant == ghost),
        "{err:?}"
    );

    // for_each on a MySQL handle: every registered tenant, each with its own result.
    let fx = Lifecycle::new(&pool, v1()).await;
    let names = [
        tenancy_testdb::unique_name("each"),
        tenancy_testdb::unique_name("each"),
    ];
    // Tenant k holds k guards, so each count says whose table it read.
    for (k, name) in names.iter().enumerate() {
        let t = fx.tenants.create(name).await.unwrap();
        for _ in 0..k {
            Guard::new("Abu", "Guard").insert(&pool, &t).await.unwrap();
        }
    }
    let counting = pool.clone();
    let report = fx
        .tenants
        .for_each(Default::default(), move |tenant| {
            let pool = counting.clone();
            async move { Guard::query(&tenant).count(&pool).await }
        })
        .await
        .unwrap();
    let mut counts: Vec<(&str, i64)> = report.succeeded().map(|(t, n)| (t.as_str(), *n)).collect();
    counts.sort();
    let mut expected = vec![(names[0].as_str(), 0), (names[1].as_str(), 1)];
    expected.sort();
    assert_eq!(
        counts,
        expected,
        "failed: {:?}",
        report.failed().collect::<Vec<_>>()
    );
    for name in &names {
        fx.tenants.drop(name).await.unwrap();
    }
}

/// A shared model: one table in the database `tenancy_shared` for every tenant.
#[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
#[tenancy(
    table = "tenancy_test_plans",
    shared = "tenancy_shared",
    backend = "mysql"
)]
pub struct Plan {
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required)]
    pub name: String,
    pub seats: i32,
}

/// The shared database and table of `Plan` (kept between runs; each test uses names of its
/// own).
pub const SHARED_PLANS_DDL: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS tenancy_shared",
    "CREATE TABLE IF NOT EXISTS tenancy_shared.tenancy_test_plans \
     (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL UNIQUE, seats INT NOT NULL)",
];

/// Migration 2 of the clone tests: `assignments` (named to sort before the `guards` it
/// references), with a generated key and a generated column, and a seed guard.
pub const ASSIGNMENTS: &str = "CREATE TABLE assignments (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    guard_id BIGINT NOT NULL,
    body VARCHAR(255) NOT NULL,
    body_length BIGINT AS (CHAR_LENGTH(body)) STORED,
    FOREIGN KEY (guard_id) REFERENCES guards (id)
);
INSERT INTO guards (name, position) VALUES ('Seed', 'Template')";

/// A tenant's `assignments` as (id, guard id, guard name, body, body length), read with plain
/// SQL.
pub async fn raw_assignments(pool: &Pool, tenant: &Tenant) -> Vec<(i64, i64, String, String, i64)> {
    let t = q(tenant);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT a.id, g.id, g.name, a.body, a.body_length FROM {t}.assignments a \
         JOIN {t}.guards g ON g.id = a.guard_id ORDER BY a.id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// How many rows of registry `registry` name `tenant` (its tenant row and its migrations).
pub async fn registry_rows(pool: &Pool, registry: &str, tenant: &str) -> i64 {
    let r = quote(registry);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT COUNT(*) FROM {r}.tenants WHERE name = ?) \
         + (SELECT COUNT(*) FROM {r}.migrations WHERE tenant = ?)"
    )))
    .bind(tenant)
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Makes cloning `from` fail part-way: a table in its database that no migration made (so
/// `to` has none), named to be copied last, with a row.
pub async fn copy_fault(pool: &Pool, _l: &Lifecycle, from: &Tenant, _to: &str) {
    let f = q(from);
    exec(
        pool,
        format!("CREATE TABLE {f}.zz_outside (id INT); INSERT INTO {f}.zz_outside VALUES (1)"),
    )
    .await;
}

/// `None`: a test waits a while instead (InnoDB's views of lock waits did not show the drop's
/// wait for the test's transaction reliably here).
pub async fn waiting_on(_conn: &mut <Db as sqlx::Database>::Connection) -> Option<i64> {
    None
}

/// The `Com_select` counter of the session on `conn`.
async fn selects(conn: &mut sqlx::MySqlConnection) -> i64 {
    let (_, value): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Com_select'")
        .fetch_one(conn)
        .await
        .unwrap();
    value.parse().unwrap()
}

/// On MariaDB 10.5+, an insert through the handle's executors returns its row (`INSERT …
/// RETURNING`, one statement): no read of it in a second statement, which a drop or demote of
/// the tenant's database could come between (the row written, the insert reported as failed).
/// A plain sqlx executor, which does not know the server, reads the row back. Counted by the
/// session's `Com_select` around each insert, against the count around nothing.
#[tokio::test]
async fn on_mariadb_an_insert_through_the_handle_returns_its_row_in_one_statement() {
    let pool = pool().await;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(version.contains("MariaDB"), "the tests' server: {version}");
    let l = Lifecycle::new(&pool, v1()).await;
    let tenant = l
        .tenants
        .create(tenancy_testdb::unique_name("ret"))
        .await
        .unwrap();
    let own = l.tenants.pool_for(&tenant).await.unwrap();
    let mut tx = own.begin().await.unwrap();
    let before = selects(&mut tx).await;
    let idle = selects(&mut tx).await - before;
    let before = selects(&mut tx).await;
    let abu = Guard::new("Abu", "Guard")
        .insert(&mut tx, &tenant)
        .await
        .unwrap();
    let through_handle = selects(&mut tx).await - before - idle;
    let before = selects(&mut tx).await;
    let bea = Guard::new("Bea", "Guard")
        .insert(&mut *tx, &tenant)
        .await
        .unwrap();
    let through_sqlx = selects(&mut tx).await - before - idle;
    tx.commit().await.unwrap();
    assert_eq!((through_handle, through_sqlx), (0, 1));
    assert!(bea.id > abu.id && abu.id > 0, "{abu:?} {bea:?}");
    let stored = Guard::find(&l.tenants, &tenant, abu.id).await.unwrap();
    assert_eq!(stored.map(|g| g.into_inner()), Some(abu.into_inner()));
}
