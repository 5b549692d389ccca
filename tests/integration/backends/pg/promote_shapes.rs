//! A promote on PostgreSQL of tables the shared tier tests do not have: a foreign key between
//! two moved tables, a column of the container's own enum type, a table without a primary key,
//! and a user trigger that must not fire again on the rows moved (as in a clone). Read back with
//! raw SQL, bypassing the library.

use sqlx::migrate::MigrationType;
use sqlx::PgPool;
use tenancy::Tenant;

use crate::lifecycle_support::{migration, Lifecycle};

const SHAPES: &str = "CREATE TYPE mood AS ENUM ('calm', 'angry');
CREATE TABLE guards (id bigserial PRIMARY KEY, tenant_id text NOT NULL DEFAULT '',
    name text NOT NULL, mood mood NOT NULL DEFAULT 'calm');
CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id text NOT NULL DEFAULT '',
    guard_id bigint NOT NULL REFERENCES guards (id) ON DELETE RESTRICT, body text NOT NULL);
CREATE TABLE log (tenant_id text NOT NULL DEFAULT '', line text NOT NULL);
CREATE FUNCTION log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %I.log (tenant_id, line) VALUES ($1, $2)', TG_TABLE_SCHEMA)
        USING NEW.tenant_id, 'guard ' || NEW.name;
    RETURN NEW;
END $$;
CREATE TRIGGER log_guard AFTER INSERT ON guards FOR EACH ROW EXECUTE FUNCTION log_guard()";

async fn exec(pool: &PgPool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

/// Each table of `schema` as (tenant, text of the row), sorted: what is stored there.
async fn stored(pool: &PgPool, schema: &Tenant) -> Vec<(String, String)> {
    let s = schema.quoted();
    let sql = format!(
        "SELECT tenant_id, 'guard ' || name || ' ' || mood::text FROM {s}.guards
         UNION ALL SELECT n.tenant_id, 'note ' || n.body || ' on ' || g.name
             FROM {s}.notes n JOIN {s}.guards g ON g.id = n.guard_id
         UNION ALL SELECT tenant_id, 'log ' || line FROM {s}.log
         ORDER BY 1, 2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
}

fn rows(tenant: &Tenant, lines: &[&str]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| (tenant.as_str().to_owned(), (*l).to_owned()))
        .collect()
}

/// A container made by `l` and row-level tenants in it, one per prefix of `names`.
async fn container_with(l: &Lifecycle, names: &[&str]) -> (Tenant, Vec<Tenant>) {
    let unique = tenancy_testdb::unique_name;
    let container = l.tenants.create(unique("free")).await.unwrap();
    let mut tenants = Vec::new();
    for name in names {
        tenants.push(l.tenants.create_in(unique(name), &container).await.unwrap());
    }
    (container, tenants)
}

#[tokio::test]
async fn a_promote_moves_related_rows_enums_and_keyless_tables_and_fires_no_trigger_again() {
    let pool = crate::support::pool().await;
    let l = Lifecycle::new(&pool, vec![migration(1, MigrationType::Simple, SHAPES)]).await;
    let (container, tenants) = container_with(&l, &["a", "b"]).await;
    let (a, b) = (&tenants[0], &tenants[1]);
    let c = container.quoted();
    exec(
        &pool,
        format!(
            "INSERT INTO {c}.guards (tenant_id, name, mood) VALUES
                 ('{a}', 'Abu', 'angry'), ('{a}', 'Bea', 'calm'), ('{b}', 'Cai', 'calm');
             INSERT INTO {c}.notes (tenant_id, guard_id, body)
                 SELECT tenant_id, id, 'hello' FROM {c}.guards WHERE name = 'Abu'"
        ),
    )
    .await;
    let a_rows = rows(
        a,
        &[
            "guard Abu angry",
            "guard Bea calm",
            "log guard Abu",
            "log guard Bea",
            "note hello on Abu",
        ],
    );
    let b_rows = rows(b, &["guard Cai calm", "log guard Cai"]);

    let moved = l.tenants.promote(a.as_str()).await.unwrap();
    assert_eq!(moved.rows, 5, "2 guards, 1 note, 2 log lines");
    assert_eq!(
        stored(&pool, &moved.tenant).await,
        a_rows,
        "its rows, the trigger not fired again"
    );
    assert_eq!(
        stored(&pool, &container).await,
        b_rows,
        "b's rows alone stay"
    );

    // Back: the shared tables' own trigger fires on the rows a demote inserts (they serve
    // other tenants meanwhile), so only the guards and the note are compared here.
    let back = l.tenants.demote(a.as_str(), &container).await.unwrap();
    assert_eq!(back.rows, 5);
    let mut both = a_rows;
    both.extend(b_rows);
    let not_log = |r: &(String, String)| !r.1.starts_with("log ");
    both.retain(not_log);
    both.sort();
    let mut now = stored(&pool, &container).await;
    now.retain(not_log);
    assert_eq!(now, both);
}

#[tokio::test]
async fn a_promote_whose_deletes_would_cascade_into_rows_that_stay_is_refused_whole() {
    let pool = crate::support::pool().await;
    // `stats` has no tenant column, so its rows stay; deleting a moved guard would delete them.
    let keys = "CREATE TABLE guards (id bigserial PRIMARY KEY, tenant_id text NOT NULL DEFAULT '',
        name text NOT NULL);
    CREATE TABLE stats (guard_id bigint NOT NULL REFERENCES guards (id) ON DELETE CASCADE,
        shifts int NOT NULL)";
    let l = Lifecycle::new(&pool, vec![migration(1, MigrationType::Simple, keys)]).await;
    let (container, tenants) = container_with(&l, &["a"]).await;
    let a = &tenants[0];
    let c = container.quoted();
    exec(
        &pool,
        format!(
            "INSERT INTO {c}.guards (tenant_id, name) VALUES ('{a}', 'Abu');
             INSERT INTO {c}.stats SELECT id, 3 FROM {c}.guards"
        ),
    )
    .await;
    let refused = l.tenants.promote(a.as_str()).await;
    match &refused {
        Err(tenancy::Error::Unsupported {
            operation: "promote",
            reason,
        }) => {
            assert!(reason.contains("stats_guard_id_fkey"), "{reason}");
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    let count = |table: &str| {
        let sql = format!("SELECT count(*) FROM {c}.{table}");
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        (count("guards").await, count("stats").await),
        (1, 1),
        "nothing moved or lost"
    );
    let still = l.tenants.tenant(a.as_str()).await.unwrap();
    assert_eq!(
        still.container(),
        container.as_str(),
        "still a row-level tenant of it"
    );
}
