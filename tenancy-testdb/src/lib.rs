//! The one test-support crate of `tenancy`'s tests, examples and benchmarks (and the runtime of
//! `#[tenancy::test]`'s servers), split by concern:
//!
//! | module | concern |
//! | --- | --- |
//! | [`postgres`] | the PostgreSQL database (`DATABASE_URL`, or a private throwaway [`Cluster`]), TLS, PgBouncer, Citus |
//! | [`mysql`] | the MySQL / MariaDB server (`MYSQL_URL`, or a private throwaway [`MysqlServer`]), TLS |
//! | [`sqlite`] | temporary folders for SQLite's tenant files (and for migrations written as files) |
//! | [`select`] | which backends a test binary's tests run on, decided before they start |
//! | [`fixtures`] | the `guards` table every test uses, in each dialect, and the standard migrations |
//! | `cleanup` | dropping what a test made: schemas, databases, registries with their tenants (features `postgres`, `mysql`) |
//!
//! Names unique across threads and processes ([`unique_name`]) let tests run in parallel on
//! one server. The crate has no dependency but the standard library unless a feature asks for
//! one: `migrations` (sqlx's migration types, for [`fixtures`]), `postgres` and `mysql` (sqlx's
//! drivers, for `cleanup`). It never depends on `tenancy-core`, which depends on it for its
//! `testing` feature.
//!
//! # Selection rule
//!
//! [`database_url`] decides where the PostgreSQL tests run:
//!
//! 1. If the environment variable `DATABASE_URL` is set and non-empty, it is
//!    returned unchanged. Use this to run the tests against a server of your
//!    own (`DATABASE_URL=postgres://user@host:port/db`).
//! 2. Otherwise a private, throwaway PostgreSQL cluster is started **once per
//!    process** (lazily, on the first call; concurrent callers wait for it) and
//!    a URL for it is returned: a Unix socket in a private temporary folder.
//!    The cluster also listens on a free TCP port of 127.0.0.1 (never a fixed
//!    one, so it does not clash with a system server), with a self-signed
//!    certificate when `openssl` is there ([`tls_database_url`]); runs with
//!    durability switched off (`fsync=off`, ...) for speed; and trusts every
//!    local connection as user `postgres`. [`pgbouncer_url`] starts a private
//!    PgBouncer in front of it on request. It is stopped and
//!    its folder removed when the process exits, even after a panic, an abort
//!    or a `kill -9`, by a small detached watchdog shell process.
//! 3. If neither is possible, an error ([`TestDbError`]) explains how to
//!    provide a database. There is never a silent skip.
//!
//! The server binaries are looked up with `pg_config --bindir`, then in the
//! highest-versioned `/usr/lib/postgresql/*/bin`, then next to an `initdb`
//! found on `PATH`.
//!
//! When the process runs as root (typical in CI containers), `initdb` and
//! `postgres` refuse to run; the cluster is then created and run as the
//! `postgres` operating-system user (via `runuser`, or `su` as a fallback).
//!
//! [`mysql_url`] does the same for MySQL / MariaDB: `MYSQL_URL`, or else a private server
//! ([`MysqlServer`]) started from the installed `mariadbd` or `mysqld` in a temporary folder on a
//! free port, as the `mysql` user when run as root, removed the same way; with `openssl`
//! installed it speaks TLS too, with certificates signed by a CA of its own ([`tls_mysql_url`],
//! which uses that private server even when `MYSQL_URL` is set). [`citus_url`] is
//! `CITUS_URL` (there is no private Citus cluster).
//!
//! [`Cluster::start`] starts an additional, independent cluster that is
//! stopped when the value is dropped. [`unique_name`] makes schema names that
//! are unique across threads and processes, so tests can run in parallel
//! against one database.
//!
//! ```no_run
//! let url = tenancy_testdb::database_url()?;
//! let schema = tenancy_testdb::unique_name("orders_test");
//! // connect with sqlx: sqlx::PgPool::connect(&url).await?
//! # Ok::<(), tenancy_testdb::TestDbError>(())
//! ```
#![warn(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod cleanup;
mod error;
pub mod fixtures;
pub mod mysql;
pub mod postgres;
pub mod select;
pub mod sqlite;
mod sys;

pub use error::TestDbError;
pub use mysql::{mysql_url, tls_mysql_url, MysqlServer, MYSQL_TLS_URL_ENV, MYSQL_URL_ENV};
pub use postgres::{
    citus_url, database_url, pgbouncer_url, tls_database_url, Cluster, ADVISORY_LOCK_WAITERS,
    CITUS_URL_ENV, DATABASE_URL_ENV, PGBOUNCER_URL_ENV,
};

/// The value of environment variable `name`, if set and not blank.
pub(crate) fn env_url(name: &'static str) -> Result<Option<String>, TestDbError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) if name == DATABASE_URL_ENV => {
            Err(TestDbError::InvalidDatabaseUrl)
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(TestDbError::NotUnicode { variable: name }),
    }
}

// ---------------------------------------------------------------------------
// unique_name
// ---------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A key for a PostgreSQL advisory lock (`pg_advisory_lock(key)`) that no other test, process
/// or run uses: a hash of a [`unique_name`], below 2^31 so that `pg_locks` shows the lock as
/// `classid = 0, objid = key, objsubid = 1` (see [`ADVISORY_LOCK_WAITERS`]).
///
/// Tests hold such a lock on a connection of their own and let a migration wait for it
/// (`SELECT pg_advisory_xact_lock(key)`), to keep a run in flight until they release it.
pub fn unique_lock_key() -> i64 {
    use std::hash::BuildHasher;
    (std::collections::hash_map::RandomState::new().hash_one(unique_name("lock")) & 0x7fff_ffff)
        as i64
}

/// Returns a fresh name for a schema (or any other identifier), unique per
/// call across threads and concurrently running processes.
///
/// The result matches `[a-z_][a-z0-9_]*`, is at most 63 bytes (PostgreSQL's
/// identifier limit), so it can be used unquoted. It is built from the
/// sanitized `prefix` (lower-cased; other characters than `a-z`, `0-9`, `_`
/// replaced by `_`; truncated as needed; prefixed with `t` if it would start
/// with a digit or be empty, and with `t_` if it would start with the reserved
/// `pg_`), the process id, a process-wide counter and a few hex digits of the
/// current time.
///
/// ```
/// let name = tenancy_testdb::unique_name("Orders-Test");
/// assert!(name.starts_with("orders_test_"));
/// assert!(name.len() <= 63);
/// ```
pub fn unique_name(prefix: &str) -> String {
    const MAX_LEN: usize = 63;
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).wrapping_mul(0x9E37_79B9))
        .unwrap_or(0);
    let suffix = format!(
        "_{}_{}_{:06x}",
        std::process::id(),
        counter,
        nanos & 0xff_ffff
    );

    let mut head: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if head.is_empty() || head.starts_with(|c: char| c.is_ascii_digit()) {
        head.insert(0, 't');
    }
    if head.starts_with("pg_") {
        head.insert_str(0, "t_");
    }
    // `head` is ASCII, so truncating at any byte index is valid.
    head.truncate(MAX_LEN - suffix.len());
    head + &suffix
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::io;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::mysql::mysql_missing;
    use crate::postgres::find_bin_dir;
    use crate::sys::{gone, process_alive};

    fn is_valid_ident(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && s.len() <= 63
    }

    #[test]
    fn unique_name_is_a_valid_identifier() {
        for prefix in [
            "orders",
            "Orders-Test",
            "",
            "9lives",
            "pg_catalog",
            "ünïcode name!",
            "a b\tc",
            "___",
        ] {
            let name = unique_name(prefix);
            assert!(is_valid_ident(&name), "{prefix:?} -> {name:?}");
            assert!(!name.starts_with("pg_"), "{prefix:?} -> {name:?}");
        }
        assert!(unique_name("Orders-Test").starts_with("orders_test_"));
        assert!(unique_name("9lives").starts_with("t9lives_"));
        assert!(unique_name("pg_x").starts_with("t_pg_x_"));
        assert!(unique_name("").starts_with("t_"));
        let pid = format!("_{}_", std::process::id());
        assert!(unique_name("p").contains(&pid));
    }

    #[test]
    fn unique_name_is_unique() {
        let names: HashSet<String> = (0..1000).map(|_| unique_name("t")).collect();
        assert_eq!(names.len(), 1000);

        // Also across threads.
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..250).map(|_| unique_name("t")).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for n in h.join().unwrap() {
                assert!(all.insert(n));
            }
        }
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn unique_name_truncates_long_prefix() {
        let long = "x".repeat(200);
        let a = unique_name(&long);
        let b = unique_name(&long);
        assert!(a.len() <= 63, "{a} is {} bytes", a.len());
        assert!(is_valid_ident(&a));
        assert!(a.starts_with("xxxxxxxxxxxxxxxxxxxx"), "{a}");
        assert_ne!(a, b);
        // Multi-byte characters are replaced, not split.
        let c = unique_name(&"é".repeat(100));
        assert!(is_valid_ident(&c), "{c}");
    }

    /// The variable that makes [`start_servers_and_wait_to_be_killed`] start its servers.
    const KILL_ME: &str = "TENANCY_TESTDB_KILL_ME";

    /// Run by [`a_killed_process_leaves_no_server_behind`] in a process of its own: starts a
    /// private cluster and a private MySQL / MariaDB server (those that can start here), says
    /// where they are, and waits to be killed.
    #[test]
    #[ignore = "a helper of a_killed_process_leaves_no_server_behind"]
    fn start_servers_and_wait_to_be_killed() {
        if std::env::var_os(KILL_ME).is_none() {
            return;
        }
        let mut line = String::from("SERVERS");
        let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
        if find_bin_dir().is_ok() {
            let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
            let pid = fs::read_to_string(cluster.data_dir().join("postmaster.pid")).unwrap();
            let pid = pid.lines().next().unwrap().trim().to_owned();
            line += &format!(" {} {pid}", cluster.socket_dir().display());
            keep.push(Box::new(cluster));
        }
        if mysql_missing().is_none() {
            let server = MysqlServer::start().unwrap_or_else(|e| panic!("{e}"));
            let pid = fs::read_to_string(server.dir().join("server.pid")).unwrap();
            line += &format!(" {} {}", server.dir().display(), pid.trim());
            keep.push(Box::new(server));
        }
        {
            use std::io::Write;
            let mut out = io::stdout().lock();
            writeln!(out, "{line}").unwrap();
            out.flush().unwrap();
        }
        std::thread::sleep(Duration::from_secs(600));
    }

    /// A process killed with SIGKILL cannot clean up: its servers' watchdogs stop them and
    /// remove their folders.
    #[test]
    fn a_killed_process_leaves_no_server_behind() {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "tests::start_servers_and_wait_to_be_killed",
                "--nocapture",
            ])
            .env(KILL_ME, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = io::BufReader::new(child.stdout.take().unwrap());
        while !line.starts_with("SERVERS") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("the helper ended without starting its servers");
            }
        }
        let started: Vec<&str> = line.split_whitespace().skip(1).collect();
        let servers: Vec<(&str, &str)> = started.chunks(2).map(|c| (c[0], c[1])).collect();
        for (dir, pid) in &servers {
            assert!(Path::new(dir).exists() && process_alive(pid), "{dir} {pid}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for (dir, pid) in &servers {
            assert!(
                gone(pid, Duration::from_secs(30)),
                "server {pid} of {dir} still running 30 s after its process was killed"
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while Path::new(dir).exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(!Path::new(dir).exists(), "{dir} left behind");
        }
        assert_eq!(
            servers.len(),
            usize::from(find_bin_dir().is_ok()) + usize::from(mysql_missing().is_none())
        );
    }
}
