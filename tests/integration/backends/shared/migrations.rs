//! Per-tenant migrations: migrate, migrate_all past a broken tenant, a failed migration, reruns,
//! checksums, unknown tenants, status and rollback.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        use sqlx::migrate::MigrationType;
        use tenancy::{Error, MigrateOptions, Outcome, Tenant};

        use super::{
            exec, has_column, has_table, pool, q, v1, v2, Lifecycle, Pool, ADD_BADGE_INT, ATOMIC_DDL,
            FAILING, V1_GUARDS,
        };
        use crate::assert_err;
        use crate::lifecycle_support::migration;

        /// A private registry with `n` tenants created at v1, sorted by name.
        async fn at_v1(pool: &Pool, n: usize) -> (Lifecycle, Vec<Tenant>) {
            let l = Lifecycle::new(pool, v1()).await;
            let mut created = Vec::new();
            for i in 0..n {
                let name = tenancy_testdb::unique_name(&format!("m{i}"));
                created.push(l.tenants.create(name).await.unwrap());
            }
            created.sort();
            (l, created)
        }

        #[tokio::test]
        async fn migrate_all_migrates_the_others_past_a_broken_tenant() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 5).await;
            // Break one tenant: the column v2 adds already exists there.
            let broken = &created[2];
            exec(&pool, ADD_BADGE_INT.replace("{t}", &q(broken))).await;

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
            super::assert_last_run_migrated(&pool, &l.registry, 4).await;
            for t in &created {
                assert!(
                    has_column(&pool, t.as_str(), "guards", "badge").await,
                    "{t}"
                );
            }
            // The broken tenant's v2 is not recorded as applied: on PostgreSQL it is still pending
            // (undone whole); on MySQL it stopped part-way, so it is dirty, not pending.
            let status = newer.status().await.unwrap();
            let s = status.iter().find(|s| &s.tenant == broken).unwrap();
            let (pending, dirty): (&[i64], &[i64]) = if ATOMIC_DDL { (&[2], &[]) } else { (&[], &[2]) };
            assert_eq!(
                (&s.applied[..], &s.pending[..], &s.dirty[..]),
                (&[1][..], pending, dirty)
            );
            assert!(status
                .iter()
                .filter(|s| &s.tenant != broken)
                .all(|s| s.applied == [1, 2] && s.pending.is_empty()));
        }

        #[tokio::test]
        async fn a_failed_migration_leaves_the_tenant_as_documented() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 1).await;
            let t = &created[0];
            // The first statement succeeds, the second fails.
            let mut failing = v1();
            failing.push(migration(
                2,
                MigrationType::Simple,
                &format!("CREATE TABLE posts (id int); {FAILING}"),
            ));
            let newer = l.with_migrations(&pool, failing);
            assert_err!(
                newer.migrate(t.as_str()).await,
                Error::Migration { version: 2, ref tenant, .. } if tenant == t
            );
            let status = newer.status_of(t.as_str()).await.unwrap();
            let (pending, dirty): (&[i64], &[i64]) = if ATOMIC_DDL { (&[2], &[]) } else { (&[], &[2]) };
            assert_eq!(
                (&status.applied[..], &status.pending[..], &status.dirty[..]),
                (&[1][..], pending, dirty)
            );
            if ATOMIC_DDL {
                // PostgreSQL: one transaction, so nothing of v2 is left and a rerun tries it again.
                assert!(!has_table(&pool, t.as_str(), "posts").await);
                assert_err!(
                    newer.migrate(t.as_str()).await,
                    Error::Migration { version: 2, .. }
                );
            } else {
                // MySQL: the CREATE TABLE committed; the tenant is dirty and never silently re-run.
                assert!(has_table(&pool, t.as_str(), "posts").await);
                assert_err!(
                    newer.migrate(t.as_str()).await,
                    Error::Dirty { version: 2, ref tenant } if tenant == t
                );
                let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
                assert!(report
                    .failed()
                    .all(|(_, e)| matches!(e, Error::Dirty { version: 2, .. })));
                assert_eq!(report.failed().count(), 1);
            }
            assert!(has_table(&pool, t.as_str(), "guards").await, "v1 is kept");
        }

        #[tokio::test]
        async fn reruns_are_idempotent() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 3).await;
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
            assert_eq!(
                newer.status_of(created[0].as_str()).await.unwrap().applied,
                [1, 2]
            );
        }

        #[tokio::test]
        async fn a_changed_checksum_is_detected_and_not_rerun() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 2).await;
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
        async fn an_unknown_tenant_is_refused() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, v1()).await;
            let nobody = tenancy_testdb::unique_name("nobody");
            assert_err!(l.tenants.migrate(&nobody).await, Error::NotATenant { .. });
            assert_err!(
                l.tenants.rollback(&nobody, 0).await,
                Error::NotATenant { .. }
            );
            assert_err!(l.tenants.status_of(&nobody).await, Error::NotATenant { .. });
            assert_err!(
                l.tenants.migrate("public").await,
                Error::InvalidTenantName(_)
            );
        }

        #[tokio::test]
        async fn rollback_reverts_down_to_the_target() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 2).await;
            let newer = l.with_migrations(&pool, v2());
            newer.migrate_all(MigrateOptions::default()).await.unwrap();

            let first = created[0].as_str();
            assert_eq!(
                newer.rollback(first, 1).await.unwrap(),
                Outcome::RolledBack(vec![2])
            );
            assert!(!has_column(&pool, first, "guards", "badge").await);
            assert!(has_column(&pool, created[1].as_str(), "guards", "badge").await);
            assert_eq!(newer.rollback(first, 1).await.unwrap(), Outcome::UpToDate);
            assert_err!(
                newer.rollback(first, 0).await,
                Error::Irreversible { version: 1, .. }
            );
            assert!(has_table(&pool, first, "guards").await, "nothing was run");
            let status = newer.status_of(first).await.unwrap();
            assert_eq!(
                (&status.applied[..], &status.pending[..]),
                (&[1][..], &[2][..])
            );
            // And forward again.
            assert_eq!(
                newer.migrate(first).await.unwrap(),
                Outcome::Migrated(vec![2])
            );
            assert!(has_column(&pool, first, "guards", "badge").await);
        }

        /// `rollback_all` is every backend's (the README once listed it as PostgreSQL's).
        #[tokio::test]
        async fn rollback_all_reverts_every_tenant() {
            let pool = pool().await;
            let (l, created) = at_v1(&pool, 3).await;
            let newer = l.with_migrations(&pool, v2());
            newer.migrate_all(MigrateOptions::default()).await.unwrap();
            assert_eq!(
                newer.rollback(created[0].as_str(), 1).await.unwrap(),
                Outcome::RolledBack(vec![2])
            );

            let report = newer
                .rollback_all(1, MigrateOptions::default())
                .await
                .unwrap();
            assert!(report.is_success(), "{report:?}");
            assert_eq!(report.changed().count(), 2, "{report:?}");
            for t in &created {
                assert!(!has_column(&pool, t.as_str(), "guards", "badge").await, "{t}");
            }
            let status = newer.status().await.unwrap();
            assert!(
                status.iter().all(|s| s.applied == [1] && s.pending == [2]),
                "{status:?}"
            );
        }
    };
}
pub(crate) use behaviours;
