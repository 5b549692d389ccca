//! The commands: connect, call the lifecycle handle ([`Lifecycle`]: `Tenants<Postgres>` or
//! `Tenants<MySql>`, picked by the URL's scheme), print the results.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::{Pool, PoolOptions};
use sqlx::{ConnectOptions, Connection};
use tenancy_core::postgres::PoolSettings;
use tenancy_core::{
    Backend, DropOptions, Lifecycle, MigrateOptions, RelocateOptions, Report, Tenants,
};

use crate::cli::{Cli, Command, MigrateArgs, RollbackArgs, Target};
use crate::error::CliError;
use crate::report::{self, Action, Counts};
use crate::url::{self, Database};

/// Runs `cli` to completion on a single-threaded runtime.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(execute(cli))
}

/// The command's context: the lifecycle handle and the versions in the migrations folder.
struct Ctx<L> {
    tenants: L,
    known: Vec<i64>,
    out: io::Stdout,
}

impl<L> Ctx<L> {
    fn line(&mut self, line: &str) -> Result<(), CliError> {
        writeln!(self.out, "{line}")?;
        Ok(())
    }

    fn lines(&mut self, lines: &[String]) -> Result<(), CliError> {
        lines.iter().try_for_each(|l| self.line(l))
    }
}

/// What every backend's handle is built with.
pub(crate) struct Setup {
    migrator: Migrator,
    registry: String,
    lock_timeout: Option<Duration>,
}

impl Setup {
    /// What `cli` asks for, and the versions of its migrations folder.
    pub(crate) async fn of(cli: &Cli) -> Result<(Setup, Vec<i64>), CliError> {
        // Checked again by `with_registry`; checking first fails fast, before connecting.
        tenancy_core::Tenant::new(&cli.registry).map_err(|e| CliError::Registry {
            name: cli.registry.clone(),
            source: e.into(),
        })?;
        let migrator = if cli.command.needs_migrations() {
            load_migrations(&cli.migrations).await?
        } else {
            Migrator::with_migrations(Vec::new())
        };
        let known: Vec<i64> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .collect();
        let lock_timeout = match cli.lock_timeout {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => return Err(CliError::LockTimeout(s)),
            None => None,
        };
        let setup = Setup {
            migrator,
            registry: cli.registry.clone(),
            lock_timeout,
        };
        Ok((setup, known))
    }

    /// A lifecycle handle on `pool`, with a copy of the migrations (one for each database of a
    /// fleet).
    pub(crate) fn handle<B: Backend>(&self, pool: Pool<B>) -> Result<Tenants<B>, CliError> {
        let copy = Setup {
            migrator: Migrator::with_migrations(self.migrator.iter().cloned().collect()),
            registry: self.registry.clone(),
            lock_timeout: self.lock_timeout,
        };
        copy.tenants(pool)
    }

    /// The lifecycle handle on `pool`.
    fn tenants<B: Backend>(self, pool: Pool<B>) -> Result<Tenants<B>, CliError> {
        let tenants = Tenants::new(pool, self.migrator)?
            .with_registry(&self.registry)
            .map_err(|source| CliError::Registry {
                name: self.registry.clone(),
                source,
            })?;
        Ok(match self.lock_timeout {
            Some(timeout) => tenants.with_lock_timeout(timeout),
            None => tenants,
        })
    }
}

/// The options only PostgreSQL has, as typed, of those given.
fn postgres_only(cli: &Cli) -> Option<&'static str> {
    cli.pgbouncer.then_some("--pgbouncer")
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    if !cli.fleet.is_empty() {
        return crate::fleet::execute(cli).await;
    }
    if let Command::Move { to: Some(_), .. } = cli.command {
        return Err(CliError::FleetCommand(
            "move --to <DATABASE> moves a tenant of a fleet: give its databases with --fleet NAME=URL",
        ));
    }
    let url = cli
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or(CliError::NoDatabaseUrl)?;
    let (database, url) = url::database(url)?;
    if database != Database::Postgres {
        if let Some(flag) = postgres_only(&cli) {
            return Err(CliError::PostgresOnly(flag));
        }
    }
    // Only a PostgreSQL URL can name a Citus coordinator (checked for every other backend, so
    // a Citus command never reaches another backend's handle).
    if database != Database::Postgres {
        if let Some(command) = cli.command.citus_only() {
            return Err(CliError::CitusOnly(command));
        }
    }
    let (setup, known) = Setup::of(&cli).await?;
    let connections = cli.command.connections();
    match database {
        Database::Postgres => {
            let (pool, tenants) = postgres(&setup, &url, cli.pgbouncer, connections).await?;
            if cli.command.citus_only().is_some() {
                let result = citus(&tenants, cli.command).await;
                pool.close().await;
                return result;
            }
            on(pool, tenants, known, cli.command).await
        }
        Database::MySql => {
            let (pool, tenants) = mysql(&setup, &url, connections).await?;
            on(pool, tenants, known, cli.command).await
        }
        Database::Sqlite => {
            // The folder and its registry file are created if missing; tenant files never are.
            let pool = tenancy_core::sqlite::open(&url).await?;
            let tenants = setup.tenants(pool.clone())?;
            on(pool, tenants, known, cli.command).await
        }
    }
}

/// A pool of `connections` to the PostgreSQL database of `url` and a handle on it (behind
/// PgBouncer if `pgbouncer`, or if the URL says `?pgbouncer=true`).
pub(crate) async fn postgres(
    setup: &Setup,
    url: &str,
    pgbouncer: bool,
    connections: u32,
) -> Result<(Pool<sqlx::Postgres>, Tenants<sqlx::Postgres>), CliError> {
    let mut settings = PoolSettings::new().max_connections(connections);
    if pgbouncer {
        settings = settings.pgbouncer();
    }
    let (settings, options) = settings.with_url(url).map_err(|e| match e {
        tenancy_core::Error::Database { source, .. } => CliError::Connect(source),
        other => other.into(),
    })?;
    let pool = connect(settings.pool_options(), options).await?;
    let mut tenants = setup.handle(pool.clone())?;
    if settings.is_pgbouncer() {
        tenants = tenants.behind_pgbouncer();
    }
    Ok((pool, tenants))
}

/// A pool of `connections` to the MySQL / MariaDB server of `url` and a handle on it.
pub(crate) async fn mysql(
    setup: &Setup,
    url: &str,
    connections: u32,
) -> Result<(Pool<sqlx::MySql>, Tenants<sqlx::MySql>), CliError> {
    let options = parse::<MySqlConnectOptions>(url)?;
    let pool_options = MySqlPoolOptions::new().max_connections(connections);
    let pool = connect(pool_options, options).await?;
    let tenants = setup.handle(pool.clone())?;
    Ok((pool, tenants))
}

/// Runs `command` with `tenants`, then closes `pool`.
pub(crate) async fn on<B: Backend, L: Lifecycle<Backend = B>>(
    pool: Pool<B>,
    tenants: L,
    known: Vec<i64>,
    command: Command,
) -> Result<(), CliError> {
    let mut ctx = Ctx {
        tenants,
        known,
        out: io::stdout(),
    };
    let result = self::command(&mut ctx, command).await;
    pool.close().await;
    result
}

/// The Citus commands (`placement`, `move`, `distribute-rows`), on a PostgreSQL handle.
async fn citus(tenants: &Tenants<sqlx::Postgres>, command: Command) -> Result<(), CliError> {
    let mut out = io::stdout();
    match command {
        Command::Placement => {
            let placement = tenants.placement().await?;
            for line in report::placement_lines(&placement) {
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
        Command::Move {
            name,
            node: Some(node),
            logical,
            to: None,
        } => {
            let mode = if logical {
                tenancy_core::postgres::MoveMode::Logical
            } else {
                tenancy_core::postgres::MoveMode::BlockWrites
            };
            tenants.move_to_with(&name, &node, mode).await?;
            writeln!(out, "moved {name} to {node}")?;
            Ok(())
        }
        Command::DistributeRows { container } => {
            let container = tenants.parse(&container)?;
            let spread = tenants.distribute_rows(&container).await?;
            writeln!(
                out,
                "distributed {container} by tenant_id: {} (reference tables: {})",
                listed(&spread.by_tenant),
                listed(&spread.reference)
            )?;
            Ok(())
        }
        _ => unreachable!("only Citus commands are run here"),
    }
}

/// `names` joined by ", ", or `none`.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn parse<O: ConnectOptions>(url: &str) -> Result<O, CliError> {
    url.parse()
        .map_err(|e: sqlx::Error| CliError::Connect(e.into()))
}

/// A pool with `pool_options` to the server of `options`, its first connection open (and kept
/// for the command: no connection of its own to check the server).
///
/// The pool reports most failures to connect with the server's own reason; a refused connection
/// (or a server starting up) it retries until its timeout instead. If the first connection is
/// not there within [`DIAGNOSE_AFTER`], one connection is opened beside it, only to report
/// such a reason at once; a server that accepts it after all is waited for.
async fn connect<B: Backend>(
    pool_options: PoolOptions<B>,
    options: <B::Connection as Connection>::Options,
) -> Result<Pool<B>, CliError> {
    let pool = pool_options
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options.clone());
    let first = pool.acquire();
    tokio::pin!(first);
    let conn = tokio::select! {
        conn = &mut first => conn,
        _ = tokio::time::sleep(DIAGNOSE_AFTER) => {
            let direct = B::Connection::connect_with(&options);
            tokio::select! {
                conn = &mut first => conn,
                reached = direct => match reached {
                    Err(e) => return Err(CliError::Connect(e.into())),
                    Ok(direct) => {
                        let _ = direct.close().await;
                        first.await
                    }
                },
            }
        }
    };
    match conn {
        // Back to the pool for the command, before it asks for one (dropped, the connection
        // would be returned by a task of its own, and the command's first acquire would open
        // a second connection).
        Ok(mut conn) => conn.return_to_pool().await,
        Err(sqlx::Error::PoolTimedOut) => return Err(CliError::ConnectTimeout(CONNECT_TIMEOUT)),
        Err(e) => return Err(CliError::Connect(e.into())),
    }
    Ok(pool)
}

/// How long the pool's first connection may take before a direct one asks the server why not.
const DIAGNOSE_AFTER: Duration = Duration::from_millis(500);

async fn load_migrations(dir: &Path) -> Result<Migrator, CliError> {
    Migrator::new(dir)
        .await
        .map_err(|source| CliError::Migrations {
            path: dir.to_owned(),
            source,
        })
}

async fn command<L: Lifecycle>(ctx: &mut Ctx<L>, command: Command) -> Result<(), CliError> {
    match command {
        Command::Create {
            name,
            container: None,
        } => {
            let tenant = ctx.tenants.create(&name).await?;
            ctx.line(&format!("created {tenant}"))
        }
        Command::Create {
            name,
            container: Some(container),
        } => {
            let tenant = ctx.tenants.create_in(&name, &container).await?;
            ctx.line(&format!("created {tenant} in {}", tenant.container()))
        }
        Command::Promote { name } => {
            let shown = Shown::new::<L::Backend>();
            let moved = ctx.tenants.promote_with(&name, shown.options()).await;
            let moved = shown.finish(moved)?;
            ctx.line(&format!(
                "promoted {name} to a {} of its own ({} rows moved)",
                <L::Backend as Backend>::CONTAINER,
                moved.rows
            ))
        }
        Command::Demote { name, container } => {
            let shown = Shown::new::<L::Backend>();
            let moved = ctx
                .tenants
                .demote_with(&name, &container, shown.options())
                .await;
            let moved = shown.finish(moved)?;
            ctx.line(&format!(
                "demoted {name} into {container} ({} rows moved)",
                moved.rows
            ))
        }
        Command::Drop { name } => {
            let shown = Shown::new::<L::Backend>();
            let dropped = ctx.tenants.drop_with(&name, shown.drop_options()).await;
            match shown.finish(dropped)? {
                tenancy_core::Dropped::Unregistered => ctx.line(&format!(
                    "dropped {name} (its {} was already gone; unregistered it)",
                    <L::Backend as Backend>::CONTAINER
                )),
                tenancy_core::Dropped::Rows { deleted } => {
                    ctx.line(&format!("dropped {name} ({deleted} rows deleted)"))
                }
                _ => ctx.line(&format!("dropped {name}")),
            }
        }
        Command::Clone { from, to } => {
            let to = ctx.tenants.clone_tenant(&from, &to).await?;
            ctx.line(&format!("cloned {from} to {to}"))
        }
        Command::Export { name } => {
            let moved = ctx.tenants.export(&name, tokio::io::stdout()).await?;
            eprintln!(
                "exported {name}: {} tables, {} rows",
                moved.tables, moved.rows
            );
            Ok(())
        }
        Command::Import { name } => {
            let input = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
            let tenant = ctx.tenants.import(input, &name).await?;
            ctx.line(&format!("imported {tenant}"))
        }
        Command::Rename { old, new } => {
            let new = ctx.tenants.rename(&old, &new).await?;
            ctx.line(&format!("renamed {old} to {new}"))
        }
        Command::List => {
            let names: Vec<String> = ctx
                .tenants
                .list()
                .await?
                .iter()
                .map(ToString::to_string)
                .collect();
            ctx.lines(&names)
        }
        Command::Status => {
            let statuses = ctx.tenants.status().await?;
            let lines = report::status_lines(&statuses, &ctx.known);
            ctx.lines(&lines)
        }
        Command::Migrate(args) if args.dry_run => dry_run(ctx, &args).await,
        Command::Migrate(args) => migrate(ctx, &args).await,
        Command::Rollback(args) => rollback(ctx, &args).await,
        Command::Move { to: Some(_), .. } => Err(CliError::FleetCommand(
            "move --to <DATABASE> moves a tenant of a fleet: give its databases with --fleet NAME=URL",
        )),
        Command::Placement | Command::Move { .. } | Command::DistributeRows { .. } => {
            unreachable!("Citus commands run on PostgreSQL handles only (see `execute`)")
        }
    }
}

async fn migrate<L: Lifecycle>(ctx: &mut Ctx<L>, args: &MigrateArgs) -> Result<(), CliError> {
    match args.target() {
        Target::One(name) => {
            let tenant = ctx.tenants.parse(&name)?;
            let outcome = ctx.tenants.migrate(tenant.as_str()).await?;
            ctx.line(&report::outcome_line(&tenant, &outcome))
        }
        Target::All => {
            let bar = progress_bar();
            let options = MigrateOptions::default()
                .concurrency(args.concurrency as usize)
                .on_progress(progress(&bar));
            let result = ctx.tenants.migrate_all(options).await;
            bar.finish_and_clear();
            finish_all(ctx, &result?, Action::Migrate)
        }
    }
}

async fn rollback<L: Lifecycle>(ctx: &mut Ctx<L>, args: &RollbackArgs) -> Result<(), CliError> {
    match args.target() {
        Target::One(name) => {
            let tenant = ctx.tenants.parse(&name)?;
            let outcome = ctx.tenants.rollback(tenant.as_str(), args.to).await?;
            ctx.line(&report::rollback_line(&tenant, &outcome))
        }
        Target::All => {
            let bar = progress_bar();
            let options = MigrateOptions::default()
                .concurrency(args.concurrency as usize)
                .on_progress(progress(&bar));
            let result = ctx.tenants.rollback_all(args.to, options).await;
            bar.finish_and_clear();
            finish_all(ctx, &result?, Action::Rollback)
        }
    }
}

/// Prints an `--all` report: changed tenants on stdout, failed ones (with their error chain)
/// on stderr, then the summary line on stdout. An error if any tenant failed.
fn finish_all<L>(ctx: &mut Ctx<L>, report: &Report, action: Action) -> Result<(), CliError> {
    for changed in report.changed() {
        if let Ok(outcome) = &changed.result {
            let line = match action {
                Action::Rollback => report::rollback_line(&changed.tenant, outcome),
                _ => report::outcome_line(&changed.tenant, outcome),
            };
            ctx.line(&line)?;
        }
    }
    for (tenant, err) in report.failed() {
        eprintln!("{}", report::tenant_failure(tenant, err));
    }
    let counts = Counts::of_report(report);
    ctx.line(&report::summary(action, counts))?;
    if counts.failed > 0 {
        return Err(CliError::TenantsFailed {
            failed: counts.failed,
            total: counts.total(),
        });
    }
    Ok(())
}

/// `migrate --dry-run`: what each tenant would get, as core plans it (one status query, the
/// run's own checks); changes nothing.
async fn dry_run<L: Lifecycle>(ctx: &mut Ctx<L>, args: &MigrateArgs) -> Result<(), CliError> {
    let mut plans: Vec<_> = ctx
        .tenants
        .plan()
        .await?
        .tenants
        .into_iter()
        .map(|r| (r.tenant, report::plan(r.result)))
        .collect();
    if let Target::One(name) = args.target() {
        let tenant = ctx.tenants.parse(&name)?;
        plans.retain(|(t, _)| *t == tenant);
        if plans.is_empty() {
            return Err(tenancy_core::Error::NotATenant { tenant }.into());
        }
    }
    let lines = report::plan_lines(&plans);
    ctx.lines(&lines)?;
    let counts = Counts::of_plans(&plans);
    if args.all {
        ctx.line(&report::summary(Action::DryRun, counts))?;
    }
    if counts.failed > 0 {
        return Err(CliError::WouldFail {
            failed: counts.failed,
            total: counts.total(),
        });
    }
    Ok(())
}

/// A progress bar on stderr (drawn only when stderr is a terminal); its length is set by the
/// first progress report, since only `migrate_all` knows how many tenants have work.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} tenants  {msg}") {
        bar.set_style(style);
    }
    bar
}

/// The `on_progress` callback driving `bar`.
fn progress(bar: &ProgressBar) -> impl Fn(&tenancy_core::Progress<'_>) + Send + Sync + 'static {
    let bar = bar.clone();
    move |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(p.tenant.to_string());
    }
}

/// The progress of a `promote` or `demote` on stderr, one step per table: a bar when stderr
/// is a terminal, else one line per step ([`report::relocate_line`]).
struct Shown {
    bar: Option<ProgressBar>,
    container: &'static str,
}

impl Shown {
    fn new<B: Backend>() -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} tables  {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Shown {
            bar,
            container: B::CONTAINER,
        }
    }

    /// The options whose callback shows each step.
    fn options(&self) -> RelocateOptions {
        let (bar, container) = (self.bar.clone(), self.container);
        RelocateOptions::default().on_progress(move |p| {
            show(
                bar.as_ref(),
                report::relocate_line(p, container),
                (p.done, p.total),
            );
        })
    }

    /// The options of a drop whose callback shows each batch of a row-level tenant's rows.
    fn drop_options(&self) -> DropOptions {
        let bar = self.bar.clone();
        DropOptions::default().on_progress(move |p| {
            show(bar.as_ref(), report::drop_line(p), (p.done, p.total));
        })
    }

    /// Clears the bar; `result` as it was.
    fn finish<T>(self, result: T) -> T {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        result
    }
}

/// Shows `line` on `bar` (at `done` of `total` tables), or without one as a line on stderr.
fn show(bar: Option<&ProgressBar>, line: String, (done, total): (usize, usize)) {
    match bar {
        Some(bar) => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(line);
        }
        None => eprintln!("{line}"),
    }
}
