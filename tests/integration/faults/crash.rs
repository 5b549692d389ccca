//! The server crashes (`pg_ctl stop -m immediate`, then start: every server process killed at
//! once, the write-ahead log replayed) in the middle of `migrate_all` over 500 tenants, of
//! `migrate` of one tenant, of a batch of creates, and of renames; on a private cluster each
//! test owns. Every test checks the state right after the crash and again after a rerun, which
//! must converge.
//!
//! The library's pool runs with `synchronous_commit = on` (the private clusters run with it
//! off): an acknowledged create or rename must then survive the crash. Migrations commit
//! without waiting for the disk and a run's last commit flushes them, so a `migrate_all` or
//! `migrate` across a restart must fail with `Error::ServerRestarted` rather than report
//! tenants migrated whose commit the crash may have lost.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenancy::{Error, MigrateOptions, Outcome, TenantModel, Tenants};
use tenancy_testdb::Cluster;

use super::{
    assert_consistent, pg_consistency, pg_v1_slow, pg_v2, pg_victim_pool, private_cluster, tally,
};
use crate::lifecycle_support::{migrator, v1};
use crate::support::Guard;

/// The hang detector's limit: far above any normal run, only there so a deadlock fails.
const HANG: Duration = Duration::from_secs(240);

async fn crash(cluster: &Arc<Cluster>) {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart_immediate().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap();
}

/// Runs `f(i)` for `i` in `0..n` on `workers` tasks.
async fn parallel<T, F, Fut>(n: usize, workers: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new((0..n).map(|_| None).collect::<Vec<Option<T>>>()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (f, next, out) = (f.clone(), next.clone(), out.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let value = f(i).await;
                out.lock().unwrap()[i] = Some(value);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let mut out = out.lock().unwrap();
    out.iter_mut().map(|v| v.take().unwrap()).collect()
}

/// How many of the server's backends other than this one are running a `pg_sleep` (a
/// migration of `pg_v2` in flight).
async fn sleeping(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE '%pg\\_sleep%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A run's result, for messages: the error, or what the report holds.
fn outcome(result: &Result<tenancy::Report, Error>) -> String {
    match result {
        Ok(report) => format!(
            "a report: {} migrated, failed {:?}",
            report.changed().count(),
            tally(report.failed().map(|(_, e)| e))
        ),
        Err(e) => format!("Err({}: {e})", super::kind(e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_migrate_all_over_500_tenants_converges() {
    const TENANTS: usize = 500;
    let cluster = private_cluster().await;
    let (pool, _) = pg_victim_pool(&cluster.tcp_url(), 8).await;
    let at_v1 = Tenants::new(pool.clone(), migrator(v1())).unwrap();
    let (p, t) = (pool.clone(), at_v1.clone());
    parallel(TENANTS, 8, move |i| {
        let (pool, tenants) = (p.clone(), t.clone());
        async move {
            let tenant = tenants.create(format!("m{i:03}")).await.unwrap();
            Guard::new("g", tenant.as_str())
                .insert(&pool, &tenant)
                .await
                .unwrap();
        }
    })
    .await;

    // v2 takes 20 ms per tenant, 4 at a time; the server crashes once 40 tenants are done, with
    // the next ones in flight (how many were seen running their `pg_sleep` is printed).
    let at_v2 = Tenants::new(pool.clone(), migrator(pg_v2(0.02))).unwrap();
    let go = Arc::new(tokio::sync::Notify::new());
    let signal = go.clone();
    let run = tokio::spawn(async move {
        let options = MigrateOptions::default()
            .concurrency(4)
            .on_progress(move |p| {
                if p.done == 40 {
                    signal.notify_one();
                }
            });
        at_v2.migrate_all(options).await
    });
    go.notified().await;
    let in_flight = sleeping(&pool).await;
    crash(&cluster).await;
    let result = tokio::time::timeout(HANG, run)
        .await
        .expect("migrate_all hangs after the crash")
        .unwrap();

    let (state, problems) = pg_consistency(&pool, "_tenancy", "", super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.len(), TENANTS, "every tenant survives the crash");
    let at_2 = state.values().filter(|v| v.len() == 2).count();
    eprintln!(
        "{in_flight} migrations in flight at the crash; migrate_all: {}; after the crash: \
         {at_2} of {TENANTS} tenants at v2, the rest at v1",
        outcome(&result)
    );
    // The server restarted mid-run (the error says so: the run read another start time at its
    // end than at its beginning): no report (it could name as migrated tenants whose commit
    // the crash lost), the typed error instead.
    assert!(
        matches!(
            result,
            Err(Error::ServerRestarted {
                operation: "migrate_all"
            })
        ),
        "a run across a restart must fail with ServerRestarted, not {}",
        outcome(&result)
    );

    // A rerun converges: it migrates exactly the tenants still at v1, and then every tenant
    // is at v2.
    let again = Tenants::new(pool.clone(), migrator(pg_v2(0.02))).unwrap();
    let report = tokio::time::timeout(
        HANG,
        again.migrate_all(MigrateOptions::default().concurrency(4)),
    )
    .await
    .expect("the rerun hangs")
    .unwrap();
    assert!(
        report.is_success(),
        "{:?}",
        tally(report.failed().map(|(_, e)| e))
    );
    assert_eq!(report.changed().count(), TENANTS - at_2);
    let (state, problems) = pg_consistency(&pool, "_tenancy", "", super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.len(), TENANTS);
    assert!(state.values().all(|v| v == &[1, 2]));
    let again = again.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(again.changed().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_migrate_of_one_tenant_fails_with_server_restarted() {
    let cluster = private_cluster().await;
    // The library's pool has one connection, and once `hold` is set its return to the pool
    // waits for `resume`: the attempt cut by the crash gives its connection back only once the
    // server is up again, so the redo connects to the new server. (Connecting while the old one
    // shuts down fails with a reset, which sqlx does not retry: `migrate` would then fail with
    // that I/O error, before the end of the run where the restart is checked.)
    let hold = Arc::new(AtomicBool::new(false));
    let resume = Arc::new(tokio::sync::Semaphore::new(0));
    let pool = {
        let (hold, resume) = (hold.clone(), resume.clone());
        let options: sqlx::postgres::PgConnectOptions = cluster.tcp_url().parse().unwrap();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .after_release(move |_, _| {
                let (hold, resume) = (hold.clone(), resume.clone());
                Box::pin(async move {
                    if !hold.load(Ordering::SeqCst) {
                        return Ok(true);
                    }
                    let _ = resume.acquire().await;
                    Ok(false)
                })
            })
            .connect_with(options.options([("synchronous_commit", "on")]))
            .await
            .unwrap()
    };
    let (observer, _) = pg_victim_pool(&cluster.tcp_url(), 1).await;
    let at_v1 = Tenants::new(pool.clone(), migrator(v1())).unwrap();
    let t = at_v1.create("solo").await.unwrap();
    Guard::new("g", "solo").insert(&pool, &t).await.unwrap();
    // v2 sleeps a second: the server crashes while it runs. The cut batch is redone a
    // statement at a time on a new connection once the server is back, and commits there; the
    // start time `migrate` read before is not the server's any more.
    let at_v2 = Tenants::new(pool.clone(), migrator(pg_v2(1.0))).unwrap();
    let run = {
        let at_v2 = at_v2.clone();
        tokio::spawn(async move { at_v2.migrate("solo").await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sleeping(&observer).await == 0 {
        assert!(!run.is_finished(), "migrate ended before the crash");
        assert!(std::time::Instant::now() < deadline, "v2 never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hold.store(true, Ordering::SeqCst);
    crash(&cluster).await;
    hold.store(false, Ordering::SeqCst);
    resume.add_permits(1);
    let result = tokio::time::timeout(HANG, run)
        .await
        .expect("migrate hangs after the crash")
        .unwrap();
    eprintln!("migrate across a crash: {result:?}");
    assert!(
        matches!(
            result,
            Err(Error::ServerRestarted {
                operation: "migrate"
            })
        ),
        "a migrate across a restart must fail with ServerRestarted, not {result:?}"
    );
    let (state, problems) = pg_consistency(&pool, "_tenancy", "", super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.len(), 1, "{state:?}");
    // Run again: applies v2 if the crash lost it, else reports it up to date.
    let again = at_v2.migrate("solo").await.unwrap();
    assert!(
        matches!(&again, Outcome::UpToDate) || again == Outcome::Migrated(vec![2]),
        "{again:?}"
    );
    let (state, problems) = pg_consistency(&pool, "_tenancy", "", super::own_rows).await;
    assert_consistent(problems);
    assert_eq!(state.get("solo").map(Vec::as_slice), Some(&[1, 2][..]));
    assert_eq!(at_v2.migrate("solo").await.unwrap(), Outcome::UpToDate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_batch_of_creates_converges() {
    let cluster = private_cluster().await;
    let (pool, _) = pg_victim_pool(&cluster.tcp_url(), 8).await;
    // Each create takes 50 ms or more: four are always in flight when the server goes down.
    let tenants = Tenants::new(pool.clone(), migrator(pg_v1_slow(0.05))).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<BTreeMap<String, Result<(), Error>>>> = Default::default();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (tenants, pool, next, in_flight, crashed, results) = (
            tenants.clone(),
            pool.clone(),
            next.clone(),
            in_flight.clone(),
            crashed.clone(),
            results.clone(),
        );
        workers.spawn(async move {
            let mut after = 0;
            while after < 10 {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 400 {
                    break;
                }
                let name = format!("c{i:03}");
                in_flight.fetch_add(1, Ordering::SeqCst);
                let created = tenants.create(&name).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let result = match created {
                    Ok(t) => Guard::new("g", &name).insert(&pool, &t).await.map(drop),
                    Err(e) => Err(e),
                };
                let failed = result.is_err();
                results.lock().unwrap().insert(name, result);
                if crashed.load(Ordering::SeqCst) {
                    after += 1;
                }
                if failed {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    // Let some creates finish, then crash.
    while next.load(Ordering::SeqCst) < 20 || in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let overlapped = in_flight.load(Ordering::SeqCst);
    crash(&cluster).await;
    crashed.store(true, Ordering::SeqCst);
    crate::faults::join_all(&mut workers, HANG, "creates hang after the crash").await;

    let results = std::mem::take(&mut *results.lock().unwrap());
    let errors: Vec<&Error> = results.values().filter_map(|r| r.as_ref().err()).collect();
    // A create whose one-round-trip batch is cut is redone a statement at a time, on a new
    // connection once the server is back: those in flight at the crash may succeed.
    assert!(overlapped > 0, "no create was in flight at the crash");
    eprintln!(
        "{} creates, {overlapped} in flight at the crash, failed: {:?}",
        results.len(),
        tally(errors.iter().copied())
    );

    let (state, problems) = pg_consistency(&pool, "_tenancy", "", super::own_rows).await;
    assert_consistent(problems);
    for (name, result) in &results {
        if result.is_ok() {
            assert!(
                state.contains_key(name),
                "acknowledged create of {name} lost"
            );
        }
    }
    // Rerun the failed ones: creates of those that did commit say so; all exist after.
    for (name, result) in &results {
        if result.is_err() && !state.contains_key(name) {
            tenants.create(name).await.unwrap();
        }
    }
    let (state, problems) = pg_consistency(&pool, "_tenancy", "", |t, row| t == row).await;
    assert_consistent(problems);
    for name in results.keys() {
        assert_eq!(state.get(name).map(Vec::as_slice), Some(&[1][..]), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_renames_converges() {
    const TENANTS: usize = 40;
    let cluster = private_cluster().await;
    let (pool, _) = pg_victim_pool(&cluster.tcp_url(), 8).await;
    let tenants = Tenants::new(pool.clone(), migrator(v1())).unwrap();
    for i in 0..TENANTS {
        let t = tenants.create(format!("ra{i:02}")).await.unwrap();
        Guard::new("g", t.as_str()).insert(&pool, &t).await.unwrap();
    }
    // Tenant i is `ra{i}` or `rb{i}`; its rows say `ra{i}`. Four tasks rename tenants back and
    // forth until ten renames each have run after the crash.
    let origin = |tenant: &str, row: &str| row == format!("ra{}", &tenant[2..]);
    let crashed = Arc::new(AtomicBool::new(false));
    let renames = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let errors: Arc<Mutex<Vec<Error>>> = Default::default();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (tenants, crashed, renames, in_flight, errors) = (
            tenants.clone(),
            crashed.clone(),
            renames.clone(),
            in_flight.clone(),
            errors.clone(),
        );
        workers.spawn(async move {
            // Each task owns ten tenants, and knows their names until a rename fails.
            let mut names: Vec<String> = (0..10).map(|k| format!("ra{:02}", w * 10 + k)).collect();
            let (mut k, mut after) = (0, 0);
            while after < 10 {
                let from = names[k].clone();
                let to = if from.starts_with("ra") { "rb" } else { "ra" }.to_owned() + &from[2..];
                in_flight.fetch_add(1, Ordering::SeqCst);
                let renamed = tenants.rename(&from, &to).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match renamed {
                    Ok(_) => names[k] = to,
                    Err(Error::NotATenant { .. }) => names[k] = to, // a failed one had committed
                    Err(e) => {
                        errors.lock().unwrap().push(e);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                renames.fetch_add(1, Ordering::SeqCst);
                if crashed.load(Ordering::SeqCst) {
                    after += 1;
                }
                k = (k + 1) % names.len();
            }
            names
        });
    }
    while renames.load(Ordering::SeqCst) < 100 || in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let overlapped = in_flight.load(Ordering::SeqCst);
    crash(&cluster).await;
    crashed.store(true, Ordering::SeqCst);
    let known: Vec<_> = crate::faults::join_all(&mut workers, HANG, "renames hang after the crash")
        .await
        .into_iter()
        .flatten()
        .collect();
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    assert!(overlapped > 0, "no rename was in flight at the crash");
    eprintln!(
        "{} renames, {overlapped} in flight at the crash, failed: {:?}",
        renames.load(Ordering::SeqCst),
        tally(errors.iter())
    );

    let (state, problems) = pg_consistency(&pool, "_tenancy", "", origin).await;
    assert_consistent(problems);
    assert_eq!(
        state.len(),
        TENANTS,
        "each tenant under exactly one name: {:?}",
        state.keys()
    );
    // The names the tasks last saw acknowledged are the names after the crash.
    for name in &known {
        assert!(
            state.contains_key(name),
            "acknowledged rename to {name} lost"
        );
    }
    // Converge: every tenant back to `ra`.
    for name in state.keys().filter(|n| n.starts_with("rb")) {
        tenants
            .rename(name, format!("ra{}", &name[2..]))
            .await
            .unwrap();
    }
    let (state, problems) = pg_consistency(&pool, "_tenancy", "", origin).await;
    assert_consistent(problems);
    assert!(state.keys().all(|n| n.starts_with("ra")) && state.len() == TENANTS);
    for name in state.keys() {
        let t = tenancy::Tenant::new(name).unwrap();
        assert_eq!(Guard::query(&t).count(&pool).await.unwrap(), 1, "{name}");
    }
}
