//! Validation runs before any write, reports every broken rule, and leaves data untouched.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::{Changeset, Error, TenantModel, Validate};

        use super::{pool, raw_guards, Fresh, Guard};
        use crate::assert_err;

        fn invalid() -> Guard {
            let mut g = Guard::new("", "");
            g.age = Some(7);
            g
        }

        #[test]
        fn every_broken_rule_is_reported_at_once() {
            let errors = invalid().validate().unwrap_err();
            let broken: Vec<_> = errors.errors().iter().map(|e| (e.field, e.rule)).collect();
            assert_eq!(
                broken,
                [
                    ("name", "required"),
                    ("position", "required"),
                    ("age", "range")
                ]
            );
            let mut long = Guard::new(&"x".repeat(51), "Guard");
            long.age = Some(121);
            let broken: Vec<_> = long
                .validate()
                .unwrap_err()
                .errors()
                .iter()
                .map(|e| (e.field, e.rule))
                .collect();
            assert_eq!(broken, [("name", "length"), ("age", "range")]);
            assert!(Guard::new("Abu", "Guard").validate().is_ok());
        }

        #[tokio::test]
        async fn invalid_insert_touches_nothing() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            assert_err!(invalid().insert(&pool, a).await, Error::Validation(e) if e.errors().len() == 3);
            assert_err!(
                Guard::insert_many(&pool, a, vec![Guard::new("Abu", "Guard"), invalid()]).await,
                Error::InvalidBatchRow { index: 1, .. }
            );
            assert_eq!(raw_guards(&pool, a).await, vec![]);
        }

        #[tokio::test]
        async fn invalid_update_leaves_row_and_record_unchanged() {
            let pool = pool().await;
            let t = Fresh::new(&pool, 1).await;
            let a = t.get(0);
            let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();

            g.name.clear();
            assert_err!(g.update(&pool, a).await, Error::Validation(_));
            assert_eq!(raw_guards(&pool, a).await, [("Abu".into(), "Guard".into())]);

            let mut g = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
            let before = g.clone();
            let changes = Changeset::new()
                .set(Guard::POSITION, "Captain")
                .set(Guard::AGE, Some(3));
            assert_err!(g.apply(&pool, a, changes).await, Error::Validation(e) if e.field("age").count() == 1);
            assert_eq!(
                g, before,
                "a refused changeset must leave the record as it was"
            );
            assert_eq!(raw_guards(&pool, a).await, [("Abu".into(), "Guard".into())]);
        }
    };
}
pub(crate) use behaviours;
