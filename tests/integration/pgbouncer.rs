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

async fn bounced_pool(connections: u32) -> PgPool {
    PoolSettings::new()
        .pgbouncer()
        .max_connections(connections)
        .connect(&pgbouncer_url())
        .await
        .expect("connect through PgBouncer")
}

/// A `Tenants` handle behind PgBouncer on a private registry (dropped with its tenants by
/// `Lifecycle`'s `Drop`, directly on the server), and its pool.
struct Bounced {
    pool: PgPool,
    lifecycle: Lifecycle,
}

impl Bounced {
    async fn new(connections: u32, migrations: Vec<sqlx::migrate::Migration>) -> Self {
        let pool = bounced_pool(connections).await;
        let registry = tenancy_testdb::unique_name("bounce");
        let tenants = Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&registry)
            .unwrap()
            .behind_pgbouncer();
        Bounced {
            pool,
            lifecycle: Lifecycle::on_test_database(tenants, registry),
        }
    }

    fn tenants(&self) -> &Tenants {
        &self.lifecycle.tenants
    }

    /// Another handle on the same registry with other migrations.
    fn with_migrations(&self, migrations: Vec<sqlx::migrate::Migration>) -> Tenants {
        self.lifecycle
            .with_migrations(&self.pool, migrations)
            .behind_pgbouncer()
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
    let db = PgBouncer(&b.pool);
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
    let found = Guard::find(db, &t, abu.id).await.unwrap().unwrap();
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
            .delete(db)
            .await
            .unwrap(),
        1
    );
    found.clone().delete(db, &t).await.unwrap();
    assert_eq!(Guard::query(&t).count(db).await.unwrap(), 1);

    // Inside the caller's own transaction, wrapped the same way.
    let mut tx = b.pool.begin().await.unwrap();
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
        Guard::insert_many(PgBouncer(&b.pool), &t, rows)
            .await
            .unwrap();
        tenants.push(t);
    }
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let (pool, t) = (b.pool.clone(), tenants[task % tenants.len()].clone());
            tokio::spawn(async move {
                let mut pids = BTreeSet::new();
                for _ in 0..25 {
                    let mut tx = pool.begin().await.unwrap();
                    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                        .persistent(false)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    pids.insert(pid);
                    let seen = Guard::query(&t)
                        .fetch_all(PgBouncer(&mut *tx))
                        .await
                        .unwrap();
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
                    // And outside a transaction, through the library's own.
                    let one = Guard::query(&t)
                        .limit(1)
                        .fetch_one(PgBouncer(&pool))
                        .await
                        .unwrap();
                    assert_eq!(one.position, t.as_str());
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
        .tenants()
        .create_with(
            tenancy_testdb::unique_name("pblh"),
            Box::new(|conn, _| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO guards (name, position) VALUES ('Seed', 'x')")
                        .persistent(false)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        Guard::query(&hooked)
            .count(PgBouncer(&b.pool))
            .await
            .unwrap(),
        1
    );
    let listed = b.tenants().list().await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(b.tenants().exists(created[0].as_str()).await.unwrap());

    let newer = b.with_migrations(v2());
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
    let broken = b.with_migrations(broken);
    assert!(matches!(
        broken.migrate(created[0].as_str()).await,
        Err(tenancy::Error::Migration { version: 3, .. })
    ));
}
