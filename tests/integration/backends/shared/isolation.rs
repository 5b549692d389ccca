//! Tenant isolation: what one tenant writes, another never sees or changes.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::{Changeset, Error, State, TenantModel};

        use super::{acquire, begin, pool, raw_guards, Fresh, Guard};
        use crate::assert_err;

        #[tokio::test]
        async fn a_row_written_in_one_tenant_is_invisible_in_the_other() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let (a, b) = (t.get(0), t.get(1));

            let abu = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();

            assert!(Guard::find(&pool, a, abu.id).await.unwrap().is_some());
            assert!(Guard::find(&pool, b, abu.id).await.unwrap().is_none());
            assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 1);
            assert_eq!(Guard::query(b).count(&pool).await.unwrap(), 0);
            assert!(Guard::query(b).fetch_all(&pool).await.unwrap().is_empty());
            assert_eq!(raw_guards(&pool, b).await, vec![]);
        }

        #[tokio::test]
        async fn update_and_delete_of_a_loaded_record_hit_its_own_container() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let (a, b) = (t.get(0), t.get(1));
            // The same primary key exists in both tenants.
            Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            Guard::new("Bea", "Guard").insert(&pool, b).await.unwrap();

            let mut abu = Guard::find(&pool, a, 1).await.unwrap().unwrap();
            assert_eq!(abu.tenant(), a);
            abu.position = "Captain".into();
            abu.update(&pool, a).await.unwrap();
            assert_eq!(
                raw_guards(&pool, a).await,
                [("Abu".into(), "Captain".into())]
            );
            assert_eq!(raw_guards(&pool, b).await, [("Bea".into(), "Guard".into())]);

            abu.delete(&pool, a).await.unwrap();
            assert_eq!(abu.state(), State::Deleted);
            assert_eq!(raw_guards(&pool, a).await, vec![]);
            assert_eq!(raw_guards(&pool, b).await, [("Bea".into(), "Guard".into())]);
        }

        #[tokio::test]
        async fn a_record_loaded_from_one_tenant_cannot_be_written_to_another() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let (a, b) = (t.get(0), t.get(1));
            Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            Guard::new("Bea", "Guard").insert(&pool, b).await.unwrap();
            let mut abu = Guard::find(&pool, a, 1).await.unwrap().unwrap();
            abu.name = "Mallory".into();

            assert_err!(
                abu.update(&pool, b).await,
                Error::TenantMismatch { record, requested, .. } if record == *a && requested == *b
            );
            assert_err!(
                abu.apply(&pool, b, Changeset::new().set(Guard::NAME, "Mallory"))
                    .await,
                Error::TenantMismatch { .. }
            );
            assert_err!(abu.delete(&pool, b).await, Error::TenantMismatch { .. });

            let err = abu.update(&pool, b).await.unwrap_err().to_string();
            assert!(
                err.contains(a.as_str()) && err.contains(b.as_str()),
                "{err}"
            );
            assert_eq!(raw_guards(&pool, a).await, [("Abu".into(), "Guard".into())]);
            assert_eq!(raw_guards(&pool, b).await, [("Bea".into(), "Guard".into())]);
            assert_eq!(abu.state(), State::Loaded);
        }

        #[tokio::test]
        async fn transactions_roll_back_and_commit() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);

            let mut tx = begin(&pool, a).await;
            let g = Guard::new("Abu", "Guard").insert(&mut tx, a).await.unwrap();
            assert!(Guard::find(&mut tx, a, g.id).await.unwrap().is_some());
            tx.rollback().await.unwrap();
            assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 0);

            let mut tx = begin(&pool, a).await;
            let mut g = Guard::new("Abu", "Guard").insert(&mut tx, a).await.unwrap();
            g.position = "Captain".into();
            g.update(&mut tx, a).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(
                raw_guards(&pool, a).await,
                [("Abu".into(), "Captain".into())]
            );
        }

        #[tokio::test]
        async fn works_on_a_plain_connection() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut conn = acquire(&pool, a).await;
            let g = Guard::new("Abu", "Guard")
                .insert(&mut conn, a)
                .await
                .unwrap();
            let found = Guard::query(a).fetch_one(&mut conn).await.unwrap();
            assert_eq!(found.id, g.id);
        }

        #[tokio::test]
        async fn an_unknown_tenant_is_a_typed_error_naming_it() {
            let pool = pool().await;
            let ghost = tenancy::Tenant::new(tenancy_testdb::unique_name("ghost")).unwrap();

            let err = Guard::new("Abu", "Guard").insert(&pool, &ghost).await;
            assert_err!(err, Error::UnknownTenant { ref tenant, table: "guards", .. } if *tenant == ghost);
            assert_err!(
                Guard::find(&pool, &ghost, 1).await,
                Error::UnknownTenant { .. }
            );
            assert_err!(
                Guard::query(&ghost).count(&pool).await,
                Error::UnknownTenant { .. }
            );
            assert_err!(
                Guard::query(&ghost).fetch_all(&pool).await,
                Error::UnknownTenant { .. }
            );
            assert_err!(
                Guard::query(&ghost).delete(&pool).await,
                Error::UnknownTenant { .. }
            );
            assert_err!(
                Guard::insert_many(&pool, &ghost, vec![Guard::new("A", "B")]).await,
                Error::UnknownTenant { .. }
            );
            let message = Guard::find(&pool, &ghost, 1).await.unwrap_err().to_string();
            assert!(message.starts_with("unknown tenant"), "{message}");
            assert!(message.contains(ghost.as_str()), "{message}");
        }
    };
}
pub(crate) use behaviours;
