//! Workload 7: compile cost. Two generated crates under `target/bench-compile/`: 50 models with
//! `#[derive(TenantModel)]`, and the same 50 structs with `#[derive(sqlx::FromRow)]` only. Both
//! depend on the same crates (`tenancy` by path, `sqlx` with `derive`) and share one target
//! directory, so dependencies are built once (the warm-up); then `src/lib.rs` is touched and
//! `cargo check` of just that crate is timed, alternating the two crates, median of several.
//!
//! The target directory is `target/bench-compile/target`, not the workspace's own: a `cargo`
//! command blocks while another holds the workspace target directory's lock, and other builds
//! running at the same time would then be counted as compile time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use crate::common::*;
use crate::method::paired;
use crate::report::{Row, Target};

const FIELDS: &str = "    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub quantity: i32,
    pub price: f64,
    pub active: bool,
    pub parent_id: Option<i64>,
    pub code: String,
";

fn derive_model(i: usize) -> String {
    format!(
        "#[derive(TenantModel, Debug, Clone)]
#[tenancy(table = \"model_{i}s\")]
pub struct Model{i} {{
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required, length(max = 100))]
    pub name: String,
    pub description: Option<String>,
    #[tenancy(range(min = 0, max = 1000))]
    pub quantity: i32,
    pub price: f64,
    pub active: bool,
    pub parent_id: Option<i64>,
    pub code: String,
}}

"
    )
}

fn fromrow_model(i: usize) -> String {
    format!("#[derive(sqlx::FromRow, Debug, Clone)]\npub struct Model{i} {{\n{FIELDS}}}\n\n")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes one generated crate; returns its manifest path.
fn generate(dir: &Path, name: &str, models: usize, derive: bool) -> BoxResult<PathBuf> {
    fs::create_dir_all(dir.join("src"))?;
    let manifest = format!(
        "[package]
name = \"{name}\"
version = \"0.0.0\"
edition = \"2021\"
publish = false

[dependencies]
tenancy = {{ path = {ws:?} }}
sqlx = {{ version = \"0.9\", default-features = false, features = [\"postgres\", \"runtime-tokio\", \"migrate\", \"derive\"] }}

# Not part of the benchmarked workspace.
[workspace]

# The workspace's sqlx-core (vendor/README.md), as an application adds it; a fresh machine's
# registry holds no other copy for `--offline`.
[patch.crates-io]
sqlx-core = {{ path = {vendor:?} }}
",
        ws = workspace().display().to_string(),
        vendor = workspace().join("vendor/sqlx-core").display().to_string(),
    );
    fs::write(dir.join("Cargo.toml"), manifest)?;
    // The workspace's lock file, so the same dependency versions are used (and no network).
    if !dir.join("Cargo.lock").exists() {
        fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let mut src = String::from("#![allow(dead_code)]\n");
    if derive {
        src.push_str("use tenancy::TenantModel;\n\n");
    }
    for i in 0..models {
        src.push_str(&if derive {
            derive_model(i)
        } else {
            fromrow_model(i)
        });
    }
    fs::write(dir.join("src/lib.rs"), src)?;
    Ok(dir.join("Cargo.toml"))
}

fn touch(manifest: &Path) -> BoxResult<()> {
    let lib = manifest.with_file_name("src").join("lib.rs");
    fs::File::options()
        .write(true)
        .open(lib)?
        .set_modified(SystemTime::now())?;
    Ok(())
}

fn check(manifest: &Path, target: &Path) -> BoxResult<f64> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let start = Instant::now();
    let out = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "cargo check of {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(secs)
}

pub struct Result7 {
    pub models: usize,
    /// Seconds of each run: derive, FromRow, FromRow again (the A/A control), no-op.
    pub derive: Vec<f64>,
    pub fromrow: Vec<f64>,
    pub again: Vec<f64>,
    pub noop: f64,
    pub warm_secs: f64,
}

/// Blocking; run on a blocking thread.
pub fn measure(models: usize, runs: usize) -> BoxResult<Result7> {
    let base = workspace().join("target/bench-compile");
    let target = base.join("target");
    let derive = generate(&base.join("derive"), "bench_models_derive", models, true)?;
    let fromrow = generate(&base.join("fromrow"), "bench_models_fromrow", models, false)?;
    let start = Instant::now();
    println!(
        "  warming (builds the dependencies once into {})",
        target.display()
    );
    check(&derive, &target)?;
    check(&fromrow, &target)?;
    let warm_secs = start.elapsed().as_secs_f64();
    let (mut times, mut noop) = ([Vec::new(), Vec::new(), Vec::new()], Vec::new());
    for run in 0..runs {
        // 0 derive, 1 FromRow, 2 FromRow again; the order rotating.
        for k in 0..3 {
            let which = (k + run) % 3;
            let manifest = if which == 0 { &derive } else { &fromrow };
            touch(manifest)?;
            times[which].push(check(manifest, &target)?);
        }
        // Nothing changed: cargo's own overhead.
        noop.push(check(&fromrow, &target)?);
    }
    let [derive, fromrow, again] = times;
    println!(
        "  derive runs: {derive:.2?}\n  FromRow runs: {fromrow:.2?}\n  FromRow again: \
         {again:.2?}\n  no-op runs: {noop:.2?}"
    );
    Ok(Result7 {
        models,
        derive,
        fromrow,
        again,
        noop: median(&mut noop),
        warm_secs,
    })
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    // --quick runs the same code path at a tiny size; its first run still builds the
    // dependencies into target/bench-compile/target (a few minutes, once).
    let (models, runs) = if ctx.quick { (2, 1) } else { (50, 11) };
    let r = tokio::task::spawn_blocking(move || measure(models, runs)).await??;
    let (ratio, interval) = paired(&r.derive, &r.fromrow);
    let (derive, fromrow) = (
        median(&mut r.derive.clone()),
        median(&mut r.fromrow.clone()),
    );
    ctx.out.row(
        Row::new(
            format!(
                "7 cargo check, {} models: derive(TenantModel) vs derive(sqlx::FromRow) (median of {runs})",
                r.models
            ),
            fmt_secs(derive),
            format!("{} (derive(sqlx::FromRow))", fmt_secs(fromrow)),
            Some(ratio),
            Target::AtMost(1.5),
        )
        .interval(interval)
        .aa(paired(&r.again, &r.fromrow).0),
    );
    ctx.out.note(format!(
        "a no-op cargo check takes {}; net of it the ratio is {:.2} ({} vs {}); warm-up took {:.0} s",
        fmt_secs(r.noop),
        (derive - r.noop) / (fromrow - r.noop),
        fmt_secs(derive - r.noop),
        fmt_secs(fromrow - r.noop),
        r.warm_secs
    ));
    Ok(())
}
