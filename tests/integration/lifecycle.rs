//! Tenant lifecycle: atomic create, concurrent creates, drop, rename, exists, list.

use sqlx::migrate::MigrationType;
use tenancy::{Error, NameRule, TenantModel, Tenants};

use crate::assert_err;
use crate::lifecycle_support::{has_table, migration, migrator, schema_exists, v1, Lifecycle};
use crate::support::{pool, pool_with, raw_guards, Guard};

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

#[tokio::test]
async fn create_makes_a_migrated_tenant_models_can_use() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = l.tenants.create(name("acme")).await.unwrap();
    assert!(has_table(&pool, acme.as_str(), "guards").await);
    assert!(l.tenants.exists(acme.as_str()).await.unwrap());
    Guard::new("Abu", "Guard")
        .insert(&pool, &acme)
        .await
        .unwrap();
    assert_eq!(raw_guards(&pool, &acme).await.len(), 1);
    let status = l.tenants.status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].applied, [1]);
    assert!(status[0].pending.is_empty());
}

#[tokio::test]
async fn create_with_a_failing_migration_leaves_nothing() {
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "CREATE TABLE broken (id nonsense_type)",
    ));
    let l = Lifecycle::new(&pool, migrations).await;
    let n = name("atomic");
    assert_err!(
        l.tenants.create(&n).await,
        Error::Migration { version: 2, ref tenant, .. } if tenant.as_str() == n
    );
    assert!(!schema_exists(&pool, &n).await);
    assert!(!l.tenants.exists(&n).await.unwrap());
    assert!(l.tenants.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_create_hook_runs_in_the_same_transaction() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let seeded = l
        .tenants
        .create_with(
            name("seeded"),
            Box::new(|conn, _tenant| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO guards (name, position) VALUES ('Seed', 'Guard')")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        raw_guards(&pool, &seeded).await,
        [("Seed".into(), "Guard".into())]
    );

    let n = name("hookfail");
    assert_err!(
        l.tenants
            .create_with(
                &n,
                Box::new(|_, _| Box::pin(async { Err("seed data missing".into()) }))
            )
            .await,
        Error::Hook { .. }
    );
    assert!(!schema_exists(&pool, &n).await);
    assert!(!l.tenants.exists(&n).await.unwrap());
}

#[tokio::test]
async fn of_32_concurrent_creates_of_one_name_exactly_one_succeeds() {
    let pool = pool_with(40).await;
    let l = Lifecycle::new(&pool, v1()).await;
    let n = name("race");
    let attempts = (0..32).map(|_| {
        let tenants = l.tenants.clone();
        let n = n.clone();
        tokio::spawn(async move { tenants.create(n).await })
    });
    let mut ok = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::TenantExists { tenant }) => assert_eq!(tenant.as_str(), n),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(l.tenants.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn fifty_concurrent_creates_of_different_names_all_succeed() {
    let pool = pool_with(20).await;
    let l = Lifecycle::new(&pool, v1()).await;
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let tenants = l.tenants.clone();
            tokio::spawn(async move { tenants.create(name(&format!("many{i}"))).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let list = l.tenants.list().await.unwrap();
    assert_eq!(list.len(), 50);
    for t in &list {
        assert!(has_table(&pool, t.as_str(), "guards").await);
    }
}

#[tokio::test]
async fn create_refuses_an_existing_non_tenant_schema_and_bad_names() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let n = name("foreign");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{n}\"")))
        .execute(&pool)
        .await
        .unwrap();
    assert_err!(l.tenants.create(&n).await, Error::SchemaExists { .. });
    assert!(!l.tenants.exists(&n).await.unwrap());
    assert!(
        schema_exists(&pool, &n).await,
        "the foreign schema is left alone"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{n}\"")))
        .execute(&pool)
        .await
        .unwrap();

    assert_err!(l.tenants.create("Acme").await, Error::InvalidTenantName(_));
    assert_err!(
        l.tenants.create(&l.registry).await,
        Error::InvalidTenantName(e) if e.rule == NameRule::Reserved
    );
}

#[tokio::test]
async fn drop_removes_the_tenant_and_refuses_what_is_not_one() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = l.tenants.create(name("dropme")).await.unwrap();
    l.tenants.drop(acme.as_str()).await.unwrap();
    assert!(!schema_exists(&pool, acme.as_str()).await);
    assert!(!l.tenants.exists(acme.as_str()).await.unwrap());
    assert_err!(
        l.tenants.drop(acme.as_str()).await,
        Error::NotATenant { .. }
    );

    assert_err!(
        l.tenants.drop("public").await,
        Error::InvalidTenantName(e) if e.rule == NameRule::Reserved
    );
    assert_err!(
        l.tenants.drop("pg_catalog").await,
        Error::InvalidTenantName(e) if e.rule == NameRule::ReservedPrefix
    );
    let n = name("bystander");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA \"{n}\"; CREATE TABLE \"{n}\".keep (id int)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    assert_err!(l.tenants.drop(&n).await, Error::NotATenant { .. });
    assert!(has_table(&pool, &n, "keep").await);
    assert!(schema_exists(&pool, "public").await);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{n}\" CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn rename_keeps_data_and_history() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let old = l.tenants.create(name("old")).await.unwrap();
    Guard::new("Abu", "Guard")
        .insert(&pool, &old)
        .await
        .unwrap();
    let new_name = name("new");
    let new = l.tenants.rename(old.as_str(), &new_name).await.unwrap();
    assert_eq!(new.as_str(), new_name);
    assert!(!schema_exists(&pool, old.as_str()).await);
    assert_eq!(
        raw_guards(&pool, &new).await,
        [("Abu".into(), "Guard".into())]
    );
    assert_eq!(l.tenants.list().await.unwrap(), std::slice::from_ref(&new));
    let status = l.tenants.status().await.unwrap();
    assert_eq!(
        status[0].applied,
        [1],
        "migration history follows the rename"
    );
    assert_err!(
        l.tenants.rename(old.as_str(), name("x")).await,
        Error::NotATenant { .. }
    );

    let other = l.tenants.create(name("other")).await.unwrap();
    assert_err!(
        l.tenants.rename(other.as_str(), new.as_str()).await,
        Error::TenantExists { .. }
    );
}

#[tokio::test]
async fn list_holds_only_tenants() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let a = l.tenants.create(name("lista")).await.unwrap();
    let b = l.tenants.create(name("listb")).await.unwrap();
    let stranger = name("stranger");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{stranger}\"")))
        .execute(&pool)
        .await
        .unwrap();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(l.tenants.list().await.unwrap(), expected);
    // Another registry sees none of them.
    let other = Lifecycle::new(&pool, v1()).await;
    assert!(other.tenants.list().await.unwrap().is_empty());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{stranger}\"")))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn non_transactional_migrations_are_refused() {
    let pool = pool().await;
    let mut bad = migration(
        1,
        MigrationType::Simple,
        "CREATE INDEX CONCURRENTLY i ON t (id)",
    );
    bad.no_tx = true;
    assert_err!(
        Tenants::new(pool.clone(), migrator(vec![bad])),
        Error::NonTransactionalMigration { version: 1, .. }
    );
}

#[tokio::test]
async fn subscribers_hear_committed_changes_only() {
    use std::sync::{Arc, Mutex};
    use tenancy::TenantEvent;

    let pool = pool().await;
    let mut migrations = v1();
    let l = Lifecycle::new(&pool, migrations.clone()).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    l.tenants
        .subscribe(move |e| sink.lock().unwrap().push(e.clone()));
    let a = l.tenants.create(name("eva")).await.unwrap();
    let b = l.tenants.rename(a.as_str(), name("evb")).await.unwrap();
    l.tenants.drop(b.as_str()).await.unwrap();
    // A failed create publishes nothing.
    migrations.push(migration(2, MigrationType::Simple, "SELECT 1/0"));
    let failing = l.with_migrations(&pool, migrations);
    failing.subscribe({
        let sink = events.clone();
        move |e| sink.lock().unwrap().push(e.clone())
    });
    assert!(failing.create(name("evc")).await.is_err());
    assert_eq!(
        *events.lock().unwrap(),
        [
            TenantEvent::Created(a.clone()),
            TenantEvent::Renamed {
                old: a,
                new: b.clone()
            },
            TenantEvent::Dropped(b),
        ]
    );
}
