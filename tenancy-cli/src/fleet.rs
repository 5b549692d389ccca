//! `--fleet NAME=URL …`: every command on a [`Fleet`] over those PostgreSQL databases, and
//! `move <NAME> --to <DATABASE>`.

use std::io::Write;

use tenancy_core::Fleet;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::run::{on, postgres, Setup};
use crate::url::{self, Database};

/// `NAME=URL` as a name and a postgres:// URL.
fn split(spec: &str) -> Result<(&str, std::borrow::Cow<'_, str>), CliError> {
    let Some((name, url)) = spec.split_once('=') else {
        return Err(CliError::Fleet("a value without `=`".to_owned()));
    };
    if name.is_empty() || name.contains("://") {
        return Err(CliError::Fleet(
            "a value without a name before `=`".to_owned(),
        ));
    }
    match url::database(url) {
        Ok((Database::Postgres, url)) => Ok((name, url)),
        _ => Err(CliError::Fleet(format!(
            "the URL of {name:?} is no postgres:// URL"
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
    let (setup, known) = Setup::of(&cli).await?;
    // The home holds a transaction of its map open through each operation on a database:
    // one connection more than the command needs.
    let connections = cli.command.connections() + 1;
    let mut pools = Vec::new();
    let mut handles = Vec::new();
    for (name, url) in specs {
        let (pool, tenants) = postgres(&setup, &url, cli.pgbouncer, connections).await?;
        pools.push(pool);
        handles.push((name.to_owned(), tenants));
    }
    let fleet = Fleet::new(handles).await?;
    let result = match cli.command {
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
        command => on(pools[0].clone(), fleet, known, command).await,
    };
    for pool in pools {
        pool.close().await;
    }
    result
}
