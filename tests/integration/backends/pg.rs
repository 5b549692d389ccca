//! The shared behaviours on PostgreSQL: a schema per tenant (`DATABASE_URL` or a private
//! cluster). The PostgreSQL-only behaviours stay in the integration binary's other modules.

use tenancy::Tenant;

pub use crate::lifecycle_support::{has_column, has_table, v1, v2, Lifecycle, V1_GUARDS};
pub use crate::support::{
    pool, pool_with, raw_guards, Badge, Guard, RowGuard, RowNote, StoredGuard,
};

// The shared behaviours, one module per concern (the harness's whole point).
crate::backends::shared::mount!(all);

/// Promotes of tables the shared tier tests do not have.
mod promote_shapes;

/// A clone's indexes and constraints against a fresh tenant's.
mod clone_catalog;

pub type Db = sqlx::Postgres;
pub type Pool = sqlx::PgPool;

/// Whether a row-level tenant's drop or rename puts the placement guard on its container's
/// tables, so that a write through a `Tenant` resolved before it is refused (`NotPlaced`).
pub const GUARDS_ROWS: bool = true;
/// Create, migrate and rollback are transactions: a failing migration leaves nothing.
/// Whether `promote`/`demote` move tenants between tiers here (elsewhere they are refused).
pub const MOVES_TIERS: bool = true;
/// Whether an insert reads its row back in a statement of its own (no `RETURNING`): one for a
/// tenant's own container can then report `UnknownTenant` for a row a demote took along (see
/// README, "a tenant that outgrows the shared tables").
pub const INSERT_READS_BACK: bool = false;
/// Whether a promote copies, after its first pass, the rows inserted meanwhile (a step of its
/// progress of its own, `RelocatePhase::CatchingUp`).
pub const CATCHES_UP: bool = true;
pub const ATOMIC_DDL: bool = true;
pub const MAX_BIND_PARAMS: usize = <Db as tenancy::Backend>::MAX_BIND_PARAMS;
/// A schema that always exists.
/// The `db.system` of its statements' spans.
pub const DB_SYSTEM: &str = "postgresql";
pub const SERVER_CONTAINER: &str = "public";
/// A migration statement the server refuses.
pub const FAILING: &str = "CREATE TABLE broken (id nonsense_type)";
/// A migration that fails only in a tenant whose name starts with `bad` (the clone tests'
/// failure in the clone's own migrations).
pub const FAILS_WHERE_BAD: Option<&str> = Some(
    "DO $$ BEGIN IF current_schema() LIKE 'bad%' THEN RAISE EXCEPTION 'refused in %', current_schema(); END IF; END $$",
);
/// Adds the column v2 adds, with another type, so v2 fails in that tenant (`{t}`: the schema).
pub const ADD_BADGE_INT: &str = "ALTER TABLE {t}.guards ADD COLUMN badge int";

/// Fresh tenant schemas holding `guards` and `badges`, dropped at the end.
pub struct Fresh(crate::support::Tenants);

impl Fresh {
    pub async fn new(pool: &Pool, n: usize) -> Self {
        use tenancy_testdb::fixtures::POSTGRES;
        Fresh(crate::support::Tenants::with(pool, n, &[POSTGRES.guards, POSTGRES.badges]).await)
    }

    pub fn get(&self, i: usize) -> &Tenant {
        self.0.get(i)
    }
}

/// A transaction for statements on `tenant` (any tenant: statements name their container).
pub async fn begin(pool: &Pool, _tenant: &Tenant) -> sqlx::Transaction<'static, Db> {
    pool.begin().await.unwrap()
}

/// A plain connection of the pool, for statements on `tenant` (any tenant).
pub async fn acquire(pool: &Pool, _tenant: &Tenant) -> sqlx::pool::PoolConnection<Db> {
    pool.acquire().await.unwrap()
}

/// The sqlx pool a `Tenants` handle is built from.
pub fn sqlx_pool(pool: &Pool) -> Pool {
    pool.clone()
}

/// `tenant`'s schema, quoted.
pub fn q(tenant: &Tenant) -> String {
    tenant.quoted()
}

/// Runs `sql` with plain sqlx.
pub async fn exec(pool: &Pool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

/// Makes `registry`'s `row_tenants` as versions before drops went in steps made it: without the
/// `dropping` mark.
pub async fn forget_dropping(pool: &Pool, registry: &str) {
    let registry = Tenant::new(registry).unwrap().quoted();
    exec(
        pool,
        format!("ALTER TABLE {registry}.row_tenants DROP COLUMN dropping"),
    )
    .await;
}

/// How many rows of `container`'s `table` hold `tenant` in `tenant_id`, read with plain SQL.
pub async fn count_rows(pool: &Pool, container: &Tenant, table: &str, tenant: &Tenant) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM {}.{table} WHERE tenant_id = $1",
        Tenant::new(container.container()).unwrap().quoted()
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// How many user triggers the tables of `tenant`'s schema have.
pub async fn triggers_in(pool: &Pool, tenant: &Tenant) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_catalog.pg_trigger t \
         JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND NOT t.tgisinternal",
    )
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await
    .unwrap()
}

pub async fn container_exists(pool: &Pool, name: &str) -> bool {
    crate::lifecycle_support::schema_exists(pool, name).await
}

pub async fn container_names(pool: &Pool) -> Vec<String> {
    crate::support::schema_names(pool).await
}

/// A schema that is no tenant, holding table `keep`.
pub async fn create_container(pool: &Pool, name: &str) {
    exec(
        pool,
        format!("CREATE SCHEMA \"{name}\"; CREATE TABLE \"{name}\".keep (id int)"),
    )
    .await;
}

pub async fn drop_container(pool: &Pool, name: &str) {
    exec(pool, format!("DROP SCHEMA \"{name}\" CASCADE")).await;
}

/// A `migrate_all` run ends with its durable commit, recording how many tenants it migrated.
pub async fn assert_last_run_migrated(pool: &Pool, registry: &str, migrated: i64) {
    let recorded: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT tenants_migrated FROM \"{registry}\".last_migrate_run"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(recorded, migrated);
}

/// A shared model: one table in `public` for every tenant.
#[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "tenancy_test_plans", shared = "public")]
pub struct Plan {
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required)]
    pub name: String,
    pub seats: i32,
}

/// The shared table of `Plan` (kept between runs; each test uses names of its own).
pub const SHARED_PLANS_DDL: &[&str] = &["CREATE TABLE IF NOT EXISTS public.tenancy_test_plans \
     (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, seats integer NOT NULL)"];

/// Migration 2 of the clone tests: `assignments` (named to sort before the `guards` it
/// references), with an identity key and a generated column, and a seed guard.
pub const ASSIGNMENTS: &str = "CREATE TABLE assignments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guard_id bigint NOT NULL REFERENCES guards (id),
    body text NOT NULL,
    body_length bigint GENERATED ALWAYS AS (length(body)) STORED
);
INSERT INTO guards (name, position) VALUES ('Seed', 'Template')";

/// A tenant's `assignments` as (id, guard id, guard name, body, body length), read with plain
/// SQL.
pub async fn raw_assignments(pool: &Pool, tenant: &Tenant) -> Vec<(i64, i64, String, String, i64)> {
    let t = q(tenant);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT a.id, g.id, g.name, a.body, a.body_length FROM {t}.assignments a \
         JOIN {t}.guards g ON g.id = a.guard_id ORDER BY a.id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// How many rows of registry `registry` name `tenant` (its tenant row and its migrations).
pub async fn registry_rows(pool: &Pool, registry: &str, tenant: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM \"{registry}\".tenants WHERE name = $1) \
         + (SELECT count(*) FROM \"{registry}\".migrations WHERE tenant = $1)"
    )))
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Makes cloning `from` fail part-way: a table in its schema that no migration made (so
/// `to` has none), named to be copied last, with a row.
pub async fn copy_fault(pool: &Pool, _l: &Lifecycle, from: &Tenant, _to: &str) {
    let f = q(from);
    exec(
        pool,
        format!("CREATE TABLE {f}.zz_outside (id int); INSERT INTO {f}.zz_outside VALUES (1)"),
    )
    .await;
}

/// How many sessions wait for a lock the transaction open on `conn` holds (read on a
/// connection of its own): what a test polls to see a lifecycle operation waiting for that
/// transaction.
pub async fn waiting_on(conn: &mut sqlx::PgConnection) -> Option<i64> {
    waiting_on_at(&crate::support::database_url(), conn).await
}

/// [`waiting_on`], read on a connection of its own to the server of `url` (the test's pool may
/// be all taken by the operation and the transaction).
pub async fn waiting_on_at(url: &str, conn: &mut sqlx::PgConnection) -> Option<i64> {
    let mut watcher = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let waiting = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
    )
    .bind(pid)
    .fetch_one(&mut watcher)
    .await
    .unwrap();
    let _ = sqlx::Connection::close(watcher).await;
    Some(waiting)
}
