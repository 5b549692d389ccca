//! Benchmarks of `tenancy` against the PostgreSQL the tests use (`DATABASE_URL`, or a private
//! throwaway cluster; see `tenancy-testdb`). Each result is printed as a ratio against a
//! baseline measured in the same run. Nothing here asserts a time.
//!
//! ```text
//! cargo bench --bench tenancy                      # all eight workloads, full sizes
//! cargo bench --bench tenancy -- --quick           # every workload at tiny sizes (CI)
//! cargo bench --bench tenancy -- --only lookups    # one workload (crud, lookups, create,
//!                                                  #   noop, pending, memory, compile,
//!                                                  #   across or 1-8)
//! ```
//!
//! See `BENCHMARKS.md` for the numbers and what they mean.

mod across;
mod common;
mod compile;
mod create;
mod crud;
mod lookups;
mod migrate;

use std::time::Instant;

use common::{print_markdown, print_table, BoxResult, Ctx};

const WORKLOADS: [(&str, &str); 8] = [
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
];

struct Options {
    quick: bool,
    only: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench tenancy [-- [--quick] [--only NAME]]\n  NAME: {}",
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
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--only" => {
                let name = it.next().unwrap_or_else(|| usage());
                let index = WORKLOADS
                    .iter()
                    .position(|(n, _)| n == name)
                    .or_else(|| name.parse::<usize>().ok().and_then(|i| i.checked_sub(1)))
                    .filter(|i| *i < WORKLOADS.len());
                options.only = Some(index.unwrap_or_else(|| usage()));
            }
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage()
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
    let options = parse(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(options));
    std::process::exit(code);
}

async fn run(options: Options) -> i32 {
    let url = match tenancy_testdb::database_url() {
        Ok(url) => url,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut ctx = match Ctx::new(url, options.quick).await {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            return 1;
        }
    };
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&ctx.admin)
        .await
        .unwrap_or_default();
    println!(
        "tenancy benchmarks{} against PostgreSQL {version}",
        if options.quick {
            " (--quick sizes)"
        } else {
            ""
        }
    );
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&ctx.admin)
        .await
        .unwrap_or_default();
    ctx.note(format!(
        "every workload runs in a database of its own, created from template0 and dropped after \
         it (the server runs with autovacuum {autovacuum})"
    ));
    let started = Instant::now();
    let mut failed = Vec::new();
    // `Ctx::new` entered the first workload's database.
    let mut fresh = true;
    for (index, (name, title)) in WORKLOADS.iter().enumerate() {
        if options.only.is_some_and(|o| o != index) {
            continue;
        }
        if !fresh {
            if let Err(e) = ctx.enter_database().await {
                eprintln!("  cannot create a database for workload {name}: {e}");
                failed.push(*name);
                break;
            }
        }
        fresh = false;
        println!("\n== {title} [{name}] (database {})", ctx.database);
        let load0 = load_average();
        let t0 = Instant::now();
        let result: BoxResult<()> = match index {
            0 => crud::run(&mut ctx).await,
            1 => lookups::run(&mut ctx).await,
            2 => create::run(&mut ctx).await,
            3 => migrate::noop(&mut ctx).await,
            4 => migrate::pending(&mut ctx).await,
            5 => migrate::memory(&mut ctx).await,
            6 => compile::run(&mut ctx).await,
            _ => across::run(&mut ctx).await,
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
        if let Err(e) = ctx.leave_database().await {
            eprintln!("  dropping the database of workload {name} failed: {e}");
            failed.push(*name);
        }
    }
    println!("\n== Results ({:.0} s)\n", started.elapsed().as_secs_f64());
    print_table(&ctx.rows);
    if !ctx.notes.is_empty() {
        println!("\nNotes:");
        for note in &ctx.notes {
            println!("  - {note}");
        }
    }
    println!("\nMarkdown:\n");
    print_markdown(&ctx.rows);
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
