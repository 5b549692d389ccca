//! A fleet over two MariaDB (MySQL) servers: the test server and a private one this test
//! starts. Placement, routing, rename, drop, clone, migrations and reconcile, every check
//! reading each server's stored data directly; a move is refused with nothing changed.

use sqlx::migrate::Migration;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use tenancy::{Error, Fleet, Lifecycle, MigrateOptions, TenantModel, Tenants};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::migrator;
use tenancy_testdb::mysql::MysqlServer;
use tenancy_testdb::unique_name;

use super::{container_exists, mysql_url, q, v1, v2, Db, Guard};
use crate::assert_err;

/// The home (the test server) and a second, private server, each with a handle on one
/// registry name.
struct Two {
    home: MySqlPool,
    other: MySqlPool,
    registry: String,
    _server: MysqlServer,
    _cleanup: Leftovers,
}

async fn connect(url: &str) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

impl Two {
    async fn start() -> Self {
        let server =
            tokio::task::spawn_blocking(|| MysqlServer::start().unwrap_or_else(|e| panic!("{e}")))
                .await
                .unwrap();
        let home = mysql_url();
        let registry = unique_name("fleet");
        Two {
            home: connect(&home).await,
            other: connect(server.url()).await,
            _cleanup: Leftovers::mysql(&home).registry(&registry),
            registry,
            _server: server,
        }
    }

    fn handle(&self, pool: &MySqlPool, migrations: Vec<Migration>) -> Tenants<Db> {
        Tenants::new(pool.clone(), migrator(migrations))
            .unwrap()
            .with_registry(&self.registry)
            .unwrap()
    }

    async fn fleet(&self, migrations: Vec<Migration>) -> Fleet<Db> {
        Fleet::new([
            ("home", self.handle(&self.home, migrations.clone())),
            ("other", self.handle(&self.other, migrations)),
        ])
        .await
        .unwrap()
    }

    /// The names in database `db`'s guards on each server, sorted: (home, other).
    async fn stored(&self, db: &str) -> (Vec<String>, Vec<String>) {
        (
            names_in(&self.home, db).await,
            names_in(&self.other, db).await,
        )
    }
}

/// The names in `db`.guards on `pool`'s server, sorted; empty if there is no such database.
async fn names_in(pool: &MySqlPool, db: &str) -> Vec<String> {
    if !container_exists(pool, db).await {
        return Vec::new();
    }
    let tenant = tenancy::Tenant::new(db).unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM {}.guards ORDER BY name",
        q(&tenant)
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn one(name: &str) -> Vec<String> {
    vec![name.to_owned()]
}

#[tokio::test]
async fn a_fleet_of_two_mariadb_servers_places_routes_and_reconciles_every_tenant() {
    let two = Two::start().await;
    let fleet = two.fleet(v1()).await;
    let (x, y, z) = (unique_name("x"), unique_name("y"), unique_name("z"));
    let tx = fleet.create(&x).await.unwrap();
    let ty = fleet.create(&y).await.unwrap();
    let tz = fleet.create_on(&z, "other").await.unwrap();
    // The fewest first: x at home, then y on the other; z where it was asked.
    assert_eq!(fleet.database_of(&x).await.unwrap(), "home");
    assert_eq!(fleet.database_of(&y).await.unwrap(), "other");
    assert_eq!(fleet.database_of(&z).await.unwrap(), "other");
    for (t, who) in [(&tx, "Xena"), (&ty, "Yann"), (&tz, "Zoe")] {
        Guard::new(who, "Guard").insert(&fleet, t).await.unwrap();
    }
    assert_eq!(two.stored(&x).await, (one("Xena"), vec![]));
    assert_eq!(two.stored(&y).await, (vec![], one("Yann")));
    assert_eq!(two.stored(&z).await, (vec![], one("Zoe")));
    let read = Guard::query(&ty).fetch_all(&fleet).await.unwrap();
    assert_eq!(
        read.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Yann"]
    );
    assert_eq!(fleet.list_on("home").await.unwrap(), vec![tx.clone()]);
    assert_err!(fleet.create(&y).await, Error::TenantExists { .. });

    // Rename, drop and clone act on the tenant's database and the map.
    let w = unique_name("w");
    fleet.rename(&z, &w).await.unwrap();
    assert_eq!(two.stored(&w).await, (vec![], one("Zoe")));
    assert_eq!(two.stored(&z).await, (vec![], vec![]));
    assert_eq!(fleet.database_of(&w).await.unwrap(), "other");
    assert_err!(fleet.database_of(&z).await, Error::NotATenant { .. });
    fleet.drop_tenant(&y).await.unwrap();
    assert_eq!(two.stored(&y).await, (vec![], vec![]));
    assert_err!(
        Guard::query(&ty).count(&fleet).await,
        Error::UnknownTenant { .. }
    );
    let c = unique_name("c");
    fleet.clone_tenant(&w, &c).await.unwrap();
    assert_eq!(two.stored(&c).await, (vec![], one("Zoe")));

    // A move is refused before anything is copied.
    match fleet.move_tenant(&x, "other").await {
        Err(Error::Unsupported { reason, .. }) => {
            assert!(reason.contains("PostgreSQL only"), "{reason}")
        }
        other => panic!("a move on MySQL: {other:?}"),
    }
    assert_eq!(two.stored(&x).await, (one("Xena"), vec![]));
    assert!(!container_exists(&two.other, &x).await);
    assert_eq!(fleet.database_of(&x).await.unwrap(), "home");

    // A tenant made through one server's own handle is adopted; a second copy of a mapped
    // tenant (what a process that stopped part-way could leave) is dropped, the mapped one
    // kept whole.
    let a = unique_name("a");
    two.handle(&two.other, v1()).create(&a).await.unwrap();
    two.handle(&two.other, v1()).create(&x).await.unwrap();
    let again = two.fleet(v1()).await;
    assert_eq!(again.database_of(&a).await.unwrap(), "other");
    assert_eq!(two.stored(&x).await, (one("Xena"), vec![]));
    assert!(!container_exists(&two.other, &x).await);

    // Migrations run on both servers.
    let newer = two.fleet(v2()).await;
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(report.failed().count(), 0);
    let status = newer.status().await.unwrap();
    assert_eq!(status.len(), 4, "{status:?}");
    assert!(status.iter().all(|s| s.applied == [1, 2]), "{status:?}");
    drop(tx);
}
