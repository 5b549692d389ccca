//! CRUD, PostgreSQL only: `insert_many` as one statement (counted by a statement-level
//! trigger) up to the largest batch that fits. The rest runs on every backend
//! (`backends/shared/crud.rs`, `insert_many.rs`).

use tenancy::{Error, TenantModel, MAX_BIND_PARAMS};

use crate::assert_err;
use crate::support::{pool, raw_guards, Guard, Tenants};

/// Counts the `INSERT` statements run on `tenant`'s `guards` (a statement-level trigger).
async fn count_insert_statements(pool: &sqlx::PgPool, tenant: &tenancy::Tenant) {
    let q = tenant.quoted();
    let ddl = format!(
        "CREATE TABLE {q}.insert_statements (n int NOT NULL);
         INSERT INTO {q}.insert_statements VALUES (0);
         CREATE FUNCTION {q}.count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE {q}.insert_statements SET n = n + 1; RETURN NULL; END $$;
         CREATE TRIGGER count_insert AFTER INSERT ON {q}.guards
             FOR EACH STATEMENT EXECUTE FUNCTION {q}.count_insert();"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(pool)
        .await
        .unwrap();
}

/// How many `INSERT` statements ran on `tenant`'s `guards` so far.
async fn insert_statements(pool: &sqlx::PgPool, tenant: &tenancy::Tenant) -> i32 {
    let sql = format!("SELECT n FROM {}.insert_statements", tenant.quoted());
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn insert_many_is_one_statement_in_order() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    count_insert_statements(&pool, a).await;
    let names = ["Abu", "Bea", "Cai", "Dov"];
    let rows = Guard::insert_many(
        &pool,
        a,
        names.iter().map(|n| Guard::new(n, "Guard")).collect(),
    )
    .await
    .unwrap();
    assert_eq!(insert_statements(&pool, a).await, 1);
    let got: Vec<_> = rows.iter().map(|r| (r.id, r.name.as_str())).collect();
    assert_eq!(got, [(1, "Abu"), (2, "Bea"), (3, "Cai"), (4, "Dov")]);
    assert!(Guard::insert_many(&pool, a, vec![])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(insert_statements(&pool, a).await, 1, "nothing to insert");
}

#[tokio::test]
async fn insert_many_refuses_a_batch_over_the_parameter_limit_before_sending() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    // Guard binds 3 values per row.
    let max_rows = MAX_BIND_PARAMS / 3;
    let batch = vec![Guard::new("A", "B"); max_rows + 1];
    assert_err!(
        Guard::insert_many(&pool, a, batch).await,
        Error::BatchTooLarge { rows, max_rows: m, .. } if rows == max_rows + 1 && m == max_rows
    );
    assert_eq!(raw_guards(&pool, a).await, vec![]);
    // The largest batch that fits goes through in one statement (on MySQL, which sends a batch
    // row by row, the refusal alone runs: `backends/shared/insert_many.rs`).
    count_insert_statements(&pool, a).await;
    let batch = vec![Guard::new("A", "B"); max_rows];
    assert_eq!(
        Guard::insert_many(&pool, a, batch).await.unwrap().len(),
        max_rows
    );
    assert_eq!(insert_statements(&pool, a).await, 1);
}
