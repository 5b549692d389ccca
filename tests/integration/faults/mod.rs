//! Faults: names as properties, server crashes, connections cut mid-statement, an exhausted
//! pool. Every crash and cut test ends with a consistency check ([`pg_consistency`],
//! [`mysql_consistency`]): each registered tenant's schema (database) exists and its recorded
//! migrations match its tables, no container is left that is not a tenant, and every row is in
//! the tenant it was written for (rows carry their tenant's name in `position`).
//!
//! Where the server is restarted, it is a private cluster the test owns
//! (`tenancy_testdb::Cluster`, `restart_immediate`). The machine's MariaDB is shared and must not
//! be restarted: on MariaDB the faults are connections killed (`KILL CONNECTION`) only.

mod crash;
mod cut;
mod dropped;
mod killed;
mod names;
mod pool;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use sqlx::migrate::{Migration, MigrationType};
use sqlx::postgres::PgPool;

use crate::lifecycle_support::{migration, V1_GUARDS};

/// Waits for every task of `set` (a task's panic is raised again here) and returns their
/// results in the order they finished; panics with `hang_message` after `hang`.
pub async fn join_all<T: 'static>(
    set: &mut tokio::task::JoinSet<T>,
    hang: std::time::Duration,
    hang_message: &str,
) -> Vec<T> {
    let all = async {
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap());
        }
        out
    };
    tokio::time::timeout(hang, all)
        .await
        .unwrap_or_else(|_| panic!("{hang_message}"))
}

/// v1 (`guards`), then v2 adding `guards.badge`, whose `pause` seconds of `pg_sleep` keep it
/// running long enough to be cut or crashed into.
pub fn pg_v2(pause: f64) -> Vec<Migration> {
    vec![
        migration(1, MigrationType::Simple, V1_GUARDS),
        migration(
            2,
            MigrationType::Simple,
            &format!(
                "ALTER TABLE guards ADD COLUMN badge text; SELECT pg_sleep({pause}); \
                 UPDATE guards SET badge = 'b'"
            ),
        ),
    ]
}

/// v1 with `pause` seconds of `pg_sleep` after the table is made (slow creates).
pub fn pg_v1_slow(pause: f64) -> Vec<Migration> {
    vec![migration(
        1,
        MigrationType::Simple,
        &format!("{V1_GUARDS}; SELECT pg_sleep({pause})"),
    )]
}

/// Server process ids of the connections a pool opened (filled by its `after_connect`), so a
/// side connection can cut exactly those.
#[derive(Clone, Default)]
pub struct Victims(pub Arc<Mutex<BTreeSet<u64>>>);

impl Victims {
    pub fn ids(&self) -> Vec<u64> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

/// A PostgreSQL pool of `n` connections on `url` whose connections record their pids in the
/// returned [`Victims`]. `synchronous_commit = on` for its sessions, so an acknowledged commit
/// survives a crash even on the private clusters (which run with it off).
pub async fn pg_victim_pool(url: &str, n: u32) -> (PgPool, Victims) {
    let victims = Victims::default();
    let v = victims.clone();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(n)
        .after_connect(move |conn, _| {
            let v = v.clone();
            Box::pin(async move {
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await?;
                v.0.lock().unwrap().insert(pid as u64);
                Ok(())
            })
        })
        .connect_with(options.options([("synchronous_commit", "on")]))
        .await
        .unwrap();
    (pool, victims)
}

/// What a consistency check found wrong; empty when consistent.
pub type Problems = Vec<String>;

/// Asserts a consistency check found nothing.
#[track_caller]
pub fn assert_consistent(problems: Problems) {
    assert!(
        problems.is_empty(),
        "{} inconsistencies:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// PostgreSQL: the tenants registered in `registry` and the schemas whose names start with
/// `prefix` (all non-system schemas but the registry on a private cluster: prefix `""`)
/// agree; each tenant's applied versions are `1..=k` with `guards` present iff 1 is applied
/// and `guards.badge` iff 2 is; every row's `position` is a name `origin` accepts for the
/// tenant. Returns the tenants with their applied versions, and the problems.
pub async fn pg_consistency(
    pool: &PgPool,
    registry: &str,
    prefix: &str,
    origin: impl Fn(&str, &str) -> bool,
) -> (BTreeMap<String, Vec<i64>>, Problems) {
    let mut problems = Vec::new();
    let registered: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM \"{registry}\".tenants ORDER BY name"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let schemas: BTreeSet<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
         AND nspname NOT IN ('public', 'information_schema') AND nspname <> $1 \
         AND starts_with(nspname, $2)",
    )
    .bind(registry)
    .bind(prefix)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut applied_by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant, version FROM \"{registry}\".migrations ORDER BY tenant, version"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    for (tenant, version) in rows {
        applied_by.entry(tenant).or_default().push(version);
    }
    let mut out = BTreeMap::new();
    for name in &registered {
        let applied = applied_by.remove(name).unwrap_or_default();
        if !schemas.contains(name) {
            problems.push(format!("tenant {name} is registered but has no schema"));
            continue;
        }
        let expected: Vec<i64> = (1..=applied.len() as i64).collect();
        if applied != expected {
            problems.push(format!("tenant {name}: applied versions {applied:?}"));
        }
        let guards = crate::lifecycle_support::has_table(pool, name, "guards").await;
        let badge = crate::lifecycle_support::has_column(pool, name, "guards", "badge").await;
        if guards != applied.contains(&1) || badge != applied.contains(&2) {
            problems.push(format!(
                "tenant {name}: applied {applied:?} but guards table {guards}, badge column {badge}"
            ));
        }
        if guards {
            let owners: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT position FROM \"{name}\".guards"
            )))
            .fetch_all(pool)
            .await
            .unwrap();
            for owner in owners {
                if !origin(name, &owner) {
                    problems.push(format!("tenant {name} holds a row of {owner}"));
                }
            }
        }
        out.insert(name.clone(), applied);
    }
    for (tenant, versions) in applied_by {
        problems.push(format!(
            "migrations {versions:?} recorded for {tenant}, which is not registered"
        ));
    }
    for schema in &schemas {
        if !registered.contains(schema) {
            problems.push(format!("schema {schema} is left over: no tenant"));
        }
    }
    (out, problems)
}

/// The default origin rule: a tenant's rows carry its own name.
pub fn own_rows(tenant: &str, position: &str) -> bool {
    tenant == position
}

/// What a faulted operation returned, by kind, for the test's message.
pub fn kind(e: &tenancy::Error) -> String {
    match e {
        tenancy::Error::Database { source, .. } => match source.as_sqlx() {
            sqlx::Error::Database(db) => format!("Database({})", db.code().unwrap_or_default()),
            other => format!("Database({})", short(other)),
        },
        other => {
            let debug = format!("{other:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned()
        }
    }
}

fn short(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Io(_) => "Io",
        sqlx::Error::PoolTimedOut => "PoolTimedOut",
        sqlx::Error::PoolClosed => "PoolClosed",
        sqlx::Error::Protocol(_) => "Protocol",
        sqlx::Error::Tls(_) => "Tls",
        sqlx::Error::WorkerCrashed => "WorkerCrashed",
        _ => "other",
    }
}

/// Counts by kind, for messages: `{"Database(57P01)": 3, ...}`.
pub fn tally<'a>(errors: impl IntoIterator<Item = &'a tenancy::Error>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in errors {
        *out.entry(kind(e)).or_default() += 1;
    }
    out
}

/// A private PostgreSQL cluster of this test (`initdb`: a few seconds), stopped when dropped.
pub async fn private_cluster() -> std::sync::Arc<tenancy_testdb::Cluster> {
    let cluster = tokio::task::spawn_blocking(|| {
        tenancy_testdb::Cluster::start().unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .unwrap();
    std::sync::Arc::new(cluster)
}

/// Runs test `child` of this binary (an ignored test that prints `moving` once it starts
/// moving, then moves until killed) as a child process with `env`, and kills it (`SIGKILL`)
/// `delay` after it printed `moving`. Panics if it never starts or stops by itself.
pub fn kill_child_after(child: &str, env: &[(&str, &str)], delay: std::time::Duration) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", "--nocapture", "--test-threads=1"])
        .arg(child)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut process = command.spawn().unwrap();
    let stdout = process.stdout.take().unwrap();
    let (started, moving) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // libtest writes the test's name before its output, on the same line.
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let found = lines.any(|line| line.ends_with("moving"));
        let _ = started.send(found);
        lines.for_each(drop);
    });
    let started = moving.recv_timeout(std::time::Duration::from_secs(120));
    if started != Ok(true) {
        let _ = process.kill();
        panic!("the child never started moving: {started:?}");
    }
    std::thread::sleep(delay);
    if let Some(status) = process.try_wait().unwrap() {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut process.stderr.take().unwrap(), &mut err).unwrap();
        panic!("the child stopped by itself ({status}): {err}");
    }
    process.kill().unwrap();
    process.wait().unwrap();
}
