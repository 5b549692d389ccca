//! Client connections cut mid-statement: a side connection terminates the library's own
//! connections (PostgreSQL `pg_terminate_backend`, MariaDB `KILL CONNECTION`; the victims are
//! the connections the library's pool opened, recorded by its `after_connect`) while they run a
//! statement, during create, migrate and CRUD. Every failure must be a `tenancy::Error`; a cut
//! must leave no partial state (PostgreSQL: none at all; MariaDB, whose DDL is not
//! transactional: what the backend documents, see the MariaDB tests); a rerun converges.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::migrate::MigrationType;
use tenancy::{Error, MigrateOptions, TenantModel};

use super::{assert_consistent, pg_consistency, pg_v1_slow, pg_victim_pool, tally, Victims};
use crate::lifecycle_support::{migration, v1, Lifecycle};
use crate::support::Guard;

const HANG: Duration = Duration::from_secs(240);

/// Cuts the victims' connections that are running a statement (or are inside a transaction)
/// every `every`, until stopped; counts the cuts.
struct Cutter {
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Cutter {
    fn pg(side: sqlx::PgPool, victims: Victims, every: Duration) -> Self {
        Self::pg_running(side, victims, "%", every)
    }

    /// As [`pg`](Self::pg), but only the victims whose current (or, idle in a transaction,
    /// last) statement is `LIKE` `pattern`.
    fn pg_running(
        side: sqlx::PgPool,
        victims: Victims,
        pattern: &'static str,
        every: Duration,
    ) -> Self {
        Self::start(every, move || {
            let (side, victims) = (side.clone(), victims.clone());
            async move {
                let ids: Vec<i32> = victims.ids().into_iter().map(|p| p as i32).collect();
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE pid = ANY($1) AND state <> 'idle' AND pid <> pg_backend_pid() \
                     AND query LIKE $2) AS t",
                )
                .bind(ids)
                .bind(pattern)
                .fetch_one(&side)
                .await
                .unwrap() as usize
            }
        })
    }

    /// On MariaDB the victims are the pool's connections and the connections the library opens
    /// on a tenant's database of its own (migrations run on one, with the tenant's database as
    /// its default): those whose database starts with `prefix`.
    fn mysql(side: sqlx::MySqlPool, victims: Victims, prefix: String, every: Duration) -> Self {
        Self::start(every, move || {
            let (side, victims, prefix) = (side.clone(), victims.clone(), prefix.clone());
            async move {
                let ids = victims.ids();
                let busy: Vec<(i64, Option<String>)> = sqlx::query_as(
                    "SELECT ID, DB FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep' \
                     AND ID <> CONNECTION_ID()",
                )
                .fetch_all(&side)
                .await
                .unwrap();
                let mut n = 0;
                let ours = |(id, db): &(i64, Option<String>)| {
                    ids.contains(&(*id as u64))
                        || db.as_ref().is_some_and(|d| d.starts_with(&prefix))
                };
                for (id, _) in busy.into_iter().filter(ours) {
                    let kill = format!("KILL CONNECTION {id}");
                    // Gone already: fine.
                    if sqlx::raw_sql(sqlx::AssertSqlSafe(kill))
                        .execute(&side)
                        .await
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            }
        })
    }

    fn start<F, Fut>(every: Duration, cut: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = usize> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (s, c) = (stop.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                c.fetch_add(cut().await, Ordering::SeqCst);
                tokio::time::sleep(every).await;
            }
        });
        Cutter { stop, cuts, task }
    }

    /// Stops cutting; the number of connections cut.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Whether `e` reports a cut connection: `Error::Database`, or `Error::Migration` (a create or
/// migrate redone a statement at a time names the migration whose statement was cut), whose
/// source is the server's "terminating connection" (PostgreSQL 57P01; MariaDB 1927
/// "Connection was killed", SQLSTATE 70100) or an I/O error of the closed socket.
fn is_cut(e: &Error) -> bool {
    let source = match e {
        Error::Database { source, .. } | Error::Migration { source, .. } => source,
        _ => return false,
    };
    match source.as_sqlx() {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57P01") | Some("70100"))
        }
        _ => false,
    }
}

fn url() -> String {
    crate::support::database_url()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_during_create_leave_no_tenant_and_a_rerun_creates_it() {
    let side = crate::support::pool_with(2).await;
    let (pool, victims) = pg_victim_pool(&url(), 4).await;
    // Each create runs 300 ms: every attempt (the batch, then the statement-at-a-time redo)
    // is cut.
    let l = Lifecycle::new(&pool, pg_v1_slow(0.3)).await;
    let prefix = tenancy_testdb::unique_name("cutc");
    let names: Vec<String> = (0..3).map(|i| format!("{prefix}_{i}")).collect();
    // The registry exists before the cuts (its creation could be cut too, leaving nothing to
    // check).
    assert!(l.tenants.list().await.unwrap().is_empty());
    let cutter = Cutter::pg(side.clone(), victims, Duration::from_millis(20));
    let mut errors = Vec::new();
    for name in &names {
        let result = tokio::time::timeout(HANG, l.tenants.create(name))
            .await
            .expect("create hangs");
        match result {
            Ok(t) => panic!("create of {t} succeeded through the cuts"),
            Err(e) => errors.push(e),
        }
    }
    let cuts = cutter.stop().await;
    assert!(cuts >= names.len(), "{cuts} cuts");
    eprintln!("{cuts} cuts; create failed with {:?}", tally(&errors));
    for e in &errors {
        assert!(is_cut(e), "a cut is reported as such: {e:?}");
    }
    let (state, problems) = pg_consistency(&side, &l.registry, &prefix, super::own_rows).await;
    assert_consistent(problems);
    assert!(state.is_empty(), "{state:?}");
    for name in &names {
        assert!(!l.tenants.exists(name).await.unwrap());
        let t = l.tenants.create(name).await.unwrap();
        Guard::new("g", name).insert(&pool, &t).await.unwrap();
    }
    let (state, problems) = pg_consistency(&side, &l.registry, &prefix, super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.len(), names.len());
}

/// Whether tenant `name` is one whose v2 runs long ([`v2_slow_in_odd`]): its name ends with
/// an odd digit.
fn slow(name: &str) -> bool {
    name.ends_with(['1', '3', '5', '7', '9'])
}

/// v1, then v2 adding `guards.badge`, which sleeps a second in the tenants [`slow`] names
/// (every attempt there is cut) and not at all in the others (which migrate between cuts).
fn v2_slow_in_odd() -> Vec<sqlx::migrate::Migration> {
    vec![
        migration(
            1,
            MigrationType::Simple,
            crate::lifecycle_support::V1_GUARDS,
        ),
        migration(
            2,
            MigrationType::Simple,
            "ALTER TABLE guards ADD COLUMN badge text; \
             SELECT pg_sleep(CASE WHEN right(current_schema(), 1) IN ('1', '3', '5', '7', '9') \
             THEN 1 ELSE 0 END); UPDATE guards SET badge = 'b'",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_during_migrate_all_leave_each_tenant_at_a_version_and_a_rerun_converges() {
    let side = crate::support::pool_with(2).await;
    let (pool, victims) = pg_victim_pool(&url(), 4).await;
    let l = Lifecycle::new(&pool, v1()).await;
    let prefix = tenancy_testdb::unique_name("cutm");
    for i in 0..12 {
        let t = l.tenants.create(format!("{prefix}_{i:02}")).await.unwrap();
        Guard::new("g", t.as_str()).insert(&pool, &t).await.unwrap();
    }
    let at_v2 = l.with_migrations(&pool, v2_slow_in_odd());
    // Every 150 ms, cut the connections running a tenant's migration (its statements hold the
    // `pg_sleep`); the run's own queries (which tenants are behind, the final commit) are left
    // alone, so the run returns a report.
    let cutter = Cutter::pg_running(
        side.clone(),
        victims,
        "%pg\\_sleep%",
        Duration::from_millis(150),
    );
    let report = tokio::time::timeout(
        HANG,
        at_v2.migrate_all(MigrateOptions::default().concurrency(4)),
    )
    .await
    .expect("migrate_all hangs")
    .expect("only migrations were cut: the run returns a report");
    let cuts = cutter.stop().await;
    let (state, problems) = pg_consistency(&side, &l.registry, &prefix, super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.len(), 12);
    let failed = tally(report.failed().map(|(_, e)| e));
    eprintln!(
        "{cuts} cuts; {} migrated, failed: {failed:?}",
        report.changed().count()
    );
    // The report says what is stored: migrated at v2, failed (by a cut) at v1.
    assert_eq!(report.tenants.len(), 12);
    for r in &report.tenants {
        let (name, applied) = (r.tenant.as_str(), &state[r.tenant.as_str()]);
        match &r.result {
            Ok(tenancy::Outcome::Migrated(v)) => {
                assert_eq!(v, &[2], "{name}");
                assert_eq!(applied, &[1, 2], "{name} is reported migrated");
            }
            Ok(other) => panic!("{name}: {other:?}"),
            Err(e) => {
                assert!(is_cut(e), "{name}: {e:?}");
                assert_eq!(applied, &[1], "{name} is reported failed");
            }
        }
        assert!(
            !slow(name) || r.result.is_err(),
            "{name}'s migration sleeps a second, yet it was not cut"
        );
    }
    assert!(
        report.changed().count() > 0,
        "no tenant migrated between the cuts"
    );
    let report = at_v2.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(report.is_success());
    assert_eq!(report.changed().count(), failed.values().sum::<usize>());
    let (state, problems) = pg_consistency(&side, &l.registry, &prefix, super::own_rows).await;
    assert_consistent(problems);
    assert!(state.values().all(|v| v == &[1, 2]));
}

/// What the CRUD workers saw: per tenant, the rows they tried to insert and those whose insert
/// (or transaction) was acknowledged, by their unique names; the transactions that failed
/// before their commit was sent (their row must not exist); the errors.
#[derive(Default)]
struct Seen {
    attempted: [Vec<String>; 2],
    acknowledged: [Vec<String>; 2],
    failed_before_commit: Vec<String>,
    errors: Vec<Error>,
}

impl Seen {
    /// Checks tenant `k`'s stored rows (by name): every acknowledged row is there, once; every
    /// row there was attempted; no row of a transaction that failed before its commit.
    #[track_caller]
    fn assert_stored(&self, k: usize, tenant: &tenancy::Tenant, stored: &[(String, String)]) {
        let names: Vec<&str> = stored.iter().map(|(name, _)| name.as_str()).collect();
        for name in &self.acknowledged[k] {
            let copies = names.iter().filter(|n| *n == name).count();
            assert_eq!(
                copies, 1,
                "{tenant}: acknowledged row {name} is stored {copies} times"
            );
        }
        for name in &names {
            assert!(
                self.attempted[k].iter().any(|a| a == name),
                "{tenant}: row {name} was never written there"
            );
        }
        for tag in &self.failed_before_commit {
            assert!(
                !names.contains(&tag.as_str()),
                "{tenant}: the row of {tag}, whose transaction was cut before its commit, exists"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_during_crud_fail_typed_and_write_nothing_elsewhere() {
    let side = crate::support::pool_with(2).await;
    let (pool, victims) = pg_victim_pool(&url(), 4).await;
    let l = Lifecycle::new(&pool, v1()).await;
    let prefix = tenancy_testdb::unique_name("cutd");
    let tenants = [
        l.tenants.create(format!("{prefix}_a")).await.unwrap(),
        l.tenants.create(format!("{prefix}_b")).await.unwrap(),
    ];
    let cutter = Cutter::pg(side.clone(), victims, Duration::from_millis(10));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (pool, tenants, seen) = (pool.clone(), tenants.clone(), seen.clone());
        workers.spawn(async move {
            for i in 0..30 {
                let k = (w + i) % 2;
                let t = &tenants[k];
                let mut s = Default::default();
                let step = async {
                    // Plain CRUD through the pool.
                    let plain = format!("plain{w}_{i}");
                    seen.lock().unwrap().attempted[k].push(plain.clone());
                    let mut g = Guard::new(&plain, t.as_str()).insert(&pool, t).await?;
                    seen.lock().unwrap().acknowledged[k].push(plain);
                    g.age = Some(30);
                    g.update(&pool, t).await?;
                    Guard::find(&pool, t, g.id).await?;
                    Guard::query(t).count(&pool).await?;
                    // A transaction that takes 20 ms before its commit.
                    let tag = format!("tx{w}_{i}");
                    seen.lock().unwrap().attempted[k].push(tag.clone());
                    s = tag.clone();
                    let mut tx = pool.begin().await?;
                    Guard::new(&tag, t.as_str()).insert(&mut tx, t).await?;
                    sqlx::query("SELECT pg_sleep(0.02)")
                        .execute(&mut *tx)
                        .await?;
                    s = String::new();
                    tx.commit().await?;
                    seen.lock().unwrap().acknowledged[k].push(tag);
                    Ok::<_, Error>(())
                };
                if let Err(e) = step.await {
                    let mut seen = seen.lock().unwrap();
                    if !s.is_empty() {
                        seen.failed_before_commit.push(s);
                    }
                    seen.errors.push(e);
                }
            }
        });
    }
    crate::faults::join_all(&mut workers, HANG, "CRUD hangs").await;
    let cuts = cutter.stop().await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!seen.errors.is_empty(), "{cuts} cuts hit no statement");
    eprintln!(
        "{cuts} cuts; CRUD errors: {:?}; {} transactions cut before their commit",
        tally(&seen.errors),
        seen.failed_before_commit.len()
    );
    for e in &seen.errors {
        assert!(is_cut(e), "{e:?}");
    }
    let (_, problems) = pg_consistency(&side, &l.registry, &prefix, super::own_rows).await;
    assert_consistent(problems);
    assert!(
        !seen.failed_before_commit.is_empty(),
        "no transaction was cut before its commit"
    );
    for (k, t) in tenants.iter().enumerate() {
        seen.assert_stored(k, t, &crate::support::raw_guards(&side, t).await);
    }
    // The pool recovers: new connections serve both tenants.
    for t in &tenants {
        Guard::new("after", t.as_str())
            .insert(&pool, t)
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB: the library's connections killed with `KILL CONNECTION` (the server is shared: it
// is never restarted by these tests).

mod mariadb {
    use super::*;
    use crate::backends::mysql as my;

    /// A MariaDB pool of `n` connections whose connection ids go to the returned [`Victims`].
    async fn victim_pool(n: u32) -> (sqlx::MySqlPool, Victims) {
        let victims = Victims::default();
        let v = victims.clone();
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(n)
            .after_connect(move |conn, _| {
                let v = v.clone();
                Box::pin(async move {
                    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                        .fetch_one(&mut *conn)
                        .await?;
                    v.0.lock().unwrap().insert(id);
                    Ok(())
                })
            })
            .connect(&my::mysql_url())
            .await
            .unwrap();
        (pool, victims)
    }

    fn quote(name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// MariaDB's consistency: registered tenants and databases starting with `prefix` agree;
    /// each tenant's successful versions are `1..=k` with `guards` present iff 1 is applied
    /// and `guards.badge` iff 2 is, unless the tenant has a migration marked unfinished
    /// (`success = FALSE`: the documented state after a migration cut part-way, which
    /// `migrate` then refuses with `Error::Dirty`); rows carry their tenant's name. Returns the
    /// tenants with their successful versions and whether they are dirty.
    async fn consistency(
        pool: &sqlx::MySqlPool,
        registry: &str,
        prefix: &str,
    ) -> (
        std::collections::BTreeMap<String, (Vec<i64>, bool)>,
        super::super::Problems,
    ) {
        let mut problems = Vec::new();
        let registered: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM {}.tenants ORDER BY name",
            quote(registry)
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        let databases: Vec<String> = sqlx::query_scalar(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE CONCAT($1, '%')"
                .replace("$1", "?")
                .as_str()
                .to_owned()
                .leak() as &'static str,
        )
        .bind(prefix)
        .fetch_all(pool)
        .await
        .unwrap();
        let mut out = std::collections::BTreeMap::new();
        for name in &registered {
            if !databases.contains(name) {
                problems.push(format!("tenant {name} is registered but has no database"));
                continue;
            }
            let rows: Vec<(i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT version, success FROM {}.migrations WHERE tenant = ? ORDER BY version",
                quote(registry)
            )))
            .bind(name)
            .fetch_all(pool)
            .await
            .unwrap();
            let dirty = rows.iter().any(|r| !r.1);
            let applied: Vec<i64> = rows.iter().filter(|r| r.1).map(|r| r.0).collect();
            let expected: Vec<i64> = (1..=applied.len() as i64).collect();
            if applied != expected {
                problems.push(format!("tenant {name}: applied versions {applied:?}"));
            }
            let guards = my::has_table(pool, name, "guards").await;
            let badge = my::has_column(pool, name, "guards", "badge").await;
            if !dirty && (guards != applied.contains(&1) || badge != applied.contains(&2)) {
                problems.push(format!(
                    "tenant {name}: applied {applied:?} but guards {guards}, badge {badge}"
                ));
            }
            if guards {
                let owners: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT DISTINCT position FROM {}.guards",
                    quote(name)
                )))
                .fetch_all(pool)
                .await
                .unwrap();
                for owner in owners.iter().filter(|o| *o != name) {
                    problems.push(format!("tenant {name} holds a row of {owner}"));
                }
            }
            out.insert(name.clone(), (applied, dirty));
        }
        for db in &databases {
            if !registered.contains(db) {
                problems.push(format!("database {db} is left over: no tenant"));
            }
        }
        (out, problems)
    }

    fn v1_slow() -> Vec<sqlx::migrate::Migration> {
        vec![migration(
            1,
            MigrationType::Simple,
            &format!("{}; DO SLEEP(0.3)", my::V1_GUARDS),
        )]
    }

    /// v1, then v2 adding `guards.badge` after sleeping a second in the tenants [`slow`]
    /// names (killed during the sleep, after v2's `success = FALSE` row is written: dirty)
    /// and not at all in the others.
    fn v2_slow_in_odd() -> Vec<sqlx::migrate::Migration> {
        let mut all = my::v1();
        all.push(migration(
            2,
            MigrationType::Simple,
            "DO SLEEP(IF(RIGHT(DATABASE(), 1) IN ('1', '3', '5', '7', '9'), 1, 0)); \
             ALTER TABLE guards ADD COLUMN badge VARCHAR(32) NULL",
        ));
        all
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_connections_during_create_leave_no_tenant_on_mariadb() {
        let side = my::pool_with(2).await;
        let (pool, victims) = victim_pool(4).await;
        let l = my::Lifecycle::new(&pool, v1_slow()).await;
        let prefix = tenancy_testdb::unique_name("mcutc");
        let names: Vec<String> = (0..3).map(|i| format!("{prefix}_{i}")).collect();
        assert!(l.tenants.list().await.unwrap().is_empty());
        let cutter = Cutter::mysql(
            side.clone(),
            victims,
            prefix.clone(),
            Duration::from_millis(20),
        );
        let mut errors = Vec::new();
        for name in &names {
            match tokio::time::timeout(HANG, l.tenants.create(name))
                .await
                .expect("create hangs")
            {
                Ok(t) => panic!("create of {t} succeeded through the kills"),
                Err(e) => errors.push(e),
            }
        }
        let cuts = cutter.stop().await;
        assert!(cuts >= names.len(), "{cuts} kills");
        eprintln!("{cuts} kills; create failed with {:?}", tally(&errors));
        for e in &errors {
            assert!(is_cut(e), "a kill is reported as such: {e:?}");
        }
        // A create compensates on its own connection; when that connection is the one killed,
        // it compensates on a fresh one (under the tenant's lock, if the registry row is still
        // its own): nothing is left registered, no database remains, and the names are free.
        let (state, problems) = consistency(&side, &l.registry, &prefix).await;
        assert_consistent(problems);
        assert!(state.is_empty(), "left behind: {state:?}");
        assert!(l.tenants.list().await.unwrap().is_empty());
        for name in &names {
            let t = l.tenants.create(name).await.unwrap();
            my::Guard::new("g", name).insert(&pool, &t).await.unwrap();
        }
        let (state, problems) = consistency(&side, &l.registry, &prefix).await;
        assert_consistent(problems);
        assert_eq!(state.len(), names.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_connections_during_migrate_all_on_mariadb_leave_known_states() {
        let side = my::pool_with(2).await;
        let (pool, _) = victim_pool(4).await;
        let l = my::Lifecycle::new(&pool, my::v1()).await;
        let prefix = tenancy_testdb::unique_name("mcutm");
        for i in 0..8 {
            let t = l.tenants.create(format!("{prefix}_{i}")).await.unwrap();
            my::Guard::new("g", t.as_str())
                .insert(&pool, &t)
                .await
                .unwrap();
        }
        let at_v2 = l.with_migrations(&pool, v2_slow_in_odd());
        // Tenant 0's migration is made to wait before anything of v2 runs: a transaction of the
        // test holds tenant 0's registry rows, and the gap after them, `FOR UPDATE`, so v2's
        // `success = FALSE` row cannot be written. It is killed while it waits.
        let blocked = format!("{prefix}_0");
        let mut holder = side.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM {}.migrations WHERE tenant = ? FOR UPDATE",
            quote(&l.registry)
        )))
        .bind(&blocked)
        .fetch_all(&mut *holder)
        .await
        .unwrap();
        // The victims: connections working in a tenant's database (a migration after its
        // `USE`), not the pool's: the run's own reads of the registry are left alone, so the
        // run returns a report.
        let cutter = Cutter::mysql(
            side.clone(),
            Victims::default(),
            prefix.clone(),
            Duration::from_millis(150),
        );
        let report = tokio::time::timeout(
            HANG,
            at_v2.migrate_all(MigrateOptions::default().concurrency(4)),
        )
        .await
        .expect("migrate_all hangs")
        .expect("only migrations were killed: the run returns a report");
        let cuts = cutter.stop().await;
        holder.rollback().await.unwrap();
        let (state, problems) = consistency(&side, &l.registry, &prefix).await;
        assert_consistent(problems);
        assert_eq!(state.len(), 8);
        eprintln!(
            "{cuts} kills; {} migrated, failed: {:?}; after: {} clean at v1, {} dirty",
            report.changed().count(),
            tally(report.failed().map(|(_, e)| e)),
            state.values().filter(|(v, d)| !d && v == &[1]).count(),
            state.values().filter(|(_, d)| *d).count(),
        );
        // The report says what is stored: migrated at v2; failed (by a kill) at v1, clean or
        // dirty (v2's `success = FALSE` row: the server cannot undo DDL half-run).
        assert_eq!(report.tenants.len(), 8);
        for r in &report.tenants {
            let name = r.tenant.as_str();
            let (applied, dirty) = &state[name];
            match &r.result {
                Ok(tenancy::Outcome::Migrated(v)) => {
                    assert_eq!(v, &[2], "{name}");
                    assert_eq!((applied, *dirty), (&vec![1, 2], false), "{name} migrated");
                }
                Ok(other) => panic!("{name}: {other:?}"),
                Err(e) => {
                    assert!(is_cut(e), "{name}: {e:?}");
                    assert_eq!(applied, &[1], "{name} failed");
                }
            }
            assert!(
                !slow(name) || r.result.is_err(),
                "{name}'s migration sleeps a second, yet it was not killed"
            );
        }
        // Not vacuous: each of the three outcomes occurred.
        assert!(report.changed().count() > 0, "no tenant migrated");
        assert!(
            state.values().any(|(_, dirty)| *dirty),
            "no tenant was left dirty"
        );
        assert_eq!(
            state[&blocked],
            (vec![1], false),
            "{blocked}, killed while it waited, is clean at v1"
        );
        // A rerun migrates the clean tenants still at v1, reports those at v2 up to date (or
        // leaves them out) and refuses the dirty ones with Error::Dirty.
        let rerun = at_v2.migrate_all(MigrateOptions::default()).await.unwrap();
        for (name, (applied, dirty)) in &state {
            let result = rerun
                .tenants
                .iter()
                .find(|r| r.tenant.as_str() == name)
                .map(|r| &r.result);
            match (result, *dirty, applied.len()) {
                (Some(Err(Error::Dirty { .. })), true, _) => {}
                (Some(Ok(tenancy::Outcome::Migrated(v))), false, 1) if v == &[2] => {}
                (Some(Ok(tenancy::Outcome::UpToDate)) | None, false, 2) => {}
                (result, dirty, _) => {
                    panic!("{name} (applied {applied:?}, dirty {dirty}): the rerun gave {result:?}")
                }
            }
        }
        let (after, problems) = consistency(&side, &l.registry, &prefix).await;
        assert_consistent(problems);
        for (name, (applied, dirty)) in &after {
            assert_eq!(*dirty, state[name].1, "{name}");
            assert!(*dirty || applied == &[1, 2], "{name}: {applied:?}");
        }
        assert_eq!(
            after[&blocked],
            (vec![1, 2], false),
            "the rerun migrated {blocked}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_connections_during_crud_on_mariadb_fail_typed_and_write_nothing_elsewhere() {
        let side = my::pool_with(2).await;
        let (pool, victims) = victim_pool(4).await;
        let l = my::Lifecycle::new(&pool, my::v1()).await;
        let prefix = tenancy_testdb::unique_name("mcutd");
        let tenants = [
            l.tenants.create(format!("{prefix}_a")).await.unwrap(),
            l.tenants.create(format!("{prefix}_b")).await.unwrap(),
        ];
        let cutter = Cutter::mysql(
            side.clone(),
            victims,
            prefix.clone(),
            Duration::from_millis(10),
        );
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (pool, tenants, seen) = (pool.clone(), tenants.clone(), seen.clone());
            workers.spawn(async move {
                for i in 0..30 {
                    let k = (w + i) % 2;
                    let t = &tenants[k];
                    let mut s = Default::default();
                    let step = async {
                        let plain = format!("plain{w}_{i}");
                        seen.lock().unwrap().attempted[k].push(plain.clone());
                        let mut g = my::Guard::new(&plain, t.as_str()).insert(&pool, t).await?;
                        seen.lock().unwrap().acknowledged[k].push(plain);
                        g.age = Some(30);
                        g.update(&pool, t).await?;
                        my::Guard::find(&pool, t, g.id).await?;
                        my::Guard::query(t).count(&pool).await?;
                        // A transaction that takes 20 ms before its commit.
                        let tag = format!("tx{w}_{i}");
                        seen.lock().unwrap().attempted[k].push(tag.clone());
                        s = tag.clone();
                        let mut tx = pool.begin().await?;
                        my::Guard::new(&tag, t.as_str()).insert(&mut tx, t).await?;
                        sqlx::query("DO SLEEP(0.02)").execute(&mut *tx).await?;
                        s = String::new();
                        tx.commit().await?;
                        seen.lock().unwrap().acknowledged[k].push(tag);
                        Ok::<_, Error>(())
                    };
                    if let Err(e) = step.await {
                        let mut seen = seen.lock().unwrap();
                        if !s.is_empty() {
                            seen.failed_before_commit.push(s);
                        }
                        seen.errors.push(e);
                    }
                }
            });
        }
        crate::faults::join_all(&mut workers, HANG, "CRUD hangs").await;
        let cuts = cutter.stop().await;
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        assert!(!seen.errors.is_empty(), "{cuts} kills hit no statement");
        eprintln!(
            "{cuts} kills; CRUD errors: {:?}; {} transactions killed before their commit",
            tally(&seen.errors),
            seen.failed_before_commit.len()
        );
        for e in &seen.errors {
            assert!(is_cut(e), "{e:?}");
        }
        let (_, problems) = consistency(&side, &l.registry, &prefix).await;
        assert_consistent(problems);
        // Every acknowledged row is stored, once; none that was not written; no row of a
        // transaction killed before its commit.
        assert!(
            !seen.failed_before_commit.is_empty(),
            "no transaction was killed before its commit"
        );
        for (k, t) in tenants.iter().enumerate() {
            seen.assert_stored(k, t, &my::raw_guards(&side, t).await);
        }
        for t in &tenants {
            my::Guard::new("after", t.as_str())
                .insert(&pool, t)
                .await
                .unwrap();
        }
    }
}
