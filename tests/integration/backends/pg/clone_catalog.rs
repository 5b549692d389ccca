//! A clone on PostgreSQL drops its new schema's indexes, keys and foreign keys before it copies
//! the rows and makes them again after (and empties only the tables its migrations wrote). What
//! it ends with must be what `create` makes: the same indexes and constraints, by name and
//! definition, with the same flags (deferrable, validated, clustered, replica identity) and
//! comments, read from the catalog and compared with a freshly created tenant's.

use sqlx::migrate::MigrationType;
use sqlx::PgPool;
use tenancy::Tenant;

use crate::lifecycle_support::{migration, Lifecycle};

/// Every kind of index and constraint a migration makes: keys, a unique constraint, a partial,
/// an expression and a covering index, a deferrable foreign key, an exclusion constraint, a
/// check left `NOT VALID`, a clustered index, an index as replica identity, comments.
const SHAPES: &str = "CREATE TABLE guards (id bigserial PRIMARY KEY, badge text NOT NULL,
    name text NOT NULL, born date, CONSTRAINT guards_badge_key UNIQUE (badge));
CREATE UNIQUE INDEX guards_name_live ON guards (lower(name)) WHERE born IS NOT NULL;
CREATE INDEX guards_born ON guards (born DESC NULLS LAST) INCLUDE (name) WITH (fillfactor = 70);
CREATE TABLE shifts (id serial PRIMARY KEY,
    guard_id bigint NOT NULL REFERENCES guards (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    span box NOT NULL, EXCLUDE USING gist (span WITH &&));
ALTER TABLE shifts ADD CONSTRAINT shifts_small CHECK (id < 1000000) NOT VALID;
CREATE INDEX shifts_guard ON shifts (guard_id);
ALTER TABLE shifts CLUSTER ON shifts_guard;
ALTER TABLE guards REPLICA IDENTITY USING INDEX guards_badge_key;
COMMENT ON INDEX guards_born IS 'by birth';
COMMENT ON CONSTRAINT guards_badge_key ON guards IS 'one badge each';
INSERT INTO guards (badge, name) VALUES ('seed', 'Seed')";

/// `schema`'s indexes and constraints, the schema's name taken out of their text, sorted.
async fn catalog(pool: &PgPool, schema: &Tenant) -> Vec<String> {
    let sql = "SELECT 'index ' || i.relname || ': ' || replace(pg_get_indexdef(i.oid), $1, 'S') \
                 || ' clustered=' || x.indisclustered || ' replident=' || x.indisreplident \
                 || ' valid=' || x.indisvalid || ' comment=' || coalesce(obj_description(i.oid, 'pg_class'), '-') \
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
               JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = $1 \
             UNION ALL \
             SELECT 'constraint ' || c.conname || ' on ' || t.relname || ': ' || c.contype::text || ' ' \
                 || replace(pg_get_constraintdef(c.oid), $1, 'S') || ' deferrable=' || c.condeferrable \
                 || ' deferred=' || c.condeferred || ' validated=' || c.convalidated \
                 || ' index=' || coalesce(ci.relname, '-') \
                 || ' comment=' || coalesce(obj_description(c.oid, 'pg_constraint'), '-') \
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
               JOIN pg_namespace n ON n.oid = c.connamespace LEFT JOIN pg_class ci ON ci.oid = c.conindid \
               WHERE n.nspname = $1 \
             UNION ALL \
             SELECT 'table ' || t.relname || ': replident=' || t.relreplident::text \
               FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace \
               WHERE n.nspname = $1 AND t.relkind = 'r' \
             ORDER BY 1";
    sqlx::query_scalar(sql)
        .bind(schema.as_str())
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_clone_has_the_indexes_and_constraints_of_a_fresh_tenant() {
    let pool = crate::support::pool().await;
    let l = Lifecycle::new(&pool, vec![migration(1, MigrationType::Simple, SHAPES)]).await;
    let unique = tenancy_testdb::unique_name;
    let fresh = l.tenants.create(unique("fresh")).await.unwrap();
    let template = l.tenants.create(unique("tpl")).await.unwrap();
    let t = template.quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {t}.guards;
         INSERT INTO {t}.guards (badge, name, born)
             SELECT 'b' || i, 'guard ' || i, CASE WHEN i % 2 = 0 THEN date '2000-01-01' + i END
             FROM generate_series(1, 500) i;
         INSERT INTO {t}.shifts (guard_id, span)
             SELECT id, box(point(id, 0), point(id + 0.5, 1)) FROM {t}.guards"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let expected = catalog(&pool, &fresh).await;
    assert_eq!(expected.len(), 15, "{expected:#?}");
    assert_eq!(catalog(&pool, &template).await, expected);
    let cloned = l
        .tenants
        .clone_tenant(&template, unique("cl"))
        .await
        .unwrap();
    assert_eq!(catalog(&pool, &cloned).await, expected);
    // The rows are the template's (the migration's seed guard emptied out first), in order.
    let rows = |s: &Tenant| {
        format!(
            "SELECT count(*), count(DISTINCT badge), min(id), max(id), bool_or(badge = 'seed') \
             FROM {}.guards",
            s.quoted()
        )
    };
    let of = async |s: &Tenant| -> (i64, i64, i64, i64, bool) {
        sqlx::query_as(sqlx::AssertSqlSafe(rows(s)))
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(of(&cloned).await, of(&template).await);
    assert_eq!(of(&cloned).await.0, 500);
}
