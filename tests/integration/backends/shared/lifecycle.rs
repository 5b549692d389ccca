//! Tenant lifecycle: create, concurrent creates, drop, rename, exists, list, events, and names
//! refused before any SQL.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use sqlx::migrate::MigrationType;
        use tenancy::{Error, NameRule, Tenant, TenantModel, Tenants};

        use super::{
            container_exists, container_names, create_container, drop_container, has_table, pool,
            pool_with, raw_guards, sqlx_pool, v1, Guard, Lifecycle, FAILING, SERVER_CONTAINER,
        };
        use crate::assert_err;
        use crate::lifecycle_support::{migration, migrator};

        fn name(prefix: &str) -> String {
            tenancy_testdb::unique_name(prefix)
        }

        #[tokio::test]
        async fn create_makes_a_migrated_tenant_models_can_use() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let acme = l.tenants.create(name("acme")).await.unwrap();
            assert!(has_table(&pool, acme.as_str(), "guards").await);
            assert!(container_exists(&pool, acme.as_str()).await);
            assert!(l.tenants.exists(acme.as_str()).await.unwrap());
            Guard::new("Abu", "Guard")
                .insert(&l.tenants, &acme)
                .await
                .unwrap();
            assert_eq!(raw_guards(&pool, &acme).await.len(), 1);
            let status = l.tenants.status().await.unwrap();
            assert_eq!(status.len(), 1);
            assert_eq!(status[0].applied, [1]);
            assert!(status[0].pending.is_empty());
            assert_eq!(l.tenants.status_of(acme.as_str()).await.unwrap(), status[0]);
            assert_err!(
                l.tenants.create(acme.as_str()).await,
                Error::TenantExists { ref tenant } if *tenant == acme
            );
        }

        #[tokio::test]
        async fn create_with_a_failing_migration_leaves_nothing() {
            // The first statement of the failing migration succeeds: on PostgreSQL the transaction
            // takes it back, on MySQL create compensates.
            let pool = pool().await;
            let mut migrations = v1();
            migrations.push(migration(
                2,
                MigrationType::Simple,
                &format!("CREATE TABLE posts (id int); {FAILING}"),
            ));
            let l = Lifecycle::new(&pool, migrations).await;
            let n = name("atomic");
            assert_err!(
                l.tenants.create(&n).await,
                Error::Migration { version: 2, ref tenant, .. } if tenant.as_str() == n
            );
            assert!(!container_exists(&pool, &n).await);
            assert!(!l.tenants.exists(&n).await.unwrap());
            assert!(l.tenants.list().await.unwrap().is_empty());
            assert!(l.tenants.status().await.unwrap().is_empty());
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
        async fn create_refuses_an_existing_non_tenant_container_and_bad_names() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let n = name("foreign");
            create_container(&pool, &n).await;
            let err = l.tenants.create(&n).await.unwrap_err();
            assert!(matches!(err, Error::ContainerExists { .. }), "{err:?}");
            // The message names the backend's container (a schema, a database, a database
            // file), never another backend's.
            let container = <super::Db as tenancy::Backend>::CONTAINER;
            assert_eq!(
                err.to_string(),
                format!("a {container} named \"{n}\" already exists and is not a tenant")
            );
            assert!(!l.tenants.exists(&n).await.unwrap());
            assert!(
                has_table(&pool, &n, "keep").await,
                "the foreign container is left alone"
            );
            drop_container(&pool, &n).await;

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
            assert_eq!(
                l.tenants.drop(acme.as_str()).await.unwrap(),
                tenancy::Dropped::Schema
            );
            assert!(!container_exists(&pool, acme.as_str()).await);
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
            create_container(&pool, &n).await;
            assert_err!(l.tenants.drop(&n).await, Error::NotATenant { .. });
            assert!(has_table(&pool, &n, "keep").await);
            assert!(container_exists(&pool, SERVER_CONTAINER).await);
            drop_container(&pool, &n).await;
        }

        #[tokio::test]
        async fn rename_keeps_data_and_history() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let old = l.tenants.create(name("old")).await.unwrap();
            Guard::new("Abu", "Guard")
                .insert(&l.tenants, &old)
                .await
                .unwrap();
            let new_name = name("new");
            let new = l.tenants.rename(old.as_str(), &new_name).await.unwrap();
            assert_eq!(new.as_str(), new_name);
            assert!(!container_exists(&pool, old.as_str()).await);
            assert!(!l.tenants.exists(old.as_str()).await.unwrap());
            assert_eq!(
                raw_guards(&pool, &new).await,
                [("Abu".into(), "Guard".into())]
            );
            assert_eq!(Guard::query(&new).count(&l.tenants).await.unwrap(), 1);
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
            assert_eq!(Guard::query(&new).count(&l.tenants).await.unwrap(), 1);
        }

        #[tokio::test]
        async fn list_holds_only_tenants() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let a = l.tenants.create(name("lista")).await.unwrap();
            let b = l.tenants.create(name("listb")).await.unwrap();
            let stranger = name("stranger");
            create_container(&pool, &stranger).await;
            let a_name = a.clone();
            let mut expected = vec![a, b];
            expected.sort();
            assert_eq!(l.tenants.list().await.unwrap(), expected);
            // Another registry sees none of them.
            let other = Lifecycle::new(&pool, v1()).await;
            assert!(other.tenants.list().await.unwrap().is_empty());
            assert!(other.tenants.status().await.unwrap().is_empty());
            assert!(!other.tenants.exists(a_name.as_str()).await.unwrap());
            drop_container(&pool, &stranger).await;
        }

        #[tokio::test]
        async fn non_transactional_migrations_are_refused() {
            let pool = pool().await;
            let mut bad = migration(1, MigrationType::Simple, "CREATE INDEX i ON t (id)");
            bad.no_tx = true;
            assert_err!(
                Tenants::new(sqlx_pool(&pool), migrator(vec![bad])),
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
            migrations.push(migration(2, MigrationType::Simple, FAILING));
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

        #[tokio::test]
        async fn hostile_names_are_refused_before_any_sql() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let before = container_names(&pool).await;
            for (name, _) in crate::names::hostile() {
                assert!(Tenant::new(&name).is_err(), "{name:?}");
                assert_err!(l.tenants.create(&name).await, Error::InvalidTenantName(_));
                assert_err!(l.tenants.migrate(&name).await, Error::InvalidTenantName(_));
                assert_err!(l.tenants.drop(&name).await, Error::InvalidTenantName(_));
                assert_err!(l.tenants.exists(&name).await, Error::InvalidTenantName(_));
                assert_err!(
                    l.tenants.rename(&name, "fine").await,
                    Error::InvalidTenantName(_)
                );
            }
            // Other tests create and drop containers meanwhile, so look only at what these names could
            // have made, or (the reserved ones that exist) broken.
            let after = container_names(&pool).await;
            for (name, _) in crate::names::hostile() {
                assert_eq!(
                    before.contains(&name),
                    after.contains(&name),
                    "container {name:?}"
                );
            }
            assert!(after.iter().any(|s| s == SERVER_CONTAINER));
            assert!(l.tenants.list().await.unwrap().is_empty());
        }

        #[tokio::test]
        async fn a_tenant_whose_container_is_gone_is_refused_and_drop_unregisters_it() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let t = l.tenants.create(name("gone")).await.unwrap();
            drop_container(&pool, t.as_str()).await;
            let newer = l.with_migrations(&pool, super::v2());
            let err = newer.migrate(t.as_str()).await.unwrap_err();
            assert!(
                matches!(err, Error::ContainerMissing { ref tenant, .. } if *tenant == t),
                "{err:?}"
            );
            let container = <super::Db as tenancy::Backend>::CONTAINER;
            assert!(
                err.to_string().contains(&format!("but its {container} does not exist")),
                "{err}"
            );
            let report = newer
                .migrate_all(tenancy::MigrateOptions::default())
                .await
                .unwrap();
            let failed: Vec<_> = report.failed().collect();
            assert!(
                matches!(failed[..], [(name, Error::ContainerMissing { .. })] if *name == t),
                "{failed:?}"
            );
            assert!(
                !container_exists(&pool, t.as_str()).await,
                "nothing was run"
            );
            assert_err!(
                newer.rollback(t.as_str(), 0).await,
                Error::ContainerMissing { .. }
            );
            assert_err!(
                newer.rename(t.as_str(), name("moved")).await,
                Error::ContainerMissing { .. }
            );
            assert_eq!(
                newer.drop(t.as_str()).await.unwrap(),
                tenancy::Dropped::Unregistered
            );
            assert!(!newer.exists(t.as_str()).await.unwrap());
            assert_err!(newer.drop(t.as_str()).await, Error::NotATenant { .. });
        }

        #[tokio::test]
        async fn rename_refuses_the_same_name_and_a_foreign_container() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let t = l.tenants.create(name("ren")).await.unwrap();
            assert_err!(
                l.tenants.rename(t.as_str(), t.as_str()).await,
                Error::SameName { ref tenant, .. } if *tenant == t
            );
            let foreign = name("foreignren");
            create_container(&pool, &foreign).await;
            assert_err!(
                l.tenants.rename(t.as_str(), &foreign).await,
                Error::ContainerExists { ref tenant, .. } if tenant.as_str() == foreign
            );
            assert_err!(
                l.tenants.rename(t.as_str(), &l.registry).await,
                Error::InvalidTenantName(_)
            );
            assert!(l.tenants.exists(t.as_str()).await.unwrap());
            assert!(has_table(&pool, t.as_str(), "guards").await);
            assert!(has_table(&pool, &foreign, "keep").await);
            drop_container(&pool, &foreign).await;
        }
    };
}
pub(crate) use behaviours;
