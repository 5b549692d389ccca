//! Row-level tenants (`Tenant::rows_in`): several tenants' rows in one container's table, each
//! row holding its tenant in the model's tenant column. What one writes, another never reads,
//! counts, changes or deletes, even with look-alike rows and the same keys; what cannot be kept
//! to one tenant's rows (a model without a tenant column, a raw statement) is refused before
//! anything is sent. Stored rows are read back through the container with a model that maps
//! the tenant column as a plain field.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use sqlx::migrate::{Migration, MigrationType};
        use tenancy::{Dropped, Error, OnConflict, Raw, Tenant, TenantModel};

        use super::{pool, pool_with, v1, Guard, Lifecycle, RowGuard, RowNote, StoredGuard};
        use crate::assert_err;
        use crate::lifecycle_support::migration;

        /// v1 (`guards`) and the tenant column on it, then `more` (numbered from 3).
        fn migrations_and(more: &[&'static str]) -> Vec<Migration> {
            let steps = ["ALTER TABLE guards ADD COLUMN tenant_id VARCHAR(63) NOT NULL DEFAULT ''"];
            let mut all = v1();
            for (i, sql) in steps.iter().chain(more).enumerate() {
                all.push(migration(2 + i as i64, MigrationType::Simple, sql));
            }
            all
        }

        fn migrations() -> Vec<Migration> {
            migrations_and(&[])
        }

        /// [`migrations`] and a name unique across the whole table (every tenant's rows).
        fn unique_names() -> Vec<Migration> {
            migrations_and(&["CREATE UNIQUE INDEX guards_name ON guards (name)"])
        }

        /// A container made by the lifecycle (its seed guard deleted) and two row-level
        /// tenants in it.
        async fn two_in_one(l: &Lifecycle) -> (Tenant, Tenant, Tenant) {
            let container = l
                .tenants
                .create(tenancy_testdb::unique_name("rows"))
                .await
                .unwrap();
            let all = Guard::query(&container).fetch_all(&l.tenants).await.unwrap();
            for mut guard in all {
                guard.delete(&l.tenants, &container).await.unwrap();
            }
            let a = Tenant::new(tenancy_testdb::unique_name("a")).unwrap();
            let b = Tenant::new(tenancy_testdb::unique_name("b")).unwrap();
            (a.rows_in(&container), b.rows_in(&container), container)
        }

        /// Every row of the container's `guards` as stored: (tenant, name, position), by id.
        async fn stored(l: &Lifecycle, container: &Tenant) -> Vec<(String, String, String)> {
            StoredGuard::query(container)
                .order_by(StoredGuard::ID.asc())
                .fetch_all(&l.tenants)
                .await
                .unwrap()
                .into_iter()
                .map(|g| {
                    let g = g.into_inner();
                    (g.tenant_id, g.name, g.position)
                })
                .collect()
        }

        fn row(tenant: &Tenant, name: &str, position: &str) -> (String, String, String) {
            (tenant.as_str().into(), name.into(), position.into())
        }

        #[tokio::test]
        async fn row_level_tenants_share_a_table_and_never_touch_each_others_rows() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (a, b, container) = two_in_one(&l).await;
            let db = &l.tenants;

            // Look-alike rows: the same names and positions in both tenants.
            let abu = RowGuard::new("Abu", "Guard").insert(db, &a).await.unwrap();
            let bea = RowGuard::new("Bea", "Guard").insert(db, &a).await.unwrap();
            let b_abu = RowGuard::new("Abu", "Guard").insert(db, &b).await.unwrap();
            assert_eq!(abu.tenant(), &a);
            assert!(abu.tenant().is_row_level());
            assert_eq!(
                stored(&l, &container).await,
                [row(&a, "Abu", "Guard"), row(&a, "Bea", "Guard"), row(&b, "Abu", "Guard")],
                "each insert stores its tenant's name in the tenant column"
            );

            // Reads: by key, filtered, counted, streamed.
            assert!(RowGuard::find(db, &b, abu.id).await.unwrap().is_none());
            assert!(RowGuard::find(db, &a, abu.id).await.unwrap().is_some());
            assert_eq!(RowGuard::query(&a).count(db).await.unwrap(), 2);
            assert_eq!(RowGuard::query(&b).count(db).await.unwrap(), 1);
            let named_abu = RowGuard::query(&b)
                .filter(RowGuard::NAME.eq("Abu"))
                .fetch_all(db)
                .await
                .unwrap();
            assert_eq!(named_abu.len(), 1);
            assert_eq!(named_abu[0].id, b_abu.id);
            assert_eq!(named_abu[0].tenant(), &b);

            // A record of one tenant cannot be written through another.
            let b_tenant = Tenant::new(b.as_str()).unwrap().rows_in(&container);
            let mut moved = abu.clone();
            moved.position = "Captain".into();
            assert_err!(moved.update(db, &b_tenant).await, Error::TenantMismatch { .. });
            assert_err!(moved.delete(db, &b_tenant).await, Error::TenantMismatch { .. });

            // Bulk writes of one tenant leave the other's rows alone.
            let changed = RowGuard::query(&b)
                .update_all([RowGuard::POSITION.set("Chief")], db)
                .await
                .unwrap();
            assert_eq!(changed, 1);
            let deleted = RowGuard::query(&b)
                .filter(RowGuard::NAME.eq("Bea"))
                .delete(db)
                .await
                .unwrap();
            assert_eq!(deleted, 0, "b has no Bea; a's Bea stays");
            let mut abu = abu;
            abu.position = "Captain".into();
            abu.update(db, &a).await.unwrap();
            let mut bea = bea;
            bea.delete(db, &a).await.unwrap();
            assert_eq!(
                stored(&l, &container).await,
                [row(&a, "Abu", "Captain"), row(&b, "Abu", "Chief")]
            );

            // Deleting all of a's rows leaves b's.
            assert_eq!(RowGuard::query(&a).delete(db).await.unwrap(), 1);
            assert_eq!(stored(&l, &container).await, [row(&b, "Abu", "Chief")]);
        }

        #[tokio::test]
        async fn a_row_level_insert_many_and_an_upsert_keep_to_their_tenant() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, unique_names()).await;
            let (a, b, container) = two_in_one(&l).await;
            let db = &l.tenants;

            let many = RowGuard::insert_many(
                db,
                &a,
                vec![RowGuard::new("Abu", "Guard"), RowGuard::new("Bea", "Guard")],
            )
            .await
            .unwrap();
            assert_eq!(many.len(), 2);
            assert!(many.iter().all(|g| g.tenant() == &a));

            // b upserts a name a's row holds (the name is unique across the table): a's row is
            // not changed, and b gets no row; a name nobody holds is b's new row.
            let upserted = RowGuard::upsert_many(
                db,
                &b,
                vec![RowGuard::new("Abu", "Thief"), RowGuard::new("Cai", "Guard")],
                OnConflict::on(RowGuard::NAME).replace(RowGuard::POSITION),
            )
            .await
            .unwrap();
            assert_eq!(upserted.len(), 1, "b got a row of a: {upserted:?}");
            assert_eq!((upserted[0].name.as_str(), upserted[0].tenant()), ("Cai", &b));
            // a's own upsert of the same name updates its row.
            let mine = RowGuard::upsert_many(
                db,
                &a,
                vec![RowGuard::new("Bea", "Captain")],
                OnConflict::on(RowGuard::NAME).replace(RowGuard::POSITION),
            )
            .await
            .unwrap();
            assert_eq!(mine.len(), 1);
            // do_nothing with another tenant's name: kept, nothing returned, no error.
            let kept = RowGuard::upsert_many(
                db,
                &b,
                vec![RowGuard::new("Abu", "Thief")],
                OnConflict::on(RowGuard::NAME).do_nothing(),
            )
            .await
            .unwrap();
            assert!(kept.is_empty(), "{kept:?}");
            assert_eq!(
                stored(&l, &container).await,
                [
                    row(&a, "Abu", "Guard"),
                    row(&a, "Bea", "Captain"),
                    row(&b, "Cai", "Guard")
                ],
                "a's Abu unchanged by b"
            );
            assert_eq!(RowGuard::query(&b).count(db).await.unwrap(), 1);
        }

        #[tokio::test]
        async fn an_upsert_on_a_per_tenant_unique_key_keeps_each_tenants_row_its_own() {
            let pool = pool().await;
            let per_tenant = "CREATE UNIQUE INDEX guards_tenant_name ON guards (tenant_id, name)";
            let l = Lifecycle::new(&pool, migrations_and(&[per_tenant])).await;
            let (a, b, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let on_name = || OnConflict::on(RowGuard::NAME).per_tenant();

            // Each tenant's first Abu is a row of its own: the names are unique per tenant.
            for (tenant, position) in [(&a, "Guard"), (&b, "Thief")] {
                let new = RowGuard::upsert_many(
                    db,
                    tenant,
                    vec![RowGuard::new("Abu", position)],
                    on_name().replace(RowGuard::POSITION),
                )
                .await
                .unwrap();
                assert_eq!(new.len(), 1);
                assert_eq!(new[0].tenant(), tenant);
            }
            // a's second Abu updates a's row, and b's stays.
            let updated = RowGuard::upsert_many(
                db,
                &a,
                vec![RowGuard::new("Abu", "Captain")],
                on_name().replace(RowGuard::POSITION),
            )
            .await
            .unwrap();
            assert_eq!(updated.len(), 1);
            assert_eq!((updated[0].position.as_str(), updated[0].tenant()), ("Captain", &a));
            // do_nothing keeps b's row and returns nothing.
            let kept = RowGuard::upsert_many(
                db,
                &b,
                vec![RowGuard::new("Abu", "Chief")],
                on_name().do_nothing(),
            )
            .await
            .unwrap();
            assert!(kept.is_empty(), "{kept:?}");
            let mut rows = stored(&l, &container).await;
            rows.sort();
            let mut want = vec![row(&a, "Abu", "Captain"), row(&b, "Abu", "Thief")];
            want.sort();
            assert_eq!(rows, want);
        }

        #[tokio::test]
        async fn what_cannot_keep_to_a_row_level_tenant_is_refused_before_anything_is_sent() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (a, b, container) = two_in_one(&l).await;
            let db = &l.tenants;
            RowGuard::new("Bea", "Guard").insert(db, &b).await.unwrap();

            // A model without a tenant column would read and write every tenant's rows.
            assert_err!(
                Guard::new("Abu", "Guard").insert(db, &a).await,
                Error::NotRowLevel { tenant, table: "guards", .. } if tenant == a
            );
            assert_err!(
                Guard::query(&a).count(db).await,
                Error::NotRowLevel { .. }
            );
            assert_err!(Guard::find(db, &a, 1).await, Error::NotRowLevel { .. });
            let err = Guard::query(&a).delete(db).await.unwrap_err();
            assert!(matches!(err, Error::NotRowLevel { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains(a.as_str())
                    && message.contains(container.as_str())
                    && message.contains("tenant_column"),
                "{message}"
            );

            // A raw statement's text cannot be filtered.
            assert_err!(
                Raw::<super::Db>::new("DELETE FROM {guards}")
                    .table::<RowGuard>()
                    .execute(db, &a)
                    .await,
                Error::NotRowLevel { .. }
            );
            assert_eq!(
                stored(&l, &container).await,
                [row(&b, "Bea", "Guard")],
                "nothing was written or deleted"
            );
        }

        #[tokio::test]
        async fn a_row_level_tenant_is_registered_resolved_listed_and_dropped_with_its_rows() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let (a_name, b_name) = (
                tenancy_testdb::unique_name("a"),
                tenancy_testdb::unique_name("b"),
            );
            let a = db.create_in(&a_name, &container).await.unwrap();
            let b = db.create_in(&b_name, &container).await.unwrap();
            assert_eq!((a.as_str(), a.container()), (a_name.as_str(), container.as_str()));

            // Resolved by name to where its rows are; listed beside the container.
            let resolved = db.tenant(&a_name).await.unwrap();
            assert!(resolved.is_row_level());
            assert_eq!(resolved.container(), container.as_str());
            assert!(!db.tenant(container.as_str()).await.unwrap().is_row_level());
            assert!(db.exists(&a_name).await.unwrap());
            let listed: Vec<(String, String)> = db
                .list()
                .await
                .unwrap()
                .iter()
                .map(|t| (t.as_str().to_owned(), t.container().to_owned()))
                .collect();
            for (name, within) in [(&a_name, &container), (&b_name, &container), (&container.as_str().to_owned(), &container)] {
                assert!(
                    listed.contains(&(name.to_string(), within.as_str().to_owned())),
                    "{name} in {within} not listed: {listed:?}"
                );
            }

            // Its migrations are its container's.
            let status = db.status_of(&a_name).await.unwrap();
            assert!(status.tenant.is_row_level());
            assert_eq!((status.applied.as_slice(), status.pending.is_empty()), (&[1, 2][..], true));
            let all = db.status().await.unwrap();
            let of_a = all.iter().find(|s| s.tenant.as_str() == a_name).expect("a in status");
            assert_eq!(of_a.applied, [1, 2]);
            assert!(all.iter().any(|s| s.tenant == container), "{all:?}");

            for (t, n) in [(&resolved, "Abu"), (&resolved, "Bea"), (&b, "Cai")] {
                RowGuard::new(n, "Guard").insert(db, t).await.unwrap();
            }
            assert_eq!(db.drop(&a_name).await.unwrap(), Dropped::Rows { deleted: 2 });
            assert_eq!(
                stored(&l, &container).await,
                [row(&b, "Cai", "Guard")],
                "a's rows deleted, b's kept"
            );
            assert!(!db.exists(&a_name).await.unwrap());
            assert_err!(db.tenant(&a_name).await, Error::NotATenant { .. });
            assert_err!(db.drop(&a_name).await, Error::NotATenant { .. });
            assert!(!db.list().await.unwrap().iter().any(|t| t.as_str() == a_name));

            // Renamed: its rows follow it, under its new name.
            let c_name = tenancy_testdb::unique_name("c");
            let c = db.rename(&b_name, &c_name).await.unwrap();
            assert_eq!((c.as_str(), c.container()), (c_name.as_str(), container.as_str()));
            assert_eq!(stored(&l, &container).await, [row(&c, "Cai", "Guard")]);
            assert_eq!(RowGuard::query(&c).count(db).await.unwrap(), 1);
            assert_err!(db.tenant(&b_name).await, Error::NotATenant { .. });
            assert!(db.tenant(&c_name).await.unwrap().is_row_level());

            // A container is dropped only once no row-level tenant has rows in it.
            assert_err!(db.drop(container.as_str()).await, Error::Unsupported { .. });
            assert_eq!(stored(&l, &container).await, [row(&c, "Cai", "Guard")]);
            db.drop(&c_name).await.unwrap();
            db.drop(container.as_str()).await.unwrap();
            assert!(!db.exists(container.as_str()).await.unwrap());
        }

        /// Whether the operation `running` comes to wait for the transaction open on `conn`:
        /// seen among the sessions waiting on it where the backend shows them (polled for up to
        /// 10 s), else (SQLite) still running 300 ms on.
        async fn came_to_wait<T>(
            conn: &mut <super::Db as sqlx::Database>::Connection,
            running: &tokio::task::JoinHandle<T>,
        ) -> bool {
            use std::time::Duration;
            for _ in 0..400 {
                match super::waiting_on(conn).await {
                    None => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        return !running.is_finished();
                    }
                    Some(n) if n > 0 => return !running.is_finished(),
                    Some(_) if running.is_finished() => return false,
                    Some(_) => tokio::time::sleep(Duration::from_millis(25)).await,
                }
            }
            false
        }

        /// `rows` of `tenant` stored in the container's `guards`, read directly.
        async fn stored_of(l: &Lifecycle, container: &Tenant, tenant: &str) -> Vec<String> {
            stored(l, container)
                .await
                .into_iter()
                .filter(|(t, _, _)| t == tenant)
                .map(|(_, name, _)| name)
                .collect()
        }

        /// A drop of a row-level tenant waits for its transaction in flight: a row the transaction inserted, committed while the drop waited, is
        /// deleted with the others, so a tenant made again under the name starts empty. Where
        /// the drop puts the placement guard on the container (`GUARDS_ROWS`), an insert
        /// through a `Tenant` resolved before the drop is refused afterwards, not stored.
        #[tokio::test]
        async fn a_row_level_drop_waits_for_the_tenants_open_transaction() {

            let pool = pool_with(4).await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, b, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let b = db.create_in(b.as_str(), &container).await.unwrap();
            RowGuard::new("Bea", "Guard").insert(db, &b).await.unwrap();
            // The first drop in the container puts the guard there (its `CREATE TRIGGER` waits
            // for the table's writes); the second finds it (its lock of the tenant's registry
            // row waits for the guard's `KEY SHARE` of the insert).
            for round in 0..2 {
                let name = tenancy_testdb::unique_name("a");
                let a = db.create_in(&name, &container).await.unwrap();
                RowGuard::new("Abu", "Guard").insert(db, &a).await.unwrap();

                let mut tx = db.pool_for(&a).await.unwrap().begin().await.unwrap();
                RowGuard::new("Ali", "Guard").insert(&mut tx, &a).await.unwrap();
                let dropping = {
                    let (db, name) = (db.clone(), name.clone());
                    tokio::spawn(async move { db.drop(&name).await })
                };
                if !came_to_wait(&mut tx, &dropping).await {
                    panic!("round {round}: the drop did not wait for the open transaction: {:?}", dropping.await);
                }
                tx.commit().await.unwrap();
                assert_eq!(dropping.await.unwrap().unwrap(), Dropped::Rows { deleted: 2 }, "round {round}");
                assert_eq!(stored_of(&l, &container, &name).await, Vec::<String>::new(), "round {round}");
                assert_eq!(stored_of(&l, &container, b.as_str()).await, ["Bea"], "round {round}");

                let late = RowGuard::new("Late", "Guard").insert(db, &a).await;
                if super::GUARDS_ROWS {
                    assert_err!(late, Error::NotPlaced { .. });
                    assert_eq!(stored_of(&l, &container, &name).await, Vec::<String>::new());
                } else {
                    late.unwrap();
                    RowGuard::query(&a).delete(db).await.unwrap();
                }
                let again = db.create_in(&name, &container).await.unwrap();
                assert_eq!(RowGuard::query(&again).count(db).await.unwrap(), 0, "round {round}");
                // The name made again writes again (the guard let go of it).
                RowGuard::new("Again", "Guard").insert(db, &again).await.unwrap();
                assert_eq!(stored_of(&l, &container, &name).await, ["Again"], "round {round}");
                db.drop(&name).await.unwrap();
            }
            // The container's neighbours write on.
            RowGuard::new("Bob", "Guard").insert(db, &b).await.unwrap();
            assert_eq!(RowGuard::query(&b).count(db).await.unwrap(), 2);
        }

        /// A rename of a row-level tenant waits for its transaction in flight: the row the transaction inserted under the old name, committed while the
        /// rename waited, goes to the new name with the others, and none stays under the old
        /// one. Where the rename puts the placement guard on the container, an insert through
        /// a `Tenant` of the old name is refused afterwards.
        #[tokio::test]
        async fn a_row_level_rename_waits_for_the_tenants_open_transaction() {

            let pool = pool_with(4).await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let (old, new) = (tenancy_testdb::unique_name("a"), tenancy_testdb::unique_name("c"));
            let a = db.create_in(&old, &container).await.unwrap();
            RowGuard::new("Abu", "Guard").insert(db, &a).await.unwrap();

            let mut tx = db.pool_for(&a).await.unwrap().begin().await.unwrap();
            RowGuard::new("Ali", "Guard").insert(&mut tx, &a).await.unwrap();
            let renaming = {
                let (db, old, new) = (db.clone(), old.clone(), new.clone());
                tokio::spawn(async move { db.rename(&old, &new).await })
            };
            assert!(
                came_to_wait(&mut tx, &renaming).await,
                "the rename did not wait for the open transaction"
            );
            tx.commit().await.unwrap();
            let c = renaming.await.unwrap().unwrap();
            assert_eq!(stored_of(&l, &container, &old).await, Vec::<String>::new());
            let mut moved = stored_of(&l, &container, &new).await;
            moved.sort();
            assert_eq!(moved, ["Abu", "Ali"]);

            let late = RowGuard::new("Late", "Guard").insert(db, &a).await;
            if super::GUARDS_ROWS {
                assert_err!(late, Error::NotPlaced { .. });
                assert_eq!(stored_of(&l, &container, &old).await, Vec::<String>::new());
            } else {
                late.unwrap();
                RowGuard::query(&a).delete(db).await.unwrap();
            }
            // Renamed back: the old name writes again, the new one is refused where guarded.
            let back = db.rename(c.as_str(), &old).await.unwrap();
            RowGuard::new("Back", "Guard").insert(db, &back).await.unwrap();
            let stale = RowGuard::new("Stale", "Guard").insert(db, &c).await;
            if super::GUARDS_ROWS {
                assert_err!(stale, Error::NotPlaced { .. });
            } else {
                stale.unwrap();
                RowGuard::query(&c).delete(db).await.unwrap();
            }
            assert_eq!(stored_of(&l, &container, &new).await, Vec::<String>::new());
            let mut back_rows = stored_of(&l, &container, &old).await;
            back_rows.sort();
            assert_eq!(back_rows, ["Abu", "Ali", "Back"]);
            db.drop(back.as_str()).await.unwrap();
        }

        /// A later migration: a table of several tenants' rows (`RowNote`'s).
        const NOTES: &str = "CREATE TABLE row_notes (id BIGINT NOT NULL, \
            tenant_id VARCHAR(63) NOT NULL, body VARCHAR(63) NOT NULL, PRIMARY KEY (tenant_id, id))";

        /// A table that a later migration adds to a container where a row-level drop put the
        /// placement guard (`GUARDS_ROWS`) gets the guard from that migration: a write there
        /// through a `Tenant` resolved before the drop is refused, so a tenant made again under
        /// the name finds the table empty; it and the neighbour write there.
        #[tokio::test]
        async fn a_table_a_later_migration_adds_to_a_guarded_container_is_guarded_too() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, b, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let b = db.create_in(b.as_str(), &container).await.unwrap();
            let name = tenancy_testdb::unique_name("a");
            let a = db.create_in(&name, &container).await.unwrap();
            RowGuard::new("Abu", "Guard").insert(db, &a).await.unwrap();
            db.drop(&name).await.unwrap();

            let newer = l.with_migrations(&pool, migrations_and(&[NOTES]));
            newer.migrate(container.as_str()).await.unwrap();
            let late = RowNote { id: 1, body: "late".into() }.insert(&newer, &a).await;
            if super::GUARDS_ROWS {
                assert_err!(late, Error::NotPlaced { .. });
            } else {
                late.unwrap();
                RowNote::query(&a).delete(&newer).await.unwrap();
            }
            let again = newer.create_in(&name, &container).await.unwrap();
            assert_eq!(RowNote::query(&again).count(&newer).await.unwrap(), 0);
            RowNote { id: 1, body: "again".into() }.insert(&newer, &again).await.unwrap();
            RowNote { id: 1, body: "next door".into() }.insert(&newer, &b).await.unwrap();
            assert_eq!(RowNote::query(&b).count(&newer).await.unwrap(), 1);
            assert_eq!(RowNote::query(&again).count(&newer).await.unwrap(), 1);
            newer.drop(&name).await.unwrap();
        }

        #[tokio::test]
        async fn a_row_level_tenant_is_refused_as_the_source_of_a_clone_or_an_export() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let name = tenancy_testdb::unique_name("a");
            let a = db.create_in(&name, &container).await.unwrap();
            RowGuard::new("Abu", "Guard").insert(db, &a).await.unwrap();
            // The message names the tenant, says it is row-level and names its container.
            let names_both = |err: &Error| {
                let message = err.to_string();
                assert!(
                    message.contains(&format!("\"{name}\""))
                        && message.contains("row-level")
                        && message.contains(&format!("\"{}\"", container.as_str())),
                    "{message}"
                );
            };

            let target = tenancy_testdb::unique_name("copy");
            let err = db.clone_tenant(&name, &target).await.unwrap_err();
            assert!(matches!(err, Error::Unsupported { operation: "clone", .. }), "{err:?}");
            names_both(&err);
            assert!(!db.exists(&target).await.unwrap(), "{target} registered");
            assert!(!super::container_exists(&pool, &target).await, "{target} made");

            let mut archive: Vec<u8> = Vec::new();
            let err = db.export(&name, &mut archive).await.unwrap_err();
            assert!(matches!(err, Error::Unsupported { operation: "export", .. }), "{err:?}");
            names_both(&err);
            assert!(archive.is_empty(), "{} bytes written", archive.len());

            // Nothing changed; the container itself exports (whole).
            assert_eq!(stored(&l, &container).await, [row(&a, "Abu", "Guard")]);
            let moved = db.export(container.as_str(), &mut archive).await.unwrap();
            assert_eq!(moved.rows, 1, "{moved:?}");
            db.drop(&name).await.unwrap();
        }

        #[tokio::test]
        async fn a_row_level_tenant_name_is_a_tenant_name_of_either_kind() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let own = db.create(tenancy_testdb::unique_name("own")).await.unwrap();
            let name = tenancy_testdb::unique_name("a");
            db.create_in(&name, &container).await.unwrap();

            assert_err!(db.create_in(&name, &container).await, Error::TenantExists { .. });
            assert_err!(db.create_in(own.as_str(), &container).await, Error::TenantExists { .. });
            assert_err!(db.create(&name).await, Error::TenantExists { .. });
            assert_err!(db.rename(own.as_str(), &name).await, Error::TenantExists { .. });
            assert_err!(db.rename(&name, own.as_str()).await, Error::TenantExists { .. });
            assert_err!(
                db.clone_tenant(&name, tenancy_testdb::unique_name("z")).await,
                Error::Unsupported { .. }
            );
            let nowhere = Tenant::new(tenancy_testdb::unique_name("nowhere")).unwrap();
            assert_err!(
                db.create_in(tenancy_testdb::unique_name("c"), &nowhere).await,
                Error::NotATenant { .. }
            );
            // Nothing of the refused ones was registered.
            let names: Vec<String> = db.list().await.unwrap().iter().map(|t| t.as_str().to_owned()).collect();
            assert_eq!(names.len(), 3, "{names:?}");
            db.drop(&name).await.unwrap();
        }

        /// Of a `create` and a `create_in` of one name sent at nearly the same moment, exactly
        /// one succeeds and the other is refused, naming the name; the registry then holds the
        /// name once, as the winner made it. Over rounds whose starts are apart by -4 to +7.5 ms
        /// (the `create_in` first, then later and later), so that the short `create_in` lands
        /// at each point of the `create` (its lock, its checks, its migrations, its commit).
        #[tokio::test]
        async fn of_a_create_and_a_create_in_of_one_name_exactly_one_succeeds() {
            use std::time::Duration;

            let pool = pool_with(8).await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            for round in 0..24u64 {
                let name = tenancy_testdb::unique_name("race");
                // How long the create_in starts after the create (µs; negative: before).
                let offset = round as i64 * 500 - 4_000;
                let wait = |us: i64| tokio::time::sleep(Duration::from_micros(us.max(0) as u64));
                let create = {
                    let (db, name, wait) = (db.clone(), name.clone(), wait(-offset));
                    tokio::spawn(async move {
                        wait.await;
                        db.create(name).await.map(|t| t.is_row_level())
                    })
                };
                let create_in = {
                    let (db, name, wait) = (db.clone(), name.clone(), wait(offset));
                    let container = container.clone();
                    tokio::spawn(async move {
                        wait.await;
                        db.create_in(name, &container).await.map(|t| t.is_row_level())
                    })
                };
                let results = [create.await.unwrap(), create_in.await.unwrap()];
                let won: Vec<bool> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
                assert_eq!(won.len(), 1, "round {round} ({offset} µs apart): {results:?}");
                for result in &results {
                    match result {
                        Ok(_) => {}
                        Err(Error::TenantExists { tenant } | Error::ContainerExists { tenant, .. }) => {
                            assert_eq!(tenant.as_str(), name)
                        }
                        Err(other) => panic!("round {round}: unexpected error: {other:?}"),
                    }
                }
                // The name is registered once, as the winner made it.
                assert_eq!(db.tenant(&name).await.unwrap().is_row_level(), won[0]);
                let listed = db.list().await.unwrap();
                assert_eq!(listed.iter().filter(|t| t.as_str() == name).count(), 1);
                db.drop(&name).await.unwrap();
                assert!(!db.exists(&name).await.unwrap(), "round {round}: {name} is left");
            }
        }

        /// Of a `drop` of a container and a `create_in` of a tenant in it sent at nearly the same
        /// moment, one goes first and the other answers as if it came after: the container is
        /// dropped and the create_in refused (`NotATenant`, naming the container), or the tenant
        /// is registered in it and the drop refused (the container holds a row-level tenant).
        /// Never both, never an error of the server's. Over rounds whose starts are apart by
        /// -2 to +5.5 ms.
        #[tokio::test]
        async fn of_a_drop_of_a_container_and_a_create_in_there_one_goes_first() {
            use std::time::Duration;

            let pool = pool_with(8).await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let db = &l.tenants;
            for round in 0..16u64 {
                let container = db.create(tenancy_testdb::unique_name("box")).await.unwrap();
                let name = tenancy_testdb::unique_name("in");
                // How long the create_in starts after the drop (µs; negative: before).
                let offset = round as i64 * 500 - 2_000;
                let wait = |us: i64| tokio::time::sleep(Duration::from_micros(us.max(0) as u64));
                let dropping = {
                    let (db, container, wait) = (db.clone(), container.clone(), wait(-offset));
                    tokio::spawn(async move {
                        wait.await;
                        db.drop(container.as_str()).await
                    })
                };
                let placing = {
                    let (db, name, wait) = (db.clone(), name.clone(), wait(offset));
                    let container = container.clone();
                    tokio::spawn(async move {
                        wait.await;
                        db.create_in(name, &container).await
                    })
                };
                let (dropped, placed) = (dropping.await.unwrap(), placing.await.unwrap());
                match (&dropped, &placed) {
                    (Ok(_), Err(Error::NotATenant { tenant })) => {
                        assert_eq!(tenant, &container);
                        assert_err!(db.tenant(&name).await, Error::NotATenant { .. });
                    }
                    (Err(Error::Unsupported { operation: "drop", .. }), Ok(placed)) => {
                        assert_eq!(placed.container(), container.as_str());
                        db.drop(&name).await.unwrap();
                        db.drop(container.as_str()).await.unwrap();
                    }
                    _ => panic!("round {round} ({offset} µs apart): {dropped:?}, {placed:?}"),
                }
                assert!(!db.exists(container.as_str()).await.unwrap());
            }
        }

        /// `create_in_many` registers every name it is given in the container, or none: a
        /// name taken (by either kind of tenant, or the container's own), a name given twice,
        /// a name the policy refuses, a container that is not a tenant, or too many names
        /// leave the registry as it was. The tenants it made keep to their own rows.
        #[tokio::test]
        async fn create_in_many_registers_every_name_or_none() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            let names: Vec<String> = (0..3).map(|_| tenancy_testdb::unique_name("many")).collect();
            let made = db.create_in_many(&names, &container).await.unwrap();
            let given: Vec<&str> = made.iter().map(|t| t.as_str()).collect();
            assert_eq!(given, names.iter().map(String::as_str).collect::<Vec<_>>());
            for (tenant, name) in made.iter().zip(&names) {
                assert!(tenant.is_row_level());
                assert_eq!(tenant.container(), container.as_str());
                assert_eq!(&db.tenant(name).await.unwrap(), tenant);
                assert_eq!(db.tenant(name).await.unwrap().container(), container.as_str());
            }
            // Each keeps to its own rows.
            let (x, y) = (&made[0], &made[1]);
            RowGuard::new("Ada", "gate").insert(db, x).await.unwrap();
            assert_eq!(RowGuard::query(x).count(db).await.unwrap(), 1);
            assert_eq!(RowGuard::query(y).count(db).await.unwrap(), 0);
            assert_eq!(stored(&l, &container).await, vec![row(x, "Ada", "gate")]);

            let before = db.list().await.unwrap();
            let fresh = || tenancy_testdb::unique_name("none");
            let free = [fresh(), fresh()];
            // A name taken by a row-level tenant, by a tenant with its container, by the
            // container itself: refused, naming it, and nothing registered.
            for taken in [names[1].clone(), container.as_str().to_owned()] {
                let batch = [free[0].clone(), taken.clone(), free[1].clone()];
                match db.create_in_many(&batch, &container).await {
                    Err(Error::TenantExists { tenant }) => assert_eq!(tenant.as_str(), taken),
                    other => panic!("{batch:?}: {other:?}"),
                }
            }
            // The same for one name: the container's own name is taken.
            match db.create_in(container.as_str(), &container).await {
                Err(Error::TenantExists { tenant }) => assert_eq!(tenant, container),
                other => panic!("create_in of the container's name: {other:?}"),
            }
            let own = db.create(tenancy_testdb::unique_name("own")).await.unwrap();
            let batch = [free[0].clone(), own.as_str().to_owned()];
            match db.create_in_many(&batch, &container).await {
                Err(Error::TenantExists { tenant }) => assert_eq!(tenant, own),
                other => panic!("{batch:?}: {other:?}"),
            }
            db.drop(&own).await.unwrap();
            match db.create_in_many([&free[0], &free[1], &free[0]], &container).await {
                Err(Error::DuplicateName { tenant }) => assert_eq!(tenant.as_str(), free[0]),
                other => panic!("a name twice: {other:?}"),
            }
            assert_err!(
                db.create_in_many([free[0].as_str(), "Not A Name"], &container).await,
                Error::InvalidTenantName(_)
            );
            let nowhere = Tenant::new(tenancy_testdb::unique_name("nowhere")).unwrap();
            assert_err!(db.create_in_many(&free, &nowhere).await, Error::NotATenant { .. });
            let many: Vec<String> = (0..=tenancy::MAX_CREATE_IN_MANY).map(|i| format!("{}_{i}", free[0])).collect();
            match db.create_in_many(&many, &container).await {
                Err(Error::TooManyNames { names, max }) => {
                    assert_eq!((names, max), (tenancy::MAX_CREATE_IN_MANY + 1, tenancy::MAX_CREATE_IN_MANY))
                }
                other => panic!("too many: {other:?}"),
            }
            assert_eq!(db.list().await.unwrap(), before);
            for name in &free {
                assert!(!db.exists(name).await.unwrap(), "{name} was registered");
            }
            assert!(db.create_in_many(Vec::<String>::new(), &container).await.unwrap().is_empty());
            for name in &names {
                db.drop(name).await.unwrap();
            }
        }

        /// Of a `create` of one name and a `create_in_many` holding it among others, sent at
        /// nearly the same moment, exactly one succeeds; the loser is refused naming the name,
        /// and a refused batch registered none of its names.
        #[tokio::test]
        async fn of_a_create_and_a_create_in_many_holding_its_name_exactly_one_succeeds() {
            use std::time::Duration;

            let pool = pool_with(8).await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let (_, _, container) = two_in_one(&l).await;
            let db = &l.tenants;
            for round in 0..12u64 {
                let names: Vec<String> = (0..3).map(|_| tenancy_testdb::unique_name("race")).collect();
                let name = names[1].clone();
                let offset = round as i64 * 1_000 - 4_000;
                let wait = |us: i64| tokio::time::sleep(Duration::from_micros(us.max(0) as u64));
                let create = {
                    let (db, name, wait) = (db.clone(), name.clone(), wait(-offset));
                    tokio::spawn(async move {
                        wait.await;
                        db.create(name).await.map(drop)
                    })
                };
                let batch = {
                    let (db, names, wait) = (db.clone(), names.clone(), wait(offset));
                    let container = container.clone();
                    tokio::spawn(async move {
                        wait.await;
                        db.create_in_many(names, &container).await.map(drop)
                    })
                };
                let results = [create.await.unwrap(), batch.await.unwrap()];
                let won = results.iter().filter(|r| r.is_ok()).count();
                assert_eq!(won, 1, "round {round} ({offset} µs apart): {results:?}");
                for result in &results {
                    match result {
                        Ok(()) => {}
                        Err(Error::TenantExists { tenant } | Error::ContainerExists { tenant, .. }) => {
                            assert_eq!(tenant.as_str(), name)
                        }
                        Err(other) => panic!("round {round}: unexpected error: {other:?}"),
                    }
                }
                let batch_won = results[1].is_ok();
                assert_eq!(db.tenant(&name).await.unwrap().is_row_level(), batch_won);
                for other in [&names[0], &names[2]] {
                    assert_eq!(db.exists(other).await.unwrap(), batch_won, "round {round}: {other}");
                }
                for n in &names {
                    if db.exists(n).await.unwrap() {
                        db.drop(n).await.unwrap();
                    }
                }
            }
        }
    };
}
pub(crate) use behaviours;
