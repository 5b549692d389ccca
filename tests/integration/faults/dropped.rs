//! A process killed part-way through the drop of a row-level tenant in batches
//! (`Tenants::drop_with`), on PostgreSQL. A child process (this test binary, running
//! [`child_drops_until_killed`]) drops tenant `a` (40,000 rows in a shared table, 500 rows a
//! batch) and the test kills it (`SIGKILL`) after a delay, 16 times. After each kill, read
//! with plain SQL: its neighbour's rows are as they were; `a` is either whole and unmarked
//! (killed before the mark), or marked `dropping` with a whole number of batches deleted
//! (each batch all or nothing), or gone from the registry with none of its rows left; the
//! next child carries the drop on, and once it is done the test makes `a` again.

use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType};
use sqlx::PgPool;
use tenancy::{DropOptions, Tenants};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{migration, migrator};

/// What the child gets from the parent (with no `DATABASE_URL` the parent's server is a
/// private one the child must not start again).
const CHILD_URL: &str = "TENANCY_DROP_CHILD_URL";
const CHILD_REGISTRY: &str = "TENANCY_DROP_CHILD_REGISTRY";
const CHILD_TENANT: &str = "TENANCY_DROP_CHILD_TENANT";
/// The rows of the tenant dropped, a batch, and the neighbour's rows.
const ROWS: i64 = 40_000;
const BATCH: i64 = 500;
const NEIGHBOUR_ROWS: i64 = 1_000;

fn migrations() -> Vec<Migration> {
    vec![migration(
        1,
        MigrationType::Simple,
        "CREATE TABLE items (id bigserial PRIMARY KEY, tenant_id text NOT NULL DEFAULT '', \
         n bigint NOT NULL); CREATE INDEX ON items (tenant_id)",
    )]
}

async fn tenants(url: &str, registry: &str) -> Tenants {
    on(PgPool::connect(url).await.unwrap(), registry)
}

fn on(pool: PgPool, registry: &str) -> Tenants {
    Tenants::new(pool, migrator(migrations()))
        .unwrap()
        .with_registry(registry)
        .unwrap()
}

/// Run by [`a_process_killed_while_it_drops_a_row_level_tenant_leaves_whole_batches`] as its
/// child process (does nothing otherwise): drops `a`, then waits to be killed.
#[tokio::test]
#[ignore = "the child process of a_process_killed_while_it_drops_a_row_level_tenant_…"]
async fn child_drops_until_killed() {
    let (Ok(url), Ok(registry), Ok(a)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_REGISTRY),
        std::env::var(CHILD_TENANT),
    ) else {
        return;
    };
    let db = tenants(&url, &registry).await;
    println!("moving");
    let options = DropOptions::default().rows_per_batch(BATCH as usize);
    db.drop_with(&a, options)
        .await
        .unwrap_or_else(|e| panic!("dropping a: {e:?}"));
    std::future::pending::<()>().await;
}

/// The test's names: the registry, the container, the tenant dropped and its neighbour.
struct Names {
    registry: String,
    shared: String,
    a: String,
    b: String,
}

impl Names {
    /// Names of their own, starting with `prefix`.
    fn new(prefix: &str) -> Self {
        let unique = |what: &str| tenancy_testdb::unique_name(&format!("{prefix}{what}"));
        Names {
            registry: unique("reg"),
            shared: unique("s"),
            a: unique("a"),
            b: unique("b"),
        }
    }

    /// Makes the container, the neighbour with its rows, then the tenant with its.
    async fn seed(&self, db: &Tenants, pool: &PgPool) {
        db.create(&self.shared).await.unwrap();
        make(db, pool, self, &self.b, NEIGHBOUR_ROWS).await;
        make(db, pool, self, &self.a, ROWS).await;
    }
}

/// (rows, sum of `n`) of `tenant` in the shared table.
async fn rows_of(pool: &PgPool, names: &Names, tenant: &str) -> (i64, i64) {
    let sql = format!(
        "SELECT count(*), coalesce(sum(n), 0)::int8 FROM \"{}\".items WHERE tenant_id = $1",
        names.shared
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Whether `a` is registered, and if so whether it is marked `dropping`.
async fn registered(pool: &PgPool, names: &Names) -> Option<bool> {
    let sql = format!(
        "SELECT dropping FROM \"{}\".row_tenants WHERE name = $1",
        names.registry
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(&names.a)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Makes row-level `tenant` in the container with `rows` rows (`n` from 0).
async fn make(db: &Tenants, pool: &PgPool, names: &Names, tenant: &str, rows: i64) {
    let shared = db.tenant(&names.shared).await.unwrap();
    db.create_in(tenant, &shared).await.unwrap();
    let sql = format!(
        "INSERT INTO \"{}\".items (tenant_id, n) SELECT $1, x FROM generate_series(0, $2 - 1) x",
        names.shared
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(rows)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_process_killed_while_it_drops_a_row_level_tenant_leaves_whole_batches() {
    let url = crate::support::database_url();
    let names = Names::new("drk");
    let _cleanup = Leftovers::postgres(&url).registry(&names.registry);
    let pool = PgPool::connect(&url).await.unwrap();
    let db = tenants(&url, &names.registry).await;
    names.seed(&db, &pool).await;
    let whole = (ROWS, ROWS * (ROWS - 1) / 2);
    let neighbour = (NEIGHBOUR_ROWS, NEIGHBOUR_ROWS * (NEIGHBOUR_ROWS - 1) / 2);
    let env = [
        (CHILD_URL, url.as_str()),
        (CHILD_REGISTRY, names.registry.as_str()),
        (CHILD_TENANT, names.a.as_str()),
    ];

    let (mut before, mut between, mut done) = (0, 0, 0);
    for delay in (0..16u64).map(|i| i * i * 6) {
        crate::faults::kill_child_after(
            "faults::dropped::child_drops_until_killed",
            &env,
            Duration::from_millis(delay),
        );
        let after = format!("after {delay} ms");
        assert_eq!(
            rows_of(&pool, &names, &names.b).await,
            neighbour,
            "{after}: b"
        );
        let (left, _) = rows_of(&pool, &names, &names.a).await;
        match registered(&pool, &names).await {
            Some(false) => {
                before += 1;
                assert_eq!(
                    rows_of(&pool, &names, &names.a).await,
                    whole,
                    "{after}: unmarked"
                );
            }
            Some(true) => {
                between += 1;
                assert_eq!(left % BATCH, 0, "{after}: {left} rows of a left");
            }
            None => {
                done += 1;
                assert_eq!(left, 0, "{after}: a unregistered, {left} rows left");
                make(&db, &pool, &names, &names.a, ROWS).await;
            }
        }
    }
    eprintln!("kills before the mark, between, after the drop: {before}/{between}/{done}");
    // The last child's drop carried on by this process.
    if registered(&pool, &names).await.is_some() {
        db.drop_with(&names.a, DropOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(rows_of(&pool, &names, &names.a).await, (0, 0));
    assert_eq!(rows_of(&pool, &names, &names.b).await, neighbour);
    assert!(
        between > 0,
        "no kill fell between the mark and the end: {before}/{between}/{done}"
    );
    db.drop(&names.b).await.unwrap();
    db.drop(&names.shared).await.unwrap();
}

#[tokio::test]
async fn a_connection_cut_while_it_drops_a_row_level_tenant_leaves_whole_batches() {
    let url = crate::support::database_url();
    let names = Names::new("drc");
    let _cleanup = Leftovers::postgres(&url).registry(&names.registry);
    let pool = PgPool::connect(&url).await.unwrap();
    // The drop's connections, told from the others by their application name.
    let app = tenancy_testdb::unique_name("dropcut");
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let victims = PgPool::connect_with(options.application_name(&app))
        .await
        .unwrap();
    let db = on(victims, &names.registry);
    names.seed(&db, &pool).await;
    let neighbour = (NEIGHBOUR_ROWS, NEIGHBOUR_ROWS * (NEIGHBOUR_ROWS - 1) / 2);

    let dropping = {
        let (db, a) = (db.clone(), names.a.clone());
        let options = DropOptions::default().rows_per_batch(BATCH as usize);
        tokio::spawn(async move { db.drop_with(&a, options).await })
    };
    // Terminates the drop's connection while it deletes a batch (polled every millisecond).
    let mut cut = 0;
    while cut == 0 && !dropping.is_finished() {
        cut = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'active' AND query LIKE 'DELETE FROM%') t",
        )
        .bind(&app)
        .fetch_one(&pool)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(cut > 0, "the drop finished before a batch could be cut");
    let failed = dropping.await.unwrap();
    assert!(failed.is_err(), "a drop whose batch was cut: {failed:?}");

    // Marked, whole batches gone, the neighbour untouched.
    let (left, _) = rows_of(&pool, &names, &names.a).await;
    assert_eq!(registered(&pool, &names).await, Some(true));
    assert_eq!(left % BATCH, 0, "{left} rows of a left");
    assert!(left > 0 && left <= ROWS, "{left} rows of a left");
    assert_eq!(rows_of(&pool, &names, &names.b).await, neighbour);

    // The next drop finishes it.
    let dropped = db
        .drop_with(&names.a, DropOptions::default())
        .await
        .unwrap();
    assert_eq!(
        dropped,
        tenancy::Dropped::Rows {
            deleted: left as u64
        }
    );
    assert_eq!(rows_of(&pool, &names, &names.a).await, (0, 0));
    assert_eq!(registered(&pool, &names).await, None);
    assert_eq!(rows_of(&pool, &names, &names.b).await, neighbour);
    db.drop(&names.b).await.unwrap();
    db.drop(&names.shared).await.unwrap();
}
