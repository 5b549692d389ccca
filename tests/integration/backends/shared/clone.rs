//! Cloning a tenant: the clone holds exactly its source's rows (read from the stored tables),
//! keys continue after the copied ones, the source is unchanged, refusals are typed and leave
//! nothing, and a copy that fails part-way leaves no trace of the clone.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use std::sync::{Arc, Mutex};

        use sqlx::migrate::{Migration, MigrationType};
        use tenancy::{Error, Tenant, TenantEvent, TenantModel};

        use super::{
            container_exists, copy_fault, create_container, exec, pool, q, raw_assignments,
            raw_guards, registry_rows, v1, Guard, Lifecycle, ASSIGNMENTS, FAILS_WHERE_BAD,
        };
        use crate::assert_err;
        use crate::lifecycle_support::migration;

        fn name(prefix: &str) -> String {
            tenancy_testdb::unique_name(prefix)
        }

        /// v1 (`guards`), then `assignments` referencing it and a seed guard.
        fn migrations() -> Vec<Migration> {
            let mut all = v1();
            all.push(migration(2, MigrationType::Simple, ASSIGNMENTS));
            all
        }

        /// A tenant of `l` holding Abu and Bea (the seed guard deleted) and an assignment each.
        async fn template(pool: &super::Pool, l: &Lifecycle, prefix: &str) -> Tenant {
            let t = l.tenants.create(name(prefix)).await.unwrap();
            exec(pool, format!("DELETE FROM {}.guards", q(&t))).await;
            for (n, p) in [("Abu", "Guard"), ("Bea", "Captain")] {
                Guard::new(n, p).insert(&l.tenants, &t).await.unwrap();
            }
            let t_ = q(&t);
            exec(
                pool,
                format!("INSERT INTO {t_}.assignments (guard_id, body) SELECT id, name FROM {t_}.guards"),
            )
            .await;
            t
        }

        /// Nothing of `to` anywhere: no container (file), no registry row, not listed.
        async fn assert_absent(pool: &super::Pool, l: &Lifecycle, to: &str) {
            assert!(!container_exists(pool, to).await, "{to}'s container is left");
            assert_eq!(registry_rows(pool, &l.registry, to).await, 0, "{to} is in the registry");
            assert!(!l.tenants.exists(to).await.unwrap());
            assert!(l.tenants.list().await.unwrap().iter().all(|t| t.as_str() != to));
        }

        #[tokio::test]
        async fn a_clone_has_exactly_its_sources_rows_and_history_and_keys_continue() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let tpl = template(&pool, &l, "tpl").await;
            let other = l.tenants.create(name("other")).await.unwrap();
            Guard::new("Zed", "Elsewhere")
                .insert(&l.tenants, &other)
                .await
                .unwrap();
            let (guards, assignments) = (
                raw_guards(&pool, &tpl).await,
                raw_assignments(&pool, &tpl).await,
            );
            assert_eq!(guards.len(), 2);
            assert_eq!(assignments.len(), 2);
            let events = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&events);
            l.tenants
                .subscribe(move |e: &TenantEvent| seen.lock().unwrap().push(e.clone()));

            let acme = l.tenants.clone_tenant(&tpl, name("acme")).await.unwrap();

            // The stored tables, read directly: the same rows with the same keys, the seed
            // guard the migration wrote in the clone replaced, nothing of `other`.
            assert_eq!(raw_guards(&pool, &acme).await, guards);
            assert_eq!(raw_assignments(&pool, &acme).await, assignments);
            assert_eq!(
                *events.lock().unwrap(),
                [TenantEvent::Created(acme.clone())]
            );
            let status = l.tenants.status_of(acme.as_str()).await.unwrap();
            assert_eq!(status.applied, [1, 2]);
            assert!(status.pending.is_empty());
            assert!(l.tenants.exists(acme.as_str()).await.unwrap());
            assert_eq!(registry_rows(&pool, &l.registry, acme.as_str()).await > 0, true);

            // Generated keys continue after the copied ones, in both tables.
            Guard::new("Cy", "Guard")
                .insert(&l.tenants, &acme)
                .await
                .unwrap();
            let a = q(&acme);
            exec(
                &pool,
                format!(
                    "INSERT INTO {a}.assignments (guard_id, body) \
                     SELECT id, name FROM {a}.guards WHERE name = 'Cy'"
                ),
            )
            .await;
            let after = raw_assignments(&pool, &acme).await;
            assert_eq!(after.len(), 3);
            let (last, copied) = (&after[2], &assignments[1]);
            assert!(last.0 > copied.0, "{after:?}");
            assert!(last.1 > assignments.iter().map(|r| r.1).max().unwrap(), "{after:?}");
            assert_eq!((last.2.as_str(), last.4), ("Cy", 2));

            // The source is unchanged.
            assert_eq!(raw_guards(&pool, &tpl).await, guards);
            assert_eq!(raw_assignments(&pool, &tpl).await, assignments);
            assert_eq!(raw_guards(&pool, &other).await.len(), 2); // Seed and Zed
        }

        #[tokio::test]
        async fn refused_clones_are_typed_and_leave_nothing() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let tpl = template(&pool, &l, "tpl").await;
            let before = raw_guards(&pool, &tpl).await;

            assert_err!(
                l.tenants.clone_tenant(&tpl, &tpl).await,
                Error::SameName { ref tenant, operation: "cloned" } if *tenant == tpl
            );

            let (missing, to) = (name("missing"), name("to"));
            assert_err!(
                l.tenants.clone_tenant(&missing, &to).await,
                Error::NotATenant { ref tenant } if tenant.as_str() == missing
            );
            assert_absent(&pool, &l, &to).await;

            let taken = template(&pool, &l, "taken").await;
            let taken_rows = raw_guards(&pool, &taken).await;
            assert_err!(
                l.tenants.clone_tenant(&tpl, &taken).await,
                Error::TenantExists { ref tenant } if *tenant == taken
            );
            assert_eq!(raw_guards(&pool, &taken).await, taken_rows);

            let foreign = name("foreign");
            create_container(&pool, &foreign).await;
            assert_err!(
                l.tenants.clone_tenant(&tpl, &foreign).await,
                Error::ContainerExists { ref tenant, .. } if tenant.as_str() == foreign
            );
            assert!(container_exists(&pool, &foreign).await);
            assert_eq!(registry_rows(&pool, &l.registry, &foreign).await, 0);
            super::drop_container(&pool, &foreign).await;

            assert_err!(
                l.tenants.clone_tenant(&tpl, "Not A Name").await,
                Error::InvalidTenantName(_)
            );

            // A source behind the migrations is refused, not cloned and migrated: the clone
            // would not have its history.
            let old = l.with_migrations(&pool, v1());
            let behind = old.create(name("behind")).await.unwrap();
            assert_err!(
                l.tenants.clone_tenant(&behind, &to).await,
                Error::Pending { ref tenant, ref pending } if *tenant == behind && *pending == [2]
            );
            assert_absent(&pool, &l, &to).await;

            assert_eq!(raw_guards(&pool, &tpl).await, before);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn clones_taken_while_the_source_is_written_copy_it_as_of_one_moment() {
            // A writer adds a guard and its assignment in one transaction, over and over, while
            // the source is cloned: every clone holds whole pairs (the copy of `assignments`
            // sees no guard the copy of `guards` missed, nor the reverse).
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let tpl = template(&pool, &l, "tpl").await;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (pool, stop, t) = (pool.clone(), Arc::clone(&stop), q(&tpl));
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        exec(
                            &pool,
                            format!(
                                "BEGIN; INSERT INTO {t}.guards (name, position) VALUES ('w{i}', 'Writer'); \
                                 INSERT INTO {t}.assignments (guard_id, body) \
                                 SELECT id, name FROM {t}.guards WHERE name = 'w{i}'; COMMIT"
                            ),
                        )
                        .await;
                        i += 1;
                    }
                    i
                })
            };
            let mut sizes = Vec::new();
            for _ in 0..20 {
                let copy = l.tenants.clone_tenant(&tpl, name("copy")).await.unwrap();
                let (guards, assignments) = (
                    raw_guards(&pool, &copy).await,
                    raw_assignments(&pool, &copy).await,
                );
                assert_eq!(guards.len(), assignments.len(), "{guards:?} {assignments:?}");
                sizes.push(guards.len());
                l.tenants.drop(copy.as_str()).await.unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let written = writer.await.unwrap();
            // The writer ran during the clones: they saw the source grow.
            assert!(written > 0 && sizes.last() > sizes.first(), "{written} {sizes:?}");
            assert_eq!(raw_guards(&pool, &tpl).await.len(), 2 + written);
        }

        #[tokio::test]
        async fn a_migration_failing_in_the_clone_is_named_and_leaves_nothing() {
            // A migration that fails in the clone's own container (here: by its name) fails
            // the clone, naming that migration, and leaves nothing of the clone.
            let Some(gate) = FAILS_WHERE_BAD else {
                return;
            };
            let pool = pool().await;
            let mut all = migrations();
            all.push(migration(3, MigrationType::Simple, gate));
            let l = Lifecycle::new(&pool, all).await;
            let tpl = template(&pool, &l, "tpl").await;
            let to = name("bad");
            assert_err!(
                l.tenants.clone_tenant(&tpl, &to).await,
                Error::Migration { ref tenant, version: 3, .. } if tenant.as_str() == to
            );
            assert_absent(&pool, &l, &to).await;

            // The handle clones again, into a name the migration accepts.
            let good = l.tenants.clone_tenant(&tpl, name("good")).await.unwrap();
            assert_eq!(raw_guards(&pool, &good).await, raw_guards(&pool, &tpl).await);
            let status = l.tenants.status_of(good.as_str()).await.unwrap();
            assert_eq!(status.applied, [1, 2, 3]);
        }

        #[tokio::test]
        async fn a_copy_failing_part_way_leaves_no_trace_of_the_clone() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let tpl = template(&pool, &l, "tpl").await;
            let before = (
                raw_guards(&pool, &tpl).await,
                raw_assignments(&pool, &tpl).await,
            );
            let to = name("to");
            copy_fault(&pool, &l, &tpl, &to).await;

            let err = l.tenants.clone_tenant(&tpl, &to).await.unwrap_err();
            assert!(
                matches!(err, Error::Database { tenant: Some(ref t), .. } if t.as_str() == to),
                "{err:?}"
            );
            assert_absent(&pool, &l, &to).await;
            assert_eq!(raw_guards(&pool, &tpl).await, before.0);
            assert_eq!(raw_assignments(&pool, &tpl).await, before.1);
        }
    };
}
pub(crate) use behaviours;
