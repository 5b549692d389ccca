//! Tenant lifecycle, PostgreSQL only: the create hook runs in the create transaction. The rest
//! runs on every backend (`backends/shared/lifecycle.rs`).

use tenancy::Error;

use crate::assert_err;
use crate::lifecycle_support::{schema_exists, v1, Lifecycle};
use crate::support::{pool, raw_guards};

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

#[tokio::test]
async fn the_create_hook_runs_in_the_same_transaction() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let seeded = l
        .tenants
        .create_with(
            name("seeded"),
            Box::new(|conn, _tenant| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO guards (name, position) VALUES ('Seed', 'Guard')")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        raw_guards(&pool, &seeded).await,
        [("Seed".into(), "Guard".into())]
    );

    let n = name("hookfail");
    assert_err!(
        l.tenants
            .create_with(
                &n,
                Box::new(|_, _| Box::pin(async { Err("seed data missing".into()) }))
            )
            .await,
        Error::Hook { .. }
    );
    assert!(!schema_exists(&pool, &n).await);
    assert!(!l.tenants.exists(&n).await.unwrap());
}
