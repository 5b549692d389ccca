//! The library through PgBouncer in transaction mode (`PGBOUNCER_URL`, started by `.ci/run`
//! from `.ci/pgbouncer/`, or a private one in front of the private cluster): CRUD, isolation
//! and the lifecycle, with server connections shared between clients and tenants.

use std::collections::BTreeSet;

use sqlx::postgres::PgPool;
use tenancy::postgres::{PgBouncer, PoolSettings};
use tenancy::{Changeset, Dropped, MigrateOptions, Outcome, Tenant, TenantModel, Tenants};

use crate::lifecycle_support::{migration, migrator, v1, v2, Lifecycle};
use crate::support::Guard;

/// The PgBouncer every test here goes through: `PGBOUNCER_URL`, or a private one in front of
/// the private cluster (see `tenancy_testdb::pgbouncer_url`).
fn pgbouncer_url() -> String {
    tenancy_testdb::pgbouncer_url().unwrap_or_else(|e| panic!("{e}"))
}

/// `PGBOUNCER_URL` with `?pgbouncer=true`: the one place the mode is said.
fn flagged_url() -> String {
    let url = pgbouncer_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}pgbouncer=true")
}

/// A handle on `registry` with `migrations`, built from the flagged URL alone.
async fn flagged_tenants(
    connections: u32,
    migrations: Vec<sqlx::migrate::Migration>,
    registry: &str,
) -> Tenants {
    PoolSettings::new()
        .max_connections(connections)
        .connect_tenants(&flagged_url(), migrator(migrations))
        .await
        .expect("connect through PgBouncer")
        .with_registry(registry)
        .unwrap()
}

/// A `Tenants` handle behind PgBouncer on a private registry (dropped with its tenants by
/// `Lifecycle`'s `Drop`, directly on the server), built from `?pgbouncer=true` on the URL: no
/// `PgBouncer(…)` wrapper and no `behind_pgbouncer()` below but in the one test of the wrapper
/// for pools built by hand.
struct Bounced {
    lifecycle: Lifecycle,
}

impl Bounced {
    async fn new(connections: u32, migrations: Vec<sqlx::migrate::Migration>) -> Self {
        let registry = tenancy_testdb::unique_name("bounce");
        let tenants = flagged_tenants(connections, migrations, &registry).await;
        assert!(tenants.is_behind_pgbouncer());
        Bounced {
            lifecycle: Lifecycle::on_test_database(tenants, registry),
        }
    }

    fn tenants(&self) -> &Tenants {
        &self.lifecycle.tenants
    }

    /// A tenant named `prefix…` whose creation also runs `sql` in it (an unnamed statement).
    async fn created_with(&self, prefix: &str, sql: &'static str) -> Tenant {
        self.tenants()
            .create_with(
                tenancy_testdb::unique_name(prefix),
                Box::new(move |conn, _| {
                    Box::pin(async move {
                        sqlx::query(sql).persistent(false).execute(conn).await?;
                        Ok(())
                    })
                }),
            )
            .await
            .unwrap()
    }

    /// Another handle on the same registry with other migrations.
    async fn with_migrations(&self, migrations: Vec<sqlx::migrate::Migration>) -> Tenants {
        flagged_tenants(4, migrations, &self.lifecycle.registry).await
    }
}

#[tokio::test]
async fn crud_and_queries_work_through_pgbouncer() {
    let b = Bounced::new(4, v1()).await;
    let t = b
        .tenants()
        .create(tenancy_testdb::unique_name("pbc"))
        .await
        .unwrap();
    // The tenant's executor carries the handle's mode.
    let pool = b.tenants().pool_for(&t).await.unwrap();
    let db = &pool;
    let mut abu = Guard::new("Abu", "Guard").insert(db, &t).await.unwrap();
    let many = Guard::insert_many(
        db,
        &t,
        vec![Guard::new("Ali", "Cook"), Guard::new("Ann", "Cook")],
    )
    .await
    .unwrap();
    assert_eq!(many.len(), 2);
    abu.apply(db, &t, Changeset::new().set(Guard::POSITION, "Captain"))
        .await
        .unwrap();
    abu.name = "Abu Bakr".into();
    abu.update(db, &t).await.unwrap();
    // And so does the handle itself.
    let found = Guard::find(b.tenants(), &t, abu.id).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.position.as_str()),
        ("Abu Bakr", "Captain")
    );
    let cooks = Guard::query(&t)
        .filter(Guard::POSITION.eq("Cook"))
        .order_by(Guard::NAME.asc())
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(
        cooks.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Ali", "Ann"]
    );
    assert_eq!(Guard::query(&t).count(db).await.unwrap(), 3);
    assert_eq!(
        Guard::query(&t)
            .filter(Guard::NAME.eq("Ali"))
            .delete(b.tenants())
            .await
            .unwrap(),
        1
    );
    found.clone().delete(db, &t).await.unwrap();
    assert_eq!(Guard::query(&t).count(db).await.unwrap(), 1);

    // Inside the tenant's own transaction, which carries the mode too.
    let mut tx = pool.begin().await.unwrap();
    Guard::new("Tx", "Guard").insert(&mut tx, &t).await.unwrap();
    assert_eq!(Guard::query(&t).count(&mut tx).await.unwrap(), 2);
    tx.rollback().await.unwrap();
    assert_eq!(Guard::query(&t).count(db).await.unwrap(), 1);
}

/// A pool built by hand is a plain sqlx pool: its executors are wrapped in `PgBouncer(…)`.
#[tokio::test]
async fn the_wrapper_serves_a_pool_built_by_hand() {
    let pool: PgPool = PoolSettings::new()
        .pgbouncer()
        .max_connections(4)
        .connect(&pgbouncer_url())
        .await
        .expect("connect through PgBouncer");
    let registry = tenancy_testdb::unique_name("bounce");
    let tenants = Tenants::new(pool.clone(), migrator(v1()))
        .unwrap()
        .with_registry(&registry)
        .unwrap()
        .behind_pgbouncer();
    let l = Lifecycle::on_test_database(tenants, registry);
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("pbw"))
        .await
        .unwrap();
    let db = PgBouncer(&pool);
    let abu = Guard::new("Abu", "Guard").insert(db, &t).await.unwrap();
    assert_eq!(
        Guard::find(db, &t, abu.id).await.unwrap().unwrap().name,
        "Abu"
    );
    let mut tx = pool.begin().await.unwrap();
    Guard::new("Tx", "Guard")
        .insert(PgBouncer(&mut *tx), &t)
        .await
        .unwrap();
    assert_eq!(
        Guard::query(&t).count(PgBouncer(&mut *tx)).await.unwrap(),
        2
    );
    tx.rollback().await.unwrap();
    assert_eq!(Guard::query(&t).count(db).await.unwrap(), 1);
}

#[tokio::test]
async fn tenants_sharing_server_connections_never_see_each_others_rows() {
    // 16 client connections, PgBouncer's pool of 4 server connections: tenants take turns on
    // the same server connections.
    let b = Bounced::new(16, v1()).await;
    let mut tenants = Vec::new();
    for i in 0..4 {
        let t = b
            .tenants()
            .create(tenancy_testdb::unique_name(&format!("pbi{i}")))
            .await
            .unwrap();
        let rows: Vec<Guard> = (0..5)
            .map(|n| Guard::new(&format!("{t}-{n}"), t.as_str()))
            .collect();
        Guard::insert_many(b.tenants(), &t, rows).await.unwrap();
        tenants.push(t);
    }
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let (handle, t) = (b.tenants().clone(), tenants[task % tenants.len()].clone());
            tokio::spawn(async move {
                let pool = handle.pool_for(&t).await.unwrap();
                let mut pids = BTreeSet::new();
                for _ in 0..25 {
                    let mut tx = pool.begin().await.unwrap();
                    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                        .persistent(false)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    pids.insert(pid);
                    let seen = Guard::query(&t).fetch_all(&mut tx).await.unwrap();
                    tx.commit().await.unwrap();
                    assert_eq!(seen.len(), 5, "tenant {t} saw {} rows", seen.len());
                    for g in &seen {
                        assert_eq!(g.tenant(), &t);
                        assert_eq!(
                            g.position,
                            t.as_str(),
                            "tenant {t} saw a row of {}",
                            g.position
                        );
                    }
                    // And outside a transaction, through the library's own: on the tenant's
                    // pool and on the handle.
                    let one = Guard::query(&t).limit(1).fetch_one(&pool).await.unwrap();
                    assert_eq!(one.position, t.as_str());
                    let n = Guard::query(&t).count(&handle).await.unwrap();
                    assert_eq!(n, 5);
                }
                (t, pids)
            })
        })
        .collect();
    let mut by_tenant: Vec<(Tenant, BTreeSet<i32>)> = Vec::new();
    for task in tasks {
        by_tenant.push(task.await.unwrap());
    }
    // The point of the test: server connections really were shared between tenants.
    let shared = by_tenant.iter().any(|(a, pa)| {
        by_tenant
            .iter()
            .any(|(b, pb)| a != b && !pa.is_disjoint(pb))
    });
    assert!(
        shared,
        "no server connection served two tenants: {by_tenant:?}"
    );
}

#[tokio::test]
async fn the_lifecycle_works_through_pgbouncer() {
    let b = Bounced::new(4, v1()).await;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(
            b.tenants()
                .create(tenancy_testdb::unique_name(&format!("pbl{i}")))
                .await
                .unwrap(),
        );
    }
    let hooked = b
        .created_with(
            "pblh",
            "INSERT INTO guards (name, position) VALUES ('Seed', 'x')",
        )
        .await;
    assert_eq!(Guard::query(&hooked).count(b.tenants()).await.unwrap(), 1);
    let listed = b.tenants().list().await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(b.tenants().exists(created[0].as_str()).await.unwrap());

    let newer = b.with_migrations(v2()).await;
    let report = newer
        .migrate_all(MigrateOptions::default().concurrency(4))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.changed().count(), 4);
    let status = newer.status().await.unwrap();
    assert!(status
        .iter()
        .all(|s| s.applied == [1, 2] && s.pending.is_empty()));
    assert_eq!(
        newer.rollback(created[0].as_str(), 1).await.unwrap(),
        Outcome::RolledBack(vec![2])
    );
    assert_eq!(
        newer.migrate(created[0].as_str()).await.unwrap(),
        Outcome::Migrated(vec![2])
    );

    let renamed = newer
        .rename(created[1].as_str(), &tenancy_testdb::unique_name("pblr"))
        .await
        .unwrap();
    assert!(newer.exists(renamed.as_str()).await.unwrap());
    assert_eq!(newer.drop(renamed.as_str()).await.unwrap(), Dropped::Schema);
    // A failing migration through the statement-at-a-time fallback names its version.
    let mut broken = v2();
    broken.push(migration(
        3,
        sqlx::migrate::MigrationType::Simple,
        "ALTER TABLE nope ADD x int",
    ));
    let broken = b.with_migrations(broken).await;
    assert!(matches!(
        broken.migrate(created[0].as_str()).await,
        Err(tenancy::Error::Migration { version: 3, .. })
    ));
}

/// An export (a binary `COPY (SELECT …) TO STDOUT` on PostgreSQL) and an import (`COPY … FROM
/// STDIN`) through PgBouncer: the copy holds the source's rows.
#[tokio::test]
async fn export_and_import_work_through_pgbouncer() {
    let b = Bounced::new(4, v1()).await;
    let source = b
        .created_with(
            "pbx",
            "INSERT INTO guards (name, position) \
             SELECT 'guard ' || i, 'x' FROM generate_series(1, 3000) i",
        )
        .await;
    let mut archive = Vec::new();
    let moved = b.tenants().export(&source, &mut archive).await.unwrap();
    assert_eq!((moved.tables, moved.rows), (1, 3000));
    let copy = b
        .tenants()
        .import(&archive[..], tenancy_testdb::unique_name("pbxc"))
        .await
        .unwrap();
    assert_eq!(Guard::query(&copy).count(b.tenants()).await.unwrap(), 3000);
}

/// Row-level tenants through PgBouncer: their registry writes and reads (in operations and on
/// the pool) and their statements run on server connections other clients used before, over
/// several rounds (a named statement left on one would collide, 42P05).
#[tokio::test]
async fn row_level_tenants_work_through_pgbouncer() {
    let mut migrations = v1();
    migrations.push(migration(
        2,
        sqlx::migrate::MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN tenant_id text NOT NULL DEFAULT ''",
    ));
    let b = Bounced::new(4, migrations).await;
    let container = b
        .tenants()
        .create(tenancy_testdb::unique_name("pbrc"))
        .await
        .unwrap();
    for round in 0..3 {
        let name = tenancy_testdb::unique_name(&format!("pbr{round}"));
        let t = b.tenants().create_in(&name, &container).await.unwrap();
        assert_eq!(
            b.tenants().tenant(&name).await.unwrap().container(),
            container.as_str()
        );
        crate::support::RowGuard::new("Abu", "Guard")
            .insert(b.tenants(), &t)
            .await
            .unwrap();
        assert_eq!(
            crate::support::RowGuard::query(&t)
                .count(b.tenants())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            b.tenants().drop(&name).await.unwrap(),
            Dropped::Rows { deleted: 1 }
        );
    }
    b.tenants().drop(container.as_str()).await.unwrap();
}

/// Granted advisory locks, of any session, that are the lifecycle locks of the names `$2` of
/// registry `$1` (a bigint key: its high half in `classid`, its low in `objid`).
const HELD_LOCKS: &str = "SELECT count(*) FROM pg_locks l, unnest($2::text[]) n \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
     AND l.classid::bigint = (hashtextextended('tenancy:' || $1 || ':' || n, 0) >> 32) & 4294967295 \
     AND l.objid::bigint = hashtextextended('tenancy:' || $1 || ':' || n, 0) & 4294967295";

/// A clone through PgBouncer, which takes its locks for the session before its transaction
/// begins and hands them to it: done, or timed out waiting for the second lock while holding
/// the first, it leaves no lock held on any server connection (one left would outlive the
/// client, on a connection PgBouncer gives to others).
#[tokio::test]
async fn a_clone_through_pgbouncer_leaves_no_lock_held_done_or_timed_out() {
    let b = Bounced::new(2, v1()).await;
    let registry = b.lifecycle.registry.clone();
    let source = b
        .created_with(
            "pbk",
            "INSERT INTO guards (name, position) VALUES ('Abu', 'x')",
        )
        .await;
    let copy = b
        .tenants()
        .clone_tenant(&source, tenancy_testdb::unique_name("pbkc"))
        .await
        .unwrap();
    assert_eq!(Guard::query(&copy).count(b.tenants()).await.unwrap(), 1);
    let target = Tenant::new(tenancy_testdb::unique_name("pbz")).unwrap();
    assert!(source < target, "the source's lock is taken first");
    let direct = crate::support::pool().await;
    let mut holder = direct.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('tenancy:' || $1 || ':' || $2, 0))")
        .bind(&registry)
        .bind(target.as_str())
        .execute(&mut *holder)
        .await
        .unwrap();
    let impatient = b
        .tenants()
        .clone()
        .with_lock_timeout(std::time::Duration::from_millis(300));
    assert!(matches!(
        impatient.clone_tenant(&source, &target).await,
        Err(tenancy::Error::LockTimeout { .. })
    ));
    holder.rollback().await.unwrap();
    let names = [source.as_str(), copy.as_str(), target.as_str()];
    let mut held = -1;
    // A closed client's server connection ends a moment later.
    for _ in 0..200 {
        held = sqlx::query_scalar::<_, i64>(HELD_LOCKS)
            .bind(&registry)
            .bind(&names[..])
            .fetch_one(&direct)
            .await
            .unwrap();
        if held == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(held, 0, "a lifecycle lock outlived its clone");
    assert!(!b.tenants().exists(target.as_str()).await.unwrap());
}
