//! The MySQL / MariaDB server of the tests, the way [`postgres`](crate::postgres) provides
//! PostgreSQL's: `MYSQL_URL` if set, otherwise a private throwaway [`MysqlServer`] started from
//! the installed `mariadbd` or `mysqld` in a temporary folder, on a free port of 127.0.0.1. The
//! private server speaks TLS too, with certificates made by `openssl` when it starts
//! ([`tls_mysql_url`]).

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sys::{
    create_private_dir, file_tail, find_program, free_port, remove_dir, sh_quote, spawn_watchdog,
    tail, RunAs, RunAsError,
};
use crate::{env_url, TestDbError};

/// Name of the environment variable that selects an existing MySQL / MariaDB server.
pub const MYSQL_URL_ENV: &str = "MYSQL_URL";

/// Name of the environment variable that selects an existing MySQL / MariaDB server with TLS.
pub const MYSQL_TLS_URL_ENV: &str = "MYSQL_TLS_URL";

/// The socket file of a private server.
const SOCKET: &str = "mysql.sock";

/// How long the server may take to accept connections once started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The process-wide private server, started on first use and never dropped (its watchdog
/// removes it when the process exits).
static SHARED: OnceLock<Result<MysqlServer, TestDbError>> = OnceLock::new();

/// Returns the URL of the MySQL / MariaDB server the tests should use.
///
/// `MYSQL_URL` if it is set and not blank. Otherwise a private throwaway server
/// ([`MysqlServer::start`]) is started on the first call (once per process; concurrent callers
/// wait for it) and every call returns the same URL for it,
/// `mysql://root@127.0.0.1:<port>/test`: user `root` without a password, who may create
/// databases, and an empty database `test`.
///
/// If starting the server fails, every later call returns the same error.
///
/// # Errors
///
/// [`TestDbError::NoMysql`], saying why and how to provide a server, when `MYSQL_URL` is unset
/// and no private server could be started.
pub fn mysql_url() -> Result<String, TestDbError> {
    if let Some(url) = env_url(MYSQL_URL_ENV)? {
        return Ok(url);
    }
    shared_server().map(|server| server.url().to_owned())
}

/// A URL of a MySQL / MariaDB server that connects over TLS (`ssl-mode=required`), with the
/// certificate of the CA that signed the server's certificate as its `ssl-ca`: switching the
/// parsed options to `VerifyCa` verifies the server without another setting.
///
/// `MYSQL_TLS_URL` if it is set and not blank, unchanged (for the tests that verify, it should
/// name the server's CA with `ssl-ca=`). Otherwise the private server of [`mysql_url`], started
/// on the first call if it is not running yet, **even when `MYSQL_URL` is set**: a
/// distribution's MariaDB has TLS off until it is given a certificate (Debian 12's 10.11 says
/// `have_ssl = DISABLED`), and the tests leave the machine's server alone. The private server
/// has a CA and a server certificate it signed (for `127.0.0.1` and `localhost`), made by
/// `openssl` when it starts.
///
/// # Errors
///
/// [`TestDbError::NoMysql`] when no private server could be started;
/// [`TestDbError::Missing`] when it has no certificate (`openssl` was not found or failed).
pub fn tls_mysql_url() -> Result<String, TestDbError> {
    if let Some(url) = env_url(MYSQL_TLS_URL_ENV)? {
        return Ok(url);
    }
    shared_server()?
        .tls_url()
        .ok_or_else(|| TestDbError::Missing {
            what: "TLS on MySQL / MariaDB".into(),
            how: format!(
                "openssl was not found, or failed, to make certificates for the private server; \
                 install it (e.g. `apt-get install openssl`), or set {MYSQL_TLS_URL_ENV} to a \
                 server with TLS (`ssl-mode=required&ssl-ca=<its CA>`)"
            ),
        })
}

/// The process-wide private server, started on the first call.
fn shared_server() -> Result<&'static MysqlServer, TestDbError> {
    SHARED
        .get_or_init(MysqlServer::start)
        .as_ref()
        .map_err(Clone::clone)
}

/// A pool of at most `max_connections` connections to [`mysql_url`] (feature `mysql`).
///
/// # Panics
///
/// With the reason and how to provide a server, when there is none or it cannot be reached:
/// this is for tests.
#[cfg(feature = "mysql")]
pub async fn pool(max_connections: u32) -> sqlx::MySqlPool {
    let url = mysql_url().unwrap_or_else(|e| panic!("{e}"));
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(max_connections)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach MySQL/MariaDB at {url} ({e}): start it, or point MYSQL_URL at a \
                 server where the user may create databases"
            )
        })
}

/// Which server the programs found are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// MariaDB: its data folder is made by `mariadb-install-db` (or `mysql_install_db`).
    MariaDb,
    /// MySQL 5.7+: its data folder is made by `mysqld --initialize-insecure`.
    MySql,
}

/// The server program and how to make its data folder.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// `mariadbd` or `mysqld`.
    pub(crate) server: String,
    pub(crate) flavour: Flavour,
    /// `mariadb-install-db` / `mysql_install_db` (MariaDB only).
    install: Option<String>,
}

/// Finds the server program (`mariadbd`, else `mysqld`) and, for MariaDB, the program that
/// makes its data folder; the reason otherwise.
pub(crate) fn find_programs() -> Result<Programs, String> {
    let (server, mariadb_by_name) = match find_program("mariadbd") {
        Some(server) => (server, true),
        None => match find_program("mysqld") {
            Some(server) => (server, false),
            None => {
                return Err(
                    "neither `mariadbd` nor `mysqld` was found (on PATH, in /usr/sbin, \
                            /usr/local/sbin, ...)"
                        .into(),
                )
            }
        },
    };
    // Debian's `mysqld` is often MariaDB's; its version line says so.
    let mariadb = mariadb_by_name
        || Command::new(&server)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("MariaDB"));
    if !mariadb {
        return Ok(Programs {
            server,
            flavour: Flavour::MySql,
            install: None,
        });
    }
    let install = find_program("mariadb-install-db")
        .or_else(|| find_program("mysql_install_db"))
        .ok_or_else(|| {
            format!(
                "{server} was found but not `mariadb-install-db` (or `mysql_install_db`), which \
                 makes a server's data folder"
            )
        })?;
    Ok(Programs {
        server,
        flavour: Flavour::MariaDb,
        install: Some(install),
    })
}

/// How the server's programs are run: as root, as the `mysql` user.
pub(crate) fn run_as() -> Result<RunAs, String> {
    RunAs::detect("mysql").map_err(|e| match e {
        RunAsError::NoUser => "this process runs as root, the server refuses to run as root, and \
                               there is no `mysql` operating-system user to run it as (create \
                               one, e.g. `useradd --system mysql`, or run the tests as another \
                               user)"
            .to_owned(),
        RunAsError::NoTool => "this process runs as root, the server refuses to run as root, and \
                               neither `runuser` nor `su` was found to run it as the `mysql` \
                               user"
            .to_owned(),
    })
}

/// A private, throwaway MySQL / MariaDB server in its own temporary folder, on a free TCP port
/// of 127.0.0.1 (and a Unix socket in the folder).
///
/// User `root` connects without a password over TCP and may do anything; the database `test`
/// exists and is empty. The server runs without durability (`innodb_flush_log_at_trx_commit =
/// 0`, no doublewrite buffer, no binary log) and with `utf8mb4` as its character set, as a
/// distribution's configuration sets it. When `openssl` is installed it also speaks TLS
/// ([`tls_url`](Self::tls_url)), with a server certificate signed by a CA of its own
/// ([`ca_file`](Self::ca_file)); plain connections work as well. Dropping the value kills the
/// server and removes the folder; should the process die without dropping it (a panic that
/// aborts, a `kill -9`), a detached watchdog process does the same shortly after the process
/// exits.
#[derive(Debug)]
pub struct MysqlServer {
    dir: PathBuf,
    programs: Programs,
    run_as: RunAs,
    port: u16,
    url: String,
    /// Whether the server has its certificates (made with `openssl` before it starts).
    tls: bool,
    server: Option<Child>,
    watchdog: Option<Child>,
}

impl MysqlServer {
    /// Creates and starts a new private server, whether `MYSQL_URL` is set or not.
    ///
    /// This makes a data folder (`mariadb-install-db`, or `mysqld --initialize-insecure` for
    /// MySQL; a few seconds), starts the server and waits until it is ready for connections (at
    /// most 60 seconds). As root, both run as the `mysql` operating-system user.
    ///
    /// # Errors
    ///
    /// [`TestDbError::NoMysql`] if the programs are missing, the process runs as root without
    /// a usable `mysql` user, or a step fails (with its output and the server log's tail).
    pub fn start() -> Result<MysqlServer, TestDbError> {
        let no = |reason: String| TestDbError::NoMysql { reason };
        let programs = find_programs().map_err(no)?;
        let run_as = run_as().map_err(no)?;
        let dir = create_private_dir(&run_as, "tenancy-my", SOCKET).map_err(|tried| {
            no(format!(
                "no temporary folder usable by the server could be created; tried: {}",
                tried.join("; ")
            ))
        })?;
        let port =
            free_port().map_err(|e| no(format!("finding a free TCP port on 127.0.0.1: {e}")))?;
        let mut server = MysqlServer {
            url: format!("mysql://root@127.0.0.1:{port}/test"),
            dir,
            programs,
            run_as,
            port,
            tls: false,
            server: None,
            watchdog: None,
        };
        // From here on, `Drop` cleans up on every error path; the watchdog first, so that even
        // a process killed while the data folder is made leaves nothing behind.
        server.watchdog = Some(
            spawn_watchdog(&server.dir, &server.stop_line())
                .map_err(|e| no(format!("spawning the cleanup watchdog (/bin/sh): {e}")))?,
        );
        server.install()?;
        server.tls = server.make_certificates();
        server.launch()?;
        server.wait_ready()?;
        Ok(server)
    }

    /// The connection URL, `mysql://root@127.0.0.1:<port>/test`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A URL connecting over TLS, `mysql://root@127.0.0.1:<port>/test?ssl-mode=required&ssl-ca=<CA>`,
    /// if the server has certificates (made with `openssl` when it started). The CA is not
    /// used under `required`; it is there for a switch to `VerifyCa` or `VerifyIdentity`.
    pub fn tls_url(&self) -> Option<String> {
        self.tls.then(|| {
            format!(
                "{}?ssl-mode=required&ssl-ca={}",
                self.url,
                self.ca_file().display()
            )
        })
    }

    /// The certificate of the CA that signed the server's certificate (`ca.pem` in its folder;
    /// there only when it has certificates, see [`tls_url`](Self::tls_url)).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private temporary folder holding the data folder, the socket and the log.
    /// Removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's error log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.err")
    }

    /// The server program used (`mariadbd` or `mysqld`).
    pub fn program(&self) -> &str {
        &self.programs.server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("server.pid")
    }

    fn path_arg(option: &str, path: &Path) -> String {
        format!("--{option}={}", path.display())
    }

    /// Makes a CA (`ca.pem`) and a server certificate it signed (`server.pem`, `server.key`,
    /// valid for `127.0.0.1` and `localhost`) in the folder, as the server's user so that it
    /// may read them; false if `openssl` is missing or fails (the server then has no TLS).
    fn make_certificates(&self) -> bool {
        let Some(openssl) = find_program("openssl") else {
            return false;
        };
        let extensions = self.dir.join("server.ext");
        // A server's certificate, not a CA's, so that it verifies only through the CA.
        let written = fs::write(
            &extensions,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .and_then(|()| fs::set_permissions(&extensions, fs::Permissions::from_mode(0o644)));
        if written.is_err() {
            return false;
        }
        let file = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let steps: [Vec<String>; 3] = [
            // The CA, self-signed.
            vec![
                "req".into(),
                "-x509".into(),
                "-newkey".into(),
                "rsa:2048".into(),
                "-nodes".into(),
                "-days".into(),
                "7".into(),
                "-subj".into(),
                "/CN=tenancy-testdb CA".into(),
                "-addext".into(),
                "basicConstraints=critical,CA:TRUE".into(),
                "-addext".into(),
                "keyUsage=critical,keyCertSign,cRLSign".into(),
                "-keyout".into(),
                file("ca.key"),
                "-out".into(),
                file("ca.pem"),
            ],
            // The server's key and signing request...
            vec![
                "req".into(),
                "-new".into(),
                "-newkey".into(),
                "rsa:2048".into(),
                "-nodes".into(),
                "-subj".into(),
                "/CN=localhost".into(),
                "-keyout".into(),
                file("server.key"),
                "-out".into(),
                file("server.csr"),
            ],
            // ...signed by the CA (`x509 -req` with `-extfile`, which OpenSSL 1.1 has too).
            vec![
                "x509".into(),
                "-req".into(),
                "-in".into(),
                file("server.csr"),
                "-CA".into(),
                file("ca.pem"),
                "-CAkey".into(),
                file("ca.key"),
                "-set_serial".into(),
                "2".into(),
                "-days".into(),
                "7".into(),
                "-extfile".into(),
                extensions.to_string_lossy().into_owned(),
                "-out".into(),
                file("server.pem"),
            ],
        ];
        steps.iter().all(|args| {
            self.run_as
                .run(&openssl, args, &self.dir, "openssl")
                .is_ok_and(|out| out.status.success())
        })
    }

    /// Makes the data folder. Its temporary folder is the server's own: the bootstrap server
    /// deletes every `#sql…` file of its temporary folder it may, and in the system's it took
    /// the live temporary tables of the machine's server (run as the same user), whose query
    /// then failed ("Error on delete of '/tmp/#sql-temptable-….MAI' (Errcode: 2)").
    fn install(&self) -> Result<(), TestDbError> {
        let data = Self::path_arg("datadir", &self.data_dir());
        let tmpdir = Self::path_arg("tmpdir", &self.dir);
        let (program, args) = match (&self.programs.flavour, &self.programs.install) {
            (Flavour::MariaDb, Some(install)) => (
                install.clone(),
                vec![
                    "--no-defaults".to_owned(),
                    data,
                    "--auth-root-authentication-method=normal".into(),
                    "--skip-test-db".into(),
                    "--skip-name-resolve".into(),
                    tmpdir,
                ],
            ),
            _ => (
                self.programs.server.clone(),
                vec![
                    "--no-defaults".to_owned(),
                    "--initialize-insecure".into(),
                    data,
                    Self::path_arg("log-error", &self.log_file()),
                    tmpdir,
                ],
            ),
        };
        let out = self
            .run_as
            .run(&program, &args, &self.dir, "making the data folder")
            .map_err(|(context, e)| TestDbError::NoMysql {
                reason: format!("{context}: {e}"),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        Err(self.failed(
            &format!(
                "making the data folder failed ({}): {}",
                out.status,
                self.run_as.shell_line(&program, &args)
            ),
            &output,
        ))
    }

    /// Starts the server in the background, in its own process group.
    fn launch(&mut self) -> Result<(), TestDbError> {
        // Run once at every start: root may connect over TCP, and `test` exists.
        let init = self.dir.join("init.sql");
        fs::write(
            &init,
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n\
             CREATE DATABASE IF NOT EXISTS test;\n",
        )
        .map_err(|e| TestDbError::NoMysql {
            reason: format!("writing {}: {e}", init.display()),
        })?;
        // `--no-defaults` must come first: the machine's option files are not read.
        let mut args = vec![
            "--no-defaults".to_owned(),
            Self::path_arg("datadir", &self.data_dir()),
            Self::path_arg("socket", &self.dir.join(SOCKET)),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            Self::path_arg("pid-file", &self.pid_file()),
            Self::path_arg("log-error", &self.log_file()),
            Self::path_arg("init-file", &init),
            Self::path_arg("tmpdir", &self.dir),
            "--skip-name-resolve".into(),
            "--skip-log-bin".into(),
            "--max-connections=500".into(),
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--character-set-server=utf8mb4".into(),
            "--collation-server=utf8mb4_general_ci".into(),
        ];
        if self.tls {
            args.push(Self::path_arg("ssl-ca", &self.ca_file()));
            args.push(Self::path_arg("ssl-cert", &self.dir.join("server.pem")));
            args.push(Self::path_arg("ssl-key", &self.dir.join("server.key")));
        }
        match self.programs.flavour {
            Flavour::MariaDb => args.push("--innodb-doublewrite=0".into()),
            // The X protocol plugin would listen on 33060, a fixed port.
            Flavour::MySql => args.push("--mysqlx=OFF".into()),
        }
        let log =
            fs::File::create(self.dir.join("server.out")).map_err(|e| TestDbError::NoMysql {
                reason: format!("creating {}/server.out: {e}", self.dir.display()),
            })?;
        let stderr = log.try_clone().map_err(|e| TestDbError::NoMysql {
            reason: format!("creating {}/server.out: {e}", self.dir.display()),
        })?;
        let child = self
            .run_as
            .command(&self.programs.server, &args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Own process group: a Ctrl-C aimed at the test runner leaves it to the watchdog,
            // which kills the whole group.
            .process_group(0)
            .spawn()
            .map_err(|e| TestDbError::NoMysql {
                reason: format!(
                    "starting the server ({}): {e}",
                    self.run_as.shell_line(&self.programs.server, &args)
                ),
            })?;
        // For the watchdog, which was started before the server.
        let group = self.dir.join("server.pgid");
        let written = fs::write(&group, child.id().to_string());
        self.server = Some(child);
        written.map_err(|e| TestDbError::NoMysql {
            reason: format!("writing {}: {e}", group.display()),
        })
    }

    /// Waits until the server says it is ready for connections and accepts one on its port.
    fn wait_ready(&mut self) -> Result<(), TestDbError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.server.as_mut().map(Child::try_wait) {
                let out = fs::read_to_string(self.dir.join("server.out")).unwrap_or_default();
                return Err(self.failed(&format!("the server exited at start ({status})"), &out));
            }
            let ready = file_tail(&self.log_file(), 1000)
                .is_some_and(|log| log.contains("ready for connections"));
            if ready && self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failed(
                    &format!(
                        "the server was not ready for connections within {} s",
                        READY_TIMEOUT.as_secs()
                    ),
                    "",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers on its port (a MySQL server speaks first: its greeting).
    fn answers(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port))
            .and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut greeting = [0u8; 4];
                stream.read_exact(&mut greeting)
            })
            .is_ok()
    }

    /// A [`TestDbError::NoMysql`] for a failed step, with `output` and the log's tail.
    fn failed(&self, what: &str, output: &str) -> TestDbError {
        let mut reason = format!("starting a private server failed: {what}");
        if !output.trim().is_empty() {
            reason.push_str(&format!(
                "\n  output:\n{}",
                crate::error::indent(&tail(output, 30))
            ));
        }
        if let Some(log) = file_tail(&self.log_file(), 30).filter(|l| !l.trim().is_empty()) {
            reason.push_str(&format!(
                "\n  server log (tail):\n{}",
                crate::error::indent(&log)
            ));
        }
        TestDbError::NoMysql { reason }
    }

    /// A shell line that kills the server (its process group, and the process of its pid file)
    /// and waits for it to be gone. Its data is thrown away, so there is no clean shutdown.
    fn stop_line(&self) -> String {
        let group = sh_quote(&self.dir.join("server.pgid").to_string_lossy());
        let pid_file = sh_quote(&self.pid_file().to_string_lossy());
        format!(
            "if [ -f {group} ]; then kill -KILL -- \"-$(cat {group})\" 2>/dev/null; fi; \
             if [ -f {pid_file} ]; then pid=$(cat {pid_file}); kill -KILL \"$pid\" \
             2>/dev/null; i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 100 ] \
             && [ \"$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -c1)\" != Z ]; do \
             sleep 0.1; i=$((i+1)); done; fi"
        )
    }

    /// Kills the server and waits for it (a killed process that is still a zombie of ours has
    /// closed its files already).
    fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("/bin/sh")
            .arg("-c")
            .arg(self.stop_line())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for MysqlServer {
    fn drop(&mut self) {
        self.stop();
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

/// Why no private MySQL / MariaDB server can start here, if none can.
#[cfg(test)]
pub(crate) fn mysql_missing() -> Option<String> {
    find_programs().and_then(|_| run_as().map(|_| ())).err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{gone, process_alive};

    #[test]
    fn mysql_server_starts_serves_and_cleans_up() {
        if let Some(why) = mysql_missing() {
            // Without the programs, a typed error that says what is missing and how to help it.
            let err = MysqlServer::start().unwrap_err();
            assert!(matches!(err, TestDbError::NoMysql { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains(&why) && text.contains("MYSQL_URL=mysql://"),
                "{text}"
            );
            return;
        }
        let server = MysqlServer::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = server.dir().to_owned();
        assert_eq!(
            server.url(),
            format!("mysql://root@127.0.0.1:{}/test", server.port())
        );
        let pid = fs::read_to_string(dir.join("server.pid"))
            .unwrap()
            .trim()
            .to_owned();
        assert!(process_alive(&pid));
        // Root connects over TCP without a password, may create databases, and the server
        // speaks utf8mb4 like a distribution's.
        let (user, charset, database) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::MySqlConnection::connect(server.url())
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server.url()));
                let row: (String, String, String) =
                    sqlx::query_as("SELECT CURRENT_USER(), @@character_set_server, DATABASE()")
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                sqlx::raw_sql(
                    "CREATE DATABASE tenancy_testdb_check; \
                     CREATE TABLE tenancy_testdb_check.t (name VARCHAR(10)); \
                     INSERT INTO tenancy_testdb_check.t VALUES ('ä'); \
                     DROP DATABASE tenancy_testdb_check",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
                row
            });
        assert_eq!(
            (user.as_str(), charset.as_str(), database.as_str()),
            ("root@127.0.0.1", "utf8mb4", "test")
        );
        // TLS on the same port, with the certificates made at start when openssl is there; a
        // connection verifying the server with the CA in the URL (and the name 127.0.0.1) is
        // encrypted.
        assert_eq!(
            server.tls_url().is_some(),
            find_program("openssl").is_some(),
            "certificates are made exactly when openssl is there"
        );
        if let Some(tls) = server.tls_url() {
            assert!(server.ca_file().is_file());
            let cipher = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::{ConnectOptions, Connection};
                    let options: sqlx::mysql::MySqlConnectOptions = tls.parse().unwrap();
                    let mut conn = options
                        .ssl_mode(sqlx::mysql::MySqlSslMode::VerifyIdentity)
                        .connect()
                        .await
                        .unwrap_or_else(|e| panic!("cannot connect to {tls}: {e}"));
                    let (_, cipher): (String, String) =
                        sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                            .fetch_one(&mut conn)
                            .await
                            .unwrap();
                    conn.close().await.unwrap();
                    cipher
                });
            assert!(!cipher.is_empty(), "the connection is not encrypted");
        }
        drop(server);
        assert!(!dir.exists(), "{} still exists after drop", dir.display());
        assert!(
            gone(&pid, Duration::from_secs(5)),
            "server {pid} still running after drop"
        );
    }
}
