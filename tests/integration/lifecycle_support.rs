//! Fixtures for the PostgreSQL lifecycle tests: the standard migrations (`tenancy_testdb::fixtures`),
//! and a `Tenants` handle with a private registry so tests never see each other's tenants.

use sqlx::migrate::Migration;
use sqlx::postgres::PgPool;
use tenancy::{Tenant, Tenants};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::POSTGRES;

pub use tenancy_testdb::fixtures::{migration, migrator};

pub const V1_GUARDS: &str = POSTGRES.guards;
pub const V2_BADGE_UP: &str = POSTGRES.badge_up;

pub fn v1() -> Vec<Migration> {
    POSTGRES.v1()
}

pub fn v2() -> Vec<Migration> {
    POSTGRES.v2()
}

/// A `Tenants` handle on a private registry; every tenant it created and the registry are
/// dropped when the fixture is dropped.
pub struct Lifecycle {
    pub tenants: Tenants,
    pub registry: String,
    _cleanup: Leftovers,
}

impl Lifecycle {
    pub async fn new(pool: &PgPool, migrations: Vec<Migration>) -> Self {
        let registry = tenancy_testdb::unique_name("reg");
        let tenants = Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&registry)
            .unwrap();
        Lifecycle {
            tenants,
            _cleanup: Leftovers::on(pool).registry(&registry),
            registry,
        }
    }

    /// A fixture for `tenants` on `registry`, cleaned up on the test database (`DATABASE_URL`),
    /// e.g. for a handle whose pool goes through PgBouncer.
    pub fn on_test_database(tenants: Tenants, registry: String) -> Self {
        Lifecycle {
            tenants,
            _cleanup: Leftovers::postgres(&crate::support::database_url()).registry(&registry),
            registry,
        }
    }

    /// Another handle on the same registry with other migrations (a newer build of the app).
    pub fn with_migrations(&self, pool: &PgPool, migrations: Vec<Migration>) -> Tenants {
        Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&self.registry)
            .unwrap()
    }
}

/// A private registry with `n` tenants created at v1, sorted by name.
pub async fn tenants_at_v1(pool: &PgPool, n: usize) -> (Lifecycle, Vec<Tenant>) {
    let l = Lifecycle::new(pool, v1()).await;
    let mut created = Vec::new();
    for i in 0..n {
        created.push(
            l.tenants
                .create(tenancy_testdb::unique_name(&format!("m{i}")))
                .await
                .unwrap(),
        );
    }
    created.sort();
    (l, created)
}

/// A private registry with one tenant created at v1.
pub async fn tenant_at_v1(pool: &PgPool) -> (Lifecycle, Tenant) {
    let (l, mut created) = tenants_at_v1(pool, 1).await;
    (l, created.remove(0))
}

/// Whether table `table` exists in schema `schema`.
pub async fn has_table(pool: &PgPool, schema: &str, table: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Whether column `column` exists on `schema.table`.
pub async fn has_column(pool: &PgPool, schema: &str, table: &str, column: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)",
    )
    .bind(schema)
    .bind(table)
    .bind(column)
    .fetch_one(pool)
    .await
    .unwrap()
}

pub async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A session-level advisory lock held by the test on its own connection, which a migration can
/// wait for (`SELECT pg_advisory_xact_lock(<key>)`) to stay in flight until the test lets it go.
pub struct HeldLock {
    conn: Option<sqlx::PgConnection>,
    pub key: i64,
}

impl HeldLock {
    pub async fn take() -> Self {
        use sqlx::Connection;
        let key = tenancy_testdb::unique_lock_key();
        let mut conn = sqlx::PgConnection::connect(&crate::support::database_url())
            .await
            .unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut conn)
            .await
            .unwrap();
        HeldLock {
            conn: Some(conn),
            key,
        }
    }

    /// How many sessions wait for the lock.
    pub async fn waiters(&self, pool: &PgPool) -> i64 {
        sqlx::query_scalar(tenancy_testdb::ADVISORY_LOCK_WAITERS)
            .bind(self.key)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Waits (up to a minute, then panics) until a session waits for the lock.
    pub async fn wait_for_a_waiter(&self, pool: &PgPool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.waiters(pool).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing ever waited for lock {}",
                self.key
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Lets the waiters go (closes the session holding the lock).
    pub async fn release(&mut self) {
        use sqlx::Connection;
        if let Some(conn) = self.conn.take() {
            conn.close().await.unwrap();
        }
    }
}
