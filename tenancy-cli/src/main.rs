//! `tenancy`: manage the tenants of a schema-per-tenant PostgreSQL database, or of a
//! database-per-tenant MySQL / MariaDB server.
//!
//! The URL's scheme picks the backend: `postgres://` or `postgresql://` for PostgreSQL,
//! `mysql://` or `mariadb://` for MySQL / MariaDB, `sqlite:///path/to/folder` for SQLite (a
//! database file per tenant in that folder); any other is a usage error. A tenant is a
//! PostgreSQL schema (a MySQL database) created through tenancy and recorded in a registry
//! schema (database) (`--registry`, default `_tenancy`); other schemas (databases) are never
//! listed, migrated or dropped. Tenant migrations are written for the backend they run on.
//! Tenant migrations are sqlx migration files read at run time from `--migrations` (default
//! `migrations/tenant`): `1_init.sql`, or `2_badge.up.sql` with `2_badge.down.sql`.
//!
//! # Commands
//!
//! - `tenancy create <NAME>`: creates the schema and applies every migration, in one
//!   transaction (MySQL: creates the database and applies them; on failure the database is
//!   dropped again, since MySQL's DDL is not transactional).
//! - `tenancy drop <NAME>`: drops the tenant's schema with everything in it (no prompt).
//!   Refuses reserved names (`public`, `pg_*`, …) and schemas that are not tenants.
//! - `tenancy clone <FROM> <TO>`: creates `TO` as a copy of `FROM` (its tables, rows and
//!   migration history), copied on the server, all or nothing; `FROM` must have every
//!   migration applied.
//! - `tenancy export <NAME> > acme.tenant`: writes the tenant (every table and row, and its
//!   migration history) to stdout as a tenant archive, read from one consistent view; says
//!   how many tables and rows on stderr.
//! - `tenancy import <NAME> < acme.tenant`: creates the tenant from an archive, all or nothing
//!   (possibly exported from another backend); refuses a cut, changed or foreign archive.
//! - `tenancy rename <OLD> <NEW>`: renames the schema, keeping data and migration history.
//! - `tenancy list`: every tenant, one name per line.
//! - `tenancy migrate <NAME>` / `tenancy migrate --all [--concurrency N]`: applies pending
//!   migrations, each tenant in its own transaction. `--all` shows a progress bar on stderr
//!   (when it is a terminal), prints each migrated tenant, each failed tenant with its error,
//!   and `migrated N, up to date M, failed K`. `--dry-run` prints what would be applied
//!   (`acme  would apply 3`) and changes nothing.
//! - `tenancy rollback <NAME> --to <VERSION>` / `tenancy rollback --all --to <VERSION>`:
//!   reverts every migration above `VERSION` with its down migration.
//! - `tenancy placement` (Citus): each tenant and the worker node holding it
//!   (`acme  10.0.0.5:9701`; `-` while it holds no table).
//! - `tenancy move <NAME> <HOST:PORT> [--logical]` (Citus): moves the tenant with its data to
//!   that worker (`citus_schema_move`, under the tenant's lock; its writes wait while it is
//!   copied, or with `--logical` go on, by logical replication).
//! - `tenancy distribute-rows <CONTAINER>` (Citus): distributes a container of row-level
//!   tenants by the tenant column `tenant_id` (its other tables become reference tables):
//!   `distributed free by tenant_id: guards (reference tables: plans)`.
//! - `tenancy status`: one line per tenant, `acme  applied 1,2  pending 3`, plus
//!   `changed V` / `unknown V` for applied migrations edited or gone since.
//!
//! Global options: `--database-url <URL>` (or `DATABASE_URL`; required), `--migrations <DIR>`,
//! `--registry <SCHEMA>`, `--lock-timeout <SECONDS>`, and for PostgreSQL only `--pgbouncer`
//! (the same as `?pgbouncer=true` on the URL; given with a MySQL / MariaDB URL it is a usage
//! error).
//!
//! Results go to stdout, errors to stderr as `error: …` followed by `caused by: …` lines.
//! Exit code: 0 on success, 1 on failure (for `--all`: if any tenant failed; for a dry run: if
//! any tenant would fail), 2 on a usage error.

#![warn(missing_docs)]

mod cli;
mod error;
mod fleet;
mod report;
mod run;
mod url;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", report::render_error("", &err));
            ExitCode::from(err.exit_code())
        }
    }
}
