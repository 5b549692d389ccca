//! Per-tenant migrations: migrate_all, failures, checksums, idempotence, aborts, concurrency,
//! rollback, and that no connection goes back to the pool changed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::MigrationType;
use tenancy::{Error, MigrateOptions, Outcome};

use crate::assert_err;
use crate::lifecycle_support::{has_column, has_table, migration, v1, v2, Lifecycle, V1_GUARDS};
use crate::support::{pool, pool_with};

async fn tenants_at_v1(pool: &sqlx::PgPool, n: usize) -> (Lifecycle, Vec<tenancy::Tenant>) {
    let l = Lifecycle::new(pool, v1()).await;
    let mut created = Vec::new();
    for i in 0..n {
        created.push(
            l.tenants
                .create(tenancy_testdb::unique_name(&format!("m{i}")))
                .await
                .unwrap(),
        );
    }
    created.sort();
    (l, created)
}

#[tokio::test]
async fn migrate_all_migrates_the_others_past_a_broken_tenant() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 5).await;
    // Break one tenant: the column v2 adds already exists there.
    let broken = &created[2];
    let sql = format!(
        "ALTER TABLE {}.guards ADD COLUMN badge int",
        broken.quoted()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();

    let newer = l.with_migrations(&pool, v2());
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let report = newer
        .migrate_all(
            MigrateOptions::default()
                .concurrency(2)
                .on_progress(move |p| {
                    assert_eq!(p.total, 5);
                    seen.fetch_add(1, Ordering::SeqCst);
                }),
        )
        .await
        .unwrap();
    assert_eq!(progress.load(Ordering::SeqCst), 5);
    assert!(!report.is_success());
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, broken);
    assert!(matches!(failed[0].1, Error::Migration { version: 2, .. }));
    assert!(failed[0].1.to_string().contains(broken.as_str()));
    assert_eq!(report.changed().count(), 4);
    for t in &created {
        assert!(
            has_column(&pool, t.as_str(), "guards", "badge").await,
            "{t}"
        );
    }
    // The broken tenant's v2 was rolled back, not recorded: it is still pending.
    let status = newer.status().await.unwrap();
    let s = status.iter().find(|s| &s.tenant == broken).unwrap();
    assert_eq!(s.pending, [2]);
}

#[tokio::test]
async fn reruns_are_idempotent() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 3).await;
    let newer = l.with_migrations(&pool, v2());
    let first = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(first.changed().count(), 3);
    for t in &first.tenants {
        assert_eq!(t.result.as_ref().unwrap(), &Outcome::Migrated(vec![2]));
    }
    let second = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(second.is_success());
    assert_eq!(second.up_to_date(), 3);
    assert_eq!(second.changed().count(), 0);
    assert_eq!(
        newer.migrate(created[0].as_str()).await.unwrap(),
        Outcome::UpToDate
    );
}

#[tokio::test]
async fn a_changed_checksum_is_detected_and_not_rerun() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 2).await;
    let edited = vec![migration(
        1,
        MigrationType::Simple,
        &format!("{V1_GUARDS}; -- edited after it ran"),
    )];
    let newer = l.with_migrations(&pool, edited);
    assert_err!(
        newer.migrate(created[0].as_str()).await,
        Error::ChecksumMismatch { version: 1, .. }
    );
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(report.failed().count(), 2);
    assert!(report
        .failed()
        .all(|(_, e)| matches!(e, Error::ChecksumMismatch { version: 1, .. })));
    let status = newer.status().await.unwrap();
    assert!(status.iter().all(|s| s.changed == [1]));
}

#[tokio::test]
async fn migrate_of_an_unknown_tenant_is_refused() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    assert_err!(
        l.tenants
            .migrate(tenancy_testdb::unique_name("nobody"))
            .await,
        Error::NotATenant { .. }
    );
    assert_err!(
        l.tenants.migrate("public").await,
        Error::InvalidTenantName(_)
    );
}

#[tokio::test]
async fn an_aborted_migrate_all_converges_on_rerun_with_no_half_migrated_tenant() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 6).await;
    let mut slow = v1();
    slow.push(migration(
        2,
        MigrationType::Simple,
        "CREATE TABLE first_half (id int); SELECT pg_sleep(0.15); CREATE TABLE second_half (id int)",
    ));
    let newer = l.with_migrations(&pool, slow);
    // Drop the run part-way through.
    let aborted = tokio::time::timeout(
        Duration::from_millis(400),
        newer.migrate_all(MigrateOptions::default().concurrency(1)),
    )
    .await;
    assert!(aborted.is_err(), "the run should have been cut short");
    // Give the server a moment to roll back the interrupted transaction.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut migrated = 0;
    for t in &created {
        let first = has_table(&pool, t.as_str(), "first_half").await;
        let second = has_table(&pool, t.as_str(), "second_half").await;
        assert_eq!(first, second, "tenant {t} is half-migrated");
        migrated += usize::from(first);
    }
    assert!(migrated < created.len());
    let rerun = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(rerun.is_success());
    assert_eq!(rerun.changed().count(), created.len() - migrated);
    for t in &created {
        assert!(has_table(&pool, t.as_str(), "second_half").await);
    }
}

#[tokio::test]
async fn two_runs_at_once_apply_each_migration_once() {
    let (pool_a, pool_b) = (pool().await, pool().await);
    let (l, created) = tenants_at_v1(&pool_a, 8).await;
    let a = l.with_migrations(&pool_a, v2());
    let b = l.with_migrations(&pool_b, v2());
    let (ra, rb) = tokio::join!(
        a.migrate_all(MigrateOptions::default()),
        b.migrate_all(MigrateOptions::default())
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.is_success() && rb.is_success());
    // Every tenant was migrated by exactly one of the two runs.
    assert_eq!(ra.changed().count() + rb.changed().count(), created.len());
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".migrations WHERE version = 2",
        l.registry
    )))
    .fetch_one(&pool_a)
    .await
    .unwrap();
    assert_eq!(rows as usize, created.len());
}

#[tokio::test]
async fn rollback_one_and_all() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 3).await;
    let newer = l.with_migrations(&pool, v2());
    newer.migrate_all(MigrateOptions::default()).await.unwrap();

    let first = created[0].as_str();
    assert_eq!(
        newer.rollback(first, 1).await.unwrap(),
        Outcome::RolledBack(vec![2])
    );
    assert!(!has_column(&pool, first, "guards", "badge").await);
    assert_err!(
        newer.rollback(first, 0).await,
        Error::Irreversible { version: 1, .. }
    );

    let report = newer
        .rollback_all(1, MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.is_success());
    assert_eq!(report.changed().count(), 2);
    for t in &created {
        assert!(!has_column(&pool, t.as_str(), "guards", "badge").await);
    }
    let status = newer.status().await.unwrap();
    assert!(status.iter().all(|s| s.applied == [1] && s.pending == [2]));
}

async fn session_search_path(pool: &sqlx::PgPool) -> (String, i32) {
    sqlx::query_as("SELECT current_setting('search_path'), pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn no_connection_goes_back_to_the_pool_changed() {
    // One connection: whatever create and migrate leave on it, the next borrower gets.
    let pool = pool_with(1).await;
    let (before, pid) = session_search_path(&pool).await;
    let (l, created) = tenants_at_v1(&pool, 2).await;
    let newer = l.with_migrations(&pool, v2());
    newer.migrate_all(MigrateOptions::default()).await.unwrap();
    newer.rollback(created[0].as_str(), 1).await.unwrap();
    let (after, same_pid) = session_search_path(&pool).await;
    assert_eq!(after, before);
    assert_eq!(same_pid, pid, "a clean connection is reused, not replaced");

    // A migration that changes the session itself: that connection must not be reused.
    let mut evil = v2();
    evil.push(migration(
        3,
        MigrationType::Simple,
        &format!("SET search_path TO {}", created[1].quoted()),
    ));
    let evil = l.with_migrations(&pool, evil);
    evil.migrate(created[1].as_str()).await.unwrap();
    let (after, new_pid) = session_search_path(&pool).await;
    assert_eq!(
        after, before,
        "the changed connection was closed, not pooled"
    );
    assert_ne!(new_pid, pid);
}
