//! The richer model API (issue 15): OR/NOT and groups, update_all, aggregates and group by,
//! upsert, streaming, raw SQL with tenant-qualified tables, semi-joins and preloads. Every test
//! seeds a look-alike second tenant and asserts none of its rows shows up or changes.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use futures_util::TryStreamExt;
        use tenancy::{Error, Filter, OnConflict, Raw, Record, Relation, TenantModel};

        use super::{pool, Badge, Db, Fresh, Guard, Pool, DB_SYSTEM};
        use crate::assert_err;

        /// Tenant 0: five guards and two badges; tenant 1: three guards named "Abu", aged 99, and a
        /// badge held by "Abu" — rows that would match most filters if tenants leaked.
        async fn seeded() -> (Pool, Fresh) {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let mut rows = Vec::new();
            for (name, position, age) in [
                ("Abu", "Guard", Some(30)),
                ("Bea", "Captain", Some(45)),
                ("Cai", "Guard", None),
                ("Dov", "Archer", Some(22)),
                ("Abe", "Guard", Some(60)),
            ] {
                let mut g = Guard::new(name, position);
                g.age = age;
                rows.push(g);
            }
            Guard::insert_many(&pool, t.get(0), rows).await.unwrap();
            let mut other = Guard::new("Abu", "Guard");
            other.age = Some(99);
            Guard::insert_many(&pool, t.get(1), vec![other; 3])
                .await
                .unwrap();
            for (tenant, code, holder) in [(0, "B1", "Abu"), (0, "B2", "Bea"), (1, "B9", "Abu")] {
                badge(code, holder)
                    .insert(&pool, t.get(tenant))
                    .await
                    .unwrap();
            }
            (pool, t)
        }

        fn badge(code: &str, holder: &str) -> Badge {
            Badge {
                code: code.into(),
                holder: holder.into(),
            }
        }

        fn names(rows: &[Record<Guard>]) -> Vec<&str> {
            rows.iter().map(|r| r.name.as_str()).collect()
        }

        /// Tenant 1 still holds exactly its three "Abu" guards aged 99 and its badge.
        async fn other_tenant_untouched(pool: &Pool, t: &Fresh) {
            let b = t.get(1);
            let rows = Guard::query(b).fetch_all(pool).await.unwrap();
            assert_eq!(names(&rows), ["Abu", "Abu", "Abu"]);
            assert!(rows
                .iter()
                .all(|r| r.age == Some(99) && r.position == "Guard"));
            let badges = Badge::query(b).fetch_all(pool).await.unwrap();
            assert_eq!(badges.len(), 1);
            assert_eq!(
                (badges[0].code.as_str(), badges[0].holder.as_str()),
                ("B9", "Abu")
            );
        }

        #[tokio::test]
        async fn or_not_and_groups() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let q = || Guard::query(a).order_by(Guard::ID.asc());
            let run = |q: tenancy::Query<Guard>| {
                let pool = pool.clone();
                async move { names(&q.fetch_all(&pool).await.unwrap()).join(",") }
            };
            // (name LIKE 'A%') AND (age < 40 OR age IS NULL)
            let young_or_unknown = Guard::AGE.lt(40) | Guard::AGE.is_null();
            assert_eq!(
                run(q().filter(Guard::NAME.like("A%") & young_or_unknown)).await,
                "Abu"
            );
            assert_eq!(
                run(q().filter(Guard::AGE.lt(40) | Guard::AGE.is_null())).await,
                "Abu,Cai,Dov"
            );
            // NOT: a NULL age matches neither the comparison nor its negation.
            assert_eq!(run(q().filter(!Guard::AGE.lt(40))).await, "Bea,Abe");
            assert_eq!(
                run(q().filter(Guard::POSITION.eq("Guard").not())).await,
                "Bea,Dov"
            );
            // or_filter: everything so far is one alternative.
            assert_eq!(
                run(q()
                    .filter(Guard::POSITION.eq("Guard"))
                    .filter(Guard::AGE.gt(40))
                    .or_filter(Guard::NAME.eq("Dov")))
                .await,
                "Dov,Abe"
            );
            // Built at run time (Ecto's `dynamic`), with values bound in order across the groups.
            let wanted = ["Cai", "Bea"];
            let any = Filter::any(wanted.iter().map(|n| Guard::NAME.eq(*n)));
            assert_eq!(
                run(q().filter(any & !Guard::POSITION.eq("Captain"))).await,
                "Cai"
            );
            assert_eq!(run(q().filter(Filter::any([]))).await, "");
            assert_eq!(
                run(q().filter(Filter::all([]))).await,
                "Abu,Bea,Cai,Dov,Abe"
            );
            // The same filters on delete and count agree with the fetch.
            let filter = || Guard::AGE.ge(45) | Guard::NAME.eq("Cai");
            assert_eq!(
                Guard::query(a).filter(filter()).count(&pool).await.unwrap(),
                3
            );
            assert_eq!(
                Guard::query(a)
                    .filter(filter())
                    .delete(&pool)
                    .await
                    .unwrap(),
                3
            );
            assert_eq!(run(q()).await, "Abu,Dov");
            other_tenant_untouched(&pool, &t).await;
        }

        #[tokio::test]
        async fn update_all_sets_the_matching_rows_of_one_tenant() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let moved = Guard::query(a)
                .filter(Guard::NAME.like("A%"))
                .update_all([Guard::POSITION.set("Gate"), Guard::AGE.set(None)], &pool)
                .await
                .unwrap();
            assert_eq!(moved, 2);
            let gate = Guard::query(a)
                .filter(Guard::POSITION.eq("Gate"))
                .order_by(Guard::ID.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&gate), ["Abu", "Abe"]);
            assert!(gate.iter().all(|g| g.age.is_none()));
            // With an order and a limit, exactly the rows the same select returns.
            let first_two = Guard::query(a)
                .order_by(Guard::NAME.desc())
                .limit(2)
                .update_all([Guard::AGE.set(Some(77))], &pool)
                .await
                .unwrap();
            assert_eq!(first_two, 2);
            let aged = Guard::query(a)
                .filter(Guard::AGE.eq(Some(77)))
                .order_by(Guard::NAME.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&aged), ["Cai", "Dov"]);
            // Bad input is refused before anything is sent.
            let none: [tenancy::Set<Guard>; 0] = [];
            assert_err!(
                Guard::query(a).update_all(none, &pool).await,
                Error::InvalidQuery {
                    table: "guards",
                    ..
                }
            );
            assert_err!(
                Guard::query(a)
                    .update_all([Guard::AGE.set(Some(1)), Guard::AGE.set(Some(2))], &pool)
                    .await,
                Error::InvalidQuery {
                    table: "guards",
                    ..
                }
            );
            other_tenant_untouched(&pool, &t).await;
        }

        #[tokio::test]
        async fn aggregates_and_group_by_are_typed_and_per_tenant() {
            let (pool, t) = seeded().await;
            let (a, b) = (t.get(0), t.get(1));
            let q = || Guard::query(a);
            assert_eq!(q().sum(Guard::AGE, &pool).await.unwrap(), Some(157));
            assert_eq!(q().avg(Guard::AGE, &pool).await.unwrap(), Some(39.25));
            assert_eq!(q().min(Guard::AGE, &pool).await.unwrap(), Some(Some(22)));
            assert_eq!(
                q().max(Guard::NAME, &pool).await.unwrap(),
                Some("Dov".to_owned())
            );
            assert_eq!(
                q().sum(Guard::ID, &pool).await.unwrap().map(|s| s > 0),
                Some(true)
            );
            assert_eq!(
                q().filter(Guard::POSITION.eq("Guard"))
                    .sum(Guard::AGE, &pool)
                    .await
                    .unwrap(),
                Some(90)
            );
            // Nothing matches: NULL, i.e. None.
            assert_eq!(
                q().filter(Guard::NAME.eq("nobody"))
                    .sum(Guard::AGE, &pool)
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                Guard::query(b).sum(Guard::AGE, &pool).await.unwrap(),
                Some(297)
            );
            // The window is applied before aggregating, as `count` does.
            let two_oldest = q()
                .order_by(Guard::AGE.desc())
                .filter(Guard::AGE.is_not_null())
                .limit(2);
            assert_eq!(two_oldest.sum(Guard::AGE, &pool).await.unwrap(), Some(105));

            let per_position = q().group_by(Guard::POSITION).count(&pool).await.unwrap();
            assert_eq!(
                per_position,
                [
                    ("Archer".to_owned(), 1),
                    ("Captain".to_owned(), 1),
                    ("Guard".to_owned(), 3)
                ]
            );
            let ages = q()
                .group_by(Guard::POSITION)
                .sum(Guard::AGE, &pool)
                .await
                .unwrap();
            assert_eq!(
                ages,
                [
                    ("Archer".to_owned(), Some(22)),
                    ("Captain".to_owned(), Some(45)),
                    ("Guard".to_owned(), Some(90))
                ]
            );
            let oldest = q()
                .filter(Guard::POSITION.ne("Captain"))
                .group_by(Guard::POSITION)
                .max(Guard::AGE, &pool)
                .await
                .unwrap();
            assert_eq!(
                oldest,
                [
                    ("Archer".to_owned(), Some(Some(22))),
                    ("Guard".to_owned(), Some(Some(60)))
                ]
            );
            let by_age = Guard::query(b)
                .group_by(Guard::AGE)
                .count(&pool)
                .await
                .unwrap();
            assert_eq!(by_age, [(Some(99), 3)]);
        }

        #[tokio::test]
        async fn upsert_updates_or_keeps_the_row_of_its_own_tenant() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            // B9 exists in tenant 1 only: in tenant 0 it is an insert.
            let new = badge("B9", "Cai")
                .upsert(&pool, a, OnConflict::on(Badge::CODE).replace(Badge::HOLDER))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((new.tenant(), new.holder.as_str()), (a, "Cai"));
            // B1 exists in tenant 0: its holder is replaced.
            let updated = badge("B1", "Dov")
                .upsert(&pool, a, OnConflict::on(Badge::CODE))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(updated.holder, "Dov");
            // do_nothing keeps the stored row and returns nothing for it.
            let kept = badge("B2", "Abe")
                .upsert(&pool, a, OnConflict::on(Badge::CODE).do_nothing())
                .await
                .unwrap();
            assert!(kept.is_none());
            let b2 = Badge::find(&pool, a, "B2".into()).await.unwrap().unwrap();
            assert_eq!(b2.holder, "Bea");
            // A batch: one insert, one update, one kept; rows written come back in order.
            let batch = vec![badge("B3", "Abe"), badge("B2", "Abu")];
            let written = Badge::upsert_many(&pool, a, batch, OnConflict::on(Badge::CODE))
                .await
                .unwrap();
            let pairs: Vec<(&str, &str)> = written
                .iter()
                .map(|b| (b.code.as_str(), b.holder.as_str()))
                .collect();
            assert_eq!(pairs, [("B3", "Abe"), ("B2", "Abu")]);
            let batch = vec![badge("B4", "Bea"), badge("B3", "Zed")];
            let written =
                Badge::upsert_many(&pool, a, batch, OnConflict::on(Badge::CODE).do_nothing())
                    .await
                    .unwrap();
            assert_eq!(written.len(), 1);
            assert_eq!(written[0].code, "B4");
            assert!(written.iter().all(|r| r.tenant() == a));
            let all = Badge::query(a)
                .order_by(Badge::CODE.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            let all: Vec<(&str, &str)> = all
                .iter()
                .map(|b| (b.code.as_str(), b.holder.as_str()))
                .collect();
            assert_eq!(
                all,
                [
                    ("B1", "Dov"),
                    ("B2", "Abu"),
                    ("B3", "Abe"),
                    ("B4", "Bea"),
                    ("B9", "Cai")
                ]
            );
            // Bad input, refused before anything is sent.
            assert_err!(
                Guard::new("X", "Y")
                    .upsert(&pool, a, OnConflict::on(Guard::ID))
                    .await,
                Error::InvalidQuery {
                    table: "guards",
                    ..
                }
            );
            assert_err!(
                badge("B5", "Q")
                    .upsert(&pool, a, OnConflict::on(Badge::HOLDER).replace(Badge::CODE))
                    .await,
                Error::ReadOnlyColumn { column: "code", .. }
            );
            assert_err!(
                badge("B5", "Q")
                    .upsert(&pool, a, OnConflict::on(Badge::CODE).and(Badge::HOLDER))
                    .await,
                Error::InvalidQuery {
                    table: "badges",
                    ..
                }
            );
            let invalid = Guard::new("", "Guard");
            assert_err!(
                Guard::upsert_many(&pool, a, vec![invalid], OnConflict::on(Guard::NAME)).await,
                Error::InvalidBatchRow { index: 0, .. }
            );
            assert_eq!(Badge::query(a).count(&pool).await.unwrap(), 5);
            other_tenant_untouched(&pool, &t).await;
        }

        #[tokio::test]
        async fn fetch_streams_the_rows_of_one_tenant() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let q = || Guard::query(a).order_by(Guard::ID.asc());
            let streamed: Vec<Record<Guard>> = q().fetch(&pool).try_collect().await.unwrap();
            let fetched = q().fetch_all(&pool).await.unwrap();
            assert_eq!(streamed, fetched);
            assert!(streamed.iter().all(|r| r.tenant() == a));
            let mut other = Guard::query(t.get(1)).fetch(&pool);
            let mut n = 0;
            while let Some(row) = other.try_next().await.unwrap() {
                assert_eq!((row.tenant(), row.age), (t.get(1), Some(99)));
                n += 1;
            }
            assert_eq!(n, 3);
            // A tenant without the table: the stream ends with the usual typed error.
            let missing = tenancy::Tenant::new(tenancy_testdb::unique_name("nope")).unwrap();
            let err = Guard::query(&missing)
                .fetch(&pool)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err();
            assert!(matches!(err, Error::UnknownTenant { .. }), "{err:?}");

            // More rows than one of the stream's batches (256), in order, none lost or repeated.
            let more: Vec<Guard> = (0..600)
                .map(|i| Guard::new(&format!("G{i}"), "Guard"))
                .collect();
            Guard::insert_many(&pool, a, more).await.unwrap();
            let streamed: Vec<Record<Guard>> = q().fetch(&pool).try_collect().await.unwrap();
            assert_eq!(streamed.len(), 605);
            assert_eq!(streamed, q().fetch_all(&pool).await.unwrap());

            // A row that fails to decode ends the stream with that error, after the rows before it
            // and with none after it: a NULL name (SQLite reads a NULL text as ""; there, a text age).
            let failing_third_row = if DB_SYSTEM == "sqlite" {
                "SELECT id, name, position, CASE WHEN id <= 2 THEN age ELSE 'x' END AS age, \
                 inserted_at FROM {guards} ORDER BY id"
            } else {
                "SELECT id, CASE WHEN id <= 2 THEN name END AS name, position, age, inserted_at \
                 FROM {guards} ORDER BY id"
            };
            let mut rows = Raw::<Db>::new(failing_third_row).fetch::<Guard, _>(&pool, a);
            assert_eq!(rows.try_next().await.unwrap().unwrap().id, 1);
            assert_eq!(rows.try_next().await.unwrap().unwrap().id, 2);
            assert!(rows.try_next().await.is_err());
            assert!(rows.try_next().await.unwrap().is_none());
            drop(rows);
            other_tenant_untouched(&pool, &t).await;
        }

        #[tokio::test]
        async fn raw_sql_names_only_the_tenants_tables_and_binds_values() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let rows: Vec<Record<Guard>> = Raw::<Db>::new(
                "SELECT * FROM {guards} WHERE age > {} AND name LIKE {} ORDER BY id",
            )
            .bind(25)
            .bind("A%")
            .fetch_all(&pool, a)
            .await
            .unwrap();
            assert_eq!(names(&rows), ["Abu", "Abe"]);
            assert!(rows.iter().all(|r| r.tenant() == a));
            // A join of two tables, both the tenant's.
            let holders: Vec<Record<Guard>> = Raw::<Db>::new(
                "SELECT g.* FROM {guards} g JOIN {badges} b ON b.holder = g.name ORDER BY g.name",
            )
            .table::<Badge>()
            .fetch_all(&pool, a)
            .await
            .unwrap();
            assert_eq!(names(&holders), ["Abu", "Bea"]);
            // A value that looks like another tenant's table is only ever a value.
            let sneaky = format!("{}.guards", t.get(1));
            let none = Raw::<Db>::new("SELECT * FROM {guards} WHERE name = {}")
                .bind(sneaky)
                .fetch_optional::<Guard, _>(&pool, a)
                .await
                .unwrap();
            assert!(none.is_none());
            let changed = Raw::<Db>::new("UPDATE {guards} SET position = {} WHERE name = {}")
                .table::<Guard>()
                .bind("Gate")
                .bind("Abu")
                .execute(&pool, a)
                .await
                .unwrap();
            assert_eq!(changed, 1);
            // Refused before sending: an unknown table, a brace, a count of values that differs.
            assert_err!(
                Raw::<Db>::new("SELECT * FROM {sites}")
                    .fetch_all::<Guard, _>(&pool, a)
                    .await,
                Error::InvalidQuery { .. }
            );
            assert_err!(
                Raw::<Db>::new("SELECT * FROM {guards WHERE id = 1")
                    .fetch_all::<Guard, _>(&pool, a)
                    .await,
                Error::InvalidQuery { .. }
            );
            assert_err!(
                Raw::<Db>::new("SELECT * FROM {guards} WHERE id = {}")
                    .fetch_all::<Guard, _>(&pool, a)
                    .await,
                Error::InvalidQuery { .. }
            );
            let streamed: Vec<Record<Guard>> = Raw::<Db>::new("SELECT * FROM {guards} ORDER BY id")
                .fetch(&pool, a)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(streamed.len(), 5);
            other_tenant_untouched(&pool, &t).await;
        }

        /// A declared association (a `const`, as an app declares one next to its models; not in an
        /// `impl Guard`, as two backends' modules share a `Guard`): a guard's badges, by holder name.
        const BADGES: Relation<Guard, Badge, String, String> =
            Relation::new(Guard::NAME, Badge::HOLDER);

        #[tokio::test]
        async fn joins_and_preloads_stay_in_the_tenant() {
            let (pool, t) = seeded().await;
            let (a, b) = (t.get(0), t.get(1));
            let badge_of = BADGES;
            // Guards holding a badge (tenant 1's "Abu" badge must not make tenant 0's Abu match twice,
            // nor tenant 0's rows match in tenant 1).
            let holders = Guard::query(a)
                .join(badge_of, Filter::all([]))
                .order_by(Guard::NAME.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&holders), ["Abu", "Bea"]);
            let with_b2 = Guard::query(a)
                .join(badge_of, Badge::CODE.eq("B2"))
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&with_b2), ["Bea"]);
            // In tenant 0 no badge is B9, so no guard there matches; in tenant 1 all three do.
            let b9 = || badge_of.any(Badge::CODE.eq("B9"));
            assert_eq!(Guard::query(a).filter(b9()).count(&pool).await.unwrap(), 0);
            assert_eq!(Guard::query(b).filter(b9()).count(&pool).await.unwrap(), 3);
            // Composable: without a badge, or aged over 50.
            let loners = Guard::query(a)
                .filter(!badge_of.any(Filter::all([])) | Guard::AGE.gt(50))
                .order_by(Guard::ID.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&loners), ["Cai", "Dov", "Abe"]);

            // Preload: one query, each guard gets its own tenant's badge.
            let guards = Guard::query(a)
                .order_by(Guard::ID.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            let badges = badge_of.preload(&pool, &guards).await.unwrap();
            let codes: Vec<Option<&str>> = guards
                .iter()
                .map(|g| badges.one(g).map(|b| b.code.as_str()))
                .collect();
            assert_eq!(codes, [Some("B1"), Some("B2"), None, None, None]);
            assert_eq!(badges.len(), 2);
            // has many, the other way round, for tenant 1.
            let b_badges = Badge::query(b).fetch_all(&pool).await.unwrap();
            let holders_of = Relation::new(Badge::HOLDER, Guard::NAME);
            let guards_of = holders_of.preload(&pool, &b_badges).await.unwrap();
            let held = guards_of.many(&b_badges[0]);
            assert_eq!(held.len(), 3);
            assert!(held.iter().all(|g| g.tenant() == b && g.age == Some(99)));
            // No records, no query.
            assert!(badge_of.preload(&pool, &[]).await.unwrap().is_empty());
        }

        /// Preloading records of several tenants at once, whose related rows have the same keys in
        /// every tenant ("Abu" holds a badge in both): each record gets its own tenant's rows only.
        /// SQLite (a file per tenant) refuses a statement on several tenants, typed.
        #[tokio::test]
        async fn a_preload_over_several_tenants_matches_each_record_in_its_own_tenant() {
            let (pool, t) = seeded().await;
            let (a, b) = (t.get(0), t.get(1));
            let mut guards = Guard::query(a)
                .order_by(Guard::ID.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            guards.extend(
                Guard::query(b)
                    .order_by(Guard::ID.asc())
                    .fetch_all(&pool)
                    .await
                    .unwrap(),
            );
            let preloaded = BADGES.preload(&pool, &guards).await;
            if DB_SYSTEM == "sqlite" {
                let err = preloaded.err();
                assert!(matches!(err, Some(Error::Unsupported { .. })), "{err:?}");
                return;
            }
            // Belongs to: tenant 0's Abu has B1, Bea B2; each of tenant 1's three Abus has B9.
            let badges = preloaded.unwrap();
            // (tenant, guard, its badge's code and holder)
            type Holding<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);
            let got: Vec<Holding> = guards
                .iter()
                .map(|g| {
                    let badge = badges.one(g).map(|b| {
                        assert_eq!(b.tenant(), g.tenant(), "{}'s badge {}", g.name, b.code);
                        (b.code.as_str(), b.holder.as_str())
                    });
                    (g.tenant().as_str(), g.name.as_str(), badge)
                })
                .collect();
            assert_eq!(
                got,
                [
                    (a.as_str(), "Abu", Some(("B1", "Abu"))),
                    (a.as_str(), "Bea", Some(("B2", "Bea"))),
                    (a.as_str(), "Cai", None),
                    (a.as_str(), "Dov", None),
                    (a.as_str(), "Abe", None),
                    (b.as_str(), "Abu", Some(("B9", "Abu"))),
                    (b.as_str(), "Abu", Some(("B9", "Abu"))),
                    (b.as_str(), "Abu", Some(("B9", "Abu"))),
                ]
            );
            // Has many, the other way round: B1 (tenant 0) is held by tenant 0's one Abu, aged 30;
            // B9 (tenant 1) by tenant 1's three, aged 99.
            let mut all_badges = Badge::query(a)
                .order_by(Badge::CODE.asc())
                .fetch_all(&pool)
                .await
                .unwrap();
            all_badges.extend(Badge::query(b).fetch_all(&pool).await.unwrap());
            let holders_of = Relation::new(Badge::HOLDER, Guard::NAME);
            let holders = holders_of.preload(&pool, &all_badges).await.unwrap();
            // (tenant, badge, its holders' names and ages)
            type Held<'a> = (&'a str, &'a str, Vec<(&'a str, Option<i32>)>);
            let got: Vec<Held> = all_badges
                .iter()
                .map(|badge| {
                    let held = holders.many(badge);
                    assert!(held.iter().all(|g| g.tenant() == badge.tenant()));
                    let held = held.iter().map(|g| (g.name.as_str(), g.age)).collect();
                    (badge.tenant().as_str(), badge.code.as_str(), held)
                })
                .collect();
            assert_eq!(
                got,
                [
                    (a.as_str(), "B1", vec![("Abu", Some(30))]),
                    (a.as_str(), "B2", vec![("Bea", Some(45))]),
                    (b.as_str(), "B9", vec![("Abu", Some(99)); 3]),
                ]
            );
        }
    };
}
pub(crate) use behaviours;
