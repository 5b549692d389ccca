//! The typed query builder.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::{Error, Query, TenantModel};

        use super::{pool, Fresh, Guard, Pool};
        use crate::assert_err;

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
            // The other tenant holds look-alike rows that must never show up.
            Guard::insert_many(&pool, t.get(1), vec![Guard::new("Abu", "Guard"); 3])
                .await
                .unwrap();
            (pool, t)
        }

        fn names(rows: &[tenancy::Record<Guard>]) -> Vec<&str> {
            rows.iter().map(|r| r.name.as_str()).collect()
        }

        #[tokio::test]
        async fn comparisons() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let q = || Guard::query(a).order_by(Guard::ID.asc());
            let run = |q: Query<Guard>| {
                let pool = pool.clone();
                async move { q.fetch_all(&pool).await.unwrap() }
            };
            assert_eq!(
                names(&run(q().filter(Guard::NAME.eq("Abu"))).await),
                ["Abu"]
            );
            assert_eq!(
                names(&run(q().filter(Guard::POSITION.ne("Guard"))).await),
                ["Bea", "Dov"]
            );
            assert_eq!(names(&run(q().filter(Guard::AGE.lt(30))).await), ["Dov"]);
            assert_eq!(
                names(&run(q().filter(Guard::AGE.le(30))).await),
                ["Abu", "Dov"]
            );
            assert_eq!(names(&run(q().filter(Guard::AGE.gt(45))).await), ["Abe"]);
            assert_eq!(
                names(&run(q().filter(Guard::AGE.ge(45))).await),
                ["Bea", "Abe"]
            );
            assert_eq!(
                names(&run(q().filter(Guard::ID.is_in([2, 4, 99]))).await),
                ["Bea", "Dov"]
            );
            assert!(run(q().filter(Guard::ID.is_in(Vec::<i64>::new())))
                .await
                .is_empty());
            assert_eq!(
                names(&run(q().filter(Guard::NAME.like("Ab%"))).await),
                ["Abu", "Abe"]
            );
            assert_eq!(names(&run(q().filter(Guard::AGE.is_null())).await), ["Cai"]);
            assert_eq!(run(q().filter(Guard::AGE.is_not_null())).await.len(), 4);
            assert_eq!(
                names(
                    &run(q()
                        .filter(Guard::POSITION.eq("Guard"))
                        .filter(Guard::AGE.ge(30)))
                    .await
                ),
                ["Abu", "Abe"]
            );
        }

        #[tokio::test]
        async fn values_are_bound_not_spliced() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let hostile = "x' OR '1'='1";
            let rows = Guard::query(a)
                .filter(Guard::NAME.eq(hostile))
                .fetch_all(&pool)
                .await
                .unwrap();
            assert!(rows.is_empty());
            assert!(!Guard::query(a)
                .filter(Guard::NAME.eq(hostile))
                .to_sql()
                .contains(hostile));
        }

        #[tokio::test]
        async fn order_limit_offset_and_fetch_variants() {
            let (pool, t) = seeded().await;
            let a = t.get(0);
            let page = Guard::query(a)
                .order_by(Guard::POSITION.asc())
                .order_by(Guard::NAME.desc())
                .limit(2)
                .offset(1)
                .fetch_all(&pool)
                .await
                .unwrap();
            // Archer: Dov; Captain: Bea; Guard: Cai, Abu, Abe  -> skip Dov, take Bea, Cai
            assert_eq!(names(&page), ["Bea", "Cai"]);
            assert!(page.iter().all(|r| r.tenant() == a));
            let skipped = Guard::query(a)
                .order_by(Guard::NAME.asc())
                .offset(3)
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(names(&skipped), ["Cai", "Dov"], "an offset without a limit");

            let first = Guard::query(a)
                .order_by(Guard::NAME.asc())
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(first.name, "Abe");
            assert!(Guard::query(a)
                .filter(Guard::NAME.eq("Zed"))
                .fetch_optional(&pool)
                .await
                .unwrap()
                .is_none());
            assert_err!(
                Guard::query(a)
                    .filter(Guard::NAME.eq("Zed"))
                    .fetch_one(&pool)
                    .await,
                Error::NotFound { .. }
            );
        }

        #[tokio::test]
        async fn count_and_delete_matching() {
            let (pool, t) = seeded().await;
            let (a, b) = (t.get(0), t.get(1));
            assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 5);
            let guards = || Guard::query(a).filter(Guard::POSITION.eq("Guard"));
            assert_eq!(guards().count(&pool).await.unwrap(), 3);
            assert_eq!(guards().limit(2).count(&pool).await.unwrap(), 2);
            assert_eq!(guards().offset(2).count(&pool).await.unwrap(), 1);
            assert_eq!(guards().limit(5).offset(1).count(&pool).await.unwrap(), 2);

            // Delete the oldest guard only, then every remaining guard.
            let deleted = guards()
                .order_by(Guard::ID.asc())
                .limit(1)
                .delete(&pool)
                .await
                .unwrap();
            assert_eq!(deleted, 1);
            assert!(Guard::find(&pool, a, 1).await.unwrap().is_none());
            assert_eq!(guards().delete(&pool).await.unwrap(), 2);
            assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 2);
            // The other tenant's look-alike guards are untouched.
            assert_eq!(Guard::query(b).count(&pool).await.unwrap(), 3);
        }

        #[tokio::test]
        async fn delete_with_an_ordered_window() {
            let (pool, t) = seeded().await;
            let (a, b) = (t.get(0), t.get(1));
            let left = |pool: Pool| async move {
                let rows = Guard::query(a)
                    .order_by(Guard::NAME.asc())
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                rows.into_iter()
                    .map(|r| r.into_inner().name)
                    .collect::<Vec<_>>()
            };
            let guards = || Guard::query(a).filter(Guard::POSITION.eq("Guard"));
            // Guards by name descending: Cai, Abu, Abe. Skip one, delete one: Abu.
            let deleted = guards()
                .order_by(Guard::NAME.desc())
                .offset(1)
                .limit(1)
                .delete(&pool)
                .await
                .unwrap();
            assert_eq!(deleted, 1);
            assert_eq!(left(pool.clone()).await, ["Abe", "Bea", "Cai", "Dov"]);
            // The first by name descending: Cai.
            let deleted = guards()
                .order_by(Guard::NAME.desc())
                .limit(1)
                .delete(&pool)
                .await
                .unwrap();
            assert_eq!(deleted, 1);
            assert_eq!(left(pool.clone()).await, ["Abe", "Bea", "Dov"]);
            // An offset without a limit: all but the first by name.
            let deleted = Guard::query(a)
                .order_by(Guard::NAME.asc())
                .offset(1)
                .delete(&pool)
                .await
                .unwrap();
            assert_eq!(deleted, 2);
            assert_eq!(left(pool.clone()).await, ["Abe"]);
            assert_eq!(Guard::query(b).count(&pool).await.unwrap(), 3);
        }
    };
}
pub(crate) use behaviours;
