//! The command's errors.

use std::path::PathBuf;

/// Everything the command can fail with. Its `Display` is one line; causes are reached through
/// `source()` and printed by [`crate::report::render_error`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Neither `--database-url` nor `DATABASE_URL` was given.
    #[error("no database URL: pass --database-url <URL> or set DATABASE_URL")]
    NoDatabaseUrl,

    /// The database URL's scheme names no database the command knows (`None`: it has no
    /// scheme). Only the scheme is shown, never the URL, which may hold a password.
    #[error(
        "{}: use {}",
        match .0 {
            Some(scheme) => format!("unsupported database URL scheme {scheme:?}"),
            None => "the database URL has no scheme".to_owned(),
        },
        schemes()
    )]
    Scheme(Option<String>),

    /// A PostgreSQL-only option was given with a MySQL / MariaDB URL.
    #[error("{0} is a PostgreSQL option; the database URL names another database")]
    PostgresOnly(&'static str),

    /// The migrations folder could not be read.
    #[error("cannot load the tenant migrations from {}", path.display())]
    Migrations {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// `--registry` is not a valid schema name.
    #[error("invalid --registry {name:?}")]
    Registry {
        /// The name given.
        name: String,
        /// The naming rule it broke.
        #[source]
        source: tenancy_core::Error,
    },

    /// A Citus-only command (`placement`, `move`) was given with a URL of another database
    /// than PostgreSQL.
    #[error("{0} needs Citus (a postgres:// URL of a Citus coordinator); the database URL names another database")]
    CitusOnly(&'static str),

    /// A `--fleet` value is not `NAME=URL` with a postgres:// or mysql:// URL, or the values
    /// name two backends (only the name is shown, never the URL, which may hold a password).
    #[error("--fleet takes NAME=URL with a postgres:// or mysql:// URL: {0}")]
    Fleet(String),

    /// A command a fleet does not run, or a fleet's command without --fleet.
    #[error("{0}")]
    FleetCommand(&'static str),

    /// The first connection failed.
    #[error("cannot connect to the database")]
    Connect(#[source] tenancy_core::DatabaseError),

    /// `--lock-timeout` was not a positive number of seconds.
    #[error("--lock-timeout must be a positive number of seconds, not {0}")]
    LockTimeout(f64),

    /// The first connection did not complete in time.
    #[error("cannot connect to the database: no answer within {} seconds", .0.as_secs())]
    ConnectTimeout(std::time::Duration),

    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("cannot write to stdout")]
    Output(#[from] std::io::Error),

    /// A tenancy operation failed.
    #[error(transparent)]
    Tenancy(#[from] tenancy_core::Error),

    /// Some tenants of an `--all` run failed (each was printed already).
    #[error("{failed} of {total} tenants failed")]
    TenantsFailed {
        /// How many failed.
        failed: usize,
        /// How many tenants there are.
        total: usize,
    },

    /// A dry run found tenants whose migration would fail (each was printed already).
    #[error("{failed} of {total} tenants would fail to migrate")]
    WouldFail {
        /// How many would fail.
        failed: usize,
        /// How many tenants were checked.
        total: usize,
    },
}

impl CliError {
    /// The process exit code for this error: 2 for a usage error, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NoDatabaseUrl
            | CliError::LockTimeout(_)
            | CliError::Scheme(_)
            | CliError::PostgresOnly(_)
            | CliError::CitusOnly(_)
            | CliError::Fleet(_)
            | CliError::FleetCommand(_) => 2,
            _ => 1,
        }
    }
}

/// The accepted schemes as words: `postgres://, postgresql://, mysql:// or mariadb://`.
fn schemes() -> String {
    let (last, rest) = crate::url::SCHEMES.split_last().expect("schemes");
    format!("{} or {last}", rest.join(", "))
}
