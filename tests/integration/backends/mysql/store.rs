//! The MySQL / MariaDB store through the public API (`Tenants<MySql>`): what the store's own
//! tests checked on its internals when they lived in `tenancy-core/src/mysql/store.rs`, each
//! checked here through the handle, with the registry (`<registry>.tenants`,
//! `<registry>.migrations`) and the tenants' databases read with plain SQL.
//!
//! The migrations are the store tests' own: version 1 makes `guards` and inserts one guard
//! (`Abu`: a rerun would insert a second), reversible only in [`v2`]; version 2 makes `posts`
//! with a foreign key into `guards` (a rename must keep both working).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, MigrationType};
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};
use tenancy::{Dropped, Error, Outcome, Tenant};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{migration, MYSQL};
use tenancy_testdb::unique_name;

use super::{container_exists, exec, pool, q, Lifecycle, Pool};

/// Version 1: the fixtures' `guards`, with one guard.
fn guards_with_abu() -> String {
    format!(
        "{}; INSERT INTO guards (name, position) VALUES ('Abu', 'Guard')",
        MYSQL.guards
    )
}

/// Version 2 makes a table, then fails (its first statement commits: DDL).
const HALF_FAILING: &str =
    "CREATE TABLE posts (id BIGINT PRIMARY KEY); SELECT * FROM no_such_table";

/// Version 1: `guards` with one guard (no down migration).
fn v1() -> Vec<Migration> {
    vec![migration(
        1,
        MigrationType::ReversibleUp,
        &guards_with_abu(),
    )]
}

/// Version 1 with its down migration, and version 2: `posts`, referring to `guards`.
fn v2() -> Vec<Migration> {
    let mut all = v1();
    all.push(migration(
        1,
        MigrationType::ReversibleDown,
        "DROP TABLE guards",
    ));
    all.push(migration(
        2,
        MigrationType::ReversibleUp,
        "CREATE TABLE posts (id BIGINT PRIMARY KEY, guard BIGINT NOT NULL, \
         FOREIGN KEY (guard) REFERENCES guards (id))",
    ));
    all.push(migration(
        2,
        MigrationType::ReversibleDown,
        "DROP TABLE posts",
    ));
    all
}

/// [`v1`], then `last` as version 2.
fn v1_then(last: &str) -> Vec<Migration> {
    let mut all = v1();
    all.push(migration(2, MigrationType::Simple, last));
    all
}

/// A fresh tenant name.
fn unique(prefix: &str) -> Tenant {
    Tenant::new(unique_name(prefix)).unwrap()
}

/// The names in `tenant`'s `guards`, by id.
async fn guard_names(pool: &Pool, tenant: &Tenant) -> Vec<String> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT name FROM {}.guards ORDER BY id",
        q(tenant)
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// `tenant`'s rows in the registry: its `migrations` rows as (version, success), and whether
/// its `tenants` row is there.
async fn registry_rows(pool: &Pool, registry: &str, tenant: &Tenant) -> (Vec<(i64, bool)>, bool) {
    let rows = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT version, success FROM `{registry}`.migrations WHERE tenant = ? ORDER BY version"
    )))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    let registered: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM `{registry}`.tenants WHERE name = ?"
    )))
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await
    .unwrap();
    (rows, registered == 1)
}

/// The MySQL error number of `err`'s database error, if any.
fn server_error(err: &Error) -> Option<u16> {
    err.as_sqlx()?
        .as_database_error()?
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(|e| e.number())
}

/// A user lock the test holds, which a migration (`wait_here`) waits for: the operation
/// running it stays in flight, on its own connection, holding its tenant's lock, until the
/// test lets it go or kills that connection.
struct Gate {
    name: String,
    holder: Option<MySqlConnection>,
}

impl Gate {
    async fn hold() -> Gate {
        let name = unique_name("gate");
        let mut holder = MySqlConnection::connect(&super::mysql_url()).await.unwrap();
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
            .bind(&name)
            .fetch_one(&mut holder)
            .await
            .unwrap();
        assert_eq!(got, Some(1));
        Gate {
            name,
            holder: Some(holder),
        }
    }

    /// A migration statement that waits for the gate.
    fn wait_here(&self) -> String {
        format!("SELECT GET_LOCK('{}', 600)", self.name)
    }

    /// The id of the connection waiting at the gate (waits up to a minute for one).
    async fn waiter(&self, pool: &Pool) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()",
            )
            .bind(&self.name)
            .fetch_optional(pool)
            .await
            .unwrap();
            if let Some(id) = found {
                return id;
            }
            assert!(Instant::now() < deadline, "nothing waits at {}", self.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the waiter go.
    async fn open(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.close().await.unwrap();
        }
    }
}

/// A create of a fresh tenant kept in flight: registered, its database made, version 1
/// applied, version 2 waiting at the gate on the create's own connection (`conn`), which holds
/// the tenant's lock.
struct InFlight {
    gate: Gate,
    l: Lifecycle,
    acme: Tenant,
    create: tokio::task::JoinHandle<Result<Tenant, Error>>,
    conn: i64,
}

impl InFlight {
    async fn start(pool: &Pool) -> InFlight {
        let gate = Gate::hold().await;
        let l = Lifecycle::new(pool, v1_then(&gate.wait_here())).await;
        let acme = unique("acme");
        let (tenants, name) = (l.tenants.clone(), acme.clone());
        let create = tokio::spawn(async move { tenants.create(name.as_str()).await });
        let conn = gate.waiter(pool).await;
        assert_eq!(
            registry_rows(pool, &l.registry, &acme).await,
            (vec![(1, true), (2, false)], true)
        );
        assert_eq!(guard_names(pool, &acme).await, ["Abu"]);
        InFlight {
            gate,
            l,
            acme,
            create,
            conn,
        }
    }

    /// Kills the create's connection: it fails at version 2.
    async fn kill(&mut self, pool: &Pool) {
        exec(pool, format!("KILL CONNECTION {}", self.conn)).await;
        let err = (&mut self.create).await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Migration { version: 2, .. }),
            "{err:?}"
        );
        self.gate.open().await;
    }
}

/// Was `compensation_elsewhere_removes_only_its_own_create` (its own row): a create whose
/// connection is killed part-way cannot undo itself on that connection; it is undone on a
/// fresh one, under the tenant's lock: the database and every registry row go.
#[tokio::test]
async fn a_killed_create_is_undone_on_a_fresh_connection() {
    let pool = pool().await;
    let mut in_flight = InFlight::start(&pool).await;
    in_flight.kill(&pool).await;
    let InFlight { l, acme, .. } = in_flight;

    assert!(!l.tenants.exists(acme.as_str()).await.unwrap());
    assert!(!container_exists(&pool, acme.as_str()).await);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], false)
    );
    // Nothing is left to block the name.
    l.with_migrations(&pool, v2())
        .create(acme.as_str())
        .await
        .unwrap();
}

/// Was `compensation_elsewhere_removes_only_its_own_create` (another create's row): the
/// undo on a fresh connection removes the tenant only while its registry row is the one that
/// create wrote. Here the row's timestamp is changed while the create is in flight, as a
/// drop and a later create of the name would change it: nothing is touched.
#[tokio::test]
async fn a_killed_create_leaves_a_registry_row_it_did_not_write() {
    let pool = pool().await;
    let mut in_flight = InFlight::start(&pool).await;
    let later = "1999-01-01 00:00:00.000000";
    exec(
        &pool,
        format!(
            "UPDATE `{}`.tenants SET created_at = '{later}' WHERE name = '{}'",
            in_flight.l.registry, in_flight.acme
        ),
    )
    .await;
    in_flight.kill(&pool).await;
    let InFlight { l, acme, .. } = in_flight;

    assert!(l.tenants.exists(acme.as_str()).await.unwrap());
    assert!(container_exists(&pool, acme.as_str()).await);
    assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, false)], true)
    );
    let created_at: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST(created_at AS CHAR) FROM `{}`.tenants WHERE name = ?",
        l.registry
    )))
    .bind(acme.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(created_at, later);
}

/// Was `create_list_exists_drop`.
#[tokio::test]
async fn create_list_exists_status_and_drop() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v2()).await;
    let t = &l.tenants;
    let (acme, beta) = (unique("acme"), unique("beta"));
    assert!(!t.exists(acme.as_str()).await.unwrap());
    assert!(t.list().await.unwrap().is_empty());
    t.create(beta.as_str()).await.unwrap();
    t.create(acme.as_str()).await.unwrap();
    assert!(t.exists(acme.as_str()).await.unwrap());
    assert_eq!(t.list().await.unwrap(), vec![acme.clone(), beta.clone()]);
    assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, true)], true)
    );
    let status = t.status_of(acme.as_str()).await.unwrap();
    assert_eq!((status.applied, status.pending), (vec![1, 2], vec![]));
    let all = t.status().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| s.applied == [1, 2]), "{all:?}");
    assert!(matches!(
        t.create(acme.as_str()).await,
        Err(Error::TenantExists { .. })
    ));

    assert_eq!(t.drop(acme.as_str()).await.unwrap(), Dropped::Schema);
    assert!(!t.exists(acme.as_str()).await.unwrap());
    assert!(!container_exists(&pool, acme.as_str()).await);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], false)
    );
    assert!(matches!(
        t.drop(acme.as_str()).await,
        Err(Error::NotATenant { .. })
    ));
    assert_eq!(t.list().await.unwrap(), vec![beta]);
}

/// Was `failing_second_migration_leaves_nothing`: the first statement of version 2 commits
/// (DDL), the second fails; create undoes it all.
#[tokio::test]
async fn a_create_whose_second_migration_fails_leaves_nothing() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1_then(HALF_FAILING)).await;
    let acme = unique("acme");
    let err = l.tenants.create(acme.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Migration { version: 2, tenant, .. } if *tenant == acme),
        "{err:?}"
    );
    assert_eq!(server_error(&err), Some(1146), "no such table: {err:?}");
    assert!(!container_exists(&pool, acme.as_str()).await);
    assert!(!l.tenants.exists(acme.as_str()).await.unwrap());
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], false)
    );
    // The name is free again.
    l.with_migrations(&pool, v1())
        .create(acme.as_str())
        .await
        .unwrap();
}

/// Was `create_refuses_an_unregistered_database`.
#[tokio::test]
async fn create_refuses_an_unregistered_database_and_leaves_it() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = unique("acme");
    let _foreign = Leftovers::on(&pool).container(acme.as_str());
    exec(&pool, format!("CREATE DATABASE {}", q(&acme))).await;
    let err = l.tenants.create(acme.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::ContainerExists { .. }), "{err:?}");
    // Left alone, and not registered.
    assert!(container_exists(&pool, acme.as_str()).await);
    assert!(!l.tenants.exists(acme.as_str()).await.unwrap());
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], false)
    );
}

/// Was `migrate_applies_new_migrations_and_rollback_reverts_them`.
#[tokio::test]
async fn migrate_applies_new_migrations_and_rollback_reverts_them() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = unique("acme");
    l.tenants.create(acme.as_str()).await.unwrap();
    let newer = l.with_migrations(&pool, v2());
    assert_eq!(
        newer.migrate(acme.as_str()).await.unwrap(),
        Outcome::Migrated(vec![2])
    );
    assert_eq!(
        newer.migrate(acme.as_str()).await.unwrap(),
        Outcome::UpToDate
    );
    exec(
        &pool,
        format!("INSERT INTO {}.posts VALUES (1, 1)", q(&acme)),
    )
    .await;
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, true)], true)
    );
    assert_eq!(
        newer.rollback(acme.as_str(), 0).await.unwrap(),
        Outcome::RolledBack(vec![2, 1])
    );
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], true)
    );
    assert!(!super::has_table(&pool, acme.as_str(), "guards").await);
    let status = newer.status_of(acme.as_str()).await.unwrap();
    assert_eq!((status.applied, status.pending), (vec![], vec![1, 2]));
    // No down migration for version 1 in v1(): nothing is run.
    newer.migrate(acme.as_str()).await.unwrap();
    let err = l.tenants.rollback(acme.as_str(), 0).await.unwrap_err();
    assert!(matches!(err, Error::Irreversible { .. }), "{err:?}");
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, true)], true)
    );
    let other = unique("other");
    assert!(matches!(
        newer.migrate(other.as_str()).await,
        Err(Error::NotATenant { .. })
    ));
}

/// Was `unfinished_migration_is_reported_dirty_not_rerun`.
#[tokio::test]
async fn an_unfinished_migration_is_reported_dirty_not_rerun() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = unique("acme");
    l.tenants.create(acme.as_str()).await.unwrap();
    // Version 2 creates a table, then fails: the table stays (DDL committed).
    let broken = l.with_migrations(&pool, v1_then(HALF_FAILING));
    let err = broken.migrate(acme.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::Migration { version: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, false)], true)
    );
    assert!(super::has_table(&pool, acme.as_str(), "posts").await);
    // Run again (even with a fixed migration): refused, nothing re-run.
    let fixed = l.with_migrations(&pool, v2());
    let err = fixed.migrate(acme.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Dirty { version: 2, tenant } if *tenant == acme),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("repair the tenant by hand"),
        "{err}"
    );
    let err = fixed.rollback(acme.as_str(), 0).await.unwrap_err();
    assert!(matches!(err, Error::Dirty { version: 2, .. }), "{err:?}");
    assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, false)], true)
    );
    // Status shows it as dirty, neither applied nor pending, from both queries.
    let one = fixed.status_of(acme.as_str()).await.unwrap();
    assert_eq!(
        (one.applied, one.pending, one.dirty),
        (vec![1], vec![], vec![2])
    );
    let all = fixed.status().await.unwrap();
    let mine = all.iter().find(|s| s.tenant == acme).unwrap();
    assert_eq!(mine.dirty, [2]);
    assert!(mine.pending.is_empty());
}

/// Was `a_false_success_row_is_dirty`: a `success = FALSE` row written behind the library's
/// back reads as a migration stopped part-way.
#[tokio::test]
async fn a_false_success_row_is_dirty() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v2()).await;
    let acme = unique("acme");
    l.tenants.create(acme.as_str()).await.unwrap();
    exec(
        &pool,
        format!(
            "UPDATE `{}`.migrations SET success = FALSE WHERE tenant = '{acme}' AND version = 1",
            l.registry
        ),
    )
    .await;
    let err = l.tenants.migrate(acme.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::Dirty { version: 1, .. }), "{err:?}");
}

/// Was `drop_of_a_database_already_gone_unregisters`.
#[tokio::test]
async fn drop_of_a_database_already_gone_unregisters() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let acme = unique("acme");
    l.tenants.create(acme.as_str()).await.unwrap();
    exec(&pool, format!("DROP DATABASE {}", q(&acme))).await;
    let err = l.tenants.migrate(acme.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::ContainerMissing { .. }), "{err:?}");
    assert_eq!(
        l.tenants.drop(acme.as_str()).await.unwrap(),
        Dropped::Unregistered
    );
    assert!(!l.tenants.exists(acme.as_str()).await.unwrap());
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![], false)
    );
}

/// Was `rename_moves_tables_data_and_history`.
#[tokio::test]
async fn rename_moves_tables_data_and_history() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v2()).await;
    let t = &l.tenants;
    let (old, new, taken) = (unique("old"), unique("new"), unique("taken"));
    t.create(old.as_str()).await.unwrap();
    t.create(taken.as_str()).await.unwrap();
    exec(
        &pool,
        format!("INSERT INTO {}.posts VALUES (7, 1)", q(&old)),
    )
    .await;
    assert!(matches!(
        t.rename(old.as_str(), taken.as_str()).await,
        Err(Error::TenantExists { .. })
    ));
    assert!(matches!(
        t.rename(old.as_str(), old.as_str()).await,
        Err(Error::SameName { .. })
    ));

    assert_eq!(t.rename(old.as_str(), new.as_str()).await.unwrap(), new);
    assert!(!container_exists(&pool, old.as_str()).await);
    assert!(!t.exists(old.as_str()).await.unwrap());
    assert!(t.exists(new.as_str()).await.unwrap());
    assert_eq!(guard_names(&pool, &new).await, ["Abu"]);
    let post: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT guard FROM {}.posts WHERE id = 7",
        q(&new)
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(post, 1);
    // The foreign key moved with its tables: it still refuses a post of no guard.
    let orphan = sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {}.posts VALUES (8, 99)",
        q(&new)
    )))
    .execute(&pool)
    .await;
    assert!(orphan.is_err(), "{orphan:?}");
    let status = t.status_of(new.as_str()).await.unwrap();
    assert_eq!(status.applied, [1, 2]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &old).await,
        (vec![], false)
    );
    assert_eq!(
        registry_rows(&pool, &l.registry, &new).await,
        (vec![(1, true), (2, true)], true)
    );
    // The history moved with it: rolling back works on the new name.
    assert_eq!(
        t.rollback(new.as_str(), 1).await.unwrap(),
        Outcome::RolledBack(vec![2])
    );
}

/// Was `concurrent_creates_of_one_name_exactly_one_succeeds`: version 1 inserts one guard,
/// so a second run of it would show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_name_exactly_one_succeeds() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v2()).await;
    // The registry made first, so its own lock does not stagger the creates below.
    let first = unique("first");
    l.tenants.create(first.as_str()).await.unwrap();
    let acme = unique("acme");
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (tenants, acme, start) = (l.tenants.clone(), acme.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            tenants.create(acme.as_str()).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::TenantExists { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, true)], true)
    );
}

/// Was `lock_timeout_names_the_holder`: the lock is held by another create of the name, in
/// flight on its own connection; a create on a handle with a short lock timeout gives up,
/// naming that connection, and leaves the other create alone (it finishes, untouched).
#[tokio::test]
async fn lock_timeout_names_the_holder() {
    let pool = pool().await;
    let InFlight {
        mut gate,
        l,
        acme,
        create: holder,
        conn: holder_id,
    } = InFlight::start(&pool).await;

    let impatient = l
        .with_migrations(&pool, v1())
        .with_lock_timeout(Duration::from_millis(200));
    let err = impatient.create(acme.as_str()).await.unwrap_err();
    match &err {
        Error::LockTimeout {
            tenant,
            waited,
            holders,
        } => {
            assert_eq!(tenant, &acme);
            assert_eq!(*waited, Duration::from_millis(200));
            let pids: Vec<i64> = holders.iter().map(|h| i64::from(h.pid)).collect();
            assert_eq!(pids, [holder_id], "{holders:?}");
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    // Nothing of the create in flight was touched: it finishes.
    assert!(container_exists(&pool, acme.as_str()).await);
    gate.open().await;
    holder.await.unwrap().unwrap();
    assert_eq!(guard_names(&pool, &acme).await, ["Abu"]);
    assert_eq!(
        registry_rows(&pool, &l.registry, &acme).await,
        (vec![(1, true), (2, true)], true)
    );
}
