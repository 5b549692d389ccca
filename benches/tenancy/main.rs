//! Benchmarks of `tenancy`: every result is a ratio against a baseline measured in the same run
//! (the denominator named in its row), with a target and a computed `met?`; comparisons of one
//! operation carry an A/A control that decides whether the run could see the difference at
//! all (`method.rs`). Nothing here asserts a time. BENCHMARKS.md is this program's output.
//!
//! ```text
//! cargo bench --bench tenancy                      # every workload, full sizes
//! cargo bench --bench tenancy -- --write           # the same, and write BENCHMARKS.md's
//!                                                  #   tables and docs/scaling.svg
//! cargo bench --bench tenancy -- --quick           # every workload at tiny sizes (CI)
//! cargo bench --bench tenancy -- crud lookups      # some workloads, by name or number
//! cargo bench --bench tenancy -- mysql             # 9-12; also sqlite (14-17), citus
//!                                                  #   (18-20), models (21-24)
//! cargo bench --bench tenancy -- scaling --write   # redraw docs/scaling.svg (25)
//! cargo bench --bench tenancy -- connect           # a connection with TLS vs without (26),
//!                                                  #   PostgreSQL and MySQL
//! cargo bench --bench tenancy -- clone             # clone_tenant vs create + insert (27)
//! cargo bench --bench tenancy -- export            # export | import vs pg_dump | psql (28)
//! cargo bench --bench tenancy -- rowlevel          # row-level tenants: CRUD vs sqlx, lookups
//!                                                  #   over 100,000 in one container (29)
//! cargo bench --bench tenancy -- tiers             # promote under writers vs a copy, row-level
//!                                                  #   security per call, list / status (30)
//! cargo bench --bench tenancy -- fleet             # move_tenant under writers vs export |
//!                                                  #   import (31)
//! ```
//!
//! Workloads 1-8, 13, 21-24 and 26-31 run on PostgreSQL (`DATABASE_URL`, or a private throwaway
//! cluster), 9-12 on MySQL / MariaDB (`MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`),
//! 14-17 on SQLite in temporary folders, 18-20 on Citus (`CITUS_URL`, the coordinator), 25 on
//! all of them (Citus if `CITUS_URL` is set); 26 also on MySQL / MariaDB over TLS
//! (`tenancy_testdb::tls_mysql_url()`: `MYSQL_TLS_URL`, else a private server with a certificate
//! of its own); a run connects only to the servers its workloads need.

mod across;
mod citus;
mod clone;
mod common;
mod compile;
mod connect;
mod create;
mod crud;
mod fleet;
mod lookups;
mod method;
mod migrate;
mod models;
mod mysql;
mod port;
mod report;
mod rowlevel;
mod scaling;
mod sqlite;
mod test_attr;
mod tiers;

use std::path::PathBuf;
use std::time::Instant;

use sqlx::Connection;

use citus::CitusCtx;
use common::{BoxResult, Ctx};
use mysql::MyCtx;
use report::{RunInfo, Section};
use sqlite::LiteCtx;

/// Where a workload runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    MySql,
    Sqlite,
    Citus,
    /// Every backend the run reaches (the scaling picture).
    All,
}

const WORKLOADS: [(&str, Backend, &str); 31] = [
    (
        "crud",
        Backend::Postgres,
        "generated CRUD vs hand-written sqlx",
    ),
    (
        "lookups",
        Backend::Postgres,
        "point lookups over 1 / 100 / 1,000 tenants",
    ),
    (
        "create",
        Backend::Postgres,
        "creating 1,000 tenants vs a server-side loop",
    ),
    (
        "noop",
        Backend::Postgres,
        "migrate_all, nothing pending, 1,000 / 10,000 tenants",
    ),
    (
        "pending",
        Backend::Postgres,
        "migrate_all, one pending ALTER, 1,000 tenants",
    ),
    (
        "memory",
        Backend::Postgres,
        "peak RSS of migrate_all over 10,000 tenants",
    ),
    (
        "compile",
        Backend::Postgres,
        "cargo check: derive(TenantModel) vs FromRow",
    ),
    (
        "across",
        Backend::Postgres,
        "count across 1,000 tenants: query_across vs a loop vs UNION ALL",
    ),
    (
        "mysql-crud",
        Backend::MySql,
        "MariaDB: generated CRUD vs hand-written sqlx",
    ),
    (
        "mysql-create",
        Backend::MySql,
        "MariaDB: creating 1,000 tenants vs a floor",
    ),
    (
        "mysql-noop",
        Backend::MySql,
        "MariaDB: migrate_all, nothing pending, 1,000 / 10,000 tenants",
    ),
    (
        "mysql-pending",
        Backend::MySql,
        "MariaDB: migrate_all, one pending ADD COLUMN, 1,000 tenants",
    ),
    (
        "test-attr",
        Backend::Postgres,
        "#[tenancy::test] setup + teardown per test vs #[sqlx::test]",
    ),
    (
        "sqlite-crud",
        Backend::Sqlite,
        "SQLite: generated CRUD vs hand-written sqlx",
    ),
    (
        "sqlite-lookups",
        Backend::Sqlite,
        "SQLite: point lookups over 1,000 tenant files vs one",
    ),
    (
        "sqlite-pending",
        Backend::Sqlite,
        "SQLite: migrate_all, one pending ADD COLUMN, 1,000 files",
    ),
    (
        "sqlite-memory",
        Backend::Sqlite,
        "SQLite: peak RSS and descriptors of migrate_all, 10,000 files",
    ),
    (
        "citus-create",
        Backend::Citus,
        "Citus: creating 100 tenants vs a server-side loop",
    ),
    (
        "citus-pending",
        Backend::Citus,
        "Citus: migrate_all, one pending ADD COLUMN, 100 tenants",
    ),
    (
        "citus-lookups",
        Backend::Citus,
        "Citus: point lookups over 100 tenants on two workers vs one tenant",
    ),
    (
        "join",
        Backend::Postgres,
        "Query::join of guards at sites in one city vs hand-written sqlx",
    ),
    (
        "preload",
        Backend::Postgres,
        "Relation::preload vs hand-written = ANY($1)",
    ),
    (
        "stream",
        Backend::Postgres,
        "Query::fetch of 1,000,000 rows vs sqlx's fetch stream, and peak RSS",
    ),
    (
        "upsert",
        Backend::Postgres,
        "upsert_many of 1,000 rows, half conflicting, vs hand-written sqlx",
    ),
    (
        "scaling",
        Backend::All,
        "create, no-op and one pending migration at 10 to 10,000 tenants, every backend",
    ),
    (
        "connect",
        Backend::Postgres,
        "a new connection with TLS vs without, PostgreSQL and MySQL / MariaDB",
    ),
    (
        "clone",
        Backend::Postgres,
        "clone of a 100,000-row tenant vs create + the rows through the API",
    ),
    (
        "export",
        Backend::Postgres,
        "export | import of a 1,000,000-row tenant to another database vs pg_dump | psql",
    ),
    (
        "rowlevel",
        Backend::Postgres,
        "row-level tenants: CRUD vs hand-written sqlx, lookups over 100,000 in one container",
    ),
    (
        "tiers",
        Backend::Postgres,
        "promote of a 100,000-row tenant under 8 writers vs a server-side copy; row-level security per call; list / status of 100,000 row-level tenants",
    ),
    (
        "fleet",
        Backend::Postgres,
        "move_tenant of a 1,000,000-row tenant to another database under 8 writers vs export | import",
    ),
];

/// Names that select a group.
const GROUPS: [(&str, std::ops::Range<usize>); 4] = [
    ("mysql", 8..12),
    ("sqlite", 13..17),
    ("citus", 17..20),
    ("models", 20..24),
];

struct Options {
    quick: bool,
    /// Write BENCHMARKS.md's tables and docs/scaling.svg.
    write: bool,
    /// The workloads to run (all if empty).
    only: Vec<usize>,
}

impl Options {
    fn runs(&self, index: usize) -> bool {
        self.only.is_empty() || self.only.contains(&index)
    }

    fn wants(&self, backend: Backend) -> bool {
        WORKLOADS
            .iter()
            .enumerate()
            .any(|(i, w)| self.runs(i) && (w.1 == backend || w.1 == Backend::All))
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench tenancy [-- [--quick] [--write] [NAME ...]]\n  NAME: mysql \
         (9-12), sqlite (14-17), citus (18-20), models (21-24), {}",
        WORKLOADS
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| format!("{n} ({})", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Options {
    let mut options = Options {
        quick: false,
        write: false,
        only: Vec::new(),
    };
    for arg in args {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--write" => options.write = true,
            // Names may follow `--only` or stand alone.
            "--only" => {}
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            "-h" | "--help" => usage(),
            name => {
                if let Some((_, range)) = GROUPS.iter().find(|(g, _)| *g == name) {
                    options.only.extend(range.clone());
                    continue;
                }
                let index = WORKLOADS
                    .iter()
                    .position(|(n, _, _)| *n == name)
                    .or_else(|| name.parse::<usize>().ok().and_then(|i| i.checked_sub(1)))
                    .filter(|i| *i < WORKLOADS.len());
                match index {
                    Some(i) => options.only.push(i),
                    None => {
                        eprintln!("unknown argument {name:?}");
                        usage()
                    }
                }
            }
        }
    }
    if options.quick && options.write {
        eprintln!("--write takes full-size numbers only: drop --quick");
        std::process::exit(2);
    }
    options
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-rss") {
        std::process::exit(migrate::child_main(&args[1..]));
    }
    if args.first().map(String::as_str) == Some("--child-stream") {
        std::process::exit(models::child_main(&args[1..]));
    }
    let options = parse(&args);
    let run_info = RunInfo::gather(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(options, run_info));
    std::process::exit(code);
}

/// The repository's root (BENCHMARKS.md, docs/).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The servers the run connected to.
struct Servers {
    pg: Option<Ctx>,
    my: Option<MyCtx>,
    lite: LiteCtx,
    cit: Option<CitusCtx>,
    pg_version: String,
    sqlite_version: String,
}

async fn connect(options: &Options) -> Result<Servers, String> {
    let mut servers = Servers {
        pg: None,
        my: None,
        lite: LiteCtx::new(options.quick),
        cit: None,
        pg_version: String::new(),
        sqlite_version: String::new(),
    };
    if options.wants(Backend::Postgres) {
        let url = tenancy_testdb::database_url().map_err(|e| e.to_string())?;
        let ctx = Ctx::new(url, options.quick)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        servers.pg_version = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&ctx.admin)
            .await
            .unwrap_or_default();
        let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
            .fetch_one(&ctx.admin)
            .await
            .unwrap_or_default();
        println!(
            "PostgreSQL {}: every workload runs in a database of its own, created from \
             template0 and dropped after it (autovacuum {autovacuum})",
            servers.pg_version
        );
        servers.pg = Some(ctx);
    }
    if options.wants(Backend::MySql) {
        let ctx = MyCtx::new(options.quick)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        println!(
            "MySQL / MariaDB {}: every workload uses databases of its own, dropped when it ends",
            ctx.version
        );
        servers.my = Some(ctx);
    }
    let citus_required = WORKLOADS
        .iter()
        .enumerate()
        .any(|(i, w)| options.runs(i) && w.1 == Backend::Citus);
    let citus_optional = options.wants(Backend::All) && std::env::var("CITUS_URL").is_ok();
    if citus_required || citus_optional {
        let ctx = CitusCtx::new(options.quick)
            .await
            .map_err(|e| format!("cannot connect to Citus: {e}"))?;
        println!(
            "Citus {}: the workloads use schemas of their own in the coordinator's database, \
             dropped when the run ends",
            ctx.version
        );
        servers.cit = Some(ctx);
    }
    if options.wants(Backend::Sqlite) {
        servers.sqlite_version = sqlite_version().await.unwrap_or_else(|_| "?".into());
    }
    Ok(servers)
}

async fn sqlite_version() -> BoxResult<String> {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    Ok(sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?)
}

async fn run(options: Options, run_info: RunInfo) -> i32 {
    let mut s = match connect(&options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let quick = if options.quick {
        " (--quick sizes)"
    } else {
        ""
    };
    println!("tenancy benchmarks{quick}: {}", run_info.command);
    println!(
        "{} · {} · commit {}",
        run_info.machine, run_info.date, run_info.commit
    );
    let svg = if options.write {
        root().join("docs/scaling.svg")
    } else {
        root().join("target/scaling.svg")
    };
    let order: Vec<&str> = WORKLOADS.iter().map(|w| w.0).collect();
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut sections = Vec::new();
    // `Ctx::new` entered the first workload's database.
    let mut fresh = true;
    for (index, (name, backend, title)) in WORKLOADS.iter().enumerate() {
        if !options.runs(index) {
            continue;
        }
        let number = index + 1;
        println!("\n== {number} {title} [{name}]");
        let load0 = load_average();
        let t0 = Instant::now();
        let (result, server): (BoxResult<()>, String) = match backend {
            Backend::Sqlite => {
                let result = match number {
                    14 => sqlite::crud(&mut s.lite).await,
                    15 => sqlite::lookups(&mut s.lite).await,
                    16 => sqlite::pending(&mut s.lite).await,
                    _ => sqlite::memory(&mut s.lite).await,
                };
                (result, format!("SQLite {} (bundled)", s.sqlite_version))
            }
            Backend::Citus => {
                let Some(ctx) = s.cit.as_mut() else { continue };
                let result = match number {
                    18 => citus::create(ctx).await,
                    19 => citus::pending(ctx).await,
                    _ => citus::lookups(ctx).await,
                };
                (result, format!("Citus {}", ctx.version))
            }
            Backend::MySql => {
                let Some(ctx) = s.my.as_mut() else { continue };
                let result = match number {
                    9 => mysql::crud(ctx).await,
                    10 => mysql::create(ctx).await,
                    11 => mysql::noop(ctx).await,
                    _ => mysql::pending(ctx).await,
                };
                (result, format!("MariaDB {}", ctx.version))
            }
            Backend::Postgres | Backend::All => {
                let Some(ctx) = s.pg.as_mut() else { continue };
                if !fresh {
                    if let Err(e) = ctx.enter_database().await {
                        eprintln!("  cannot create a database for workload {name}: {e}");
                        failed.push(*name);
                        break;
                    }
                }
                fresh = false;
                println!("  (database {})", ctx.database);
                let result = match number {
                    1 => crud::run(ctx).await,
                    2 => lookups::run(ctx).await,
                    3 => create::run(ctx).await,
                    4 => migrate::noop(ctx).await,
                    5 => migrate::pending(ctx).await,
                    6 => migrate::memory(ctx).await,
                    7 => compile::run(ctx).await,
                    8 => across::run(ctx).await,
                    13 => test_attr::run(ctx).await,
                    21 => models::join(ctx).await,
                    22 => models::preload(ctx).await,
                    23 => models::stream(ctx).await,
                    24 => models::upsert(ctx).await,
                    26 => connect::run(ctx).await,
                    27 => clone::run(ctx).await,
                    28 => port::run(ctx).await,
                    29 => rowlevel::run(ctx).await,
                    30 => tiers::run(ctx).await,
                    31 => fleet::run(ctx).await,
                    _ => {
                        let caption = format!(
                            "{} · commit {} · {}",
                            run_info.date, run_info.commit, run_info.machine
                        );
                        scaling::run(ctx, s.my.as_mut(), s.cit.as_mut(), &svg, &caption).await
                    }
                };
                if let Err(e) = ctx.leave_database().await {
                    eprintln!("  dropping the database of workload {name} failed: {e}");
                    failed.push(*name);
                }
                let mut server = format!("PostgreSQL {}", s.pg_version);
                if *backend == Backend::All {
                    if let Some(my) = &s.my {
                        server.push_str(&format!(", MariaDB {}", my.version));
                    }
                    server.push_str(", SQLite (bundled)");
                    if let Some(cit) = &s.cit {
                        server.push_str(&format!(", Citus {}", cit.version));
                    }
                }
                (result, server)
            }
        };
        // Other work on the machine slows every side of a comparison, but not always alike:
        // the load before and after says whether this workload shared the CPUs.
        let (secs, load1) = (t0.elapsed().as_secs_f64(), load_average());
        println!(
            "  ({name} took {secs:.1} s; 1-minute load average {load0} before, {load1} after)"
        );
        let results = match backend {
            Backend::Sqlite => s.lite.out.take(),
            Backend::Citus => s.cit.as_mut().map(|c| c.out.take()).unwrap_or_default(),
            Backend::MySql => s.my.as_mut().map(|c| c.out.take()).unwrap_or_default(),
            Backend::Postgres | Backend::All => {
                s.pg.as_mut().map(|c| c.out.take()).unwrap_or_default()
            }
        };
        if let Err(e) = result {
            eprintln!("  workload {name} failed: {e}");
            failed.push(*name);
            continue;
        }
        // A failed check of correctness fails the run, after its section is written.
        let checks_failed = !results.failures.is_empty();
        let section = Section {
            number,
            name,
            title,
            server,
            results,
            load: (load0, load1),
            secs,
        };
        // Written as soon as it is measured: a run stopped later keeps what it finished.
        if options.write {
            let path = root().join("BENCHMARKS.md");
            match report::write_document(&path, std::slice::from_ref(&section), &run_info, &order) {
                Ok(()) => println!(
                    "  (wrote its table and summary line into {})",
                    path.display()
                ),
                Err(e) => {
                    eprintln!("  {e}");
                    failed.push("--write");
                }
            }
        }
        if checks_failed {
            eprintln!("  workload {name}: {}", section.results.failures.join("; "));
            failed.push(*name);
        }
        sections.push(section);
    }
    if let Some(ctx) = &mut s.cit {
        if let Err(e) = ctx.finish().await {
            eprintln!("  dropping the Citus workloads' schemas failed: {e}");
            failed.push("citus cleanup");
        }
    }
    println!(
        "\n== Results ({:.0} s), as Markdown\n\n{}",
        started.elapsed().as_secs_f64(),
        report::summary_markdown(&sections, &run_info)
    );
    for section in &sections {
        println!("{}", section.markdown(&run_info));
    }
    println!(
        "Ratios are against the baseline of the same run; `met?` is computed (\"unresolved\": the \
         A/A control read outside 1.00 ± {}); nothing is asserted.",
        report::AA_TOLERANCE
    );
    if failed.is_empty() {
        0
    } else {
        eprintln!("failed workloads: {}", failed.join(", "));
        1
    }
}

/// The 1-minute load average (`/proc/loadavg`), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
