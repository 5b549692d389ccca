//! `--fleet NAME=URL …`: every command on a [`Fleet`] over those PostgreSQL (or MySQL /
//! MariaDB) databases, and `move <NAME> --to <DATABASE>` (PostgreSQL).

use std::io::Write;

use sqlx::Pool;
use tenancy_core::{Backend, Fleet, Tenants};

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::run::{mysql, on, postgres, Setup};
use crate::url::{self, Database};

/// `NAME=URL` as a name, the URL's backend and the URL.
fn split(spec: &str) -> Result<(&str, Database, std::borrow::Cow<'_, str>), CliError> {
    let Some((name, url)) = spec.split_once('=') else {
        return Err(CliError::Fleet("a value without `=`".to_owned()));
    };
    if name.is_empty() || name.contains("://") {
        return Err(CliError::Fleet(
            "a value without a name before `=`".to_owned(),
        ));
    }
    match url::database(url) {
        Ok((database @ (Database::Postgres | Database::MySql), url)) => Ok((name, database, url)),
        _ => Err(CliError::Fleet(format!(
            "the URL of {name:?} is no postgres:// or mysql:// URL"
        ))),
    }
}

/// Runs `cli`'s command on the fleet its `--fleet` values name.
pub async fn execute(cli: Cli) -> Result<(), CliError> {
    if let Some(command) = cli.command.citus_only() {
        return Err(CliError::FleetCommand(match command {
            "move" => "a fleet moves a tenant with move <NAME> --to <DATABASE>",
            _ => "a fleet is no Citus cluster: placement and distribute-rows need --database-url",
        }));
    }
    let specs: Vec<_> = cli
        .fleet
        .iter()
        .map(|s| split(s))
        .collect::<Result<_, _>>()?;
    let database = specs[0].1;
    if specs.iter().any(|(_, d, _)| *d != database) {
        return Err(CliError::Fleet(
            "databases of two backends: a fleet's URLs are all postgres:// or all mysql://"
                .to_owned(),
        ));
    }
    if database != Database::Postgres && cli.pgbouncer {
        return Err(CliError::PostgresOnly("--pgbouncer"));
    }
    let (setup, known) = Setup::of(&cli).await?;
    // The home holds a transaction of its map open through each operation on a database:
    // one connection more than the command needs.
    let connections = cli.command.connections() + 1;
    let (mut pools, mut handles) = (Vec::new(), Vec::new());
    if database == Database::MySql {
        let (mut my_pools, mut my_handles) = (Vec::new(), Vec::new());
        for (name, _, url) in specs {
            let (pool, tenants) = mysql(&setup, &url, connections).await?;
            my_pools.push(pool);
            my_handles.push((name.to_owned(), tenants));
        }
        return on_fleet(cli.command, my_pools, my_handles, known).await;
    }
    for (name, _, url) in specs {
        let (pool, tenants) = postgres(&setup, &url, cli.pgbouncer, connections).await?;
        pools.push(pool);
        handles.push((name.to_owned(), tenants));
    }
    on_fleet(cli.command, pools, handles, known).await
}

/// Runs `command` on a fleet over `handles`, then closes `pools`.
async fn on_fleet<B: Backend>(
    command: Command,
    pools: Vec<Pool<B>>,
    handles: Vec<(String, Tenants<B>)>,
    known: Vec<i64>,
) -> Result<(), CliError> {
    let fleet = match Fleet::new(handles).await {
        Ok(fleet) => fleet,
        Err(err) => {
            close(pools).await;
            return Err(err.into());
        }
    };
    let first = pools[0].clone();
    let result = async {
        match command {
            Command::Move {
                name, to: Some(to), ..
            } => {
                let moved = fleet.move_tenant(&name, &to).await?;
                writeln!(
                    std::io::stdout(),
                    "moved {} from {} to {}: {} rows in {} tables (writes held {:.1} s)",
                    moved.tenant,
                    moved.from,
                    moved.to,
                    moved.rows,
                    moved.tables,
                    moved.held.as_secs_f64()
                )?;
                Ok(())
            }
            Command::List => {
                let mut out = std::io::stdout();
                for (tenant, at) in fleet.list_by_database().await? {
                    writeln!(out, "{tenant}\t{at}")?;
                }
                Ok(())
            }
            command => on(first, fleet, known, command).await,
        }
    }
    .await;
    close(pools).await;
    result
}

async fn close<B: Backend>(pools: Vec<Pool<B>>) {
    for pool in pools {
        pool.close().await;
    }
}
