//! Shared models (`#[tenancy(shared = "...")]`): one table for every tenant, reached without a
//! tenant, joined and preloaded from tenant models. Not on SQLite (refused by the derive).

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::{Error, Filter, OnConflict, Record, Relation, Shared, TenantModel};

        use super::{exec, pool, Fresh, Guard, Plan, Pool, SHARED_PLANS_DDL};

        /// The shared table (created once per server, kept: other runs may be using it) and plan
        /// names unique to this test.
        async fn setup() -> (Pool, Fresh, String, String) {
            let pool = pool().await;
            for ddl in SHARED_PLANS_DDL {
                exec(&pool, ddl.to_string()).await;
            }
            let t = Fresh::new(&pool, 2).await;
            let (basic, pro) = (
                tenancy_testdb::unique_name("basic"),
                tenancy_testdb::unique_name("pro"),
            );
            (pool, t, basic, pro)
        }

        fn plan(name: &str, seats: i32) -> Plan {
            Plan {
                id: 0,
                name: name.into(),
                seats,
            }
        }

        #[tokio::test]
        async fn shared_rows_are_one_table_for_every_tenant() {
            let (pool, t, basic, pro) = setup().await;
            let stored = Shared::<Plan>::insert(plan(&basic, 5), &pool)
                .await
                .unwrap();
            assert_eq!(stored.tenant(), &Shared::<Plan>::tenant());
            assert_eq!(
                stored.tenant().as_str(),
                <Plan as tenancy::SharedModel>::SCHEMA
            );
            let found = Shared::<Plan>::find(&pool, stored.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(found.name, basic);
            // Upsert and query by name, no tenant anywhere.
            let both = Shared::<Plan>::upsert_many(
                &pool,
                vec![plan(&basic, 7), plan(&pro, 50)],
                OnConflict::on(Plan::NAME).replace(Plan::SEATS),
            )
            .await
            .unwrap();
            assert_eq!(both.iter().map(|p| p.seats).collect::<Vec<_>>(), [7, 50]);
            let mine =
                || Shared::<Plan>::query().filter(Plan::NAME.is_in([basic.clone(), pro.clone()]));
            assert_eq!(mine().count(&pool).await.unwrap(), 2);
            assert_eq!(mine().sum(Plan::SEATS, &pool).await.unwrap(), Some(57));
            // A record of a shared row writes back to the shared table.
            let mut record = found;
            record.seats = 9;
            record
                .update(&pool, &Shared::<Plan>::tenant())
                .await
                .unwrap();
            let again = Shared::<Plan>::find(&pool, record.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.seats, 9);

            // Tenant guards whose position names a plan: a join of a tenant table to the shared one.
            let (a, b) = (t.get(0), t.get(1));
            Guard::insert_many(
                &pool,
                a,
                vec![Guard::new("Abu", &basic), Guard::new("Bea", "none")],
            )
            .await
            .unwrap();
            Guard::insert_many(&pool, b, vec![Guard::new("Cai", &pro)])
                .await
                .unwrap();
            let on_plan = Relation::new(Guard::POSITION, Plan::NAME);
            let planned = Guard::query(a)
                .join(on_plan, Filter::all([]))
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(
                planned.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
                ["Abu"]
            );
            let big = Guard::query(b)
                .join(on_plan, Plan::SEATS.gt(10))
                .count(&pool)
                .await
                .unwrap();
            assert_eq!(big, 1);
            // Preloading the shared rows of guards of two tenants: each gets the shared plan.
            let mut guards = Guard::query(a).fetch_all(&pool).await.unwrap();
            guards.extend(Guard::query(b).fetch_all(&pool).await.unwrap());
            let plans = on_plan.preload(&pool, &guards).await.unwrap();
            let names: Vec<Option<&str>> = guards
                .iter()
                .map(|g| plans.one(g).map(|p| p.name.as_str()))
                .collect();
            assert_eq!(names, [Some(basic.as_str()), None, Some(pro.as_str())]);
            assert!(guards
                .iter()
                .filter_map(|g| plans.one(g))
                .all(|p: &Record<Plan>| p.tenant() == &Shared::<Plan>::tenant()));

            let deleted = mine().delete(&pool).await.unwrap();
            assert_eq!(deleted, 2);
            assert!(Shared::<Plan>::find(&pool, record.id)
                .await
                .unwrap()
                .is_none());
            // Bad input stays typed on the shared table too.
            let err = Shared::<Plan>::insert(plan("", 1), &pool)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Validation(_)), "{err:?}");
        }
    };
}
pub(crate) use behaviours;
