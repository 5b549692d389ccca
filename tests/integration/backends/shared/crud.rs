//! Insert, find, update, partial update, delete, and their error cases.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use sqlx::types::time::OffsetDateTime;
        use tenancy::{Changeset, Error, Record, State, TenantModel};

        use super::{exec, pool, q, raw_guards, Fresh, Guard, DB_SYSTEM};
        use crate::assert_err;

        #[tokio::test]
        async fn insert_returns_the_stored_row_with_generated_values() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            assert_eq!(g.id, 1);
            assert_eq!(g.state(), State::Loaded);
            assert_eq!(g.tenant(), a);
            assert!(g.inserted_at > OffsetDateTime::UNIX_EPOCH);
            let second = Guard::new("Bea", "Guard").insert(&pool, a).await.unwrap();
            assert_eq!(second.id, 2);

            let found = Guard::find(&pool, a, 1).await.unwrap().unwrap();
            assert_eq!(found.value(), g.value());
            assert!(Guard::find(&pool, a, 99).await.unwrap().is_none());
        }

        #[tokio::test]
        async fn a_built_record_inserts_into_its_own_tenant_only() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let (a, b) = (t.get(0), t.get(1));
            let mut r = Record::new(a.clone(), Guard::new("Abu", "Guard"));
            assert_eq!(r.state(), State::Built);
            assert_err!(r.insert(&pool, b).await, Error::TenantMismatch { .. });
            assert_err!(r.update(&pool, a).await, Error::InvalidState { .. });
            r.insert(&pool, a).await.unwrap();
            assert_eq!(r.state(), State::Loaded);
            assert_eq!(r.id, 1);
            assert_err!(r.insert(&pool, a).await, Error::InvalidState { .. });
            assert_eq!(raw_guards(&pool, b).await, vec![]);
        }

        #[tokio::test]
        async fn update_writes_every_column_and_refreshes() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            let inserted_at = g.inserted_at;
            g.name = "Abu Bakr".into();
            g.age = Some(40);
            g.update(&pool, a).await.unwrap();
            assert_eq!((g.name.as_str(), g.age), ("Abu Bakr", Some(40)));
            let found = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
            assert_eq!(found.name, "Abu Bakr");
            assert_eq!(found.age, Some(40));
            assert_eq!(
                found.inserted_at, inserted_at,
                "generated columns are not written"
            );
        }

        #[tokio::test]
        async fn an_update_or_changeset_that_changes_nothing_succeeds() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            let before = g.value().clone();
            g.update(&pool, a).await.unwrap();
            g.apply(&pool, a, Changeset::new().set(Guard::NAME, "Abu"))
                .await
                .unwrap();
            assert_eq!(g.value(), &before);
            assert_eq!(g.state(), State::Loaded);
        }

        #[tokio::test]
        async fn a_changeset_writes_only_the_columns_it_sets() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            // Someone else renames the guard after we loaded it.
            exec(
                &pool,
                format!("UPDATE {}.guards SET name = 'Renamed'", q(a)),
            )
            .await;

            g.apply(&pool, a, Changeset::new().set(Guard::POSITION, "Captain"))
                .await
                .unwrap();
            // Only position was written; the concurrent rename survives and the record sees it.
            assert_eq!(
                raw_guards(&pool, a).await,
                [("Renamed".into(), "Captain".into())]
            );
            assert_eq!(g.name, "Renamed");
            assert_eq!(g.position, "Captain");

            // An empty changeset is a no-op; the last value set for a column wins.
            g.apply(&pool, a, Changeset::new()).await.unwrap();
            let changes = Changeset::new()
                .set(Guard::AGE, Some(30))
                .set(Guard::AGE, Some(31));
            assert_eq!(changes.len(), 1);
            g.apply(&pool, a, changes).await.unwrap();
            assert_eq!(g.age, Some(31));
            let found = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
            assert_eq!(found.age, Some(31));
        }

        #[tokio::test]
        async fn a_changeset_cannot_set_the_key_or_generated_columns() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            assert_err!(
                g.apply(&pool, a, Changeset::new().set(Guard::ID, 7)).await,
                Error::ReadOnlyColumn { column: "id", .. }
            );
            // `inserted_at` is generated but not the key.
            let inserted_at = g.inserted_at;
            assert_err!(
                g.apply(
                    &pool,
                    a,
                    Changeset::new().set(Guard::INSERTED_AT, OffsetDateTime::UNIX_EPOCH)
                )
                .await,
                Error::ReadOnlyColumn {
                    column: "inserted_at",
                    ..
                }
            );
            assert_eq!((g.id, g.inserted_at), (1, inserted_at));
            let stored = Guard::find(&pool, a, 1).await.unwrap().unwrap();
            assert_eq!(stored.inserted_at, inserted_at);
        }

        /// `save` writes a loaded record back to the tenant it came from without naming it: the
        /// row changes in that tenant's table (read back directly), and the row with the same
        /// key in another tenant does not. A record not loaded from a tenant (built, deleted)
        /// is refused with a typed error and nothing is written.
        #[tokio::test]
        async fn save_writes_back_to_the_tenant_the_record_came_from() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 2).await;
            let (a, b) = (t.get(0), t.get(1));
            let bea = Guard::new("Bea", "Guard").insert(&pool, b).await.unwrap();
            let abu = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            assert_eq!(abu.id, bea.id, "the same key in both tenants");

            let mut found = Guard::find(&pool, a, abu.id).await.unwrap().unwrap();
            found.position = "Captain".into();
            found.save(&pool).await.unwrap();
            assert_eq!((found.tenant(), found.state()), (a, State::Loaded));
            assert_eq!(found.position, "Captain", "refreshed from the stored row");
            assert_eq!(
                raw_guards(&pool, a).await,
                vec![("Abu".into(), "Captain".into())]
            );
            assert_eq!(
                raw_guards(&pool, b).await,
                vec![("Bea".into(), "Guard".into())]
            );

            let mut built = Record::new(a.clone(), Guard::new("Cy", "Guard"));
            assert_err!(built.save(&pool).await, Error::InvalidState { .. });
            found.delete(&pool, a).await.unwrap();
            found.position = "Ghost".into();
            assert_err!(found.save(&pool).await, Error::InvalidState { .. });
            assert_eq!(raw_guards(&pool, a).await, vec![]);
            assert_eq!(
                raw_guards(&pool, b).await,
                vec![("Bea".into(), "Guard".into())]
            );
        }

        #[tokio::test]
        async fn delete_marks_the_record_and_refuses_reuse() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
            let mut stale = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
            g.delete(&pool, a).await.unwrap();
            assert_eq!(g.state(), State::Deleted);
            assert!(Guard::find(&pool, a, g.id).await.unwrap().is_none());
            assert_err!(g.update(&pool, a).await, Error::InvalidState { .. });
            assert_err!(g.delete(&pool, a).await, Error::InvalidState { .. });
            // A second copy of the deleted row finds it gone.
            assert_err!(stale.delete(&pool, a).await, Error::NotFound { .. });
            assert_err!(stale.update(&pool, a).await, Error::NotFound { .. });
        }

        #[tokio::test]
        async fn statement_spans_name_their_database() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            // The test's runtime runs on this thread, so the recording sees every span it opens.
            crate::backends::spans::record();
            Guard::new("Abu", "Guard")
                .insert(&pool, t.get(0))
                .await
                .unwrap();
            Guard::query(t.get(0)).fetch_all(&pool).await.unwrap();
            let spans = crate::backends::spans::take();
            let statements: Vec<_> = spans
                .iter()
                .filter(|(_, table)| table == "guards")
                .collect();
            // (MySQL reads an inserted row back: one more statement.)
            assert!(statements.len() >= 2, "{spans:?}");
            assert!(
                statements.iter().all(|(system, _)| system == DB_SYSTEM),
                "{spans:?}"
            );
        }
    };
}
pub(crate) use behaviours;
