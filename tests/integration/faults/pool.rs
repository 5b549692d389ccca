//! An exhausted pool: more concurrent work than connections, with a short acquire timeout.
//! Work that cannot get a connection fails with a typed error (`Error::Database` whose sqlx
//! error is `PoolTimedOut`), nothing deadlocks (a `tokio::time::timeout` far above any normal
//! run is the hang detector, not a speed assertion), and everything works again once the load
//! drops. Runs across tenants (`migrate_all`, `for_each`, `query_across`) on a pool of one
//! connection must finish: they never hold a connection while waiting for another. The same
//! exhaustion on MariaDB.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tenancy::{EachOptions, Error, MigrateOptions, TenantModel};

use crate::lifecycle_support::{v1, v2, Lifecycle};
use crate::support::Guard;

const HANG: Duration = Duration::from_secs(120);

fn timed_out(e: &Error) -> bool {
    matches!(e, Error::Database { source, .. } if matches!(source.as_sqlx(), sqlx::Error::PoolTimedOut))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_typed_and_recovers() {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(300))
        .connect(&crate::support::database_url())
        .await
        .unwrap();
    let l = Lifecycle::new(&crate::support::pool().await, v1()).await;
    let prefix = tenancy_testdb::unique_name("exh");
    let a = l.tenants.create(format!("{prefix}_a")).await.unwrap();
    let b = l.tenants.create(format!("{prefix}_b")).await.unwrap();
    // The pool's two connections are taken by two long transactions.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(pool.begin().await.unwrap());
    }
    // Sixteen tasks of CRUD and lifecycle work on the exhausted pool.
    let tenants = l.with_migrations(&pool, v1());
    let mut work = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (pool, tenants, t) = (
            pool.clone(),
            tenants.clone(),
            if i % 2 == 0 { a.clone() } else { b.clone() },
        );
        let name = format!("{prefix}_n{i}");
        work.spawn(async move {
            match i % 4 {
                0 => Guard::new("x", t.as_str())
                    .insert(&pool, &t)
                    .await
                    .map(drop),
                1 => Guard::query(&t).count(&pool).await.map(drop),
                2 => tenants.create(&name).await.map(drop),
                _ => tenants
                    .migrate_all(MigrateOptions::default())
                    .await
                    .map(drop),
            }
        });
    }
    let results = crate::faults::join_all(&mut work, HANG, "work on an exhausted pool hangs").await;
    for r in &results {
        match r {
            Err(e) => assert!(timed_out(e), "not a pool timeout: {e:?}"),
            Ok(()) => panic!("work succeeded on a pool whose connections are all taken"),
        }
    }
    // Nothing was written, no tenant was made.
    assert_eq!(
        crate::support::raw_guards(&l.tenants.pool().clone(), &a).await,
        vec![]
    );
    assert_eq!(l.tenants.list().await.unwrap().len(), 2);

    // The load drops: the same work succeeds.
    drop(held);
    Guard::new("x", a.as_str()).insert(&pool, &a).await.unwrap();
    assert_eq!(Guard::query(&b).count(&pool).await.unwrap(), 0);
    tenants.create(format!("{prefix}_late")).await.unwrap();
    tenants
        .migrate_all(MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!(l.tenants.list().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_across_tenants_finish_on_a_pool_of_one_connection() {
    let one = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .connect(&crate::support::database_url())
        .await
        .unwrap();
    let l = Lifecycle::new(&one, v1()).await;
    let mut created = Vec::new();
    for i in 0..20 {
        created.push(
            l.tenants
                .create(tenancy_testdb::unique_name(&format!("one{i}")))
                .await
                .unwrap(),
        );
    }
    let at_v2 = l.with_migrations(&one, v2());
    let report = tokio::time::timeout(
        HANG,
        at_v2.migrate_all(MigrateOptions::default().concurrency(8)),
    )
    .await
    .expect("migrate_all on one connection deadlocks")
    .unwrap();
    assert!(report.is_success());
    assert_eq!(report.changed().count(), 20);
    let p = one.clone();
    let each = tokio::time::timeout(
        HANG,
        at_v2.for_each(EachOptions::default().concurrency(8), move |t| {
            let pool = p.clone();
            async move { Guard::query(&t).count(&pool).await }
        }),
    )
    .await
    .expect("for_each on one connection deadlocks")
    .unwrap();
    assert!(each.is_success());
    let counts = tokio::time::timeout(HANG, Guard::query_across(&created).count_by_tenant(&one))
        .await
        .expect("query_across on one connection deadlocks")
        .unwrap();
    assert_eq!(counts.len(), 20);
    // Sixty-four concurrent inserts through one connection: all done, each in its tenant.
    let created = Arc::new(created);
    let mut work = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (pool, created) = (one.clone(), created.clone());
        work.spawn(async move {
            let t = &created[i % created.len()];
            Guard::new("x", t.as_str()).insert(&pool, t).await.unwrap();
        });
    }
    crate::faults::join_all(&mut work, HANG, "inserts on one connection deadlock").await;
    for t in created.iter() {
        for (_, position) in crate::support::raw_guards(&one, t).await {
            assert_eq!(position, t.as_str());
        }
    }
}

/// MariaDB: the same exhaustion. CRUD needs a pooled connection and times out typed; the
/// lifecycle runs its DDL on a connection of its own (the MySQL store's `Op`) but reads the
/// registry through the pool, so it times out typed too, or succeeds; nothing hangs, and all of
/// it works once the load drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_on_mariadb_times_out_typed_and_recovers() {
    use crate::backends::mysql as my;
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(300))
        .connect(&my::mysql_url())
        .await
        .unwrap();
    let l = my::Lifecycle::new(&pool, my::v1()).await;
    let prefix = tenancy_testdb::unique_name("myexh");
    let a = l.tenants.create(format!("{prefix}_a")).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(pool.begin().await.unwrap());
    }
    let mut work = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (pool, tenants, t) = (pool.clone(), l.tenants.clone(), a.clone());
        let name = format!("{prefix}_n{i}");
        work.spawn(async move {
            let result = match i % 4 {
                0 => my::Guard::new("x", t.as_str())
                    .insert(&pool, &t)
                    .await
                    .map(drop),
                1 => my::Guard::query(&t).count(&pool).await.map(drop),
                2 => tenants.create(&name).await.map(drop),
                _ => tenants
                    .migrate_all(MigrateOptions::default())
                    .await
                    .map(drop),
            };
            (i % 4, result)
        });
    }
    let results = crate::faults::join_all(&mut work, HANG, "work on an exhausted pool hangs").await;
    let mut timeouts = 0;
    for (kind, r) in &results {
        match r {
            Err(e) => {
                assert!(timed_out(e), "not a pool timeout: {e:?}");
                timeouts += 1;
            }
            Ok(()) => assert!(*kind >= 2, "CRUD succeeded on an exhausted pool"),
        }
    }
    assert!(timeouts >= 6, "{timeouts} timeouts");
    drop(held);
    my::Guard::new("x", a.as_str())
        .insert(&pool, &a)
        .await
        .unwrap();
    l.tenants.create(format!("{prefix}_late")).await.unwrap();
    l.tenants
        .migrate_all(MigrateOptions::default())
        .await
        .unwrap();
    for t in l.tenants.list().await.unwrap() {
        assert!(t.as_str().starts_with(&prefix));
    }
}
