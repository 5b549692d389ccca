//! Why a server could not be provided: [`TestDbError`], whose message always says how to
//! provide one.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::mysql::MYSQL_URL_ENV;
use crate::postgres::DATABASE_URL_ENV;

/// How to provide a database; appended to every error message.
const HOW_TO: &str = "to run the tests, either set DATABASE_URL=postgres://user@host:port/db \
(the tests create and drop their own uniquely named schemas in it), or install the PostgreSQL \
server binaries (initdb, pg_ctl, postgres; e.g. `apt-get install postgresql`) so the tests can \
start a private throwaway cluster";

/// How to provide a MySQL / MariaDB server; appended to its errors.
const MYSQL_HOW_TO: &str =
    "to run the MySQL tests, either set MYSQL_URL=mysql://user@host:port/db \
(a server where the user may create databases), or install the MariaDB or MySQL server \
(mariadbd and mariadb-install-db, or mysqld; e.g. `apt-get install mariadb-server`) so the tests \
can start a private throwaway server";

/// Why no PostgreSQL database could be provided.
///
/// Every variant's [`Display`](fmt::Display) explains how to make a database
/// available (set `DATABASE_URL`, or install the server binaries) and, for
/// failures while starting a private cluster, includes the tail of the
/// failing command's output and of the server log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TestDbError {
    /// `DATABASE_URL` is set but is not valid UTF-8.
    InvalidDatabaseUrl,
    /// Another of the variables naming a server (`MYSQL_URL`, `PGBOUNCER_URL`, `CITUS_URL`, ...)
    /// is set but is not valid UTF-8.
    NotUnicode {
        /// The variable.
        variable: &'static str,
    },
    /// `DATABASE_URL` is unset and no PostgreSQL server binaries were found.
    BinariesNotFound {
        /// Every place that was searched, with the reason it was rejected.
        looked_in: Vec<String>,
    },
    /// The process runs as root, so the cluster must run as the `postgres`
    /// operating-system user, but there is no such user.
    NoPostgresUser,
    /// The process runs as root, but neither `runuser` nor `su` is available
    /// to switch to the `postgres` user.
    NoUserSwitchTool,
    /// No temporary folder could be created that the server can use.
    NoUsableTempDir {
        /// The candidate parent folders and why each was rejected.
        tried: Vec<String>,
    },
    /// An I/O operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: Arc<io::Error>,
    },
    /// A test needs a service the database does not provide (TLS over TCP, PgBouncer), and
    /// it cannot be provided here.
    Missing {
        /// What is missing, e.g. `"PgBouncer"`.
        what: String,
        /// How to provide it.
        how: String,
    },
    /// `MYSQL_URL` is unset and no private MySQL / MariaDB server could be started.
    NoMysql {
        /// Why: what is missing, or the step that failed with its output and the server log's
        /// tail.
        reason: String,
    },
    /// An external command (`initdb`, `pg_ctl`, ...) failed.
    CommandFailed {
        /// What the command was for, e.g. `"initdb"`.
        step: String,
        /// The command line that was run.
        command: String,
        /// Exit status, as text.
        status: String,
        /// Tail of the command's standard error and standard output.
        output: String,
        /// Tail of the server log file, if one was written.
        log_tail: Option<String>,
    },
}

impl TestDbError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TestDbError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

impl fmt::Display for TestDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestDbError::Missing { what, how } => {
                return write!(f, "no {what} available for the tests: {how}");
            }
            TestDbError::NotUnicode { variable } => {
                return write!(f, "{variable} is set but is not valid UTF-8");
            }
            TestDbError::NoMysql { reason } => {
                return write!(
                    f,
                    "no MySQL/MariaDB available for the tests: {MYSQL_URL_ENV} is not set, and \
                     {reason}\n{MYSQL_HOW_TO}"
                );
            }
            _ => {}
        }
        f.write_str("no PostgreSQL available for the tests: ")?;
        match self {
            TestDbError::InvalidDatabaseUrl => {
                write!(f, "{DATABASE_URL_ENV} is set but is not valid UTF-8")?;
            }
            TestDbError::BinariesNotFound { looked_in } => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set and the PostgreSQL server binaries \
                     (initdb, pg_ctl) were not found; looked in: {}",
                    looked_in.join("; ")
                )?;
            }
            TestDbError::NoPostgresUser => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set, and a private cluster cannot be started: \
                     this process runs as root, PostgreSQL refuses to run as root, and there \
                     is no `postgres` operating-system user to run it as (create one, e.g. \
                     `useradd --system postgres`, or run the tests as a non-root user)"
                )?;
            }
            TestDbError::NoUserSwitchTool => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set, and a private cluster cannot be started: \
                     this process runs as root, PostgreSQL refuses to run as root, and neither \
                     `runuser` nor `su` was found to run it as the `postgres` user"
                )?;
            }
            TestDbError::NoUsableTempDir { tried } => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set, and no temporary folder usable by the \
                     PostgreSQL server could be created; tried: {}",
                    tried.join("; ")
                )?;
            }
            TestDbError::Io { context, source } => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set, and starting a private cluster failed: \
                     {context}: {source}"
                )?;
            }
            TestDbError::Missing { .. }
            | TestDbError::NoMysql { .. }
            | TestDbError::NotUnicode { .. } => {
                unreachable!("written above")
            }
            TestDbError::CommandFailed {
                step,
                command,
                status,
                output,
                log_tail,
            } => {
                write!(
                    f,
                    "{DATABASE_URL_ENV} is not set, and starting a private cluster failed: \
                     {step} failed ({status})\n  command: {command}"
                )?;
                if !output.trim().is_empty() {
                    write!(f, "\n  output:\n{}", indent(output))?;
                }
                if let Some(log) = log_tail {
                    if !log.trim().is_empty() {
                        write!(f, "\n  server log (tail):\n{}", indent(log))?;
                    }
                }
            }
        }
        write!(f, "\n{HOW_TO}")
    }
}

impl std::error::Error for TestDbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestDbError::Io { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// `text` indented by four spaces, for a tail of output inside a message.
pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
