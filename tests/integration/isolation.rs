//! Tenant isolation, PostgreSQL only: a session's `search_path` and what a connection carries to
//! its next borrower. The rest runs on every backend (`backends/shared/isolation.rs`).

use sqlx::PgPool;
use tenancy::{Changeset, TenantModel};

use crate::support::{pool_with, Guard, Tenants};

#[tokio::test]
async fn a_session_search_path_does_not_redirect_crud() {
    // One connection, deliberately left pointing at tenant b, as a leaky pool would leave it.
    let pool = pool_with(1).await;
    let t = Tenants::new(&pool, 2).await;
    let (a, b) = (t.get(0), t.get(1));
    let set = format!("SET search_path TO {}", b.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
        .execute(&pool)
        .await
        .unwrap();

    let abu = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    assert_eq!(Guard::query(a).count(&pool).await.unwrap(), 1);
    assert_eq!(Guard::query(b).count(&pool).await.unwrap(), 0);
    let unqualified: i64 = sqlx::query_scalar("SELECT count(*) FROM guards")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        unqualified, 0,
        "the row must not land in the search_path's schema"
    );
    assert!(Guard::find(&pool, b, abu.id).await.unwrap().is_none());
}

/// What a pooled connection could carry to its next borrower: the backend's pid (the same
/// connection?), every setting not from the server's configuration, whether a transaction is open, temporary tables, channels listened to,
/// advisory locks held.
async fn session_state(pool: &PgPool) -> ((i32, String, i64, i64, i64), bool) {
    let state = sqlx::query_as(
        "SELECT pg_backend_pid(),
            (SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
             WHERE source NOT IN ('default', 'override', 'configuration file', 'environment variable')),
            (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
            (SELECT count(*) FROM pg_listening_channels()),
            (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // Two statements in one open transaction see the same now().
    let mut nows = Vec::new();
    for _ in 0..2 {
        let now: sqlx::types::time::OffsetDateTime = sqlx::query_scalar("SELECT now()")
            .fetch_one(pool)
            .await
            .unwrap();
        nows.push(now);
    }
    (state, nows[0] == nows[1])
}

#[tokio::test]
async fn crud_leaves_no_session_state_on_the_connection() {
    // One connection: whatever CRUD leaves on it, the next borrower gets.
    let pool = pool_with(1).await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    let before = session_state(&pool).await;
    assert!(!before.1, "no transaction is open");
    let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    Guard::insert_many(&pool, a, vec![Guard::new("Bea", "Guard")])
        .await
        .unwrap();
    g.update(&pool, a).await.unwrap();
    g.apply(&pool, a, Changeset::new().set(Guard::POSITION, "Captain"))
        .await
        .unwrap();
    Guard::find(&pool, a, g.id).await.unwrap().unwrap();
    Guard::query(a)
        .filter(Guard::NAME.eq("Abu"))
        .fetch_all(&pool)
        .await
        .unwrap();
    Guard::query(a).count(&pool).await.unwrap();
    Guard::query(a)
        .filter(Guard::NAME.eq("Bea"))
        .delete(&pool)
        .await
        .unwrap();
    g.delete(&pool, a).await.unwrap();
    assert_eq!(session_state(&pool).await, before);
}
