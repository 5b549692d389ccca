//! The shared behaviours on SQLite, a database file per tenant, in a fresh temporary folder per
//! test (`tenancy_testdb::sqlite::folder`; no server: these always run). The harness's `Pool` is a `Tenants<Sqlite>` handle: it
//! is an executor that routes each statement to its tenant's file, so the shared bodies read
//! `guard.insert(&pool, a)` as on the other backends. Then what only SQLite does: its own
//! pools, the LRU budget, the files on disk, concurrency.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tenancy::sqlite::PoolBudget;
use tenancy::{Error, Tenant, TenantModel, Tenants};
use tenancy_testdb::fixtures::{migration, migrator, SQLITE};

use crate::assert_err;

crate::backends::shared::mount!(
    clone,
    crud,
    insert_many,
    isolation,
    lifecycle,
    migrations,
    models,
    port,
    query,
    row_drop,
    row_level,
    tier,
    validation,
);

pub type Db = sqlx::Sqlite;
/// The handle routes every statement to its tenant's file.
pub type Pool = Tenants<Db>;

/// Whether a row-level tenant's drop or rename puts the placement guard on its container's
/// tables, so that a write through a `Tenant` resolved before it is refused (`NotPlaced`).
pub const GUARDS_ROWS: bool = true;
/// SQLite's DDL is transactional: a failed migration leaves the tenant as it was.
/// Whether `promote`/`demote` move tenants between tiers here (elsewhere they are refused).
pub const MOVES_TIERS: bool = true;
/// Whether an insert reads its row back in a statement of its own (no `RETURNING`): one for a
/// tenant's own container can then report `UnknownTenant` for a row a demote took along (see
/// README, "a tenant that outgrows the shared tables").
pub const INSERT_READS_BACK: bool = false;
/// Whether a promote copies, after its first pass, the rows inserted meanwhile (a step of its
/// progress of its own, `RelocatePhase::CatchingUp`).
pub const CATCHES_UP: bool = false;
pub const ATOMIC_DDL: bool = true;
pub const MAX_BIND_PARAMS: usize = <Db as tenancy::Backend>::MAX_BIND_PARAMS;
/// A file that always exists in the folder: the default registry.
/// The `db.system` of its statements' spans.
pub const DB_SYSTEM: &str = "sqlite";
pub const SERVER_CONTAINER: &str = "_tenancy";
/// A migration statement SQLite refuses.
pub const FAILING: &str = "ALTER TABLE nope ADD COLUMN x INTEGER";
/// None here: a clone copies the source's file, its migrations are not run again.
pub const FAILS_WHERE_BAD: Option<&str> = None;
/// Adds the column v2 adds, so v2 fails in that tenant (`{t}`: the attached file).
pub const ADD_BADGE_INT: &str = "ALTER TABLE {t}.guards ADD COLUMN badge INTEGER";

crate::guard_model!("sqlite");

/// A model whose key the application chooses, with a unique column to make a server error.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges", backend = "sqlite")]
pub struct Badge {
    #[tenancy(id)]
    pub code: String,
    pub holder: String,
}

pub const V1_GUARDS: &str = SQLITE.guards;

pub fn v1() -> Vec<Migration> {
    SQLITE.v1()
}

pub fn v2() -> Vec<Migration> {
    SQLITE.v2()
}

/// A fresh folder with an empty registry, and a handle on it without migrations.
pub async fn pool() -> Pool {
    pool_with(4).await
}

/// As [`pool`], with `n` connections per tenant.
pub async fn pool_with(n: u32) -> Pool {
    let folder = tenancy_testdb::sqlite::folder("t").unwrap();
    let registry = tenancy::sqlite::open(folder.to_str().unwrap())
        .await
        .unwrap();
    Tenants::new(registry, migrator(Vec::new()))
        .unwrap()
        .with_pool_budget(PoolBudget::default().connections_per_pool(n))
}

/// A transaction of `tenant`'s own pool (on SQLite a transaction is in one file).
pub async fn begin(pool: &Pool, tenant: &Tenant) -> tenancy::TenantTransaction<Db> {
    pool.pool_for(tenant).await.unwrap().begin().await.unwrap()
}

/// A connection of `tenant`'s own pool (in a transaction: the one executor on a single
/// connection SQLite's tenant pools hand out).
pub async fn acquire(pool: &Pool, tenant: &Tenant) -> tenancy::TenantTransaction<Db> {
    begin(pool, tenant).await
}

/// The sqlx pool a `Tenants` handle is built from (the registry's).
pub fn sqlx_pool(pool: &Pool) -> sqlx::SqlitePool {
    pool.pool().clone()
}

fn file(pool: &Pool, name: &str) -> PathBuf {
    pool.folder().join(format!("{name}.db"))
}

/// A connection to `path` (created if `create`).
async fn open(path: &Path, create: bool) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create);
    SqliteConnection::connect_with(&options).await.unwrap()
}

/// Makes `registry`'s `row_tenants` as versions before drops went in steps made it: without the
/// `dropping` mark.
pub async fn forget_dropping(pool: &Pool, registry: &str) {
    let mut conn = open(&file(pool, registry), false).await;
    sqlx::raw_sql("ALTER TABLE row_tenants DROP COLUMN dropping")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// `tenant` as the name of its attached file.
pub fn q(tenant: &Tenant) -> String {
    tenant.quoted()
}

/// Runs `sql` with plain sqlx on a connection to the folder's registry file with every tenant
/// file the text names (`"name"`) attached under its name. (Not an in-memory connection:
/// sqlx opens those with `SQLITE_OPEN_MEMORY`, which makes every attached file in-memory too.)
pub async fn exec(pool: &Pool, sql: String) {
    let mut conn = open(&file(pool, SERVER_CONTAINER), false).await;
    for name in container_names(pool).await {
        if sql.contains(&format!("\"{name}\"")) {
            let path = file(pool, &name).display().to_string().replace('\'', "''");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ATTACH DATABASE '{path}' AS \"{name}\""
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Fresh tenant files holding `guards` and `badges`, made with plain DDL and registered with
/// plain SQL (bypassing the lifecycle). The folder goes with the test.
pub struct Fresh {
    tenants: Vec<Tenant>,
}

impl Fresh {
    pub async fn new(pool: &Pool, n: usize) -> Self {
        pool.list().await.unwrap(); // the registry table
        let tenants: Vec<Tenant> = (0..n)
            .map(|_| Tenant::new(tenancy_testdb::unique_name("it")).unwrap())
            .collect();
        for tenant in &tenants {
            let mut conn = open(&file(pool, tenant.as_str()), true).await;
            for ddl in [SQLITE.guards, SQLITE.badges] {
                sqlx::raw_sql(ddl).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
            sqlx::query("INSERT INTO tenants (name) VALUES (?1)")
                .bind(tenant.as_str())
                .execute(pool.pool())
                .await
                .unwrap();
        }
        Fresh { tenants }
    }

    pub fn get(&self, i: usize) -> &Tenant {
        &self.tenants[i]
    }
}

/// Rows of a tenant's `guards` as (name, position), read with plain SQL from its file.
pub async fn raw_guards(pool: &Pool, tenant: &Tenant) -> Vec<(String, String)> {
    let mut conn = open(&file(pool, tenant.as_str()), false).await;
    let rows = sqlx::query_as("SELECT name, position FROM guards ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows
}

pub async fn has_table(pool: &Pool, db: &str, table: &str) -> bool {
    let path = file(pool, db);
    if !path.exists() {
        return false;
    }
    let mut conn = open(&path, false).await;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
            .bind(table)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    found.is_some()
}

pub async fn has_column(pool: &Pool, db: &str, table: &str, column: &str) -> bool {
    let mut conn = open(&file(pool, db), false).await;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
            .bind(table)
            .bind(column)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    found.is_some()
}

/// How many rows of `container`'s `table` hold `tenant` in `tenant_id`, read with plain SQL
/// from its file.
pub async fn count_rows(pool: &Pool, container: &Tenant, table: &str, tenant: &Tenant) -> i64 {
    let mut conn = open(&file(pool, container.container()), false).await;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1");
    let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    count
}

/// How many triggers `tenant`'s file holds.
pub async fn triggers_in(pool: &Pool, tenant: &Tenant) -> i64 {
    let mut conn = open(&file(pool, tenant.container()), false).await;
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    count
}

pub async fn container_exists(pool: &Pool, name: &str) -> bool {
    file(pool, name).exists()
}

/// Every database file in the folder, by name, sorted.
pub async fn container_names(pool: &Pool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pool.folder())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".db")?;
            (!stem.starts_with('.')).then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// A database file that is no tenant, holding table `keep`.
pub async fn create_container(pool: &Pool, name: &str) {
    let mut conn = open(&file(pool, name), true).await;
    sqlx::raw_sql("CREATE TABLE keep (id INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

pub async fn drop_container(pool: &Pool, name: &str) {
    std::fs::remove_file(file(pool, name)).unwrap();
}

/// A `Tenants<Sqlite>` handle on a private registry file in the test's folder.
pub struct Lifecycle {
    pub tenants: Tenants<Db>,
    pub registry: String,
}

impl Lifecycle {
    pub async fn new(pool: &Pool, migrations: Vec<Migration>) -> Self {
        let registry = tenancy_testdb::unique_name("reg");
        let tenants = Tenants::new(pool.pool().clone(), migrator(migrations))
            .unwrap()
            .with_registry(&registry)
            .unwrap();
        Lifecycle { tenants, registry }
    }

    /// A new tenant (`old_…`) with one guard, Abu, written through its own pool, which the
    /// caller keeps holding.
    pub async fn tenant_with_a_held_pool(&self) -> (Tenant, tenancy::TenantPool<Db>) {
        let old = self
            .tenants
            .create(tenancy_testdb::unique_name("old"))
            .await
            .unwrap();
        let held = self.tenants.pool_for(&old).await.unwrap();
        Guard::new("Abu", "Guard")
            .insert(&held, &old)
            .await
            .unwrap();
        (old, held)
    }

    /// Another handle on the same registry with other migrations (a newer build of the app).
    pub fn with_migrations(&self, pool: &Pool, migrations: Vec<Migration>) -> Tenants<Db> {
        Tenants::new(pool.pool().clone(), migrator(migrations))
            .unwrap()
            .with_registry(&self.registry)
            .unwrap()
    }
}

/// SQLite's registry keeps no record of runs: nothing to check.
pub async fn assert_last_run_migrated(_pool: &Pool, _registry: &str, _migrated: i64) {}

// ---------------------------------------------------------------------------------------------
// SQLite only.

#[tokio::test]
async fn a_tenant_pool_serves_its_own_tenant_only() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let a = l
        .tenants
        .create(tenancy_testdb::unique_name("a"))
        .await
        .unwrap();
    let b = l
        .tenants
        .create(tenancy_testdb::unique_name("b"))
        .await
        .unwrap();
    let db_a = l.tenants.pool_for(&a).await.unwrap();
    let g = Guard::new("Abu", "Guard").insert(&db_a, &a).await.unwrap();
    assert_eq!(g.tenant(), &a);
    assert_err!(
        Guard::new("Bea", "Guard").insert(&db_a, &b).await,
        Error::ExecutorMismatch { executor, requested, .. } if executor == a && requested == b
    );
    assert_err!(
        Guard::find(&db_a, &b, 1).await,
        Error::ExecutorMismatch { .. }
    );
    // A transaction of the pool is bound the same way.
    let mut tx = db_a.begin().await.unwrap();
    assert_err!(
        Guard::query(&b).count(&mut tx).await,
        Error::ExecutorMismatch { .. }
    );
    assert_eq!(Guard::query(&a).count(&mut tx).await.unwrap(), 1);
    tx.rollback().await.unwrap();
    assert_eq!(raw_guards(&pool, &b).await, vec![]);
    // A query across tenants cannot run on one file.
    assert_err!(
        Guard::query_across(&[a.clone(), b.clone()])
            .fetch_all(&db_a)
            .await,
        Error::Unsupported { .. }
    );
    assert_err!(
        Guard::query_across(&[a.clone(), b.clone()])
            .fetch_all(&l.tenants)
            .await,
        Error::Unsupported { .. }
    );
}

#[tokio::test]
async fn create_builds_the_file_atomically_and_a_failure_leaves_nothing() {
    let pool = pool().await;
    let mut failing = v1();
    failing.push(migration(2, MigrationType::Simple, FAILING));
    let l = Lifecycle::new(&pool, failing).await;
    let name = tenancy_testdb::unique_name("broken");
    assert_err!(
        l.tenants.create(&name).await,
        Error::Migration { version: 2, .. }
    );
    assert!(!container_exists(&pool, &name).await);
    assert!(!l.tenants.exists(&name).await.unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(pool.folder())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.contains(&name))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[tokio::test]
async fn a_dropped_tenant_is_a_typed_error_not_a_fresh_empty_file() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("gone"))
        .await
        .unwrap();
    let held = l.tenants.pool_for(&t).await.unwrap();
    Guard::new("Abu", "Guard").insert(&held, &t).await.unwrap();
    l.tenants.drop(t.as_str()).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file(&pool, t.as_str()).display());
        assert!(!Path::new(&path).exists(), "{path} is left");
    }
    // The pool a caller still holds was closed; the handle refuses the name.
    assert_err!(Guard::find(&held, &t, 1).await, Error::UnknownTenant { .. });
    assert_err!(l.tenants.pool_for(&t).await, Error::NotATenant { .. });
    assert_err!(
        Guard::find(&l.tenants, &t, 1).await,
        Error::UnknownTenant { .. }
    );
    assert!(
        !container_exists(&pool, t.as_str()).await,
        "no file was created"
    );
    // Registered but its file removed behind the library's back: refused, not recreated.
    let u = l
        .tenants
        .create(tenancy_testdb::unique_name("u"))
        .await
        .unwrap();
    std::fs::remove_file(file(&pool, u.as_str())).unwrap();
    assert_err!(l.tenants.pool_for(&u).await, Error::ContainerMissing { .. });
    assert_err!(
        Guard::find(&l.tenants, &u, 1).await,
        Error::UnknownTenant { .. }
    );
    assert!(!container_exists(&pool, u.as_str()).await);
}

#[tokio::test]
async fn rename_moves_the_file_and_closes_the_old_pool() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let (old, held) = l.tenant_with_a_held_pool().await;
    let new = l
        .tenants
        .rename(old.as_str(), tenancy_testdb::unique_name("new"))
        .await
        .unwrap();
    assert!(!container_exists(&pool, old.as_str()).await);
    assert_eq!(
        raw_guards(&pool, &new).await,
        vec![("Abu".into(), "Guard".into())]
    );
    assert_err!(
        Guard::find(&held, &old, 1).await,
        Error::UnknownTenant { .. }
    );
    let found = Guard::find(&l.tenants, &new, 1).await.unwrap().unwrap();
    assert_eq!(found.tenant(), &new);
    assert_eq!(
        l.tenants.status_of(new.as_str()).await.unwrap().applied,
        vec![1]
    );
}

/// A `TenantPool` held by a caller is refused from the moment a rename has locked and checked
/// its tenant and closed its pool, while the rename still waits for a connection in use, not
/// only once the rename has ended (README, "SQLite").
#[tokio::test]
async fn a_held_pool_is_refused_from_the_start_of_a_rename() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let (old, held) = l.tenant_with_a_held_pool().await;
    let in_use = held.begin().await.unwrap();
    let tenants = l.tenants.clone();
    let (from, to) = (old.clone(), tenancy_testdb::unique_name("new"));
    let rename = tokio::spawn(async move { tenants.rename(from.as_str(), to).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Guard::find(&held, &old, 1).await {
            Err(Error::UnknownTenant { .. }) => break,
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the held pool still serves after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !rename.is_finished(),
        "the rename is still waiting for the connection in use"
    );
    drop(in_use);
    let new = rename.await.unwrap().unwrap();
    assert_eq!(
        raw_guards(&pool, &new).await,
        vec![("Abu".into(), "Guard".into())]
    );
}

#[tokio::test]
async fn the_lru_keeps_at_most_the_budget_of_pools_open() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let tenants = l
        .tenants
        .clone()
        .with_pool_budget(PoolBudget::default().max_pools(3).connections_per_pool(1));
    let mut all = Vec::new();
    for i in 0..8 {
        all.push(tenants.create(format!("{}_{i}", l.registry)).await.unwrap());
    }
    for (i, t) in all.iter().enumerate() {
        Guard::new(&format!("g{i}"), "Guard")
            .insert(&tenants, t)
            .await
            .unwrap();
        assert!(
            tenants.open_pools() <= 3,
            "{} pools open",
            tenants.open_pools()
        );
    }
    // Every tenant still reads its own row, through pools reopened on demand.
    for (i, t) in all.iter().enumerate() {
        let rows = Guard::query(t).fetch_all(&tenants).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, format!("g{i}"));
    }
    assert_eq!(tenants.open_pools(), 3);
}

/// The descriptors this process has open on `tenants`' files (`<t>.db`, `-wal`, `-shm`),
/// after waiting (up to 10 s) for them to come down to `bound`: a connection let go closes its
/// files on its own worker thread, soon after. `None` off Linux.
async fn descriptors_on(folder: &Path, tenants: &[Tenant], bound: usize) -> Option<usize> {
    let names: Vec<String> = tenants.iter().map(|t| format!("{t}.db")).collect();
    let count = || {
        let fds = std::fs::read_dir("/proc/self/fd").ok()?;
        Some(
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| {
                    target.parent() == Some(folder)
                        && target
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| {
                                let base = n.trim_end_matches("-wal").trim_end_matches("-shm");
                                names.iter().any(|name| name == base)
                            })
                })
                .count(),
        )
    };
    // Waits (up to 10 s) for closes in flight, not for speed.
    for _ in 0..1000 {
        match count() {
            Some(n) if n > bound => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other,
        }
    }
    count()
}

/// Until the connections `pool` handed out have come back (returned by a task of their own).
async fn all_idle(pool: &tenancy::TenantPool<Db>) {
    let pool = pool.sqlx_pool();
    while pool.num_idle() < pool.size() as usize {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_budget_bounds_the_open_connections_and_descriptors() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let budget = PoolBudget::default()
        .max_connections(4)
        .connections_per_pool(2);
    assert_eq!(budget.get_max_pools(), 4);
    let tenants = l.tenants.clone().with_pool_budget(budget);
    let mut all = Vec::new();
    for i in 0..8 {
        all.push(tenants.create(format!("{}_{i}", l.registry)).await.unwrap());
    }
    let folder = tenants.folder().canonicalize().unwrap();
    for round in 0..2 {
        for (i, t) in all.iter().enumerate() {
            // Two connections on this tenant (a transaction held while the handle writes):
            // the pool grows beyond its first, and the others make room.
            let own = tenants.pool_for(t).await.unwrap();
            let tx = own.begin().await.unwrap();
            Guard::new(&format!("g{i}"), &format!("round{round}"))
                .insert(&tenants, t)
                .await
                .unwrap();
            assert_eq!(own.sqlx_pool().size(), 2, "{t} grew to two connections");
            assert!(
                tenants.open_connections() <= 4,
                "{} connections open with a budget of 4",
                tenants.open_connections()
            );
            assert!(tenants.open_pools() <= 4, "{} pools", tenants.open_pools());
            tx.rollback().await.unwrap();
            drop(own);
            // Three per connection (the file, its -wal, its -shm shared by the file's
            // connections), and the file descriptor of a closed connection that SQLite keeps
            // for reuse while another connection has the file open: one per kept pool here.
            let per_pool = budget.get_connections_per_pool() as usize;
            let bound = 4 * 3 + budget.get_max_pools() * (per_pool - 1);
            if let Some(fds) = descriptors_on(&folder, &all, bound).await {
                assert!(fds <= bound, "{fds} descriptors on tenant files open");
            }
        }
    }
    // Every tenant still reads its own rows, through pools reopened on demand.
    for (i, t) in all.iter().enumerate() {
        let rows = Guard::query(t).fetch_all(&tenants).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|g| g.name == format!("g{i}")), "{rows:?}");
    }
}

#[tokio::test]
async fn making_room_closes_idle_connections_beyond_the_first_before_letting_a_pool_go() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let tenants = l.tenants.clone().with_pool_budget(
        PoolBudget::default()
            .max_connections(3)
            .connections_per_pool(2),
    );
    let mut all = Vec::new();
    for i in 0..3 {
        all.push(tenants.create(format!("{}_{i}", l.registry)).await.unwrap());
    }
    // The first tenant with two idle connections, the second with one: the budget's 3.
    let first = tenants.pool_for(&all[0]).await.unwrap();
    let (one, two) = (
        first.sqlx_pool().acquire().await.unwrap(),
        first.sqlx_pool().acquire().await.unwrap(),
    );
    drop((one, two));
    all_idle(&first).await;
    Guard::new("b", "Guard")
        .insert(&tenants, &all[1])
        .await
        .unwrap();
    assert_eq!(tenants.open_connections(), 3);
    // The third needs room: the first (least recently used) keeps its pool and one
    // connection.
    Guard::new("c", "Guard")
        .insert(&tenants, &all[2])
        .await
        .unwrap();
    assert_eq!(first.sqlx_pool().size(), 1);
    assert_eq!(tenants.open_pools(), 3);
    assert_eq!(tenants.open_connections(), 3);
    // The first's pool is still the one kept (nothing reopened).
    assert_eq!(
        tenants.pool_for(&all[0]).await.unwrap().sqlx_pool().size(),
        1
    );
}

#[tokio::test]
async fn many_tasks_write_to_many_tenants_and_nothing_crosses() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let tenants = l
        .tenants
        .clone()
        .with_pool_budget(PoolBudget::default().max_pools(4).connections_per_pool(2));
    let mut all = Vec::new();
    for i in 0..10 {
        all.push(tenants.create(format!("{}_{i}", l.registry)).await.unwrap());
    }
    let all = Arc::new(all);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let (tenants, all) = (tenants.clone(), Arc::clone(&all));
        tasks.spawn(async move {
            for round in 0..10 {
                let t = &all[(task + round) % all.len()];
                let g = Guard::new(t.as_str(), &format!("task{task}"))
                    .insert(&tenants, t)
                    .await
                    .unwrap();
                assert_eq!(g.tenant(), t);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let mut total = 0;
    for t in all.iter() {
        let rows = raw_guards(&pool, t).await;
        assert!(
            rows.iter().all(|(name, _)| name == t.as_str()),
            "{t}: {rows:?}"
        );
        total += rows.len();
    }
    assert_eq!(total, 160);
}

#[tokio::test]
async fn a_drop_while_another_task_reads_ends_in_typed_errors_only() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("busy"))
        .await
        .unwrap();
    Guard::new("Abu", "Guard")
        .insert(&l.tenants, &t)
        .await
        .unwrap();
    let reader = {
        let (tenants, t) = (l.tenants.clone(), t.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            loop {
                match Guard::find(&tenants, &t, 1).await {
                    Ok(Some(_)) => reads += 1,
                    Ok(None) => panic!("a read saw an empty tenant"),
                    Err(Error::UnknownTenant { .. }) => return reads,
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    l.tenants.drop(t.as_str()).await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 0);
    assert!(!container_exists(&pool, t.as_str()).await);
}

#[tokio::test]
async fn an_in_memory_url_is_refused_and_hostile_names_never_touch_the_file_system() {
    assert!(tenancy::sqlite::folder_of("sqlite::memory:").is_err());
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let before = container_names(&pool).await;
    for name in ["..", "../x", "a/b", "nul", "con", "_tenancy", "a\0b"] {
        assert!(l.tenants.create(name).await.is_err(), "{name:?}");
    }
    assert_eq!(container_names(&pool).await, before);
}

/// Migration 2 of the clone tests: `assignments` (named to sort before the `guards` it
/// references), with a generated key and a generated column, and a seed guard.
pub const ASSIGNMENTS: &str = "CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guard_id INTEGER NOT NULL REFERENCES guards (id),
    body TEXT NOT NULL,
    body_length INTEGER GENERATED ALWAYS AS (length(body)) STORED
);
INSERT INTO guards (name, position) VALUES ('Seed', 'Template')";

/// A tenant's `assignments` as (id, guard id, guard name, body, body length), read with plain
/// SQL from its file.
pub async fn raw_assignments(pool: &Pool, tenant: &Tenant) -> Vec<(i64, i64, String, String, i64)> {
    let mut conn = open(&file(pool, tenant.as_str()), false).await;
    let rows = sqlx::query_as(
        "SELECT a.id, g.id, g.name, a.body, a.body_length FROM assignments a \
         JOIN guards g ON g.id = a.guard_id ORDER BY a.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

/// How many rows of registry `registry` (its file) name `tenant`; also fails the test if a
/// file being built for `tenant` was left in the folder.
pub async fn registry_rows(pool: &Pool, registry: &str, tenant: &str) -> i64 {
    let building = format!(".{tenant}.");
    let left: Vec<_> = std::fs::read_dir(pool.folder())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&building))
        .collect();
    assert!(left.is_empty(), "files left for {tenant}: {left:?}");
    let mut conn = open(&file(pool, registry), false).await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE name = ?1")
        .bind(tenant)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

/// Makes cloning into `to` fail part-way: the file is copied, then the registry refuses
/// `to`'s row (a trigger on the registry file's `tenants`).
pub async fn copy_fault(pool: &Pool, l: &Lifecycle, _from: &Tenant, to: &str) {
    let mut conn = open(&file(pool, &l.registry), false).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TRIGGER refuse_clone BEFORE INSERT ON tenants WHEN NEW.name = '{to}' \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_import_into_a_file_holding_triggers_is_refused_and_leaves_nothing() {
    // A trigger made by the migrations would fire on every imported row, and SQLite cannot
    // turn it off: refused, after the file was built, which is then removed.
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "CREATE TRIGGER guards_upper AFTER INSERT ON guards \
         BEGIN UPDATE guards SET name = upper(name) WHERE id = NEW.id; END",
    ));
    let l = Lifecycle::new(&pool, migrations).await;
    let src = l
        .tenants
        .create(tenancy_testdb::unique_name("src"))
        .await
        .unwrap();
    let mut archive = Vec::new();
    l.tenants.export(&src, &mut archive).await.unwrap();
    let to = tenancy_testdb::unique_name("to");
    assert_err!(
        l.tenants.import(&archive[..], &to).await,
        Error::Unsupported { operation: "import", ref reason } if reason.contains("1 trigger")
    );
    assert!(!container_exists(&pool, &to).await);
    assert_eq!(registry_rows(&pool, &l.registry, &to).await, 0);
}

/// `None`: a writer waiting for SQLite's file lock (its busy handler) is not visible from
/// another connection; a test waits a while instead.
pub async fn waiting_on(_conn: &mut <Db as sqlx::Database>::Connection) -> Option<i64> {
    None
}

/// A row-level rename writes two files: the container's (the rows rewritten to the new name,
/// the old one shut out) and then the registry's (the old name unregistered; the new one was
/// registered first). A process killed between the two commits leaves the old name registered
/// (made here by registering it again after a rename). Nothing is lost or shown under another
/// name: the old name's inserts are refused, its reads find no row, the new name has every one
/// of its rows; a drop of the old name deletes nothing and leaves the others whole.
#[tokio::test]
async fn a_row_level_rename_stopped_before_the_old_name_is_unregistered_loses_and_shows_nothing() {
    let pool = pool().await;
    let mut steps = v1();
    steps.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN tenant_id VARCHAR(63) NOT NULL DEFAULT ''",
    ));
    let l = Lifecycle::new(&pool, steps).await;
    let container = l
        .tenants
        .create(tenancy_testdb::unique_name("rows"))
        .await
        .unwrap();
    let a = l
        .tenants
        .create_in(tenancy_testdb::unique_name("a"), &container)
        .await
        .unwrap();
    let b = l
        .tenants
        .create_in(tenancy_testdb::unique_name("b"), &container)
        .await
        .unwrap();
    for (tenant, name) in [(&a, "Ada"), (&a, "Bo"), (&b, "Cy")] {
        RowGuard::new(name, "Guard")
            .insert(&l.tenants, tenant)
            .await
            .unwrap();
    }
    let new = tenancy_testdb::unique_name("renamed");
    let renamed = l.tenants.rename(a.as_str(), &new).await.unwrap();
    // The registry as a kill between the two files leaves it: the old name still registered.
    let mut registry = open(&file(&pool, &l.registry), false).await;
    sqlx::query("INSERT INTO row_tenants (name, container) VALUES (?1, ?2)")
        .bind(a.as_str())
        .bind(container.as_str())
        .execute(&mut registry)
        .await
        .unwrap();
    registry.close().await.unwrap();

    let stale = l.tenants.tenant(a.as_str()).await.unwrap();
    assert_eq!(stale.container(), container.as_str());
    assert_err!(
        RowGuard::new("Late", "Guard")
            .insert(&l.tenants, &stale)
            .await,
        Error::NotPlaced { .. }
    );
    assert_eq!(RowGuard::query(&stale).count(&l.tenants).await.unwrap(), 0);
    let count = |t: Tenant| {
        let db = l.tenants.clone();
        async move { RowGuard::query(&t).count(&db).await.unwrap() }
    };
    assert_eq!(count(renamed.clone()).await, 2);
    l.tenants.drop(a.as_str()).await.unwrap();
    assert!(!l.tenants.exists(a.as_str()).await.unwrap());
    assert_eq!(count(renamed).await, 2);
    assert_eq!(count(b).await, 1);
}
