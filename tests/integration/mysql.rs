//! The MySQL / MariaDB backend against a real server: `MYSQL_URL`, by default
//! `mysql://root@127.0.0.1:3306/test` (`.ci/run` starts MariaDB). Without a server these tests
//! fail, saying how to point them at one.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::types::time::OffsetDateTime;
use sqlx::MySql;
use tenancy::{Changeset, Dropped, Error, Outcome, Tenant, TenantModel, Tenants};

use crate::lifecycle_support::migration;

/// The `Guard` of the PostgreSQL tests, in a MySQL database per tenant.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "mysql")]
pub struct Guard {
    #[tenancy(id, generated)]
    pub id: u64,
    #[tenancy(required, length(max = 50))]
    pub name: String,
    #[tenancy(required)]
    pub position: String,
    #[tenancy(range(min = 16, max = 120))]
    pub age: Option<i32>,
    #[tenancy(generated)]
    pub inserted_at: OffsetDateTime,
}

impl Guard {
    fn new(name: &str, position: &str) -> Self {
        Guard {
            id: 0,
            name: name.into(),
            position: position.into(),
            age: None,
            inserted_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// A model whose key the application chooses.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges", backend = "mysql")]
pub struct Badge {
    #[tenancy(id)]
    pub code: String,
    pub holder: String,
}

const V1_GUARDS: &str = "CREATE TABLE guards (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    position VARCHAR(255) NOT NULL,
    age INT NULL,
    inserted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
CREATE TABLE badges (code VARCHAR(32) PRIMARY KEY, holder VARCHAR(255) NOT NULL UNIQUE)";
const V2_RANK_UP: &str = "ALTER TABLE guards ADD COLUMN `rank` VARCHAR(32) NULL";
const V2_RANK_DOWN: &str = "ALTER TABLE guards DROP COLUMN `rank`";

fn v1() -> Vec<Migration> {
    vec![migration(1, MigrationType::Simple, V1_GUARDS)]
}

fn v2() -> Vec<Migration> {
    let mut all = v1();
    all.push(migration(2, MigrationType::ReversibleUp, V2_RANK_UP));
    all.push(migration(2, MigrationType::ReversibleDown, V2_RANK_DOWN));
    all
}

/// `MYSQL_URL`, or the local MariaDB the README and `.ci/run` use.
pub fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

pub async fn mysql_pool() -> MySqlPool {
    let url = mysql_url();
    MySqlPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach MySQL/MariaDB at {url} ({e}): start one (`.ci/run` starts the \
                 machine's MariaDB) or point MYSQL_URL at a server where root may create databases"
            )
        })
}

/// A handle on a private registry, with every tenant it made dropped at the end.
struct Fixture {
    pool: MySqlPool,
    tenants: Tenants<MySql>,
    made: Vec<String>,
}

impl Fixture {
    async fn new(migrations: Vec<Migration>) -> Self {
        let pool = mysql_pool().await;
        let registry = tenancy_testdb::unique_name("myreg");
        let tenants = Tenants::new(pool.clone(), Migrator::with_migrations(migrations))
            .unwrap()
            .with_registry(&registry)
            .unwrap();
        Fixture {
            pool,
            tenants,
            made: vec![registry],
        }
    }

    /// A fresh tenant name, dropped at the end whatever happens to it.
    fn name(&mut self, prefix: &str) -> String {
        let name = tenancy_testdb::unique_name(prefix);
        self.made.push(name.clone());
        name
    }

    async fn tenant(&mut self, prefix: &str) -> Tenant {
        let name = self.name(prefix);
        self.tenants.create(&name).await.unwrap()
    }

    async fn databases(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT schema_name FROM information_schema.schemata")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    async fn cleanup(self) {
        for name in &self.made {
            let sql = format!("DROP DATABASE IF EXISTS `{name}`");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&self.pool)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn crud_round_trip_in_a_database_per_tenant() {
    let mut fx = Fixture::new(v1()).await;
    let acme = fx.tenant("acme").await;
    let pool = fx.pool.clone();

    let mut abu = Guard::new("Abu", "Guard")
        .insert(&pool, &acme)
        .await
        .unwrap();
    assert!(abu.id > 0, "the generated key is read back");
    assert!(
        abu.inserted_at > OffsetDateTime::UNIX_EPOCH,
        "defaults are read back"
    );
    let found = Guard::find(&pool, &acme, abu.id).await.unwrap().unwrap();
    assert_eq!(found.value(), abu.value());

    abu.position = "Captain".into();
    abu.update(&pool, &acme).await.unwrap();
    assert_eq!(abu.position, "Captain");
    abu.apply(&pool, &acme, Changeset::new().set(Guard::AGE, Some(40)))
        .await
        .unwrap();
    let found = Guard::find(&pool, &acme, abu.id).await.unwrap().unwrap();
    assert_eq!((found.position.as_str(), found.age), ("Captain", Some(40)));

    abu.delete(&pool, &acme).await.unwrap();
    assert!(Guard::find(&pool, &acme, abu.id).await.unwrap().is_none());
    fx.cleanup().await;
}

#[tokio::test]
async fn queries_filter_order_page_count_and_delete() {
    let mut fx = Fixture::new(v1()).await;
    let t = fx.tenant("q").await;
    let pool = fx.pool.clone();
    let names = ["a", "b", "c", "d", "e"];
    let guards = names.iter().map(|n| Guard::new(n, "Guard")).collect();
    let stored = Guard::insert_many(&pool, &t, guards).await.unwrap();
    let stored: Vec<&str> = stored.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(stored, names, "rows come back in the order given");

    let page = Guard::query(&t)
        .filter(Guard::NAME.is_in(["b", "c", "d", "e"]))
        .order_by(Guard::NAME.desc())
        .limit(2)
        .offset(1)
        .fetch_all(&pool)
        .await
        .unwrap();
    let page: Vec<&str> = page.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(page, ["d", "c"]);
    let skipped = Guard::query(&t)
        .order_by(Guard::NAME.asc())
        .offset(3)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(skipped.len(), 2, "an offset without a limit");
    assert_eq!(Guard::query(&t).limit(3).count(&pool).await.unwrap(), 3);

    let deleted = Guard::query(&t)
        .order_by(Guard::NAME.asc())
        .limit(2)
        .delete(&pool)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let left = Guard::query(&t)
        .order_by(Guard::NAME.asc())
        .fetch_all(&pool)
        .await
        .unwrap();
    let left: Vec<&str> = left.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(left, ["c", "d", "e"], "the first two by name were deleted");
    fx.cleanup().await;
}

#[tokio::test]
async fn insert_many_stores_all_rows_or_none() {
    let mut fx = Fixture::new(v1()).await;
    let t = fx.tenant("many").await;
    let pool = fx.pool.clone();
    let badge = |code: &str, holder: &str| Badge {
        code: code.into(),
        holder: holder.into(),
    };
    let stored = Badge::insert_many(&pool, &t, vec![badge("b1", "Abu"), badge("b2", "Iago")])
        .await
        .unwrap();
    assert_eq!(stored[1].code, "b2", "an application key reads back by key");
    // The third row breaks the unique holder: nothing of this batch may stay.
    let batch = vec![
        badge("b3", "Jafar"),
        badge("b4", "Rajah"),
        badge("b5", "Abu"),
    ];
    let err = Badge::insert_many(&pool, &t, batch).await.unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    let codes: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT code FROM `{t}`.badges ORDER BY code"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(codes, ["b1", "b2"]);

    // Inside the caller's transaction the batch is a savepoint: rolled back with it.
    let mut tx = pool.begin().await.unwrap();
    Badge::insert_many(&mut *tx, &t, vec![badge("b6", "Genie")])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(Badge::find(&pool, &t, "b6".to_owned())
        .await
        .unwrap()
        .is_none());
    fx.cleanup().await;
}

#[tokio::test]
async fn tenants_never_see_each_others_rows() {
    let mut fx = Fixture::new(v1()).await;
    let (a, b) = (fx.tenant("iso_a").await, fx.tenant("iso_b").await);
    let pool = fx.pool.clone();
    let in_a = Guard::new("Abu", "Guard").insert(&pool, &a).await.unwrap();
    assert!(Guard::find(&pool, &b, in_a.id).await.unwrap().is_none());
    assert_eq!(Guard::query(&b).count(&pool).await.unwrap(), 0);
    // A record of `a` cannot be written to `b`.
    let mut record = in_a.clone();
    let err = record.update(&pool, &b).await.unwrap_err();
    assert!(matches!(err, Error::TenantMismatch { .. }), "{err:?}");
    // A tenant that does not exist is a typed error naming it.
    let ghost = Tenant::new(fx.name("ghost")).unwrap();
    let err = Guard::find(&pool, &ghost, 1).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTenant { tenant, .. } if *tenant == ghost),
        "{err:?}"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn lifecycle_create_migrate_rename_drop() {
    let mut fx = Fixture::new(v1()).await;
    let name = fx.name("life");
    let tenant = fx.tenants.create(&name).await.unwrap();
    assert!(fx.tenants.exists(&name).await.unwrap());
    assert!(fx.tenants.list().await.unwrap().contains(&tenant));
    assert!(fx.databases().await.contains(&name));
    let err = fx.tenants.create(&name).await.unwrap_err();
    assert!(matches!(err, Error::TenantExists { .. }), "{err:?}");

    // A handle with one more migration finds the tenant behind and migrates it.
    let registry = fx.tenants.registry().as_str().to_owned();
    let newer = Tenants::new(fx.pool.clone(), Migrator::with_migrations(v2()))
        .unwrap()
        .with_registry(&registry)
        .unwrap();
    let report = newer.migrate_all(Default::default()).await.unwrap();
    assert!(report.is_success());
    let changed: Vec<&Tenant> = report.changed().map(|r| &r.tenant).collect();
    assert_eq!(changed, [&tenant]);
    assert_eq!(newer.migrate(&name).await.unwrap(), Outcome::UpToDate);
    assert_eq!(newer.status_of(&name).await.unwrap().applied, [1, 2]);

    let renamed = fx.name("life_renamed");
    Guard::new("Abu", "Guard")
        .insert(&fx.pool, &tenant)
        .await
        .unwrap();
    let new = newer.rename(&name, &renamed).await.unwrap();
    assert!(!newer.exists(&name).await.unwrap());
    assert_eq!(Guard::query(&new).count(&fx.pool).await.unwrap(), 1);
    assert_eq!(newer.drop(&renamed).await.unwrap(), Dropped::Schema);
    assert!(!fx.databases().await.contains(&renamed));
    fx.cleanup().await;
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_and_server_databases_are_refused() {
    let mut broken = v1();
    broken.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE nope ADD x INT",
    ));
    let mut fx = Fixture::new(broken).await;
    let name = fx.name("broken");
    let err = fx.tenants.create(&name).await.unwrap_err();
    assert!(
        matches!(&err, Error::Migration { version: 2, .. }),
        "{err:?}"
    );
    assert!(!fx.tenants.exists(&name).await.unwrap());
    assert!(!fx.databases().await.contains(&name), "compensated");
    for server in ["mysql", "sys", "performance_schema", "information_schema"] {
        let err = fx.tenants.create(server).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidTenantName(_)),
            "{server}: {err:?}"
        );
    }
    fx.cleanup().await;
}

#[tokio::test]
async fn a_query_across_tenants_and_a_fan_out_serve_mysql_too() {
    let mut fx = Fixture::new(v1()).await;
    let (a, b) = (fx.tenant("across_a").await, fx.tenant("across_b").await);
    let pool = fx.pool.clone();
    for (tenant, names) in [(&a, ["Abu", "Aladdin"]), (&b, ["Jafar", "Abis"])] {
        for name in names {
            Guard::new(name, "Guard")
                .insert(&pool, tenant)
                .await
                .unwrap();
        }
    }
    // `?` placeholders: each branch binds its own copy of the filter's value.
    let rows = Guard::query_across(&[a.clone(), b.clone()])
        .filter(Guard::NAME.like("A%"))
        .order_by(Guard::NAME.asc())
        .fetch_all(&pool)
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tenant().as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (a.as_str(), "Abu"),
            (a.as_str(), "Aladdin"),
            (b.as_str(), "Abis")
        ]
    );
    let counts = Guard::query_across(&[b.clone(), a.clone()])
        .count_by_tenant(&pool)
        .await
        .unwrap();
    assert_eq!(counts, [(b.clone(), 2), (a.clone(), 2)]);

    // A tenant without the table is named.
    let ghost = Tenant::new(fx.name("across_ghost")).unwrap();
    let err = Guard::query_across(&[a.clone(), ghost.clone()])
        .count(&pool)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTenant { tenant, .. } if *tenant == ghost),
        "{err:?}"
    );

    let report = fx
        .tenants
        .for_each(Default::default(), move |tenant| {
            let pool = pool.clone();
            async move { Guard::query(&tenant).count(&pool).await }
        })
        .await
        .unwrap();
    assert_eq!(report.tenants.len(), 2);
    assert!(report.succeeded().all(|(_, n)| *n == 2));
    fx.cleanup().await;
}
