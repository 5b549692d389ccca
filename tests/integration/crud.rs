//! CRUD, PostgreSQL only: `insert_many` as one statement (counted by a statement-level
//! trigger) up to the largest batch that fits. The rest runs on every backend
//! (`backends/shared/crud.rs`, `insert_many.rs`). Both tests are
//! `#[tenancy::test(rollback)]`: a tenant migrated with `migrations/guards`, inside one
//! transaction that is rolled back.

use sqlx::PgConnection;
use tenancy::{Backend, Error, Tenant, TenantModel};

const MAX_BIND_PARAMS: usize = <sqlx::Postgres as Backend>::MAX_BIND_PARAMS;

use crate::assert_err;
use crate::support::Guard;

/// Counts the `INSERT` statements run on the tenant's `guards` (a statement-level trigger;
/// unqualified names are the tenant's in a rollback test).
async fn count_insert_statements(conn: &mut PgConnection) {
    let ddl = "CREATE TABLE insert_statements (n int NOT NULL);
         INSERT INTO insert_statements VALUES (0);
         CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE insert_statements SET n = n + 1; RETURN NULL; END $$;
         CREATE TRIGGER count_insert AFTER INSERT ON guards
             FOR EACH STATEMENT EXECUTE FUNCTION count_insert();";
    sqlx::raw_sql(ddl).execute(&mut *conn).await.unwrap();
}

/// How many `INSERT` statements ran on the tenant's `guards` so far.
async fn insert_statements(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT n FROM insert_statements")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tenancy::test(rollback, migrations = "tests/integration/migrations/guards")]
async fn insert_many_is_one_statement_in_order(a: Tenant, conn: &mut PgConnection) {
    count_insert_statements(conn).await;
    let names = ["Abu", "Bea", "Cai", "Dov"];
    let rows = Guard::insert_many(
        &mut *conn,
        &a,
        names.iter().map(|n| Guard::new(n, "Guard")).collect(),
    )
    .await
    .unwrap();
    assert_eq!(insert_statements(conn).await, 1);
    let got: Vec<_> = rows.iter().map(|r| (r.id, r.name.as_str())).collect();
    assert_eq!(got, [(1, "Abu"), (2, "Bea"), (3, "Cai"), (4, "Dov")]);
    assert!(Guard::insert_many(&mut *conn, &a, vec![])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(insert_statements(conn).await, 1, "nothing to insert");
}

#[tenancy::test(rollback, migrations = "tests/integration/migrations/guards")]
async fn insert_many_refuses_a_batch_over_the_parameter_limit_before_sending(
    a: Tenant,
    conn: &mut PgConnection,
) {
    // Guard binds 3 values per row.
    let max_rows = MAX_BIND_PARAMS / 3;
    let batch = vec![Guard::new("A", "B"); max_rows + 1];
    assert_err!(
        Guard::insert_many(&mut *conn, &a, batch).await,
        Error::BatchTooLarge { rows, max_rows: m, .. } if rows == max_rows + 1 && m == max_rows
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM guards")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // The largest batch that fits goes through in one statement (on MySQL, which sends a batch
    // row by row, the refusal alone runs: `backends/shared/insert_many.rs`).
    count_insert_statements(conn).await;
    let batch = vec![Guard::new("A", "B"); max_rows];
    assert_eq!(
        Guard::insert_many(&mut *conn, &a, batch)
            .await
            .unwrap()
            .len(),
        max_rows
    );
    assert_eq!(insert_statements(conn).await, 1);
}

/// The migrations folder these tests use holds the shared `guards` table as it stands in
/// `tenancy_testdb::fixtures` (a folder, because `#[tenancy::test]` reads one).
#[test]
fn the_guards_migration_folder_is_the_fixture() {
    let file = include_str!("migrations/guards/1_guards.sql");
    let statement: Vec<&str> = file.lines().filter(|l| !l.starts_with("--")).collect();
    assert_eq!(
        statement.join("\n").trim().trim_end_matches(';'),
        tenancy_testdb::fixtures::POSTGRES.guards
    );
}
