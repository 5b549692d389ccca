//! `tenancy_testdb::cleanup::Leftovers`, which every fixture of a server backend relies on to
//! leave nothing behind: it drops a registry with every tenant registered in it, and the
//! containers (schemas, databases) named, and nothing else.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use tenancy::Tenants;
        use tenancy_testdb::cleanup::Leftovers;
        use tenancy_testdb::fixtures::migrator;
        use tenancy_testdb::unique_name;

        use super::{container_exists, create_container, pool, sqlx_pool, v1, Db, Lifecycle};

        #[tokio::test]
        async fn leftovers_drop_a_registry_with_its_tenants_and_the_containers_named() {
            let pool = pool().await;
            let registry = unique_name("lreg");
            let tenants: Tenants<Db> = Tenants::new(sqlx_pool(&pool), migrator(v1()))
                .unwrap()
                .with_registry(&registry)
                .unwrap();
            let a = tenants.create(unique_name("la")).await.unwrap();
            let b = tenants.create(unique_name("lb")).await.unwrap();
            let foreign = unique_name("lf");
            create_container(&pool, &foreign).await;
            // A tenant of another registry is not named: it stays.
            let other = Lifecycle::new(&pool, v1()).await;
            let kept = other.tenants.create(unique_name("lk")).await.unwrap();
            for name in [registry.as_str(), a.as_str(), b.as_str(), &foreign] {
                assert!(container_exists(&pool, name).await, "{name} was made");
            }

            drop(Leftovers::on(&pool).registry(&registry).container(&foreign));
            for name in [registry.as_str(), a.as_str(), b.as_str(), &foreign] {
                assert!(!container_exists(&pool, name).await, "{name} is left");
            }
            assert!(container_exists(&pool, kept.as_str()).await);
        }
    };
}
pub(crate) use behaviours;
