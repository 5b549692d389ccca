//! The command line: clap types only, no behaviour.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// `tenancy`: manage the tenant schemas of a PostgreSQL database (or the tenant databases of a
/// MySQL / MariaDB server).
#[derive(Debug, Parser)]
#[command(
    name = "tenancy",
    version,
    about = "Manage tenants: a schema each on PostgreSQL, a database each on MySQL/MariaDB, a \
        database file each on SQLite. \
        Create, clone, export, import, drop, rename, list, migrate.",
    long_about = "Manage tenants: a schema each on PostgreSQL, a database each on MySQL/MariaDB, a \
        database file each on SQLite. \
        Create, clone, export, import, drop, rename, list, migrate.\n\n\
        The URL's scheme picks the backend: postgres:// or postgresql://, mysql:// or mariadb://, sqlite:///path/to/folder (a database file per tenant).\n\n\
        Only schemas (databases, files) created through tenancy, recorded in the registry, are tenants; \
        others are never listed, migrated or dropped.\n\n\
        Results go to stdout, errors to stderr. The exit code is 0 on success, 1 on failure \
        (for --all runs: if any tenant failed) and 2 on a usage error."
)]
pub struct Cli {
    /// Database URL: postgres://user:password@host/db (`?sslmode=require` for TLS) or
    /// mysql://user:password@host/db (also mariadb://) or sqlite:///path/to/folder. Optional
    /// when DATABASE_URL is set.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Folder of the tenant migrations (sqlx file naming: `1_init.sql`, or
    /// `2_badge.up.sql` with `2_badge.down.sql`).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "migrations/tenant",
        global = true
    )]
    pub migrations: PathBuf,

    /// Schema (MySQL: database) holding the registry of tenants and their applied migrations.
    #[arg(long, value_name = "SCHEMA", default_value = tenancy_core::DEFAULT_REGISTRY, global = true)]
    pub registry: String,

    /// PostgreSQL only: the server is reached through PgBouncer in transaction mode, so no
    /// prepared statement outlives its transaction (as `?pgbouncer=true` on the URL says).
    #[arg(long, global = true)]
    pub pgbouncer: bool,

    /// Give up on a tenant after waiting this many seconds for a lock on it (e.g. behind a
    /// long transaction reading its tables); by default wait.
    #[arg(long, value_name = "SECONDS", global = true)]
    pub lock_timeout: Option<f64>,

    /// A database of a fleet, `NAME=URL` (all postgres:// or all mysql:// URLs); repeat it for
    /// each database, the
    /// first the home (whose registry maps each tenant to its database). With it, every
    /// command runs on the fleet (`create` puts a tenant in the database with the fewest) and
    /// `move <NAME> --to <DATABASE>` moves a tenant between them (PostgreSQL);
    /// --database-url is not used.
    #[arg(long = "fleet", value_name = "NAME=URL", global = true)]
    pub fleet: Vec<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a tenant: its schema (MySQL: database) plus every migration, all or nothing. With
    /// `--in <container>`: a row-level tenant, its rows in that tenant's tables (a registry row,
    /// no DDL).
    Create {
        /// The tenant name: `[a-z_][a-z0-9_]*`, at most 63 bytes, not reserved.
        name: String,
        /// The tenant whose tables hold this tenant's rows (models with a tenant column).
        #[arg(long = "in", value_name = "CONTAINER")]
        container: Option<String>,
    },
    /// Give a row-level tenant (`create --in`) a schema of its own: made and migrated, its rows
    /// moved in from the shared tables (PostgreSQL: one transaction; MySQL: the database made
    /// first, the rows moved in one transaction; SQLite: a file of its own, every write to the
    /// shared file held meanwhile; Citus: a distributed schema, every write to the shared
    /// tables held meanwhile). Its updates and deletes wait while it runs.
    Promote {
        /// The row-level tenant.
        name: String,
    },
    /// Move a tenant's rows into another tenant's tables (the tenant column set to its name) and
    /// drop its own schema (database, file): the reverse of `promote`.
    Demote {
        /// The tenant with a schema of its own.
        name: String,
        /// The tenant whose tables take its rows.
        #[arg(long = "into", value_name = "CONTAINER")]
        container: String,
    },
    /// Drop a tenant and everything in its schema (database). Refuses those that are not
    /// tenants.
    Drop {
        /// The tenant to drop.
        name: String,
    },
    /// Create a tenant as a copy of another (e.g. a template holding seed data): the same
    /// tables, rows and migration history, copied on the server, all or nothing. The source
    /// must have every migration applied (migrate it first).
    Clone {
        /// The tenant to copy.
        from: String,
        /// The new tenant's name.
        to: String,
    },
    /// Write one tenant to stdout as a tenant archive (`tenancy export acme > acme.tenant`):
    /// every table with every row, and its migration history, read from one consistent view;
    /// versioned JSON lines, streamed. Prints what it wrote to stderr.
    Export {
        /// The tenant to export.
        name: String,
    },
    /// Create a tenant from a tenant archive on stdin (`tenancy import acme < acme.tenant`),
    /// all or nothing: made and migrated with these migrations, then filled with the rows. The
    /// archive may come from another backend (SQLite to PostgreSQL) where the column types map.
    /// A cut, changed or foreign archive is refused and nothing is created.
    Import {
        /// The new tenant's name.
        name: String,
    },
    /// Rename a tenant, keeping its data and migration history.
    Rename {
        /// The current name.
        old: String,
        /// The new name.
        new: String,
    },
    /// Print every tenant, one name per line, sorted.
    List,
    /// Apply pending migrations to one tenant or to all of them.
    Migrate(MigrateArgs),
    /// Revert migrations above a version with their down migrations.
    Rollback(RollbackArgs),
    /// Print each tenant's applied, pending and changed migrations.
    Status,
    /// Citus only: print each tenant with the worker node holding it (`acme  10.0.0.5:5432`,
    /// or `-` while it holds no table).
    Placement,
    /// Citus only: move a tenant with all its data to another worker node
    /// (`citus_schema_move`; writes to the tenant wait while it is copied).
    Move {
        /// The tenant to move.
        name: String,
        /// The worker node to move it to, `host:port` as the cluster knows it (see
        /// `placement`).
        #[arg(required_unless_present = "to", conflicts_with = "to")]
        node: Option<tenancy_core::postgres::Node>,
        /// With --fleet: the database of the fleet to move it to (its writes wait meanwhile;
        /// its rows are checked against the original before the original is dropped).
        #[arg(long, value_name = "DATABASE")]
        to: Option<String>,
        /// Copy by logical replication, so writes to the tenant go on during the move (needs
        /// `wal_level = logical` and a primary key on every table of the tenant).
        #[arg(long)]
        logical: bool,
    },
    /// Citus only: distribute the tables of a container of row-level tenants by the tenant
    /// column `tenant_id` (row-based sharding: its tenants spread over the workers, each on one
    /// shard), its other tables made reference tables. Later migrations of the container
    /// distribute the tables they add.
    DistributeRows {
        /// The container (a tenant of its own whose tables hold row-level tenants' rows).
        container: String,
    },
}

/// Arguments of `migrate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["name", "all"])))]
pub struct MigrateArgs {
    /// The tenant to migrate.
    pub name: Option<String>,

    /// Migrate every tenant that is behind.
    #[arg(long)]
    pub all: bool,

    /// How many tenants to migrate at once (with --all).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "name")]
    pub concurrency: u32,

    /// Print which migrations would be applied in each tenant; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `rollback`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["name", "all"])))]
pub struct RollbackArgs {
    /// The tenant to roll back.
    pub name: Option<String>,

    /// Roll back every tenant.
    #[arg(long)]
    pub all: bool,

    /// Keep migrations up to and including this version; revert every later one
    /// (0 reverts all).
    #[arg(long, value_name = "VERSION")]
    pub to: i64,

    /// How many tenants to roll back at once (with --all).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "name")]
    pub concurrency: u32,
}

/// Which tenants a `migrate` or `rollback` is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One named tenant.
    One(String),
    /// Every tenant.
    All,
}

/// Turns the `[NAME] [--all]` pair (clap guarantees exactly one) into a [`Target`].
fn target(name: &Option<String>, all: bool) -> Target {
    match name {
        Some(name) if !all => Target::One(name.clone()),
        _ => Target::All,
    }
}

impl MigrateArgs {
    /// The tenants to migrate.
    pub fn target(&self) -> Target {
        target(&self.name, self.all)
    }
}

impl RollbackArgs {
    /// The tenants to roll back.
    pub fn target(&self) -> Target {
        target(&self.name, self.all)
    }
}

impl Command {
    /// Whether the command needs the tenant migrations (the others run with none loaded, so
    /// `list`, `drop` and `rename` work without a migrations folder).
    pub fn needs_migrations(&self) -> bool {
        matches!(
            self,
            Command::Create { .. }
                | Command::Promote { .. }
                | Command::Demote { .. }
                | Command::Clone { .. }
                | Command::Export { .. }
                | Command::Import { .. }
                | Command::Migrate(_)
                | Command::Rollback(_)
                | Command::Status
                | Command::Move { to: Some(_), .. }
        )
    }

    /// The command's name if it needs Citus (and so a PostgreSQL URL).
    pub fn citus_only(&self) -> Option<&'static str> {
        match self {
            Command::Placement => Some("placement"),
            Command::Move { to: None, .. } => Some("move"),
            Command::DistributeRows { .. } => Some("distribute-rows"),
            _ => None,
        }
    }

    /// How many connections the command may hold at once: one per concurrent tenant for
    /// `--all` runs, otherwise one (its statements run one at a time; a second would only be
    /// opened when a statement asks for a connection before the previous one's is back in the
    /// pool, which sqlx returns from a task of its own).
    pub fn connections(&self) -> u32 {
        match self {
            Command::Migrate(args) if args.all && !args.dry_run => args.concurrency,
            Command::Rollback(args) if args.all => args.concurrency,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tenancy").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn migrate_needs_exactly_one_of_name_and_all() {
        assert!(parse(&["migrate"]).is_err());
        assert!(parse(&["migrate", "acme", "--all"]).is_err());
        let Command::Migrate(one) = parse(&["migrate", "acme"]).unwrap().command else {
            panic!("not migrate")
        };
        assert_eq!(one.target(), Target::One("acme".into()));
        let Command::Migrate(all) = parse(&["migrate", "--all", "--concurrency", "8"])
            .unwrap()
            .command
        else {
            panic!("not migrate")
        };
        assert_eq!(all.target(), Target::All);
        assert_eq!(all.concurrency, 8);
    }

    #[test]
    fn concurrency_needs_all_and_is_positive() {
        assert!(parse(&["migrate", "acme", "--concurrency", "2"]).is_err());
        assert!(parse(&["migrate", "--all", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn rollback_needs_a_version() {
        assert!(parse(&["rollback", "acme"]).is_err());
        let Command::Rollback(r) = parse(&["rollback", "--all", "--to", "1"]).unwrap().command
        else {
            panic!("not rollback")
        };
        assert_eq!((r.target(), r.to), (Target::All, 1));
    }

    #[test]
    fn move_takes_a_tenant_and_a_host_port() {
        let Command::Move {
            name,
            node,
            logical,
            to: None,
        } = parse(&["move", "acme", "10.0.0.5:9701", "--logical"])
            .unwrap()
            .command
        else {
            panic!("not move")
        };
        assert_eq!(
            (name.as_str(), node.unwrap().to_string().as_str(), logical),
            ("acme", "10.0.0.5:9701", true)
        );
        let fleet = parse(&["--fleet", "a=postgres://h/a", "move", "acme", "--to", "b"]).unwrap();
        let Command::Move {
            node: None,
            to: Some(to),
            ..
        } = fleet.command
        else {
            panic!("not a fleet's move")
        };
        assert_eq!((to.as_str(), fleet.fleet.len()), ("b", 1));
        assert!(parse(&["move", "acme"]).is_err());
        assert!(parse(&["move", "acme", "10.0.0.5:9701", "--to", "b"]).is_err());
        assert!(parse(&["move", "acme", "10.0.0.5"]).is_err());
        assert!(parse(&["move", "acme"]).is_err());
    }

    #[test]
    fn global_options_have_defaults_and_go_anywhere() {
        let cli = parse(&[
            "list",
            "--registry",
            "reg_x",
            "--database-url",
            "postgres://h/db",
        ])
        .unwrap();
        assert_eq!(cli.registry, "reg_x");
        assert_eq!(cli.database_url.as_deref(), Some("postgres://h/db"));
        assert_eq!(cli.migrations, PathBuf::from("migrations/tenant"));
    }
}
