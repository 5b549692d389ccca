//! The shared behaviours on Citus, a distributed schema per tenant, against a real cluster:
//! `CITUS_URL`, the coordinator of a Citus 12+ cluster with at least two workers (`.ci/run`
//! starts one with the cluster script `../shared/citus/cluster.sh start`; any Citus cluster
//! does, e.g. the official `citusdata/citus` image with two workers: README, "Pointing the Citus
//! tests at a cluster"). Without it these tests are not run (the binary says so); with it set,
//! or `TENANCY_TEST_BACKENDS` naming `citus`, an unreachable coordinator fails them. Then what
//! only Citus does: placement, moves, what reaches the workers, and the migrations Citus
//! refuses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sqlx::migrate::MigrationType;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;
use tenancy::postgres::{CitusError, CitusRefusal, Flavour, MoveMode, Node};
use tenancy::{Error, MigrateOptions, Tenant, TenantModel};

/// Asserts that `$result` is an `Error::Refused` of `$operation` whose source is the
/// `CitusError` `$pattern`.
macro_rules! assert_citus {
    ($result:expr, $operation:literal, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err(Error::Refused { operation: $operation, ref source, .. }) => {
                match source.downcast_ref::<CitusError>() {
                    Some($pattern) $(if $guard)? => {}
                    other => panic!("expected {}, got {:?}", stringify!($pattern), other),
                }
            }
            other => panic!("expected Error::Refused of {:?}, got {:?}", $operation, other),
        }
    };
}

pub use crate::lifecycle_support::{has_column, has_table, v1, v2, Lifecycle, V1_GUARDS};
pub use crate::support::{raw_guards, Badge, Guard, RowGuard, RowNote, StoredGuard};

use crate::assert_err;
use crate::lifecycle_support::migration;

// The shared behaviours, one module per concern (the harness's whole point).
crate::backends::shared::mount!(all);

pub type Db = sqlx::Postgres;
pub type Pool = sqlx::PgPool;

/// Whether a row-level tenant's drop or rename puts the placement guard on its container's
/// tables, so that a write through a `Tenant` resolved before it is refused (`NotPlaced`).
pub const GUARDS_ROWS: bool = true;
/// Create, migrate and rollback are (two-phase committed) transactions.
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
/// A schema that always exists.
/// The `db.system` of its statements' spans.
pub const DB_SYSTEM: &str = "postgresql";
pub const SERVER_CONTAINER: &str = "public";
/// A migration statement the server refuses.
pub const FAILING: &str = "CREATE TABLE broken (id nonsense_type)";
/// A migration that fails only in a tenant whose name starts with `bad` (the clone tests'
/// failure in the clone's own migrations).
pub const FAILS_WHERE_BAD: Option<&str> = Some(
    "DO $$ BEGIN IF current_schema() LIKE 'bad%' THEN RAISE EXCEPTION 'refused in %', current_schema(); END IF; END $$",
);
/// Adds the column v2 adds, with another type, so v2 fails in that tenant (`{t}`: the schema).
pub const ADD_BADGE_INT: &str = "ALTER TABLE {t}.guards ADD COLUMN badge int";

/// `CITUS_URL`: the coordinator. Fails the test, saying how to get one, when it is unset.
pub fn citus_url() -> String {
    tenancy_testdb::citus_url().unwrap_or_else(|e| panic!("{e}"))
}

pub async fn pool() -> Pool {
    pool_with(4).await
}

pub async fn pool_with(max_connections: u32) -> Pool {
    let url = citus_url();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the Citus coordinator at CITUS_URL={url} ({e}): start the cluster \
                 (`.ci/run` starts one with `../shared/citus/cluster.sh start`) or point \
                 CITUS_URL at a Citus coordinator"
            )
        });
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        citus,
        "CITUS_URL={url} is not a Citus coordinator (no citus extension)"
    );
    pool
}

/// Fresh distributed tenant schemas holding `guards` and `badges`, dropped at the end.
pub struct Fresh(crate::support::Tenants);

impl Fresh {
    pub async fn new(pool: &Pool, n: usize) -> Self {
        use crate::support::Tenants;
        use tenancy_testdb::fixtures::POSTGRES;
        // Distributed whatever the database's setting: the first statement of the script
        // turns schema-based sharding on for its transaction.
        const SHARDING: &str =
            "SELECT set_config('citus.enable_schema_based_sharding', 'on', true)";
        let made = Tenants::with(pool, n, &[POSTGRES.guards, POSTGRES.badges]).await;
        // `Tenants::with` made plain `CREATE SCHEMA`s: distribute any the setting left local.
        for t in &made.tenants {
            let sql = format!(
                "{SHARDING}; SELECT citus_schema_distribute({lit}) \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = {lit}::regnamespace)",
                lit = literal(t.as_str())
            );
            exec(pool, sql).await;
        }
        Fresh(made)
    }

    pub fn get(&self, i: usize) -> &Tenant {
        self.0.get(i)
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// The raw-SQL helpers are the PostgreSQL harness's: a Citus coordinator speaks PostgreSQL, and
// tenants are schemas there too.
pub use super::pg::{
    acquire, assert_last_run_migrated, begin, container_exists, container_names, copy_fault,
    count_rows, create_container, drop_container, exec, forget_dropping, q, raw_assignments,
    registry_rows, sqlx_pool, triggers_in, ASSIGNMENTS,
};

// What only Citus does.

/// Containers of row-level tenants distributed by the tenant column.
mod rows;

/// A row-level tenant's drop in batches, in a container distributed by the tenant column.
mod drop_rows;

/// Row-level security in a container that is a distributed schema, and in one distributed by
/// the tenant column.
mod rls;

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

/// A connection straight to `node`, with the coordinator URL's user, password and database.
async fn on_node(node: &Node) -> sqlx::PgConnection {
    let options: PgConnectOptions = citus_url().parse().unwrap();
    options
        .host(&node.host)
        .port(node.port)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to worker {node}: {e}"))
}

/// Whether schema `schema` exists on `node`.
async fn schema_on(node: &Node, schema: &str) -> bool {
    let mut conn = on_node(node).await;
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// The rows of `tenant`'s `guards` shard as stored on `node` (`None` if the shard is not
/// there): read on the worker, bypassing the coordinator.
async fn guards_on(pool: &Pool, node: &Node, tenant: &Tenant) -> Option<Vec<String>> {
    let shard: String = sqlx::query_scalar(
        "SELECT shard_name($1::regclass, shardid)::text FROM pg_dist_shard \
         WHERE logicalrelid = $1::regclass",
    )
    .bind(format!("{}.guards", tenant.quoted()))
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conn = on_node(node).await;
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&shard)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    found?;
    let sql = format!("SELECT name FROM {shard} ORDER BY id");
    Some(
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap(),
    )
}

/// `n` tenants created at v1 through `l`.
async fn create_n(l: &Lifecycle, n: usize) -> Vec<Tenant> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(l.tenants.create(name(&format!("c{i}"))).await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_flavour_is_detected_the_registry_stays_local_and_tenants_are_distributed() {
    // Sessions with schema-based sharding off: tenants are distributed all the same.
    let url = citus_url();
    let options: PgConnectOptions = url
        .parse::<PgConnectOptions>()
        .unwrap()
        .options([("citus.enable_schema_based_sharding", "off")]);
    let off = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let on = pool().await;
    for pool in [&off, &on] {
        let l = Lifecycle::new(pool, v1()).await;
        assert_eq!(l.tenants.flavour().await.unwrap(), Flavour::Citus);
        let t = l.tenants.create(name("dist")).await.unwrap();
        let distributed = |schema: String| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid::regnamespace::text = $1)",
                )
                .bind(schema)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        };
        assert!(distributed(t.as_str().to_owned()).await, "tenant {t}");
        assert!(
            !distributed(l.registry.clone()).await,
            "the registry stays on the coordinator"
        );
        assert!(l.tenants.placement_of(t.as_str()).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn the_flavour_can_be_said_instead_of_detected() {
    let pool = pool().await;
    // Told Citus: as detected.
    let l = Lifecycle::new(&pool, v1()).await;
    let told = l.tenants.clone().with_flavour(Flavour::Citus);
    let t = told.create(name("told")).await.unwrap();
    assert_eq!(told.flavour().await.unwrap(), Flavour::Citus);
    assert!(told.placement_of(t.as_str()).await.unwrap().is_some());
    // Told plain PostgreSQL on a Citus coordinator: no Citus operation, and the schema is
    // created as the database's setting says (here: sharding on, so distributed anyway).
    let plain = l.tenants.clone().with_flavour(Flavour::Postgres);
    assert_eq!(plain.flavour().await.unwrap(), Flavour::Postgres);
    assert_citus!(plain.placement().await, "placement", CitusError::NotCitus);
    assert_eq!(plain.list().await.unwrap(), std::slice::from_ref(&t));
}

#[tokio::test]
async fn a_registry_distributed_before_is_brought_back_to_the_coordinator() {
    let pool = pool().await;
    let registry = name("oldreg");
    exec(
        &pool,
        format!(
            "SELECT set_config('citus.enable_schema_based_sharding', 'on', true); \
             CREATE SCHEMA \"{registry}\"; CREATE TABLE \"{registry}\".placeholder (id int)"
        ),
    )
    .await;
    let tenants = tenancy::Tenants::new(pool.clone(), crate::lifecycle_support::migrator(v1()))
        .unwrap()
        .with_registry(&registry)
        .unwrap();
    let t = tenants.create(name("after")).await.unwrap();
    let distributed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1))",
    )
    .bind(&registry)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!distributed);
    assert_eq!(tenants.list().await.unwrap(), std::slice::from_ref(&t));
    tenants.drop(t.as_str()).await.unwrap();
    exec(&pool, format!("DROP SCHEMA \"{registry}\" CASCADE")).await;
}

#[tokio::test]
async fn tenants_spread_over_both_workers_and_their_rows_live_where_placement_says() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let created = create_n(&l, 6).await;
    let nodes = l.tenants.nodes().await.unwrap();
    assert!(nodes.len() >= 2, "the cluster has two workers: {nodes:?}");
    let placement = l.tenants.placement().await.unwrap();
    assert_eq!(placement.len(), 6);
    let used: std::collections::BTreeSet<&Node> =
        placement.iter().filter_map(|p| p.node.as_ref()).collect();
    assert!(used.len() >= 2, "tenants on one node only: {placement:?}");
    for t in &created {
        let node = l.tenants.placement_of(t.as_str()).await.unwrap().unwrap();
        let abu = format!("Abu of {t}");
        Guard::new(&abu, "Guard").insert(&pool, t).await.unwrap();
        assert_eq!(guards_on(&pool, &node, t).await, Some(vec![abu]));
        for other in nodes.iter().filter(|n| **n != node) {
            assert_eq!(guards_on(&pool, other, t).await, None, "{t} on {other}");
        }
    }
}

#[tokio::test]
async fn a_move_keeps_the_data_and_the_tenant_keeps_serving() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l.tenants.create(name("mover")).await.unwrap();
    for n in ["Abu", "Bea", "Cid"] {
        Guard::new(n, "Guard").insert(&pool, &t).await.unwrap();
    }
    let from = l.tenants.placement_of(t.as_str()).await.unwrap().unwrap();
    let nodes = l.tenants.nodes().await.unwrap();
    let to = nodes.iter().find(|n| **n != from).unwrap().clone();
    // The moves run on a pool of their own, so the coordinator's `pg_stat_activity` shows when
    // exactly their `citus_schema_move` runs (see `MoveWatch`).
    let mover_app = name("mover");
    let options: PgConnectOptions = citus_url().parse().unwrap();
    let mover_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.application_name(&mover_app))
        .await
        .unwrap();
    let mover = l.with_migrations(&mover_pool, v1());
    // Reads go on meanwhile: a task counts the tenant's rows until the move has returned,
    // timing each read; some must have run wholly while the server ran the move.
    let reading = Arc::new(AtomicBool::new(true));
    let reader = {
        let (pool, t, reading) = (pool.clone(), t.clone(), reading.clone());
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while reading.load(Ordering::SeqCst) {
                let started = Instant::now();
                let n = Guard::query(&t).count(&pool).await.unwrap();
                reads.push((started, Instant::now(), n));
            }
            reads
        })
    };
    let watch = MoveWatch::start(&mover_app).await;
    mover.move_to(t.as_str(), &to).await.unwrap();
    let (moving, moved) = watch.stop().await;
    reading.store(false, Ordering::SeqCst);
    let reads = reader.await.unwrap();
    let during = within(&reads, moving, moved);
    eprintln!(
        "move (block_writes) seen running for {:?}: {} reads, {during} of them wholly inside",
        moved - moving,
        reads.len()
    );
    assert!(during > 0, "no read ran while the move was in flight");
    assert!(
        reads.iter().all(|r| r.2 == 3),
        "a read saw another count: {:?}",
        reads
            .iter()
            .map(|r| r.2)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(
        l.tenants.placement_of(t.as_str()).await.unwrap(),
        Some(to.clone())
    );
    assert_eq!(
        guards_on(&pool, &to, &t).await,
        Some(vec!["Abu".into(), "Bea".into(), "Cid".into()])
    );
    // Citus drops the old shard later, as an orphaned resource; have it done now.
    exec(&pool, "CALL citus_cleanup_orphaned_resources()".into()).await;
    assert_eq!(guards_on(&pool, &from, &t).await, None);
    // The tenant serves reads and writes on its new node.
    Guard::new("Dee", "Guard").insert(&pool, &t).await.unwrap();
    assert_eq!(Guard::query(&t).count(&pool).await.unwrap(), 4);
    // Moving it where it is does nothing; an unknown node or tenant is refused.
    l.tenants.move_to(t.as_str(), &to).await.unwrap();
    let nowhere = Node::new("nowhere.invalid", 1);
    assert_citus!(
        l.tenants.move_to(t.as_str(), &nowhere).await,
        "move",
        CitusError::UnknownNode { node, known } if *node == nowhere && *known == nodes
    );
    assert_err!(
        l.tenants.move_to(name("nobody"), &to).await,
        Error::NotATenant { .. }
    );
    // And back by logical replication, with writes going on meanwhile: a task inserts rows
    // `w0`, `w1`, … until the move has returned, timing each insert.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (pool, t, writing) = (pool.clone(), t.clone(), writing.clone());
        tokio::spawn(async move {
            let mut writes = Vec::new();
            while writing.load(Ordering::SeqCst) {
                let started = Instant::now();
                let name = format!("w{}", writes.len());
                let stored = Guard::new(&name, "Guard").insert(&pool, &t).await.unwrap();
                assert_eq!(stored.name, name);
                writes.push((started, Instant::now(), ()));
            }
            writes
        })
    };
    let watch = MoveWatch::start(&mover_app).await;
    mover
        .move_to_with(t.as_str(), &from, MoveMode::Logical)
        .await
        .unwrap();
    let (moving, moved) = watch.stop().await;
    writing.store(false, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    let during = within(&writes, moving, moved);
    eprintln!(
        "move (logical) seen running for {:?}: {} writes, {during} of them wholly inside",
        moved - moving,
        writes.len()
    );
    assert!(during > 0, "no write ran while the move was in flight");
    assert_eq!(
        l.tenants.placement_of(t.as_str()).await.unwrap(),
        Some(from)
    );
    // Every acknowledged write is stored, once, on the new node.
    let mut expected: Vec<String> = ["Abu", "Bea", "Cid", "Dee"].map(String::from).to_vec();
    expected.extend((0..writes.len()).map(|i| format!("w{i}")));
    let stored: Vec<String> = raw_guards(&pool, &t)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(stored, expected);
    let total = expected.len() as i64;
    // The session lock of the logical move went with its connection: the tenant's lock is free.
    let quick = l
        .tenants
        .clone()
        .with_lock_timeout(std::time::Duration::from_secs(2));
    let renamed = quick.rename(t.as_str(), name("moved")).await.unwrap();
    assert_eq!(Guard::query(&renamed).count(&pool).await.unwrap(), total);
}

/// Watches, from a connection of its own, the coordinator's `pg_stat_activity` for a
/// `citus_schema_move` statement of the sessions named `application` (Citus copies the
/// tenant's shards inside that statement).
struct MoveWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Option<(Instant, Instant)>>,
}

impl MoveWatch {
    async fn start(application: &str) -> Self {
        let pool = pool_with(1).await;
        let application = application.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let task = tokio::spawn(async move {
            // A poll sent at `asked` that saw the statement running saw it at some moment
            // before `answered`. So from the first such poll's `answered` to the last one's
            // `asked`, the statement was running throughout.
            let mut seen: Option<(Instant, Instant)> = None;
            while !done.load(Ordering::SeqCst) {
                let asked = Instant::now();
                let running: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 \
                     AND state = 'active' AND query LIKE '%citus\\_schema\\_move(%')",
                )
                .bind(&application)
                .fetch_one(&pool)
                .await
                .unwrap();
                let answered = Instant::now();
                if running {
                    seen = Some((seen.map_or(answered, |s| s.0), asked));
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            seen
        });
        MoveWatch { stop, task }
    }

    /// Stops watching; the span during which the move was running throughout.
    async fn stop(self) -> (Instant, Instant) {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self.task.await.unwrap();
        let (from, to) = seen.expect("the move's citus_schema_move was never seen running");
        assert!(from < to, "the move was seen running only once");
        (from, to)
    }
}

/// How many of `ops` (each started and ended at the two instants) ran wholly between `from`
/// and `to`.
fn within<T>(ops: &[(Instant, Instant, T)], from: Instant, to: Instant) -> usize {
    ops.iter()
        .filter(|(started, ended, _)| *started >= from && *ended <= to)
        .count()
}

#[tokio::test]
async fn a_tenant_without_tables_is_not_placed_and_cannot_move() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, Vec::new()).await;
    let t = l.tenants.create(name("empty")).await.unwrap();
    assert_eq!(l.tenants.placement_of(t.as_str()).await.unwrap(), None);
    let placement = l.tenants.placement().await.unwrap();
    assert_eq!(placement.len(), 1);
    assert_eq!((&placement[0].tenant, &placement[0].node), (&t, &None));
    let node = l.tenants.nodes().await.unwrap().remove(0);
    assert_err!(
        l.tenants.move_to(t.as_str(), &node).await,
        Error::Unsupported { operation: "move", ref reason } if reason.contains("no table")
    );
}

#[tokio::test]
async fn rename_and_drop_reach_the_workers() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l.tenants.create(name("ren")).await.unwrap();
    Guard::new("Abu", "Guard").insert(&pool, &t).await.unwrap();
    let node = l.tenants.placement_of(t.as_str()).await.unwrap().unwrap();
    assert!(schema_on(&node, t.as_str()).await);
    let new = l.tenants.rename(t.as_str(), name("renamed")).await.unwrap();
    assert!(!schema_on(&node, t.as_str()).await);
    assert!(schema_on(&node, new.as_str()).await);
    assert_eq!(
        guards_on(&pool, &node, &new).await,
        Some(vec!["Abu".into()])
    );
    assert_eq!(
        l.tenants.placement_of(new.as_str()).await.unwrap(),
        Some(node.clone())
    );
    l.tenants.drop(new.as_str()).await.unwrap();
    for n in l.tenants.nodes().await.unwrap() {
        assert!(!schema_on(&n, new.as_str()).await, "{new} left on {n}");
    }
}

#[tokio::test]
async fn migrate_all_passes_one_broken_tenant_on_each_worker() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let created = create_n(&l, 6).await;
    let placement = l.tenants.placement().await.unwrap();
    let mut broken = Vec::new();
    for node in l.tenants.nodes().await.unwrap() {
        let on_it = placement
            .iter()
            .find(|p| p.node.as_ref() == Some(&node))
            .unwrap_or_else(|| panic!("no tenant on {node}: {placement:?}"));
        exec(&pool, ADD_BADGE_INT.replace("{t}", &q(&on_it.tenant))).await;
        broken.push(on_it.tenant.clone());
    }
    broken.sort();
    let newer = l.with_migrations(&pool, v2());
    let report = newer
        .migrate_all(MigrateOptions::default().concurrency(4))
        .await
        .unwrap();
    let mut failed: Vec<Tenant> = report
        .failed()
        .map(|(t, e)| {
            assert!(matches!(e, Error::Migration { version: 2, .. }), "{e:?}");
            t.clone()
        })
        .collect();
    failed.sort();
    assert_eq!(failed, broken);
    assert_eq!(report.changed().count(), created.len() - broken.len());
    for t in created.iter().filter(|t| !broken.contains(t)) {
        assert!(has_column(&pool, t.as_str(), "guards", "badge").await);
        assert_eq!(newer.status_of(t.as_str()).await.unwrap().applied, [1, 2]);
    }
}

#[tokio::test]
async fn ddl_citus_refuses_in_a_batch_runs_in_migrations() {
    // Index DDL, renames and constraints on a distributed table, in one file: Citus refuses
    // them in a multi-statement string unless each is sent on its own.
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "CREATE INDEX guards_name ON guards (name);
         ALTER TABLE guards ADD COLUMN badge text;
         ALTER TABLE guards ADD CONSTRAINT badge_unique UNIQUE (badge);
         ALTER INDEX guards_name RENAME TO guards_by_name;
         COMMENT ON TABLE guards IS 'guards; of the tenant';
         CREATE TABLE posts (id bigserial PRIMARY KEY, guard bigint REFERENCES guards (id));",
    ));
    migrations.push(migration(
        3,
        MigrationType::Simple,
        "ALTER TABLE posts RENAME TO shifts; DROP INDEX guards_by_name;",
    ));
    let l = Lifecycle::new(&pool, migrations.clone()).await;
    let t = l.tenants.create(name("ddl")).await.unwrap();
    assert!(has_table(&pool, t.as_str(), "shifts").await);
    // And by migration of an existing tenant.
    let old = Lifecycle::new(&pool, v1()).await;
    let u = old.tenants.create(name("ddlm")).await.unwrap();
    let newer = old.with_migrations(&pool, migrations);
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(
        report.is_success(),
        "{:?}",
        report.failed().collect::<Vec<_>>()
    );
    assert!(has_table(&pool, u.as_str(), "shifts").await);
    assert!(has_column(&pool, u.as_str(), "guards", "badge").await);
    // The DDL reached the shards on the workers, not only the coordinator's metadata.
    for (handle, tenant) in [(&l.tenants, &t), (&newer, &u)] {
        let node = handle.placement_of(tenant.as_str()).await.unwrap().unwrap();
        let mut conn = on_node(&node).await;
        let indexes: Vec<String> = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET citus.override_table_visibility = off;
             SELECT indexname::text FROM pg_indexes WHERE schemaname = {} AND tablename LIKE 'guards\\_%' ORDER BY 1",
            literal(tenant.as_str())
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .filter_map(|row| sqlx::Row::try_get::<String, _>(row, 0).ok())
        .collect();
        assert!(
            indexes.iter().any(|i| i.starts_with("badge_unique_")),
            "{tenant} on {node}: {indexes:?}"
        );
        assert!(
            !indexes.iter().any(|i| i.starts_with("guards_by_name")),
            "dropped by v3: {indexes:?}"
        );
    }
}

#[tokio::test]
async fn what_citus_refuses_is_a_typed_explained_error() {
    let pool = pool().await;
    let shared = name("shared");
    exec(
        &pool,
        format!(
            "SELECT set_config('citus.enable_schema_based_sharding', 'off', true); \
             CREATE TABLE public.{shared} (id int PRIMARY KEY)"
        ),
    )
    .await;
    let other = Lifecycle::new(&pool, v1()).await;
    let neighbour = other.tenants.create(name("neigh")).await.unwrap();
    let cases = [
        (
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER touch BEFORE UPDATE ON guards FOR EACH ROW EXECUTE FUNCTION touch();"
                .to_owned(),
            CitusRefusal::Trigger,
        ),
        (
            format!("CREATE TABLE posts (id int, shared int REFERENCES public.{shared} (id))"),
            CitusRefusal::ForeignKeyToLocalTable,
        ),
        (
            format!(
                "CREATE TABLE posts (id int, g bigint REFERENCES {}.guards (id))",
                neighbour.quoted()
            ),
            CitusRefusal::ForeignKeyOutsideTenant,
        ),
    ];
    for (sql, refusal) in cases {
        let mut migrations = v1();
        migrations.push(migration(2, MigrationType::Simple, &sql));
        let l = Lifecycle::new(&pool, migrations).await;
        let n = name("refused");
        let err = l.tenants.create(&n).await.unwrap_err();
        let Error::Refused {
            operation: "migrate",
            tenant: Some(ref tenant),
            ref source,
        } = err
        else {
            panic!("{sql}: expected Error::Refused of migrate, got {err:?}");
        };
        assert_eq!(tenant.as_str(), n, "{sql}");
        assert!(
            matches!(source.downcast_ref::<CitusError>(), Some(CitusError::Unsupported { version: 2, refusal: r, .. }) if *r == refusal),
            "{sql}: {err:?}"
        );
        // The advice is in the error's cause chain, as an application prints it.
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains(refusal.advice()), "{chain}");
        assert!(
            err.as_sqlx().is_some(),
            "the server's error is reachable: {err:?}"
        );
        assert!(!container_exists(&pool, &n).await, "nothing is left");
    }
    exec(&pool, format!("DROP TABLE public.{shared}")).await;
}

#[tokio::test]
async fn the_example_migrations_run_on_citus() {
    let pool = pool().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/migrations/tenant");
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    let l = Lifecycle::new(&pool, migrator.migrations.to_vec()).await;
    let t = l.tenants.create(name("example")).await.unwrap();
    assert!(has_table(&pool, t.as_str(), "guards").await);
}

#[tokio::test]
async fn placement_on_plain_postgresql_is_a_typed_error() {
    let pg = crate::support::pool().await;
    let l = Lifecycle::new(&pg, v1()).await;
    assert_eq!(l.tenants.flavour().await.unwrap(), Flavour::Postgres);
    assert_citus!(
        l.tenants.placement().await,
        "placement",
        CitusError::NotCitus
    );
    assert_citus!(
        l.tenants.placement_of("acme").await,
        "placement",
        CitusError::NotCitus
    );
    assert_citus!(
        l.tenants.move_to("acme", &Node::new("w", 1)).await,
        "move",
        CitusError::NotCitus
    );
    let container = l.tenants.create(name("rows")).await.unwrap();
    assert_citus!(
        l.tenants.distribute_rows(&container).await,
        "distribute_rows",
        CitusError::NotCitus
    );
}

/// A shared model: one table in `public` of the coordinator for every tenant.
#[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "tenancy_test_plans", shared = "public")]
pub struct Plan {
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required)]
    pub name: String,
    pub seats: i32,
}

/// The shared table of `Plan` (kept between runs; each test uses names of its own): a Citus
/// *reference table*, copied to every node, which is what tenant tables (on their worker) can
/// join; a plain table on the coordinator cannot be joined from them.
pub const SHARED_PLANS_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS public.tenancy_test_plans \
     (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, seats integer NOT NULL)",
    "DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_dist_partition
                        WHERE logicalrelid = 'public.tenancy_test_plans'::regclass) THEN
             PERFORM create_reference_table('public.tenancy_test_plans');
         END IF;
     END $$",
];

/// The cluster's URL as printed, without `sslmode` (sqlx's default `prefer`), connects
/// encrypted although the cluster's certificate is the self-signed X.509 version-1 one Citus
/// generates (which rustls cannot parse): as with libpq, `prefer` and `require` do not verify.
#[tokio::test]
async fn the_clusters_url_without_sslmode_connects_encrypted() {
    use sqlx::Connection;
    let url = citus_url();
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode="))
        .collect();
    let plain = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let sep = if kept.is_empty() { '?' } else { '&' };
    for url in [plain.clone(), format!("{plain}{sep}sslmode=require")] {
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect with {url}: {e}"));
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(ssl, "{url}: the connection is not encrypted");
        conn.close().await.unwrap();
    }
}

/// How many sessions wait for a lock the transaction open on `conn` holds, on the coordinator.
pub async fn waiting_on(conn: &mut sqlx::PgConnection) -> Option<i64> {
    super::pg::waiting_on_at(&citus_url(), conn).await
}
