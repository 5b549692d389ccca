//! `insert_many`: rows come back in the order given, a batch is refused whole before anything
//! is sent, and a server error stores none of it.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::{Error, TenantModel};

        use super::{begin, pool, raw_guards, Badge, Fresh, Guard, MAX_BIND_PARAMS};
        use crate::assert_err;

        fn badge(code: &str, holder: &str) -> Badge {
            Badge {
                code: code.into(),
                holder: holder.into(),
            }
        }

        async fn codes(pool: &super::Pool, tenant: &tenancy::Tenant) -> Vec<String> {
            let rows = Badge::query(tenant)
                .order_by(Badge::CODE.asc())
                .fetch_all(pool)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.into_inner().code).collect()
        }

        #[tokio::test]
        async fn rows_come_back_in_the_order_given() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let names = ["Abu", "Bea", "Cai", "Dov"];
            let rows = Guard::insert_many(
                &pool,
                a,
                names.iter().map(|n| Guard::new(n, "Guard")).collect(),
            )
            .await
            .unwrap();
            let got: Vec<_> = rows.iter().map(|r| (r.id, r.name.as_str())).collect();
            assert_eq!(got, [(1, "Abu"), (2, "Bea"), (3, "Cai"), (4, "Dov")]);
            assert!(rows.iter().all(|r| r.tenant() == a));
            assert!(Guard::insert_many(&pool, a, vec![])
                .await
                .unwrap()
                .is_empty());
            assert_eq!(raw_guards(&pool, a).await.len(), 4);

            // An application key reads back by key, in order too.
            let stored = Badge::insert_many(&pool, a, vec![badge("b2", "Iago"), badge("b1", "Abu")])
                .await
                .unwrap();
            let got: Vec<_> = stored.iter().map(|b| b.holder.as_str()).collect();
            assert_eq!(got, ["Iago", "Abu"]);
        }

        #[tokio::test]
        async fn a_batch_over_the_parameter_limit_is_refused_before_sending() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            // Guard binds 3 values per row.
            let max_rows = MAX_BIND_PARAMS / 3;
            let batch = vec![Guard::new("A", "B"); max_rows + 1];
            assert_err!(
                Guard::insert_many(&pool, a, batch).await,
                Error::BatchTooLarge { rows, max_rows: m, .. } if rows == max_rows + 1 && m == max_rows
            );
            assert_eq!(raw_guards(&pool, a).await, vec![]);
        }

        #[tokio::test]
        async fn a_server_error_stores_none_of_the_batch() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            Badge::insert_many(&pool, a, vec![badge("b1", "Abu"), badge("b2", "Iago")])
                .await
                .unwrap();
            // The third row breaks the unique holder: nothing of this batch may stay.
            let batch = vec![
                badge("b3", "Jafar"),
                badge("b4", "Rajah"),
                badge("b5", "Abu"),
            ];
            assert_err!(
                Badge::insert_many(&pool, a, batch).await,
                Error::Database { .. }
            );
            assert_eq!(codes(&pool, a).await, ["b1", "b2"]);
        }

        #[tokio::test]
        async fn inside_a_caller_transaction_the_batch_goes_with_it() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut tx = begin(&pool, a).await;
            Badge::insert_many(&mut tx, a, vec![badge("b1", "Genie")])
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert!(Badge::find(&pool, a, "b1".to_owned())
                .await
                .unwrap()
                .is_none());

            let mut tx = begin(&pool, a).await;
            Badge::insert_many(&mut tx, a, vec![badge("b1", "Genie"), badge("b2", "Jafar")])
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(codes(&pool, a).await, ["b1", "b2"]);
        }
    };
}
pub(crate) use behaviours;
