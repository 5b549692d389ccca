//! Which backends a test binary's tests run on, decided before its tests start.
//!
//! # The rule
//!
//! Without [`BACKENDS_ENV`] (`TENANCY_TEST_BACKENDS`), a backend is selected when its server
//! can be reached or started:
//!
//! | backend | selected when |
//! | --- | --- |
//! | `sqlite` | always (a temporary folder per test) |
//! | `postgres` | `DATABASE_URL` is set, or the PostgreSQL server binaries are installed (a private cluster) |
//! | `tls` | `postgres` is, and `DATABASE_URL` is set (its server must have `ssl = on`) or `openssl` is installed (the private cluster's certificate) |
//! | `pgbouncer` | `PGBOUNCER_URL` is set, or the private cluster runs and `pgbouncer` is installed |
//! | `postgres-cluster` | the PostgreSQL server binaries are installed (tests that restart a private cluster of their own) |
//! | `mysql` | `MYSQL_URL` is set, or `mariadbd` / `mysqld` is installed (a private server) |
//! | `mysql-tls` | `mysql` is, and `MYSQL_TLS_URL` is set or `mariadbd` / `mysqld` and `openssl` are installed (the private server, whatever `MYSQL_URL` says) |
//! | `citus` | `CITUS_URL` is set |
//!
//! A URL that is set is the user asking for that backend: its tests run, and fail loudly if
//! its server cannot be reached. With `TENANCY_TEST_BACKENDS=sqlite,postgres,mysql,citus`
//! exactly the backends listed are selected (`postgres` with `tls`, `pgbouncer` and
//! `postgres-cluster`; `mysql` with `mysql-tls`), whether their servers can be reached or not: a test of a listed
//! backend whose server is missing fails, saying what is missing.
//!
//! # In a test binary
//!
//! [`select_tests!`](crate::select_tests) names, for each test of the binary, the backends it
//! needs. Before the binary's `main` runs, it prints one line per backend the binary's tests
//! need (`citus: not run — set CITUS_URL to a Citus coordinator`) on the standard error, which
//! the test harness does not capture, and runs the binary again with a `--skip <test>` for
//! every test that needs a backend that is not selected: the harness then counts those as
//! `filtered out`, never as passed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::mysql::{self, MYSQL_TLS_URL_ENV, MYSQL_URL_ENV};
use crate::postgres::{
    find_bin_dir, CITUS_HOW_TO, CITUS_URL_ENV, DATABASE_URL_ENV, PGBOUNCER_URL_ENV,
};
use crate::sys::{find_program, RunAs};

/// The environment variable that selects the backends explicitly, e.g.
/// `TENANCY_TEST_BACKENDS=sqlite,postgres,mysql,citus`.
pub const BACKENDS_ENV: &str = "TENANCY_TEST_BACKENDS";

/// Set in a test binary's environment once the selection is made (in the run that lists its
/// tests, and in the run with the `--skip`s), so that it is made once.
const SELECTED_ENV: &str = "TENANCY_TESTDB_SELECTED";

/// A server, or a service of one, that tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite: files in a temporary folder, no server.
    Sqlite,
    /// PostgreSQL: `DATABASE_URL` or a private cluster.
    Postgres,
    /// PostgreSQL over TLS ([`tls_database_url`](crate::tls_database_url)).
    Tls,
    /// PgBouncer in transaction mode ([`pgbouncer_url`](crate::pgbouncer_url)).
    PgBouncer,
    /// Private clusters of a test's own ([`Cluster::start`](crate::Cluster::start)), which it
    /// may crash and restart: the PostgreSQL server binaries, whatever `DATABASE_URL` says.
    PgCluster,
    /// MySQL / MariaDB: `MYSQL_URL` or a private server ([`mysql_url`](crate::mysql_url)).
    Mysql,
    /// MySQL / MariaDB over TLS ([`tls_mysql_url`](crate::tls_mysql_url)).
    MysqlTls,
    /// Citus: `CITUS_URL` ([`citus_url`](crate::citus_url)).
    Citus,
}

impl Backend {
    /// Every backend, in the order their lines are printed.
    pub const ALL: [Backend; 8] = [
        Backend::Sqlite,
        Backend::Postgres,
        Backend::Tls,
        Backend::PgBouncer,
        Backend::PgCluster,
        Backend::Mysql,
        Backend::MysqlTls,
        Backend::Citus,
    ];

    /// Its name, as `TENANCY_TEST_BACKENDS` and the printed lines spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Tls => "tls",
            Backend::PgBouncer => "pgbouncer",
            Backend::PgCluster => "postgres-cluster",
            Backend::Mysql => "mysql",
            Backend::MysqlTls => "mysql-tls",
            Backend::Citus => "citus",
        }
    }

    /// The backend whose suite it belongs to: `tls`, `pgbouncer` and `postgres-cluster` are
    /// PostgreSQL's, `mysql-tls` is MySQL's.
    fn suite(self) -> Backend {
        match self {
            Backend::Tls | Backend::PgBouncer | Backend::PgCluster => Backend::Postgres,
            Backend::MysqlTls => Backend::Mysql,
            other => other,
        }
    }
}

/// Whether a backend's tests run, and on what, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Its tests run; on what (`on DATABASE_URL`, `on a private server from …`).
    Runs(String),
    /// Its tests do not run; why, and how to make them run.
    NotRun(String),
}

impl Selection {
    /// Whether the backend's tests run.
    pub fn runs(&self) -> bool {
        matches!(self, Selection::Runs(_))
    }

    /// The line printed for `backend`, e.g. `citus: not run — set CITUS_URL to a Citus
    /// coordinator`.
    pub fn line(&self, backend: Backend) -> String {
        match self {
            Selection::Runs(what) => format!("{}: runs {what}", backend.name()),
            Selection::NotRun(why) => format!("{}: not run — {why}", backend.name()),
        }
    }
}

/// Whether `backend`'s tests run here (see the [module documentation](self) for the rule).
///
/// # Errors
///
/// A message naming the unknown backend when `TENANCY_TEST_BACKENDS` lists one.
pub fn select(backend: Backend) -> Result<Selection, String> {
    static HERE: OnceLock<Machine> = OnceLock::new();
    decide(backend, HERE.get_or_init(Machine::here))
}

/// What the selection depends on: the variables naming servers, and the programs installed.
#[derive(Debug, Clone)]
struct Machine {
    /// The variables that are set and not blank (a value that is not valid UTF-8 is kept
    /// lossily: the variable counts as set, and its tests say what is wrong with it).
    vars: BTreeMap<&'static str, String>,
    /// The folder of the PostgreSQL server binaries, or why no private cluster can start.
    pg: Result<String, String>,
    openssl: bool,
    /// The `pgbouncer` program.
    pgbouncer: Option<String>,
    /// The MySQL / MariaDB server program, or why no private server can start.
    mysql: Result<String, String>,
}

impl Machine {
    fn here() -> Machine {
        let vars = [
            BACKENDS_ENV,
            DATABASE_URL_ENV,
            PGBOUNCER_URL_ENV,
            MYSQL_URL_ENV,
            MYSQL_TLS_URL_ENV,
            CITUS_URL_ENV,
        ]
        .into_iter()
        .filter_map(|name| {
            let value = std::env::var_os(name)?.to_string_lossy().into_owned();
            (!value.trim().is_empty()).then_some((name, value))
        })
        .collect();
        Machine {
            vars,
            pg: pg_binaries(),
            openssl: find_program("openssl").is_some(),
            pgbouncer: find_program("pgbouncer"),
            mysql: mysql::find_programs().and_then(|programs| {
                mysql::run_as()?;
                Ok(programs.server)
            }),
        }
    }

    fn set(&self, variable: &str) -> bool {
        self.vars.contains_key(variable)
    }
}

/// The rule, on `machine`.
fn decide(backend: Backend, machine: &Machine) -> Result<Selection, String> {
    let Some(raw) = machine.vars.get(BACKENDS_ENV) else {
        return Ok(found(backend, machine));
    };
    let mut asked = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let listed = Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "{BACKENDS_ENV}={raw} names an unknown backend `{name}`; the backends are {}",
                    Backend::ALL.map(Backend::name).join(", ")
                )
            })?;
        asked.push(listed);
    }
    if !asked.contains(&backend) && !asked.contains(&backend.suite()) {
        return Ok(Selection::NotRun(format!("not in {BACKENDS_ENV}={raw}")));
    }
    Ok(Selection::Runs(match found(backend, machine) {
        Selection::Runs(what) => format!("{what}, as {BACKENDS_ENV} asks"),
        Selection::NotRun(why) => {
            format!("as {BACKENDS_ENV} asks, but its tests will fail: {why}")
        }
    }))
}

/// Where the private PostgreSQL clusters would come from, or why none can start.
fn pg_binaries() -> Result<String, String> {
    let bin = find_bin_dir().map_err(|e| match e {
        crate::TestDbError::BinariesNotFound { looked_in } => format!(
            "initdb and pg_ctl were not found (looked in: {})",
            looked_in.join("; ")
        ),
        other => other.to_string(),
    })?;
    RunAs::detect("postgres").map_err(|_| {
        "this process runs as root and there is no `postgres` user (or no runuser / su) to run \
         the server as"
            .to_owned()
    })?;
    Ok(bin.display().to_string())
}

/// The rule without `TENANCY_TEST_BACKENDS`: selected when its server can be reached or started.
fn found(backend: Backend, m: &Machine) -> Selection {
    use Selection::{NotRun, Runs};
    let postgres = || found(Backend::Postgres, m).runs();
    match backend {
        Backend::Sqlite => Runs("in a temporary folder per test (no server)".into()),
        Backend::Postgres if m.set(DATABASE_URL_ENV) => Runs("on DATABASE_URL".into()),
        Backend::Postgres => match &m.pg {
            Ok(bin) => Runs(format!(
                "on a private cluster from {bin} (DATABASE_URL is not set)"
            )),
            Err(why) => NotRun(format!(
                "set DATABASE_URL to a PostgreSQL database, or install the PostgreSQL server: \
                 {why}"
            )),
        },
        Backend::Tls if !postgres() => NotRun("postgres is not run".into()),
        Backend::Tls if m.set(DATABASE_URL_ENV) => {
            Runs("on DATABASE_URL with sslmode=require (its server must have ssl = on)".into())
        }
        Backend::Tls if m.openssl => {
            Runs("on the private cluster, with a certificate made by openssl".into())
        }
        Backend::Tls => NotRun(
            "install openssl (for the private cluster's certificate), or set DATABASE_URL to a \
             server with ssl = on"
                .into(),
        ),
        Backend::PgBouncer if m.set(PGBOUNCER_URL_ENV) => Runs("on PGBOUNCER_URL".into()),
        Backend::PgBouncer if !postgres() => NotRun("postgres is not run".into()),
        Backend::PgBouncer if m.set(DATABASE_URL_ENV) => NotRun(
            "DATABASE_URL is set: set PGBOUNCER_URL to a PgBouncer in transaction mode in front \
             of its server"
                .into(),
        ),
        Backend::PgBouncer => match &m.pgbouncer {
            Some(program) => Runs(format!(
                "on a private PgBouncer ({program}) in front of the private cluster"
            )),
            None => NotRun(
                "install pgbouncer (e.g. `apt-get install pgbouncer`), or set PGBOUNCER_URL to a \
                 PgBouncer in transaction mode"
                    .into(),
            ),
        },
        Backend::PgCluster => match &m.pg {
            Ok(bin) => Runs(format!("on private clusters of their own from {bin}")),
            Err(why) => NotRun(format!(
                "the tests that crash a server start private clusters of their own: install the \
                 PostgreSQL server: {why}"
            )),
        },
        Backend::Mysql if m.set(MYSQL_URL_ENV) => Runs("on MYSQL_URL".into()),
        Backend::Mysql => match &m.mysql {
            Ok(server) => Runs(format!(
                "on a private server from {server} (MYSQL_URL is not set)"
            )),
            Err(why) => NotRun(format!(
                "set MYSQL_URL to a MySQL / MariaDB server, or install the MariaDB or MySQL \
                 server (e.g. `apt-get install mariadb-server`): {why}"
            )),
        },
        Backend::MysqlTls if !found(Backend::Mysql, m).runs() => NotRun("mysql is not run".into()),
        Backend::MysqlTls if m.set(MYSQL_TLS_URL_ENV) => Runs("on MYSQL_TLS_URL".into()),
        Backend::MysqlTls => match (&m.mysql, m.openssl) {
            (Ok(server), true) => Runs(format!(
                "on a private server from {server}, with certificates made by openssl \
                 (MYSQL_TLS_URL is not set)"
            )),
            (Ok(_), false) => NotRun(
                "install openssl (for the private server's certificates), or set MYSQL_TLS_URL \
                 to a server with TLS"
                    .into(),
            ),
            (Err(why), _) => NotRun(format!(
                "set MYSQL_TLS_URL to a MySQL / MariaDB server with TLS, or install the MariaDB \
                 or MySQL server and openssl (a private server with certificates; MYSQL_URL's \
                 server is not changed): {why}"
            )),
        },
        Backend::Citus if m.set(CITUS_URL_ENV) => Runs("on CITUS_URL".into()),
        Backend::Citus => NotRun(CITUS_HOW_TO.into()),
    }
}

/// What [`select_tests!`](crate::select_tests) runs before the test binary's `main`: prints the
/// selection and runs the binary again without the tests that are not selected.
///
/// `needs` names the backends a test (by its full name, e.g. `backends::citus::crud::…`)
/// needs; a test that needs none always runs. Nothing here may abort the test binary: when the
/// selection cannot be applied (its tests cannot be listed, or a test that is not selected
/// cannot be filtered out without another), it says so and every test runs.
#[doc(hidden)]
pub fn before_main(needs: fn(&str) -> &'static [Backend]) {
    if std::env::var_os(SELECTED_ENV).is_some() {
        return;
    }
    if let Err(panic) = std::panic::catch_unwind(|| apply(needs)) {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        say(&format!(
            "tenancy-testdb: the backend selection failed ({what}); every test runs"
        ));
    }
}

/// Writes `line` to the standard error, bypassing the test harness's capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// This process's arguments; read from `/proc` where the standard library has not read them
/// yet (before `main` on some platforms).
fn args() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if !args.is_empty() {
        return args;
    }
    use std::os::unix::ffi::OsStringExt;
    std::fs::read("/proc/self/cmdline")
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| OsString::from_vec(a.to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

fn apply(needs: fn(&str) -> &'static [Backend]) {
    let args = args();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            say(&format!(
                "tenancy-testdb: cannot find the test binary ({e}); every test runs"
            ));
            return;
        }
    };
    let listed = Command::new(&exe)
        .args(["--list", "--format", "terse"])
        .env(SELECTED_ENV, "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let names: Vec<String> = match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.strip_suffix(": test")
                    .or_else(|| l.strip_suffix(": benchmark"))
            })
            .map(str::to_owned)
            .collect(),
        Ok(out) => {
            say(&format!(
                "tenancy-testdb: listing the tests failed ({}); every test runs",
                out.status
            ));
            return;
        }
        Err(e) => {
            say(&format!(
                "tenancy-testdb: cannot list the tests ({e}); every test runs"
            ));
            return;
        }
    };

    let mut selections = BTreeMap::new();
    for backend in names.iter().flat_map(|n| needs(n)) {
        if selections.contains_key(backend) {
            continue;
        }
        match select(*backend) {
            Ok(selection) => {
                selections.insert(*backend, selection);
            }
            Err(message) => {
                say(&message);
                std::process::exit(2);
            }
        }
    }
    for (backend, selection) in &selections {
        say(&selection.line(*backend));
    }

    let runs = |name: &str| needs(name).iter().all(|b| selections[b].runs());
    let (kept, skipped): (Vec<&String>, Vec<&String>) = names.iter().partition(|n| runs(n));
    if skipped.is_empty() {
        return;
    }
    // `--skip` matches part of a name unless `--exact` is given.
    if !args.iter().any(|a| a == "--exact") {
        for s in &skipped {
            if let Some(k) = kept.iter().find(|k| k.contains(s.as_str())) {
                say(&format!(
                    "tenancy-testdb: test {s} cannot be filtered out without {k}, whose name \
                     contains it; every test runs"
                ));
                return;
            }
        }
    }
    let mut again = Command::new(&exe);
    again.arg0(&args[0]).args(&args[1..]).env(SELECTED_ENV, "1");
    for s in skipped {
        again.arg("--skip").arg(s);
    }
    let e = again.exec();
    say(&format!(
        "tenancy-testdb: cannot run the tests again without those not selected ({e}); every \
         test runs"
    ));
}

/// Applies the backend selection to this test binary: before its `main`, prints one line per
/// backend its tests need and leaves out the tests of backends that are not selected (see
/// [`select`](crate::select) for the rule).
///
/// The argument is a `fn(&str) -> &'static [Backend]` naming the backends a test (by its full
/// name) needs. Put it once at the top of the test crate:
///
/// ```no_run
/// use tenancy_testdb::select::Backend;
///
/// fn needs(test: &str) -> &'static [Backend] {
///     if test.starts_with("mysql_") {
///         &[Backend::Mysql]
///     } else {
///         &[Backend::Postgres]
///     }
/// }
///
/// tenancy_testdb::select_tests!(needs);
/// # fn main() {}
/// ```
///
/// It runs as a constructor of the binary (`.init_array` on Linux and the BSDs,
/// `__mod_init_func` on macOS); elsewhere it does nothing and every test runs.
#[macro_export]
macro_rules! select_tests {
    ($needs:expr) => {
        #[used]
        #[cfg_attr(
            any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd",
                target_os = "dragonfly",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "illumos",
                target_os = "solaris"
            ),
            link_section = ".init_array"
        )]
        #[cfg_attr(
            any(target_os = "macos", target_os = "ios"),
            link_section = "__DATA,__mod_init_func"
        )]
        static __TENANCY_TESTDB_SELECT_TESTS: extern "C" fn() = {
            extern "C" fn select_tests() {
                $crate::select::before_main($needs);
            }
            select_tests
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine with every program installed and the variables `vars` set.
    fn machine(vars: &[(&'static str, &str)]) -> Machine {
        Machine {
            vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            pg: Ok("/pg/bin".into()),
            openssl: true,
            pgbouncer: Some("/usr/sbin/pgbouncer".into()),
            mysql: Ok("/usr/sbin/mariadbd".into()),
        }
    }

    fn line(backend: Backend, m: &Machine) -> String {
        decide(backend, m).unwrap().line(backend)
    }

    #[test]
    fn with_nothing_set_every_server_that_can_start_is_selected_and_citus_is_not() {
        let m = machine(&[]);
        for backend in Backend::ALL {
            let selection = decide(backend, &m).unwrap();
            assert_eq!(selection.runs(), backend != Backend::Citus, "{selection:?}");
        }
        assert_eq!(
            line(Backend::Citus, &m),
            "citus: not run — set CITUS_URL to a Citus coordinator"
        );
        assert_eq!(
            line(Backend::Mysql, &m),
            "mysql: runs on a private server from /usr/sbin/mariadbd (MYSQL_URL is not set)"
        );
        assert_eq!(
            line(Backend::Postgres, &m),
            "postgres: runs on a private cluster from /pg/bin (DATABASE_URL is not set)"
        );
    }

    #[test]
    fn a_backend_whose_server_can_neither_be_reached_nor_started_is_not_selected() {
        let mut m = machine(&[]);
        m.mysql = Err("neither `mariadbd` nor `mysqld` was found".into());
        m.pgbouncer = None;
        m.openssl = false;
        assert!(line(Backend::Mysql, &m)
            .starts_with("mysql: not run — set MYSQL_URL to a MySQL / MariaDB server, or install"));
        assert!(line(Backend::Mysql, &m).ends_with("neither `mariadbd` nor `mysqld` was found"));
        assert!(line(Backend::PgBouncer, &m).starts_with("pgbouncer: not run — install pgbouncer"));
        assert!(line(Backend::Tls, &m).starts_with("tls: not run — install openssl"));
        assert_eq!(
            line(Backend::MysqlTls, &m),
            "mysql-tls: not run — mysql is not run"
        );
        assert!(decide(Backend::Postgres, &m).unwrap().runs());
        // A MySQL server of the user's own, but no programs for a private one with TLS.
        m.vars.insert(MYSQL_URL_ENV, "mysql://h/db".into());
        assert!(decide(Backend::Mysql, &m).unwrap().runs());
        assert!(line(Backend::MysqlTls, &m)
            .starts_with("mysql-tls: not run — set MYSQL_TLS_URL to a MySQL / MariaDB server"));
        // The programs without openssl.
        m.mysql = Ok("/usr/sbin/mariadbd".into());
        assert!(line(Backend::MysqlTls, &m).starts_with("mysql-tls: not run — install openssl"));
        m.openssl = true;
        assert_eq!(
            line(Backend::MysqlTls, &m),
            "mysql-tls: runs on a private server from /usr/sbin/mariadbd, with certificates made \
             by openssl (MYSQL_TLS_URL is not set)"
        );

        // Without PostgreSQL, nothing that goes through it runs.
        m.pg = Err("initdb and pg_ctl were not found".into());
        for backend in [
            Backend::Postgres,
            Backend::Tls,
            Backend::PgBouncer,
            Backend::PgCluster,
        ] {
            assert!(!decide(backend, &m).unwrap().runs(), "{backend:?}");
        }
        assert!(decide(Backend::Sqlite, &m).unwrap().runs());
    }

    #[test]
    fn a_url_that_is_set_selects_its_backend_whatever_is_installed() {
        let mut m = machine(&[
            (DATABASE_URL_ENV, "postgres://h/db"),
            (MYSQL_URL_ENV, "mysql://h/db"),
            (CITUS_URL_ENV, "postgres://c/db"),
        ]);
        m.pg = Err("none".into());
        m.mysql = Err("none".into());
        m.openssl = false;
        for backend in [
            Backend::Postgres,
            Backend::Tls,
            Backend::Mysql,
            Backend::Citus,
        ] {
            assert!(decide(backend, &m).unwrap().runs(), "{backend:?}");
        }
        assert_eq!(line(Backend::Citus, &m), "citus: runs on CITUS_URL");
        // A server of the user's own has no PgBouncer of ours in front of it.
        assert_eq!(
            line(Backend::PgBouncer, &m),
            "pgbouncer: not run — DATABASE_URL is set: set PGBOUNCER_URL to a PgBouncer in \
             transaction mode in front of its server"
        );
        m.vars.insert(PGBOUNCER_URL_ENV, "postgres://b/db".into());
        assert!(decide(Backend::PgBouncer, &m).unwrap().runs());
        // Nor a MySQL server of the user's own a certificate of ours.
        assert!(!decide(Backend::MysqlTls, &m).unwrap().runs());
        m.vars
            .insert(MYSQL_TLS_URL_ENV, "mysql://t/db?ssl-mode=required".into());
        assert_eq!(
            line(Backend::MysqlTls, &m),
            "mysql-tls: runs on MYSQL_TLS_URL"
        );
        // The crash tests need the binaries even then.
        assert!(!decide(Backend::PgCluster, &m).unwrap().runs());
    }

    #[test]
    fn tenancy_test_backends_selects_exactly_the_backends_listed() {
        let mut m = machine(&[(BACKENDS_ENV, "sqlite, Postgres,mysql,citus")]);
        m.mysql = Err("neither `mariadbd` nor `mysqld` was found".into());
        m.pgbouncer = None;
        // Asked for: selected even where the server is missing, so their tests fail loudly.
        for backend in Backend::ALL {
            assert!(decide(backend, &m).unwrap().runs(), "{backend:?}");
        }
        assert!(line(Backend::Citus, &m).starts_with(
            "citus: runs as TENANCY_TEST_BACKENDS asks, but its tests will fail: set CITUS_URL"
        ));
        let m = machine(&[(BACKENDS_ENV, "sqlite")]);
        assert_eq!(
            line(Backend::Postgres, &m),
            "postgres: not run — not in TENANCY_TEST_BACKENDS=sqlite"
        );
        assert!(!decide(Backend::PgBouncer, &m).unwrap().runs());
        assert!(decide(Backend::Sqlite, &m).unwrap().runs());
        let err = decide(
            Backend::Sqlite,
            &machine(&[(BACKENDS_ENV, "sqlite,oracle")]),
        )
        .unwrap_err();
        assert!(
            err.contains("unknown backend `oracle`") && err.contains("postgres, tls"),
            "{err}"
        );
    }
}
