//! A row-level tenant's drop in steps on PostgreSQL: its batches delete from referencing
//! tables first (a foreign key `ON DELETE RESTRICT` between two of its tables does not stop
//! it), and a registry made before drops went in steps (no `row_tenants.dropping`) is
//! upgraded by the next handle opened on it. Read back with raw SQL.

use sqlx::migrate::MigrationType;
use sqlx::PgPool;
use tenancy::{DropOptions, Dropped, Tenant};

use crate::lifecycle_support::{migration, Lifecycle};

/// `guards` and `notes` referencing it, both with the tenant column; `notes` sorts after
/// `guards`, so deleting by name order would delete a referenced guard first.
const TABLES: &str = "CREATE TABLE guards (id bigint PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE notes (id bigint PRIMARY KEY, tenant_id text NOT NULL,
    guard_id bigint NOT NULL REFERENCES guards (id) ON DELETE RESTRICT)";

async fn exec(pool: &PgPool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

/// How many rows of `table` in `container` hold `tenant`.
async fn count(pool: &PgPool, container: &Tenant, table: &str, tenant: &Tenant) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM {}.{table} WHERE tenant_id = $1",
        container.quoted()
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A lifecycle with [`TABLES`], a container, and in it row-level `a` with 4 guards and a note
/// on each, and `b` with one guard and its note: `(lifecycle, container, a, b)`.
async fn seeded(pool: &PgPool) -> (Lifecycle, Tenant, Tenant, Tenant) {
    let l = Lifecycle::new(pool, vec![migration(1, MigrationType::Simple, TABLES)]).await;
    let db = &l.tenants;
    let container = db
        .create(tenancy_testdb::unique_name("rows"))
        .await
        .unwrap();
    let mut placed = Vec::new();
    for prefix in ["a", "b"] {
        let name = tenancy_testdb::unique_name(prefix);
        placed.push(db.create_in(name, &container).await.unwrap());
    }
    let [a, b]: [Tenant; 2] = placed.try_into().unwrap();
    let c = container.quoted();
    exec(
        pool,
        format!(
            "INSERT INTO {c}.guards SELECT i, CASE WHEN i < 5 THEN '{a}' ELSE '{b}' END FROM generate_series(1, 5) i;
             INSERT INTO {c}.notes SELECT id, tenant_id, id FROM {c}.guards"
        ),
    )
    .await;
    (l, container, a, b)
}

#[tokio::test]
async fn a_drop_in_batches_deletes_referencing_rows_first() {
    let pool = crate::support::pool().await;
    let (l, container, a, b) = seeded(&pool).await;
    let options = DropOptions::default().rows_per_batch(3);
    let dropped = l.tenants.drop_with(a.as_str(), options).await.unwrap();
    assert_eq!(dropped, Dropped::Rows { deleted: 8 });
    for table in ["guards", "notes"] {
        assert_eq!(count(&pool, &container, table, &a).await, 0, "{table}");
        assert_eq!(count(&pool, &container, table, &b).await, 1, "{table}");
    }
}

#[tokio::test]
async fn a_registry_from_before_drops_went_in_steps_is_upgraded_and_drops_in_them() {
    let pool = crate::support::pool().await;
    let (l, container, a, b) = seeded(&pool).await;
    // As the previous version made it: no mark.
    let registry = Tenant::new(l.registry.as_str()).unwrap().quoted();
    exec(
        &pool,
        format!("ALTER TABLE {registry}.row_tenants DROP COLUMN dropping"),
    )
    .await;

    let newer = l.with_migrations(&pool, vec![migration(1, MigrationType::Simple, TABLES)]);
    let dropped = newer
        .drop_with(a.as_str(), DropOptions::default().rows_per_batch(3))
        .await;
    assert_eq!(dropped.unwrap(), Dropped::Rows { deleted: 8 });
    assert_eq!(count(&pool, &container, "guards", &b).await, 1);
    assert!(!newer.exists(a.as_str()).await.unwrap());
    let marked: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT dropping FROM {registry}.row_tenants WHERE name = $1"
    )))
    .bind(b.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        !marked,
        "the tenants registered before are not being dropped"
    );
}
