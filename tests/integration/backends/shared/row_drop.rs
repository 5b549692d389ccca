//! A row-level tenant's drop in steps (`Tenants::drop_with`): marked, its rows deleted a batch
//! at a time table by table, each batch reported, then unregistered. Exactly its rows go (read
//! back with plain SQL), its neighbours' stay; a drop stopped after its first batch leaves the
//! tenant marked, its name refused to `create_in`, `create`, `rename` and `promote`
//! (`BeingDropped`), and the next `drop` finishes it.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use std::sync::{Arc, Mutex};

        use sqlx::migrate::{Migration, MigrationType};
        use tenancy::{DropOptions, Dropped, Error, Tenant, TenantModel};

        use super::{
            count_rows, pool, v1, Lifecycle, Pool, RowGuard, StoredGuard, GUARDS_ROWS, MOVES_TIERS,
        };
        use crate::assert_err;
        use crate::lifecycle_support::migration;

        /// v1 (`guards`) with the tenant column, and a second table with it (`notes`).
        fn migrations() -> Vec<Migration> {
            migrations_and(&[])
        }

        /// [`migrations`], then `more` (numbered from 4).
        fn migrations_and(more: &[&'static str]) -> Vec<Migration> {
            let steps = [
                "ALTER TABLE guards ADD COLUMN tenant_id VARCHAR(63) NOT NULL DEFAULT ''",
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id VARCHAR(63) NOT NULL, body VARCHAR(20) NOT NULL)",
            ];
            let mut all = v1();
            for (i, sql) in steps.iter().chain(more).enumerate() {
                all.push(migration(2 + i as i64, MigrationType::Simple, sql));
            }
            all
        }

        /// A pool, a lifecycle with [`migrations`] and `more`, a container (its seed guards deleted), and
        /// in it row-level `a` with 7 guards and 5 notes and row-level `b` with 2 guards and 1
        /// note: `(pool, lifecycle, [a, b, container])`.
        async fn seeded(more: &[&'static str]) -> (Pool, Lifecycle, [Tenant; 3]) {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations_and(more)).await;
            let db = &l.tenants;
            let container = db.create(tenancy_testdb::unique_name("rows")).await.unwrap();
            StoredGuard::query(&container).delete(db).await.unwrap();
            let a = db.create_in(tenancy_testdb::unique_name("a"), &container).await.unwrap();
            let b = db.create_in(tenancy_testdb::unique_name("b"), &container).await.unwrap();
            for (tenant, guards) in [(&a, 7), (&b, 2)] {
                for i in 0..guards {
                    RowGuard::new(&format!("G{i}"), "Guard").insert(db, tenant).await.unwrap();
                }
            }
            let sql = format!(
                "INSERT INTO {}.notes (id, tenant_id, body) VALUES \
                 (1, '{a}', 'n'), (2, '{a}', 'n'), (3, '{b}', 'n'), (4, '{a}', 'n'), (5, '{a}', 'n'), (6, '{a}', 'n')",
                super::q(&container),
            );
            super::exec(&pool, sql).await;
            (pool, l, [a, b, container])
        }

        /// `tenant`'s rows of `guards` and `notes` in `container`, read with plain SQL.
        async fn counts(pool: &Pool, container: &Tenant, tenant: &Tenant) -> [i64; 2] {
            [
                count_rows(pool, container, "guards", tenant).await,
                count_rows(pool, container, "notes", tenant).await,
            ]
        }

        /// Options deleting 3 rows per batch, each report kept: (table, rows, table's rows so
        /// far, rows so far, tables done, tables).
        type Seen = Arc<Mutex<Vec<(Option<String>, u64, u64, u64, usize, usize)>>>;
        fn recorded() -> (DropOptions, Seen) {
            let seen = Seen::default();
            let keep = seen.clone();
            let options = DropOptions::default().rows_per_batch(3).on_progress(move |p| {
                let table = p.table.map(str::to_owned);
                let at = (table, p.rows, p.table_rows, p.rows_so_far, p.done, p.total);
                keep.lock().unwrap().push(at);
            });
            (options, seen)
        }

        fn report(table: &str, rows: u64, table_rows: u64, so_far: u64, done: usize) -> (Option<String>, u64, u64, u64, usize, usize) {
            (Some(table.to_owned()), rows, table_rows, so_far, done, 2)
        }

        /// A drop of a tenant with more rows than a batch deletes exactly its rows, a batch at
        /// a time table by table, each batch reported; the reports add up to what it returns.
        #[tokio::test]
        async fn a_row_level_drop_deletes_its_rows_in_batches_and_reports_each() {
            let (pool, l, [a, b, container]) = seeded(&[]).await;
            let db = &l.tenants;
            assert_eq!(counts(&pool, &container, &a).await, [7, 5]);

            let (options, seen) = recorded();
            let dropped = db.drop_with(a.as_str(), options).await.unwrap();
            assert_eq!(dropped, Dropped::Rows { deleted: 12 });
            assert_eq!(
                *seen.lock().unwrap(),
                [
                    report("guards", 3, 3, 3, 0),
                    report("guards", 3, 6, 6, 0),
                    report("guards", 1, 7, 7, 0),
                    report("notes", 3, 3, 10, 1),
                    report("notes", 2, 5, 12, 1),
                ]
            );
            let reported: u64 = seen.lock().unwrap().iter().map(|r| r.1).sum();
            assert_eq!(reported, 12, "the reports add up to the rows deleted");
            assert_eq!(counts(&pool, &container, &a).await, [0, 0], "every row of the tenant deleted");
            assert_eq!(counts(&pool, &container, &b).await, [2, 1], "its neighbour's rows untouched");
            assert!(!db.exists(a.as_str()).await.unwrap());
            let listed = db.list().await.unwrap();
            assert!(!listed.iter().any(|t| t.as_str() == a.as_str()), "{listed:?}");

            // The name is free again, and starts empty.
            let again = db.create_in(a.as_str(), &container).await.unwrap();
            assert_eq!(RowGuard::query(&again).count(db).await.unwrap(), 0);
        }

        /// A drop that stops after its first batch (its progress callback panics: the task
        /// dies there, as a killed process would) leaves the tenant marked: its name is refused
        /// to `create_in`, `create` and `rename`, it is still listed, and the next `drop` of it
        /// deletes the rest and unregisters it.
        #[tokio::test]
        async fn a_row_level_drop_stopped_part_way_is_finished_by_the_next_drop() {
            let (pool, l, [a, b, container]) = seeded(&[]).await;
            let db = &l.tenants;

            let stopped = {
                let (db, name) = (db.clone(), a.as_str().to_owned());
                let options = DropOptions::default()
                    .rows_per_batch(3)
                    .on_progress(|_| panic!("stopped after the first batch"));
                tokio::spawn(async move { db.drop_with(&name, options).await })
            };
            assert!(stopped.await.unwrap_err().is_panic());
            assert_eq!(counts(&pool, &container, &a).await, [4, 5], "one batch deleted");
            assert_eq!(counts(&pool, &container, &b).await, [2, 1]);

            // Marked: the name is taken until the drop is finished.
            assert_err!(db.create_in(a.as_str(), &container).await, Error::BeingDropped { .. });
            assert_err!(db.create(a.as_str()).await, Error::BeingDropped { .. });
            let other = tenancy_testdb::unique_name("c");
            assert_err!(db.rename(a.as_str(), &other).await, Error::BeingDropped { .. });
            assert_err!(db.rename(b.as_str(), a.as_str()).await, Error::BeingDropped { .. });
            if MOVES_TIERS {
                assert_err!(db.promote(a.as_str()).await, Error::BeingDropped { .. });
            }
            assert!(db.exists(a.as_str()).await.unwrap(), "a tenant until its drop is done");
            let listed = db.list().await.unwrap();
            assert!(listed.iter().any(|t| t.as_str() == a.as_str()), "{listed:?}");
            let late = RowGuard::new("Late", "Guard").insert(db, &a).await;
            let late = match GUARDS_ROWS {
                true => {
                    assert_err!(late, Error::NotPlaced { .. });
                    0
                }
                false => {
                    late.unwrap();
                    1
                }
            };

            let (options, seen) = recorded();
            let dropped = db.drop_with(a.as_str(), options).await.unwrap();
            assert_eq!(dropped, Dropped::Rows { deleted: 9 + late });
            let reported: u64 = seen.lock().unwrap().iter().map(|r| r.1).sum();
            assert_eq!(reported, 9 + late, "the reports add up to the rows deleted");
            assert_eq!(counts(&pool, &container, &a).await, [0, 0]);
            assert_eq!(counts(&pool, &container, &b).await, [2, 1], "its neighbour's rows untouched");
            assert!(!db.exists(a.as_str()).await.unwrap());
            assert_err!(db.drop(a.as_str()).await, Error::NotATenant { .. });
            db.create_in(a.as_str(), &container).await.unwrap();
        }

        /// `bells` references `alarms`, which sorts before it, both with the tenant column:
        /// the drop deletes a tenant's bells before its alarms, a batch at a time.
        #[tokio::test]
        async fn a_row_level_drop_deletes_from_referencing_tables_first() {
            let (pool, l, [a, b, container]) = seeded(&[
                "CREATE TABLE alarms (id INTEGER PRIMARY KEY, tenant_id VARCHAR(63) NOT NULL)",
                "CREATE TABLE bells (id INTEGER PRIMARY KEY, tenant_id VARCHAR(63) NOT NULL, \
                 alarm_id INTEGER NOT NULL, FOREIGN KEY (alarm_id) REFERENCES alarms (id))",
            ])
            .await;
            let c = super::q(&container);
            for table in ["alarms", "bells"] {
                let column = match table {
                    "alarms" => "",
                    _ => ", alarm_id",
                };
                let values: Vec<String> = (1..=5)
                    .map(|i| {
                        let t = if i < 5 { &a } else { &b };
                        let alarm = if table == "bells" { format!(", {i}") } else { String::new() };
                        format!("({i}, '{t}'{alarm})")
                    })
                    .collect();
                let sql = format!("INSERT INTO {c}.{table} (id, tenant_id{column}) VALUES {}", values.join(", "));
                super::exec(&pool, sql).await;
            }
            let options = DropOptions::default().rows_per_batch(3);
            let dropped = l.tenants.drop_with(a.as_str(), options).await.unwrap();
            assert_eq!(dropped, Dropped::Rows { deleted: 7 + 5 + 4 + 4 });
            for table in ["alarms", "bells"] {
                assert_eq!(count_rows(&pool, &container, table, &a).await, 0, "{table}");
                assert_eq!(count_rows(&pool, &container, table, &b).await, 1, "{table}");
            }
        }

        /// A registry made before drops went in steps (its `row_tenants` without `dropping`)
        /// is given the mark by the next handle opened on it, which drops in steps.
        #[tokio::test]
        async fn a_registry_from_before_drops_went_in_steps_is_upgraded_by_a_newer_handle() {
            let (pool, l, [a, b, container]) = seeded(&[]).await;
            super::forget_dropping(&pool, &l.registry).await;
            let newer = l.with_migrations(&pool, migrations());
            let options = DropOptions::default().rows_per_batch(3);
            let dropped = newer.drop_with(a.as_str(), options).await.unwrap();
            assert_eq!(dropped, Dropped::Rows { deleted: 12 });
            assert_eq!(counts(&pool, &container, &a).await, [0, 0]);
            assert_eq!(counts(&pool, &container, &b).await, [2, 1]);
            assert!(!newer.exists(a.as_str()).await.unwrap());
            newer.create_in(a.as_str(), &container).await.unwrap();
        }
    };
}
pub(crate) use behaviours;
