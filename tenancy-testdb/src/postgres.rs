//! The PostgreSQL servers of the tests: `DATABASE_URL`, or a private throwaway [`Cluster`]
//! started once per process from the installed server programs (over a Unix socket, on a free
//! TCP port with TLS when `openssl` is there, and with a private PgBouncer in front of it on
//! request); `PGBOUNCER_URL`; `CITUS_URL` (there is no private Citus cluster). The selection
//! rule is in the [crate documentation](crate).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::env_url;
use crate::error::TestDbError;
use crate::sys::{
    create_private_dir, file_tail, find_program, free_port, remove_dir, sh_quote, spawn_watchdog,
    tail, RunAs, RunAsError,
};

/// Name of the environment variable that selects an existing database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The longest socket file name of a cluster (`.s.PGSQL.<port>`).
const LONGEST_SOCKET: &str = ".s.PGSQL.65535";

/// The port number naming the private PgBouncer's socket file (it opens no TCP port).
const BOUNCER_PORT: u16 = 6432;

/// How long `pg_ctl` may wait for the server to accept connections.
const START_TIMEOUT_SECS: u32 = 60;

/// The process-wide private cluster, started on first use and never dropped
/// (its watchdog cleans it up when the process exits).
static SHARED: OnceLock<Result<Cluster, TestDbError>> = OnceLock::new();

/// Returns the URL of the PostgreSQL database the tests should use.
///
/// If `DATABASE_URL` is set and non-empty, that value is returned. Otherwise a
/// private throwaway cluster is started on the first call (once per process;
/// thread-safe, concurrent callers wait for it) and every call returns the
/// same URL for it, of the form
/// `postgres://postgres@localhost:5432/postgres?host=/tmp/tenancy-pg-...&sslmode=disable`
/// (a Unix socket folder given by the `host` parameter, which both sqlx and
/// libpq accept).
///
/// If starting the cluster fails, the same error is returned by every later
/// call (there is no retry).
///
/// # Errors
///
/// A [`TestDbError`] explaining how to provide a database when `DATABASE_URL`
/// is unset and no private cluster could be started.
pub fn database_url() -> Result<String, TestDbError> {
    let env = match std::env::var(DATABASE_URL_ENV) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => return Err(TestDbError::InvalidDatabaseUrl),
    };
    select_url(env, shared_cluster_url)
}

/// The selection rule, separated from the environment for testing: a set,
/// non-blank `env` value wins; otherwise `start` provides the URL.
fn select_url(
    env: Option<String>,
    start: impl FnOnce() -> Result<String, TestDbError>,
) -> Result<String, TestDbError> {
    match env {
        Some(url) if !url.trim().is_empty() => Ok(url),
        _ => start(),
    }
}

fn shared_cluster() -> Result<&'static Cluster, TestDbError> {
    SHARED
        .get_or_init(Cluster::start)
        .as_ref()
        .map_err(Clone::clone)
}

fn shared_cluster_url() -> Result<String, TestDbError> {
    Ok(shared_cluster()?.url().to_owned())
}

/// A pool of at most `max_connections` connections to [`database_url`] (feature `postgres`).
///
/// # Panics
///
/// With the reason and how to provide a database, when there is none or it cannot be
/// reached: this is for tests.
#[cfg(feature = "postgres")]
pub async fn pool(max_connections: u32) -> sqlx::PgPool {
    let url = database_url().unwrap_or_else(|e| panic!("{e}"));
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {url} ({e}): start it, or point DATABASE_URL at a \
                 database where the user may create schemas"
            )
        })
}

/// Name of the environment variable that selects a PgBouncer for the tests.
pub const PGBOUNCER_URL_ENV: &str = "PGBOUNCER_URL";

/// A URL of the test database that connects over TLS (`sslmode=require`).
///
/// With `DATABASE_URL` set, that URL with `sslmode=require` (its server must have
/// `ssl = on`). Otherwise the private cluster's TCP address: the cluster listens on a free
/// port of 127.0.0.1 as well, with a self-signed certificate made by `openssl` when it starts.
///
/// # Errors
///
/// As [`database_url`]; [`TestDbError::Missing`] if the private cluster has no certificate
/// (`openssl` was not found).
pub fn tls_database_url() -> Result<String, TestDbError> {
    if let Some(url) = env_url(DATABASE_URL_ENV)? {
        return Ok(with_sslmode(&url, "require"));
    }
    shared_cluster()?
        .tls_url()
        .ok_or_else(|| TestDbError::Missing {
            what: "TLS".into(),
            how: "openssl was not found to make a certificate for the private cluster; install it \
              (e.g. `apt-get install openssl`), or set DATABASE_URL to a server with ssl = on"
                .into(),
        })
}

/// The URL of a PgBouncer in transaction mode in front of the test database.
///
/// `PGBOUNCER_URL` if set. Otherwise, with `DATABASE_URL` set, an error saying how to start
/// one (in the tenancy repository, `bash .ci/pgbouncer/start.sh` starts one on 127.0.0.1:6432
/// in front of 127.0.0.1:5432). Otherwise a private PgBouncer in front of the private cluster, started
/// once per process on a Unix socket in the cluster's folder, and stopped with it.
///
/// # Errors
///
/// [`TestDbError::Missing`] as above, or if `pgbouncer` is not installed.
pub fn pgbouncer_url() -> Result<String, TestDbError> {
    if let Some(url) = env_url(PGBOUNCER_URL_ENV)? {
        return Ok(url);
    }
    if env_url(DATABASE_URL_ENV)?.is_some() {
        return Err(TestDbError::Missing {
            what: "PgBouncer".into(),
            how: "DATABASE_URL is set, so set PGBOUNCER_URL too, to a PgBouncer in transaction \
                  mode in front of that server (in the tenancy repository, `bash \
                  .ci/pgbouncer/start.sh` installs and starts one on 127.0.0.1:6432 in front of \
                  127.0.0.1:5432; then PGBOUNCER_URL=postgres://postgres@127.0.0.1:6432/test)"
                .into(),
        });
    }
    let cluster = shared_cluster()?;
    PGBOUNCER.get_or_init(|| cluster.start_pgbouncer()).clone()
}

/// The private cluster's PgBouncer, started on first use.
static PGBOUNCER: OnceLock<Result<String, TestDbError>> = OnceLock::new();

/// Name of the environment variable naming the coordinator of a Citus cluster for the tests.
pub const CITUS_URL_ENV: &str = "CITUS_URL";

/// What to do to run the Citus tests.
pub(crate) const CITUS_HOW_TO: &str = "set CITUS_URL to a Citus coordinator";

/// The URL of the coordinator of a Citus cluster (12 or later, with at least two workers) for
/// the tests: `CITUS_URL`. There is no private Citus cluster.
///
/// # Errors
///
/// [`TestDbError::Missing`], saying how to provide one, when `CITUS_URL` is unset.
pub fn citus_url() -> Result<String, TestDbError> {
    env_url(CITUS_URL_ENV)?.ok_or_else(|| TestDbError::Missing {
        what: "Citus".into(),
        how: format!(
            "{CITUS_HOW_TO} (with at least two workers; e.g. the citusdata/citus image: \
             CITUS_URL=postgres://postgres@localhost:5500/postgres?sslmode=disable)"
        ),
    })
}

/// `url` with its `sslmode` parameter set to `mode`.
fn with_sslmode(url: &str, mode: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode="))
        .map(str::to_owned)
        .collect();
    params.push(format!("sslmode={mode}"));
    format!("{base}?{}", params.join("&"))
}

/// SQL counting the sessions that wait for the advisory lock of a [`unique_lock_key`](crate::unique_lock_key) (`$1`).
pub const ADVISORY_LOCK_WAITERS: &str = "SELECT count(*) FROM pg_locks \
     WHERE locktype = 'advisory' AND NOT granted \
     AND classid = 0 AND objid = $1::bigint::oid AND objsubid = 1";

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

/// A private, throwaway PostgreSQL cluster in its own temporary folder,
/// reachable only through a Unix socket in that folder.
///
/// The server trusts local connections; connect as user `postgres` to the
/// `postgres` database using [`Cluster::url`]. Dropping the value stops the
/// server (`pg_ctl stop -m immediate`) and removes the folder. Should the
/// process die without dropping it, a detached watchdog process does the
/// same shortly after the process exits.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin_dir: PathBuf,
    run_as: RunAs,
    url: String,
    /// The TCP port on 127.0.0.1 (the socket file is named after it too).
    port: u16,
    /// Whether the server has a certificate (`ssl = on`).
    tls: bool,
    watchdog: Option<Child>,
}

impl Cluster {
    /// Creates and starts a new private cluster, regardless of `DATABASE_URL`.
    ///
    /// This runs `initdb` (a few seconds) and `pg_ctl start`, waiting until
    /// the server accepts connections (at most 60 seconds).
    ///
    /// # Errors
    ///
    /// A [`TestDbError`] if the server binaries are missing, the process runs
    /// as root without a usable `postgres` user, or `initdb` / `pg_ctl` fail
    /// (the error then includes their output and the server log tail).
    pub fn start() -> Result<Cluster, TestDbError> {
        let bin_dir = find_bin_dir()?;
        let run_as = RunAs::detect("postgres").map_err(|e| match e {
            RunAsError::NoUser => TestDbError::NoPostgresUser,
            RunAsError::NoTool => TestDbError::NoUserSwitchTool,
        })?;
        let dir = create_private_dir(&run_as, "tenancy-pg", LONGEST_SOCKET)
            .map_err(|tried| TestDbError::NoUsableTempDir { tried })?;
        let port =
            free_port().map_err(|e| TestDbError::io("finding a free TCP port on 127.0.0.1", e))?;
        let url = socket_url(&dir, port);
        // From here on, `Drop` cleans up on every error path.
        let mut cluster = Cluster {
            dir,
            bin_dir,
            run_as,
            url,
            port,
            tls: false,
            watchdog: None,
        };
        // Start the watchdog first, so that even a process killed during
        // `initdb` or `pg_ctl start` leaves nothing behind.
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        cluster.initdb()?;
        cluster.tls = cluster.make_certificate();
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// The connection URL, e.g.
    /// `postgres://postgres@localhost:5432/postgres?host=/tmp/tenancy-pg-...&sslmode=disable`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A URL connecting over TCP on 127.0.0.1 without TLS. While the server is down (e.g.
    /// during [`restart_immediate`](Self::restart_immediate)) a connection attempt on it is
    /// refused, which sqlx's pool retries until its acquire timeout, where a Unix socket's
    /// missing file fails at once.
    pub fn tcp_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// A URL connecting over TCP with TLS (`sslmode=require`), if the cluster has a
    /// certificate (made with `openssl` when it started).
    pub fn tls_url(&self) -> Option<String> {
        self.tls.then(|| {
            format!(
                "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
                self.port
            )
        })
    }

    /// Makes a self-signed certificate in the data folder (`server.crt`, `server.key`, where
    /// the server looks for them); false if `openssl` is missing or fails.
    fn make_certificate(&self) -> bool {
        let Some(openssl) = find_program("openssl") else {
            return false;
        };
        let data = self.data_dir();
        let key = data.join("server.key").to_string_lossy().into_owned();
        let crt = data.join("server.crt").to_string_lossy().into_owned();
        let args: Vec<String> = [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "7",
            "-subj",
            "/CN=localhost",
            // A server's certificate, not a CA's (openssl's default for -x509), so that a
            // verifying client refuses it for its issuer, as it would a real server's.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            &key,
            "-out",
            &crt,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let made = self
            .run_as
            .run(&openssl, &args, &self.dir, "openssl req")
            .is_ok_and(|out| out.status.success());
        made && fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).is_ok()
    }

    /// Starts PgBouncer in transaction mode in front of this cluster, on a Unix socket in its
    /// folder (no TCP port); returns its URL. It is stopped with the cluster.
    fn start_pgbouncer(&self) -> Result<String, TestDbError> {
        let Some(pgbouncer) = find_program("pgbouncer").or_else(|| {
            Path::new("/usr/sbin/pgbouncer")
                .is_file()
                .then(|| "/usr/sbin/pgbouncer".to_owned())
        }) else {
            return Err(TestDbError::Missing {
                what: "PgBouncer".into(),
                how: "the `pgbouncer` program was not found; install it (e.g. `apt-get install \
                      pgbouncer`), or set PGBOUNCER_URL to a PgBouncer in transaction mode in \
                      front of DATABASE_URL's server"
                    .into(),
            });
        };
        let dir = self.dir.display();
        let ini = self.dir.join("pgbouncer.ini");
        let users = self.dir.join("userlist.txt");
        let config = format!(
            "[databases]\n* = host={dir} port={port}\n\n[pgbouncer]\nlisten_addr =\n\
             listen_port = {BOUNCER_PORT}\nunix_socket_dir = {dir}\npool_mode = transaction\n\
             default_pool_size = 4\nmax_client_conn = 500\nauth_type = trust\n\
             auth_file = {users}\nignore_startup_parameters = extra_float_digits,options\n\
             logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
            port = self.port,
            users = users.display(),
        );
        let write = |path: &Path, text: &str| {
            fs::write(path, text)
                .map_err(|e| TestDbError::io(format!("writing {}", path.display()), e))
        };
        write(&ini, &config)?;
        write(&users, "\"postgres\" \"\"\n")?;
        let args = vec!["-d".to_owned(), ini.to_string_lossy().into_owned()];
        let out = self
            .run_as
            .run(&pgbouncer, &args, &self.dir, "pgbouncer")
            .map_err(run_error)?;
        self.check(out, "pgbouncer", &pgbouncer, &args, false)?;
        let socket = self.dir.join(format!(".s.PGSQL.{BOUNCER_PORT}"));
        for _ in 0..100 {
            if socket.exists() {
                return Ok(format!(
                    "postgres://postgres@localhost:{BOUNCER_PORT}/postgres?host={dir}&sslmode=disable"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestDbError::Missing {
            what: "PgBouncer".into(),
            how: format!(
                "the private PgBouncer did not open {} within 10 s; see {dir}/pgbouncer.log",
                socket.display()
            ),
        })
    }

    /// Restarts the server the way a crash does: `pg_ctl stop -m immediate` (every server
    /// process killed at once, no shutdown checkpoint; clients see their connections close
    /// mid-statement), then starts it again with the same settings and waits until it accepts
    /// connections (the start replays the write-ahead log). The URLs stay the same.
    ///
    /// The cluster runs with `synchronous_commit=off`, so a transaction that committed in the
    /// last moments before the stop may be lost by it, as after a real crash of such a server;
    /// it is lost whole (PostgreSQL replays only complete transactions).
    ///
    /// # Errors
    ///
    /// A [`TestDbError::CommandFailed`] if `pg_ctl stop` or `pg_ctl start` fails (with the
    /// server log's tail).
    pub fn restart_immediate(&self) -> Result<(), TestDbError> {
        let (pg_ctl, args) = self.stop_args();
        let out = self
            .run_as
            .run(&pg_ctl, &args, &self.dir, "pg_ctl stop")
            .map_err(run_error)?;
        self.check(out, "pg_ctl stop -m immediate", &pg_ctl, &args, true)?;
        self.pg_ctl_start()
    }

    /// The private temporary folder holding the Unix socket (`.s.PGSQL.<port>`),
    /// the data folder and the server log. Removed on drop.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's data folder (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The folder holding the PostgreSQL binaries used (`initdb`, `pg_ctl`,
    /// and usually `psql`, `pg_isready`, ...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    fn bin(&self, name: &str) -> String {
        self.bin_dir.join(name).to_string_lossy().into_owned()
    }

    fn initdb(&self) -> Result<(), TestDbError> {
        let initdb = self.bin("initdb");
        let data = self.data_dir().to_string_lossy().into_owned();
        let mut args: Vec<String> = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if initdb_supports_no_instructions(&initdb) {
            args.push("--no-instructions".into());
        }
        let out = self
            .run_as
            .run(&initdb, &args, &self.dir, "initdb")
            .map_err(run_error)?;
        self.check(out, "initdb", &initdb, &args, false)
    }

    fn pg_ctl_start(&self) -> Result<(), TestDbError> {
        let pg_ctl = self.bin("pg_ctl");
        let data = self.data_dir().to_string_lossy().into_owned();
        let log = self.log_file().to_string_lossy().into_owned();
        // `pg_ctl -o` goes through a shell; the folder only contains
        // shell-safe characters (see `create_private_dir`).
        let server_opts = format!(
            "-k '{}' -c listen_addresses='127.0.0.1' -p {} -c ssl={} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.dir.display(),
            self.port,
            if self.tls { "on" } else { "off" },
        );
        let timeout = START_TIMEOUT_SECS.to_string();
        let args: Vec<String> = [
            "-D",
            &data,
            "-l",
            &log,
            "-w",
            "-t",
            &timeout,
            "-o",
            &server_opts,
            "start",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = self
            .run_as
            .run(&pg_ctl, &args, &self.dir, "pg_ctl start")
            .map_err(run_error)?;
        self.check(out, "pg_ctl start", &pg_ctl, &args, true)
    }

    fn check(
        &self,
        out: Output,
        step: &str,
        program: &str,
        args: &[String],
        with_log: bool,
    ) -> Result<(), TestDbError> {
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !stdout.trim().is_empty() {
            output.push('\n');
            output.push_str(&stdout);
        }
        let log_tail = if with_log {
            file_tail(&self.log_file(), 30)
        } else {
            None
        };
        Err(TestDbError::CommandFailed {
            step: step.to_owned(),
            command: self.run_as.shell_line(program, args),
            status: out.status.to_string(),
            output: tail(&output, 30),
            log_tail,
        })
    }

    /// Stop command for the server, as a shell line (used by the watchdog).
    fn stop_args(&self) -> (String, Vec<String>) {
        let data = self.data_dir().to_string_lossy().into_owned();
        (
            self.bin("pg_ctl"),
            vec![
                "-D".into(),
                data,
                "-w".into(),
                "-t".into(),
                "30".into(),
                "stop".into(),
                "-m".into(),
                "immediate".into(),
            ],
        )
    }

    /// Spawns the watchdog (see [`sys::spawn_watchdog`]): it stops the private PgBouncer, if
    /// any, and the server, then removes the folder.
    fn spawn_watchdog(&self) -> Result<Child, TestDbError> {
        let (pg_ctl, args) = self.stop_args();
        let bouncer_pid = sh_quote(&self.dir.join("pgbouncer.pid").to_string_lossy());
        let stop = format!(
            "if [ -f {bouncer_pid} ]; then kill \"$(cat {bouncer_pid})\" 2>/dev/null; fi; {}",
            self.run_as.shell_line(&pg_ctl, &args)
        );
        spawn_watchdog(&self.dir, &stop)
            .map_err(|e| TestDbError::io("spawning the cleanup watchdog (/bin/sh)", e))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.dir.join("pgbouncer.pid")) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let (pg_ctl, args) = self.stop_args();
            let _ = self
                .run_as
                .run(&pg_ctl, &args, Path::new("/"), "pg_ctl stop");
        }
        let removed = remove_dir(&self.dir);
        if let Some(mut watchdog) = self.watchdog.take() {
            if removed {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
            }
            // Otherwise leave it running: it retries the cleanup at exit.
        }
    }
}

/// `postgres://postgres@localhost:<port>/postgres?host=<dir>&sslmode=disable`.
///
/// sqlx (`PgConnectOptions::parse_from_url`) treats a `host` query parameter
/// starting with `/` as the socket folder and connects to
/// `<dir>/.s.PGSQL.<port>`; libpq does the same. The folder contains only
/// URL-safe characters (see `create_private_dir`), so no escaping is needed.
fn socket_url(dir: &Path, port: u16) -> String {
    format!(
        "postgres://postgres@localhost:{port}/postgres?host={}&sslmode=disable",
        dir.display()
    )
}

/// The error of a command that could not be run at all.
fn run_error((context, source): (String, io::Error)) -> TestDbError {
    TestDbError::io(context, source)
}

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// Finds the folder with `initdb` and `pg_ctl`.
pub(crate) fn find_bin_dir() -> Result<PathBuf, TestDbError> {
    let mut looked_in = Vec::new();

    // 1. pg_config --bindir
    match Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
            looked_in.push(format!(
                "{} (from `pg_config --bindir`; no initdb/pg_ctl there)",
                dir.display()
            ));
        }
        Ok(out) => looked_in.push(format!("`pg_config --bindir` (failed: {})", out.status)),
        Err(e) => looked_in.push(format!("`pg_config --bindir` ({e})")),
    }

    // 2. /usr/lib/postgresql/<version>/bin, highest version first
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (version_key(&name), entry.path().join("bin"))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    let mut found_any = false;
    for (_, dir) in versions {
        found_any = true;
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        looked_in.push(format!("{} (no initdb/pg_ctl)", dir.display()));
    }
    if !found_any {
        looked_in.push("/usr/lib/postgresql/*/bin (none)".into());
    }

    // 3. initdb on PATH
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if dir.join("initdb").is_file() {
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
            looked_in.push(format!("{} (initdb on PATH, but no pg_ctl)", dir.display()));
        }
    }
    looked_in.push("initdb on PATH (not found)".into());

    Err(TestDbError::BinariesNotFound { looked_in })
}

/// Numeric sort key for a version folder name such as `15` or `9.6`.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

fn initdb_supports_no_instructions(initdb: &str) -> bool {
    // initdb --help runs fine as root.
    Command::new(initdb)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--no-instructions"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{gone, is_safe_path, process_alive};

    #[test]
    fn selection_prefers_database_url() {
        let never = || -> Result<String, TestDbError> { panic!("must not start a cluster") };
        assert_eq!(
            select_url(Some("postgres://u@h:1/db".into()), never).unwrap(),
            "postgres://u@h:1/db"
        );
        let started = || Ok("started".to_string());
        assert_eq!(select_url(None, started).unwrap(), "started");
        assert_eq!(select_url(Some(String::new()), started).unwrap(), "started");
        assert_eq!(select_url(Some("  ".into()), started).unwrap(), "started");
        let failing = || Err(TestDbError::NoPostgresUser);
        assert!(matches!(
            select_url(None, failing),
            Err(TestDbError::NoPostgresUser)
        ));
    }

    #[test]
    fn errors_explain_how_to_provide_a_database() {
        let errors = [
            TestDbError::BinariesNotFound {
                looked_in: vec!["/usr/lib/postgresql/*/bin (none)".into()],
            },
            TestDbError::NoPostgresUser,
            TestDbError::CommandFailed {
                step: "initdb".into(),
                command: "initdb -D x".into(),
                status: "exit status: 1".into(),
                output: "initdb: error: boom".into(),
                log_tail: Some("FATAL: log line".into()),
            },
        ];
        for e in &errors {
            let text = e.to_string();
            assert!(text.contains("DATABASE_URL=postgres://"), "{text}");
            assert!(text.contains("initdb, pg_ctl"), "{text}");
        }
        let text = errors[0].to_string();
        assert!(
            text.contains("looked in: /usr/lib/postgresql/*/bin (none)"),
            "{text}"
        );
        let text = errors[2].to_string();
        assert!(text.contains("initdb: error: boom") && text.contains("FATAL: log line"));
    }

    #[test]
    fn sslmode_is_set_once() {
        assert_eq!(
            with_sslmode("postgres://h/db", "require"),
            "postgres://h/db?sslmode=require"
        );
        assert_eq!(
            with_sslmode(
                "postgres://h/db?sslmode=disable&application_name=x",
                "require"
            ),
            "postgres://h/db?application_name=x&sslmode=require"
        );
    }

    #[test]
    fn url_format() {
        assert_eq!(
            socket_url(Path::new("/tmp/tenancy-pg-1-2-abc"), 5432),
            "postgres://postgres@localhost:5432/postgres?host=/tmp/tenancy-pg-1-2-abc&sslmode=disable"
        );
        assert!(is_safe_path(Path::new("/tmp/tenancy-pg-1-2-abc")));
        assert!(!is_safe_path(Path::new("/tmp/with space")));
        assert!(!is_safe_path(Path::new("/tmp/quote'")));
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert!(version_key("9.6") < version_key("15"));
    }

    /// Runs `psql <url> -Atc <sql>` and returns its trimmed output.
    fn psql(bin_dir: &Path, url: &str, sql: &str) -> String {
        let out = Command::new(bin_dir.join("psql"))
            .args([url, "-X", "-Atc", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn cluster_starts_serves_and_cleans_up() {
        let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = cluster.socket_dir().to_owned();
        assert!(dir.join(format!(".s.PGSQL.{}", cluster.port)).exists());
        assert!(cluster.url().contains(&format!("host={}", dir.display())));

        assert_eq!(psql(cluster.bin_dir(), cluster.url(), "select 1"), "1");
        assert_eq!(
            psql(
                cluster.bin_dir(),
                cluster.url(),
                "select current_user || ' ' || current_database() || ' ' || \
                 current_setting('max_connections') || ' ' || current_setting('fsync') || ' ' || \
                 current_setting('listen_addresses') || '|' || \
                 pg_encoding_to_char(encoding) from pg_database where datname = 'postgres'"
            ),
            "postgres postgres 300 off 127.0.0.1|UTF8"
        );
        // TLS over TCP, with the certificate made at start when openssl is installed.
        assert_eq!(
            cluster.tls_url().is_some(),
            find_program("openssl").is_some(),
            "a certificate is made exactly when openssl is there"
        );
        if let Some(tls) = cluster.tls_url() {
            assert_eq!(
                psql(
                    cluster.bin_dir(),
                    &tls,
                    "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
                ),
                "t"
            );
        }
        // A private PgBouncer in front of it, in transaction mode, stopped with the cluster;
        // without the program, a typed error saying how to get it.
        let bouncer_pid = if find_program("pgbouncer").is_some() {
            let bouncer = cluster.start_pgbouncer().unwrap_or_else(|e| panic!("{e}"));
            assert!(bouncer.contains(":6432/"), "{bouncer}");
            assert_eq!(psql(cluster.bin_dir(), &bouncer, "select 1"), "1");
            let pid = fs::read_to_string(dir.join("pgbouncer.pid"))
                .unwrap()
                .trim()
                .to_owned();
            assert!(process_alive(&pid));
            Some(pid)
        } else {
            let err = cluster.start_pgbouncer().unwrap_err();
            assert!(
                matches!(&err, TestDbError::Missing { what, .. } if what == "PgBouncer"),
                "{err:?}"
            );
            assert!(
                err.to_string().contains("apt-get install pgbouncer"),
                "{err}"
            );
            None
        };

        let pidfile = fs::read_to_string(cluster.data_dir().join("postmaster.pid")).unwrap();
        let pid = pidfile.lines().next().unwrap().trim().to_owned();
        assert!(process_alive(&pid));

        drop(cluster);
        assert!(!dir.exists(), "{} still exists after drop", dir.display());
        // The postmaster removes its pid file (which `pg_ctl stop -w` waits
        // for) just before exiting; give it a moment to be gone and reaped.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while process_alive(&pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !process_alive(&pid),
            "postmaster {pid} still running after drop"
        );
        if let Some(bouncer_pid) = bouncer_pid {
            assert!(
                gone(&bouncer_pid, Duration::from_secs(5)),
                "pgbouncer {bouncer_pid} still running after drop"
            );
        }
    }

    #[test]
    fn database_url_is_shared_and_works() {
        let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(database_url)).collect();
        let urls: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert!(urls.iter().all(|u| u == &urls[0]), "{urls:?}");
        assert_eq!(database_url().unwrap(), urls[0]);

        if std::env::var(DATABASE_URL_ENV).map_or(true, |v| v.trim().is_empty()) {
            let cluster = SHARED.get().unwrap().as_ref().unwrap();
            assert_eq!(cluster.url(), urls[0]);
        }
        // Whichever it came from (DATABASE_URL or the private cluster), the URL connects and
        // answers a query, through the client the tests use.
        let answer: i32 = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&urls[0])
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", urls[0]));
                let answer = sqlx::query_scalar("SELECT 41 + 1")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                answer
            });
        assert_eq!(answer, 42);
    }
}
