//! A fleet: tenants spread over two PostgreSQL servers (the test server and a private cluster
//! this test starts), placed, routed, migrated and moved; every check reads the stored data
//! on each server directly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migration;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tenancy::{Error, Fleet, Lifecycle, MigrateOptions, TenantModel, Tenants};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::Cluster;

use crate::assert_err;
use crate::faults::private_cluster;
use crate::lifecycle_support::{migrator, v1, v2};
use crate::support::Guard;

/// The home (the test server, a private registry) and a second server (a private cluster),
/// each with a handle on the same registry name.
struct Two {
    home: PgPool,
    other: PgPool,
    registry: String,
    _cluster: Option<Arc<Cluster>>,
    _cleanup: Leftovers,
}

async fn connect(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

impl Two {
    async fn start() -> Self {
        let cluster = private_cluster().await;
        let other = connect(cluster.url()).await;
        Self::on(other, Some(cluster), tenancy_testdb::unique_name("fleet")).await
    }

    async fn on(other: PgPool, cluster: Option<Arc<Cluster>>, registry: String) -> Self {
        Self::at(&crate::support::database_url(), other, cluster, registry).await
    }

    /// With the home on the server of `url`.
    async fn at(url: &str, other: PgPool, cluster: Option<Arc<Cluster>>, registry: String) -> Self {
        Two {
            home: connect(url).await,
            other,
            _cleanup: Leftovers::postgres(url).registry(&registry),
            registry,
            _cluster: cluster,
        }
    }

    fn handles(&self, migrations: Vec<Migration>) -> [(&'static str, Tenants); 2] {
        let handle = |pool: &PgPool| {
            Tenants::new(pool.clone(), migrator(migrations.clone()))
                .unwrap()
                .with_registry(&self.registry)
                .unwrap()
        };
        [("home", handle(&self.home)), ("other", handle(&self.other))]
    }

    async fn fleet(&self, migrations: Vec<Migration>) -> Fleet {
        Fleet::new(self.handles(migrations)).await.unwrap()
    }

    /// The names of `schema`'s guards on each server, sorted: (home, other).
    async fn stored(&self, schema: &str) -> (Vec<String>, Vec<String>) {
        (
            names_in(&self.home, schema).await,
            names_in(&self.other, schema).await,
        )
    }
}

async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The names in `schema`.guards on `pool`'s server, sorted; empty if there is no such schema.
async fn names_in(pool: &PgPool, schema: &str) -> Vec<String> {
    if !schema_exists(pool, schema).await {
        return Vec::new();
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM \"{schema}\".guards ORDER BY name"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

#[tokio::test]
async fn a_fleet_places_each_tenant_in_one_database_and_routes_every_statement_there() {
    let two = Two::start().await;
    let fleet = two.fleet(v1()).await;
    let (x, y, z) = (name("x"), name("y"), name("z"));
    let tx = fleet.create(&x).await.unwrap();
    let ty = fleet.create(&y).await.unwrap();
    let tz = fleet.create_on(&z, "other").await.unwrap();
    // The fewest first: x at home, then y on the other; z where it was asked.
    assert_eq!(fleet.database_of(&x).await.unwrap(), "home");
    assert_eq!(fleet.database_of(&y).await.unwrap(), "other");
    assert_eq!(fleet.database_of(&z).await.unwrap(), "other");
    for (t, who) in [(&tx, "Xena"), (&ty, "Yann"), (&tz, "Zoe")] {
        Guard::new(who, "Guard").insert(&fleet, t).await.unwrap();
    }
    assert_eq!(two.stored(&x).await, (vec!["Xena".to_owned()], vec![]));
    assert_eq!(two.stored(&y).await, (vec![], vec!["Yann".to_owned()]));
    assert_eq!(two.stored(&z).await, (vec![], vec!["Zoe".to_owned()]));
    let read = Guard::query(&ty).fetch_all(&fleet).await.unwrap();
    assert_eq!(
        read.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Yann"]
    );
    let mut listed: Vec<String> = fleet
        .list()
        .await
        .unwrap()
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    listed.sort();
    let mut all = vec![x.clone(), y.clone(), z.clone()];
    all.sort();
    assert_eq!(listed, all);
    assert_eq!(fleet.list_on("home").await.unwrap(), vec![tx.clone()]);

    // A name any database has is taken; another database than the fleet's is refused.
    assert_err!(fleet.create(&y).await, Error::TenantExists { .. });
    assert_err!(
        fleet.create_on(&name("w"), "elsewhere").await,
        Error::Unsupported { .. }
    );
    // A statement on several tenants at once cannot know its database.
    assert_err!(
        tenancy::AcrossTenants::<Guard>::new([tx.clone(), ty.clone()])
            .count(&fleet)
            .await,
        Error::Unsupported { .. }
    );

    // Rename and drop act on the tenant's database and the map.
    let w = name("w");
    let tw = fleet.rename(&z, &w).await.unwrap();
    assert_eq!(two.stored(&w).await, (vec![], vec!["Zoe".to_owned()]));
    assert_eq!(two.stored(&z).await, (vec![], vec![]));
    assert_eq!(fleet.database_of(&w).await.unwrap(), "other");
    assert_err!(fleet.database_of(&z).await, Error::NotATenant { .. });
    assert_err!(
        Guard::query(&tz).count(&fleet).await,
        Error::UnknownTenant { .. }
    );
    fleet.drop_tenant(&y).await.unwrap();
    assert_eq!(two.stored(&y).await, (vec![], vec![]));
    assert!(!fleet.exists(&y).await.unwrap());
    assert_err!(
        Guard::query(&ty).count(&fleet).await,
        Error::UnknownTenant { .. }
    );

    // A clone stays in its source's database.
    let c = name("c");
    fleet.clone_tenant(&w, &c).await.unwrap();
    assert_eq!(two.stored(&c).await, (vec![], vec!["Zoe".to_owned()]));

    // Migrations run in every database.
    let newer = two.fleet(v2()).await;
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(report.failed().count(), 0);
    let status = newer.status().await.unwrap();
    assert_eq!(status.len(), 3);
    assert!(status.iter().all(|s| s.applied == [1, 2]), "{status:?}");
    assert_eq!(newer.status_of(&x).await.unwrap().applied, [1, 2]);
    drop(tw);
}

#[tokio::test]
async fn a_fleet_refuses_handles_with_other_migrations_and_other_backends() {
    let two = Two::on(
        connect(&crate::support::database_url()).await,
        None,
        name("fleet"),
    )
    .await;
    let [(_, old), _] = two.handles(v1());
    let [_, (_, newer)] = two.handles(v2());
    assert_err!(
        Fleet::new([("a", old.clone()), ("b", newer)]).await,
        Error::Unsupported { .. }
    );
    assert_err!(
        Fleet::new([("a", old.clone()), ("a", old)]).await,
        Error::Unsupported { .. }
    );
    let folder = tenancy_testdb::sqlite::folder("fleet").unwrap();
    let sqlite = tenancy::sqlite::open(folder.to_str().unwrap())
        .await
        .unwrap();
    let sqlite = Tenants::new(sqlite, migrator(vec![])).unwrap();
    assert_err!(Fleet::new([("a", sqlite)]).await, Error::Unsupported { .. });
}

/// Writes `Guard`s named `<prefix>-<n>` to `tenant` through `fleet` until `stop`, each one run
/// again while it fails with `UnknownTenant` (the tenant moved under it): the names written.
async fn writer(
    fleet: Fleet,
    tenant: tenancy::Tenant,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut written = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let who = format!("{prefix}-{n}");
        loop {
            match Guard::new(&who, "Guard").insert(&fleet, &tenant).await {
                Ok(_) => break,
                Err(Error::UnknownTenant { .. }) => {
                    fleet.forget_route(&tenant);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("{who}: {e:?}"),
            }
        }
        written.push(who);
        n += 1;
    }
    written
}

#[tokio::test]
async fn a_move_under_concurrent_writes_loses_and_duplicates_nothing() {
    let two = Two::start().await;
    let fleet = two.fleet(v1()).await;
    let m = name("m");
    let tm = fleet.create_on(&m, "home").await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{m}\".guards (name, position) SELECT 'seed-' || i, 'Guard' FROM generate_series(1, 5000) i"
    )))
    .execute(&two.home)
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(writer(
                fleet.clone(),
                tm.clone(),
                format!("w{w}"),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let moved = fleet.move_tenant(&m, "other").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert_eq!((moved.from.as_str(), moved.to.as_str()), ("home", "other"));
    assert!(moved.rows >= 5000, "{moved:?}");
    let (home, other) = two.stored(&m).await;
    assert!(home.is_empty(), "the source's copy is gone");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for who in &other {
        *counts.entry(who.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a row stored twice");
    for who in &acknowledged {
        assert!(
            counts.contains_key(who.as_str()),
            "{who} was acknowledged and lost"
        );
    }
    assert_eq!(other.len(), 5000 + acknowledged.len());
    assert!(
        acknowledged.len() > 4,
        "the writers wrote: {}",
        acknowledged.len()
    );
    assert_eq!(fleet.database_of(&m).await.unwrap(), "other");
    // Another fleet on the same databases (another process) sees it there.
    let again = two.fleet(v1()).await;
    assert_eq!(again.database_of(&m).await.unwrap(), "other");
    assert_eq!(
        Guard::query(&tm).count(&again).await.unwrap() as usize,
        other.len()
    );
    // Moving it where it is is refused; so is an unknown tenant.
    assert_err!(
        fleet.move_tenant(&m, "other").await,
        Error::Unsupported { .. }
    );
    assert_err!(
        fleet.move_tenant(name("nobody"), "home").await,
        Error::NotATenant { .. }
    );
}

/// The private cluster's URL and the registry a child moves a tenant in: set for the child only.
const CHILD_URL: &str = "TENANCY_FLEET_CHILD_URL";
/// The home's URL: the parent's test server (with no `DATABASE_URL`, a private one the child
/// must not start again).
const CHILD_HOME_URL: &str = "TENANCY_FLEET_CHILD_HOME_URL";
const CHILD_REGISTRY: &str = "TENANCY_FLEET_CHILD_REGISTRY";
const CHILD_TENANT: &str = "TENANCY_FLEET_CHILD_TENANT";
/// The rows of the tenant that moves.
const ROWS: i64 = 20_000;

/// (rows, sum of ids) of `schema`.guards on `pool`'s server; `None` without such a schema.
async fn whole_in(pool: &PgPool, schema: &str) -> Option<(i64, i64)> {
    if !schema_exists(pool, schema).await {
        return None;
    }
    let sql = format!("SELECT count(*), coalesce(sum(id), 0)::int8 FROM \"{schema}\".guards");
    Some(
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap(),
    )
}

/// Run by [`a_process_killed_while_it_moves_a_tenant_leaves_it_whole_in_one_database`] as its
/// child process (does nothing otherwise): moves the tenant between the two databases until
/// killed.
#[tokio::test]
#[ignore = "the child process of a_process_killed_while_it_moves_a_tenant_…"]
async fn child_moves_until_killed() {
    let (Ok(home), Ok(url), Ok(registry), Ok(tenant)) = (
        std::env::var(CHILD_HOME_URL),
        std::env::var(CHILD_URL),
        std::env::var(CHILD_REGISTRY),
        std::env::var(CHILD_TENANT),
    ) else {
        return;
    };
    let two = Two::at(&home, connect(&url).await, None, registry).await;
    let fleet = two.fleet(v1()).await;
    println!("moving");
    loop {
        let to = match fleet.database_of(&tenant).await.unwrap() {
            "home" => "other",
            _ => "home",
        };
        fleet
            .move_tenant(&tenant, to)
            .await
            .unwrap_or_else(|e| panic!("moving {tenant} to {to}: {e:?}"));
    }
}

#[tokio::test]
async fn a_process_killed_while_it_moves_a_tenant_leaves_it_whole_in_one_database() {
    let two = Two::start().await;
    let fleet = two.fleet(v1()).await;
    let (k, n) = (name("k"), name("n"));
    fleet.create_on(&k, "home").await.unwrap();
    fleet.create_on(&n, "other").await.unwrap();
    for (pool, schema, rows) in [(&two.home, &k, ROWS), (&two.other, &n, 100)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{schema}\".guards (name, position) \
             SELECT 'g' || i, 'Guard' FROM generate_series(1, {rows}) i"
        )))
        .execute(pool)
        .await
        .unwrap();
    }
    let whole = (ROWS, ROWS * (ROWS + 1) / 2);
    let neighbour = whole_in(&two.other, &n).await;
    let url = two._cluster.as_ref().unwrap().url().to_owned();
    let home_url = crate::support::database_url();
    let mut seen = BTreeMap::new();
    for delay in (0..16).map(|i| i * i * 3) {
        crate::faults::kill_child_after(
            "fleet::child_moves_until_killed",
            &[
                (CHILD_HOME_URL, home_url.as_str()),
                (CHILD_URL, url.as_str()),
                (CHILD_REGISTRY, two.registry.as_str()),
                (CHILD_TENANT, k.as_str()),
            ],
            Duration::from_millis(delay),
        );

        let copies = [
            whole_in(&two.home, &k).await.is_some(),
            whole_in(&two.other, &k).await.is_some(),
        ];
        // What a new process finds: the map put right, the other copy gone.
        let fleet = two.fleet(v1()).await;
        let at = fleet.database_of(&k).await.unwrap().to_owned();
        let (here, there) = match at.as_str() {
            "home" => (&two.home, &two.other),
            _ => (&two.other, &two.home),
        };
        assert_eq!(
            whole_in(here, &k).await,
            Some(whole),
            "after {delay} ms: {k} in {at} (copies before: {copies:?})"
        );
        assert_eq!(
            whole_in(there, &k).await,
            None,
            "after {delay} ms: a second copy"
        );
        assert_eq!(
            whole_in(&two.other, &n).await,
            neighbour,
            "after {delay} ms: the neighbour"
        );
        let handle = fleet.database(&at).unwrap();
        assert!(handle.exists(&k).await.unwrap());
        let other = if at == "home" { "other" } else { "home" };
        assert!(!fleet.database(other).unwrap().exists(&k).await.unwrap());
        *seen.entry(at).or_insert(0) += 1;
    }
    // The kills fell both sides of a move.
    assert_eq!(seen.len(), 2, "{seen:?}");
    drop(fleet);
}

/// Terminates, on `pool`'s server, the first connection whose statement is `LIKE` `pattern`
/// (polled every 2 ms until one is found or `stop`); how many it terminated.
async fn cut_when_running(pool: PgPool, pattern: &'static str, stop: Arc<AtomicBool>) -> usize {
    while !stop.load(Ordering::Relaxed) {
        let cut: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1) AS t",
        )
        .bind(pattern)
        .fetch_one(&pool)
        .await
        .unwrap();
        if cut > 0 {
            return cut as usize;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    0
}

#[tokio::test]
async fn a_connection_cut_during_a_move_leaves_the_tenant_whole_where_it_was() {
    let two = Two::start().await;
    let fleet = two.fleet(v1()).await;
    let c = name("c");
    fleet.create_on(&c, "home").await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{c}\".guards (name, position) \
         SELECT 'g' || i, 'Guard' FROM generate_series(1, 200000) i"
    )))
    .execute(&two.home)
    .await
    .unwrap();
    let whole = whole_in(&two.home, &c).await;
    // The source's export (`COPY … TO STDOUT`), the target's import (`COPY … FROM STDIN`),
    // the target's digest once its copy committed (the source waits for it).
    for (server, pattern) in [
        (&two.home, "COPY (%TO STDOUT%"),
        (&two.other, "COPY %FROM STDIN%"),
        (&two.other, "%hashtextextended%"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let cutter = tokio::spawn(cut_when_running(server.clone(), pattern, stop.clone()));
        let moved = fleet.move_tenant(&c, "other").await;
        stop.store(true, Ordering::Relaxed);
        let cuts = cutter.await.unwrap();
        // (A digest's parallel workers run its statement too.)
        assert!(cuts >= 1, "{pattern}: no connection was cut ({moved:?})");
        assert!(
            moved.is_err(),
            "{pattern}: the move went through: {moved:?}"
        );
        assert_eq!(
            whole_in(&two.home, &c).await,
            whole,
            "{pattern}: the source"
        );
        assert_eq!(
            whole_in(&two.other, &c).await,
            None,
            "{pattern}: a copy left"
        );
        assert_eq!(fleet.database_of(&c).await.unwrap(), "home");
        assert!(fleet.reconcile().await.unwrap().is_empty(), "{pattern}");
    }
    // Run again, the move goes through.
    fleet.move_tenant(&c, "other").await.unwrap();
    assert_eq!(whole_in(&two.other, &c).await, whole);
    assert_eq!(whole_in(&two.home, &c).await, None);
}
