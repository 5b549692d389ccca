//! Insert, find, update, partial update, delete, and their error cases.

use sqlx::types::time::OffsetDateTime;
use tenancy::{Changeset, Error, Record, State, TenantModel, MAX_BIND_PARAMS};

use crate::assert_err;
use crate::support::{pool, raw_guards, Guard, Tenants};

#[tokio::test]
async fn insert_returns_the_stored_row_with_generated_values() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    let g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    assert_eq!(g.id, 1);
    assert_eq!(g.state(), State::Loaded);
    assert_eq!(g.tenant(), a);
    assert!(g.inserted_at > sqlx::types::time::OffsetDateTime::UNIX_EPOCH);
    let second = Guard::new("Bea", "Guard").insert(&pool, a).await.unwrap();
    assert_eq!(second.id, 2);

    let found = Guard::find(&pool, a, 1).await.unwrap().unwrap();
    assert_eq!(found.value(), g.value());
    assert!(Guard::find(&pool, a, 99).await.unwrap().is_none());
}

#[tokio::test]
async fn a_built_record_inserts_into_its_own_tenant_only() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 2).await;
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
    // The largest batch that fits goes through in one statement.
    count_insert_statements(&pool, a).await;
    let batch = vec![Guard::new("A", "B"); max_rows];
    assert_eq!(
        Guard::insert_many(&pool, a, batch).await.unwrap().len(),
        max_rows
    );
    assert_eq!(insert_statements(&pool, a).await, 1);
}

#[tokio::test]
async fn update_writes_every_column_and_refreshes() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    let inserted_at = g.inserted_at;
    g.name = "Abu Bakr".into();
    g.age = Some(40);
    g.update(&pool, a).await.unwrap();
    let found = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
    assert_eq!(found.name, "Abu Bakr");
    assert_eq!(found.age, Some(40));
    assert_eq!(
        found.inserted_at, inserted_at,
        "generated columns are not written"
    );
}

#[tokio::test]
async fn a_changeset_writes_only_the_columns_it_sets() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    // Someone else renames the guard after we loaded it.
    let sql = format!("UPDATE {}.guards SET name = 'Renamed'", a.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();

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
}

#[tokio::test]
async fn a_changeset_cannot_set_the_key_or_generated_columns() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
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

#[tokio::test]
async fn delete_marks_the_record_and_refuses_reuse() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    let a = t.get(0);
    let mut g = Guard::new("Abu", "Guard").insert(&pool, a).await.unwrap();
    let mut stale = Guard::find(&pool, a, g.id).await.unwrap().unwrap();
    g.delete(&pool, a).await.unwrap();
    assert_eq!(g.state(), State::Deleted);
    assert_err!(g.update(&pool, a).await, Error::InvalidState { .. });
    assert_err!(g.delete(&pool, a).await, Error::InvalidState { .. });
    // A second copy of the deleted row finds it gone.
    assert_err!(stale.delete(&pool, a).await, Error::NotFound { .. });
    assert_err!(stale.update(&pool, a).await, Error::NotFound { .. });
}
