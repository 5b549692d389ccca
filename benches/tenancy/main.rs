//! Benchmarks of `tenancy` against the PostgreSQL the tests use (`DATABASE_URL`, or a private
//! throwaway cluster; see `tenancy-testdb`). Each result is printed as a ratio against a
//! baseline measured in the same run. Nothing here asserts a time.
//!
//! ```text
//! cargo bench --bench tenancy                      # all twenty-four workloads, full sizes
//! cargo bench --bench tenancy -- --quick           # every workload at tiny sizes (CI)
//! cargo bench --bench tenancy -- --only lookups    # one workload (crud, lookups, create,
//!                                                  #   noop, pending, memory, compile,
//!                                                  #   across, mysql-crud, mysql-create,
//!                                                  #   mysql-noop, mysql-pending, test-attr,
//!                                                  #   sqlite-crud, sqlite-lookups,
//!                                                  #   sqlite-pending, sqlite-memory,
//!                                                  #   citus-create, citus-pending,
//!                                                  #   citus-lookups, join, preload, stream,
//!                                                  #   upsert or 1-24)
//! cargo bench --bench tenancy -- mysql-crud noop   # the same, several at once
//! cargo bench --bench tenancy -- mysql             # the four MySQL / MariaDB workloads
//! cargo bench --bench tenancy -- test-attr         # #[tenancy::test] vs #[sqlx::test] (13)
//! cargo bench --bench tenancy -- sqlite            # the four SQLite workloads (14-17, no server)
//! cargo bench --bench tenancy -- citus             # the three Citus workloads (18-20)
//! cargo bench --bench tenancy -- models            # the model API of issue 15 (21-24)
//! ```
//!
//! Workloads 1-8, 13 and 21-24 run on PostgreSQL (`DATABASE_URL`), 9-12 on MySQL / MariaDB
//! (`MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`), 14-17 on SQLite in temporary
//! folders, 18-20 on Citus (`CITUS_URL`, the coordinator); a run connects only to the servers
//! its workloads need. See `BENCHMARKS.md` for the numbers and what they mean.

mod across;
mod citus;
mod common;
mod compile;
mod create;
mod crud;
mod lookups;
mod migrate;
mod models;
mod mysql;
mod sqlite;
mod test_attr;

use std::time::Instant;

use citus::CitusCtx;
use common::{print_markdown, print_table, BoxResult, Ctx};
use mysql::MyCtx;
use sqlite::LiteCtx;

/// The workloads that run on MySQL / MariaDB.
const MYSQL: std::ops::Range<usize> = 8..12;
/// The workloads that run on SQLite (no server).
const SQLITE: std::ops::Range<usize> = 13..17;
/// The workloads that run on Citus; the others run on PostgreSQL.
const CITUS: std::ops::Range<usize> = 17..20;
/// The workloads of the model API (issue 15), on PostgreSQL.
const MODELS: std::ops::Range<usize> = 20..24;

const WORKLOADS: [(&str, &str); 24] = [
    ("crud", "1 generated CRUD vs hand-written sqlx"),
    ("lookups", "2 point lookups over 1 / 100 / 1,000 tenants"),
    ("create", "3 creating 1,000 tenants vs a server-side loop"),
    (
        "noop",
        "4 migrate_all, nothing pending, 1,000 / 10,000 tenants",
    ),
    ("pending", "5 migrate_all, one pending ALTER, 1,000 tenants"),
    ("memory", "6 peak RSS of migrate_all over 10,000 tenants"),
    ("compile", "7 cargo check: derive(TenantModel) vs FromRow"),
    (
        "across",
        "8 count across 1,000 tenants: query_across vs a loop vs UNION ALL",
    ),
    (
        "mysql-crud",
        "9 MariaDB: generated CRUD vs hand-written sqlx",
    ),
    (
        "mysql-create",
        "10 MariaDB: creating 1,000 tenants vs a floor",
    ),
    (
        "mysql-noop",
        "11 MariaDB: migrate_all, nothing pending, 1,000 / 10,000 tenants",
    ),
    (
        "mysql-pending",
        "12 MariaDB: migrate_all, one pending ADD COLUMN, 1,000 tenants",
    ),
    (
        "test-attr",
        "13 #[tenancy::test] setup + teardown per test vs #[sqlx::test]",
    ),
    (
        "sqlite-crud",
        "14 SQLite: generated CRUD vs hand-written sqlx",
    ),
    (
        "sqlite-lookups",
        "15 SQLite: point lookups over 1,000 tenant files vs one",
    ),
    (
        "sqlite-pending",
        "16 SQLite: migrate_all, one pending ADD COLUMN, 1,000 files",
    ),
    (
        "sqlite-memory",
        "17 SQLite: peak RSS and descriptors of migrate_all, 10,000 files",
    ),
    (
        "citus-create",
        "18 Citus: creating 100 tenants vs a server-side loop",
    ),
    (
        "citus-pending",
        "19 Citus: migrate_all, one pending ADD COLUMN, 100 tenants",
    ),
    (
        "citus-lookups",
        "20 Citus: point lookups over 100 tenants on two workers vs one tenant",
    ),
    (
        "join",
        "21 Query::join of guards at sites in one city vs hand-written sqlx",
    ),
    (
        "preload",
        "22 Relation::preload of 100 / 1,000 parents vs hand-written = ANY($1)",
    ),
    (
        "stream",
        "23 Query::fetch of 1,000,000 rows vs sqlx's fetch stream, and peak RSS",
    ),
    (
        "upsert",
        "24 upsert_many of 1,000 rows, half conflicting, vs hand-written sqlx",
    ),
];

struct Options {
    quick: bool,
    /// The workloads to run (all if empty).
    only: Vec<usize>,
}

impl Options {
    fn runs(&self, index: usize) -> bool {
        self.only.is_empty() || self.only.contains(&index)
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench tenancy [-- [--quick] [--only] [NAME ...]]\n  NAME: mysql \
         (9-12), sqlite (14-17), citus (18-20), models (21-24), {}",
        WORKLOADS
            .iter()
            .enumerate()
            .map(|(i, (n, _))| format!("{n} ({})", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Options {
    let mut options = Options {
        quick: false,
        only: Vec::new(),
    };
    for arg in args {
        match arg.as_str() {
            "--quick" => options.quick = true,
            // Names may follow `--only` or stand alone.
            "--only" => {}
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            "-h" | "--help" => usage(),
            "mysql" => options.only.extend(MYSQL),
            "sqlite" => options.only.extend(SQLITE),
            "citus" => options.only.extend(CITUS),
            "models" => options.only.extend(MODELS),
            name => {
                let index = WORKLOADS
                    .iter()
                    .position(|(n, _)| *n == name)
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(options));
    std::process::exit(code);
}

async fn run(options: Options) -> i32 {
    let wants_pg = (0..WORKLOADS.len()).any(|i| {
        !MYSQL.contains(&i) && !SQLITE.contains(&i) && !CITUS.contains(&i) && options.runs(i)
    });
    let mut lite = LiteCtx::new(options.quick);
    let wants_mysql = MYSQL.into_iter().any(|i| options.runs(i));
    let wants_citus = CITUS.into_iter().any(|i| options.runs(i));
    let mut pg = None;
    if wants_pg {
        let url = match tenancy_testdb::database_url() {
            Ok(url) => url,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let ctx = match Ctx::new(url, options.quick).await {
            Ok(ctx) => ctx,
            Err(e) => {
                eprintln!("cannot connect: {e}");
                return 1;
            }
        };
        pg = Some(ctx);
    }
    let mut my = None;
    if wants_mysql {
        match MyCtx::new(options.quick).await {
            Ok(ctx) => my = Some(ctx),
            Err(e) => {
                eprintln!("cannot connect: {e}");
                return 1;
            }
        }
    }
    let mut cit = None;
    if wants_citus {
        match CitusCtx::new(options.quick).await {
            Ok(ctx) => cit = Some(ctx),
            Err(e) => {
                eprintln!("cannot connect to Citus: {e}");
                return 1;
            }
        }
    }
    let quick = if options.quick {
        " (--quick sizes)"
    } else {
        ""
    };
    if let Some(ctx) = &mut pg {
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&ctx.admin)
            .await
            .unwrap_or_default();
        println!("tenancy benchmarks{quick} against PostgreSQL {version}");
        let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
            .fetch_one(&ctx.admin)
            .await
            .unwrap_or_default();
        ctx.note(format!(
            "every workload runs in a database of its own, created from template0 and dropped \
             after it (the server runs with autovacuum {autovacuum})"
        ));
    }
    if let Some(ctx) = &mut my {
        println!(
            "tenancy benchmarks{quick} against MySQL / MariaDB {}",
            ctx.version
        );
        ctx.note(
            "9-12: every MySQL workload uses registry and tenant databases of its own and drops \
             every database it created when it ends",
        );
    }
    if let Some(ctx) = &mut cit {
        println!(
            "tenancy benchmarks{quick} against Citus {} (CITUS_URL)",
            ctx.version
        );
        ctx.note(
            "18-20: every Citus workload runs in the coordinator's database with schemas of its \
             own, dropped when the run ends",
        );
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    // `Ctx::new` entered the first workload's database.
    let mut fresh = true;
    for (index, (name, title)) in WORKLOADS.iter().enumerate() {
        if !options.runs(index) {
            continue;
        }
        let load0 = load_average();
        let t0 = Instant::now();
        let result: BoxResult<()> = if SQLITE.contains(&index) {
            println!("\n== {title} [{name}]");
            match index {
                13 => sqlite::crud(&mut lite).await,
                14 => sqlite::lookups(&mut lite).await,
                15 => sqlite::pending(&mut lite).await,
                _ => sqlite::memory(&mut lite).await,
            }
        } else if CITUS.contains(&index) {
            let Some(ctx) = cit.as_mut() else { continue };
            println!("\n== {title} [{name}]");
            match index {
                17 => citus::create(ctx).await,
                18 => citus::pending(ctx).await,
                _ => citus::lookups(ctx).await,
            }
        } else if !MYSQL.contains(&index) {
            let Some(ctx) = pg.as_mut() else { continue };
            if !fresh {
                if let Err(e) = ctx.enter_database().await {
                    eprintln!("  cannot create a database for workload {name}: {e}");
                    failed.push(*name);
                    break;
                }
            }
            fresh = false;
            println!("\n== {title} [{name}] (database {})", ctx.database);
            let result = match index {
                0 => crud::run(ctx).await,
                1 => lookups::run(ctx).await,
                2 => create::run(ctx).await,
                3 => migrate::noop(ctx).await,
                4 => migrate::pending(ctx).await,
                5 => migrate::memory(ctx).await,
                6 => compile::run(ctx).await,
                7 => across::run(ctx).await,
                12 => test_attr::run(ctx).await,
                20 => models::join(ctx).await,
                21 => models::preload(ctx).await,
                22 => models::stream(ctx).await,
                _ => models::upsert(ctx).await,
            };
            if let Err(e) = ctx.leave_database().await {
                eprintln!("  dropping the database of workload {name} failed: {e}");
                failed.push(*name);
            }
            result
        } else {
            let Some(ctx) = my.as_mut() else { continue };
            println!("\n== {title} [{name}]");
            match index {
                8 => mysql::crud(ctx).await,
                9 => mysql::create(ctx).await,
                10 => mysql::noop(ctx).await,
                _ => mysql::pending(ctx).await,
            }
        };
        // Other work on the machine slows every side of a comparison, but not always alike:
        // the load before and after says whether this workload shared the CPUs.
        println!(
            "  ({name} took {:.1} s; 1-minute load average {load0} before, {} after)",
            t0.elapsed().as_secs_f64(),
            load_average()
        );
        if let Err(e) = result {
            eprintln!("  workload {name} failed: {e}");
            failed.push(*name);
        }
    }
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    if let Some(ctx) = &mut pg {
        rows.append(&mut ctx.rows);
        notes.append(&mut ctx.notes);
    }
    if let Some(ctx) = &mut my {
        rows.append(&mut ctx.rows);
        notes.append(&mut ctx.notes);
    }
    rows.append(&mut lite.rows);
    notes.append(&mut lite.notes);
    if let Some(ctx) = &mut cit {
        if let Err(e) = ctx.finish().await {
            eprintln!("  dropping the Citus workloads' schemas failed: {e}");
            failed.push("citus cleanup");
        }
        rows.append(&mut ctx.rows);
        notes.append(&mut ctx.notes);
    }
    println!("\n== Results ({:.0} s)\n", started.elapsed().as_secs_f64());
    print_table(&rows);
    if !notes.is_empty() {
        println!("\nNotes:");
        for note in &notes {
            println!("  - {note}");
        }
    }
    println!("\nMarkdown:\n");
    print_markdown(&rows);
    println!(
        "\nRatios are against the baseline of the same run; `met?` is informational, nothing \
         is asserted."
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
