//! Workload 25: how the lifecycle scales with the number of tenants, on every backend the run
//! reaches, drawn as an SVG (`docs/scaling.svg` with `--write`).
//!
//! Per backend, one registry grows to 10, 100, 1,000 and 10,000 tenants (Citus to 1,000: a
//! tenant there is a distributed schema created by a two-phase commit, ~40 ms each). At each
//! size: the time to **create** that many tenants from an empty registry (`Lifecycle::create`
//! on 4 tasks: the sum of the steps that grew the registry), a **no-op
//! `migrate_all`** (median of 3), and **`migrate_all` with one pending migration** (`ALTER
//! TABLE guards ADD COLUMN …`, at the default concurrency of 4). Each size adds a migration,
//! so a create at a larger size applies one to four more `ADD COLUMN`s than at 10.

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::time::Instant;

use sqlx::migrate::{Migration, Migrator};
use tenancy::{Lifecycle, MigrateOptions, Tenants};

use crate::citus::CitusCtx;
use crate::common::*;
use crate::mysql::MyCtx;
use crate::report::{Results, Row, Target};
use crate::sqlite::Folder;

/// One backend's times at each size.
pub struct Curve {
    pub backend: &'static str,
    pub points: Vec<Point>,
}

#[derive(Clone, Copy)]
pub struct Point {
    pub tenants: usize,
    /// Seconds: creating `tenants` from none, a no-op `migrate_all`, one pending migration.
    pub create: f64,
    pub noop: f64,
    pub pending: f64,
}

/// Creates run on this many tasks, as `migrate_all` runs tenants (its default concurrency).
const CREATE_TASKS: usize = 4;

/// Grows one registry through `sizes`; `handle(v)` is a handle on it with migrations 1..=v.
async fn curve<L, F, Fut>(
    backend: &'static str,
    sizes: &[usize],
    names: &[String],
    mut handle: F,
) -> BoxResult<Curve>
where
    L: Lifecycle,
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = BoxResult<L>>,
{
    let mut points = Vec::new();
    let (mut created, mut create_secs, mut version) = (0, 0.0, 1);
    for &n in sizes {
        let started = Instant::now();
        let tenants = handle(version).await?;
        let start = Instant::now();
        let t = tenants.clone();
        each_concurrent(&names[created..n], CREATE_TASKS, move |name| {
            let t = t.clone();
            async move {
                t.create(&name).await?;
                Ok(())
            }
        })
        .await?;
        create_secs += start.elapsed().as_secs_f64();
        created = n;
        let mut noop = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let report = tenants.migrate_all(MigrateOptions::default()).await?;
            noop.push(start.elapsed().as_secs_f64());
            if report.up_to_date() != n || !report.is_success() {
                return Err(
                    format!("{backend}: no-op migrate_all over {n}: not all up to date").into(),
                );
            }
        }
        version += 1;
        let tenants = handle(version).await?;
        let start = Instant::now();
        let report = tenants.migrate_all(MigrateOptions::default()).await?;
        let pending = start.elapsed().as_secs_f64();
        let migrated = report.changed().count();
        if migrated != n || !report.is_success() {
            return Err(format!("{backend}: migrate_all migrated {migrated} of {n}").into());
        }
        let point = Point {
            tenants: n,
            create: create_secs,
            noop: median(&mut noop),
            pending,
        };
        println!(
            "  {backend} {n} tenants: create {}, no-op {}, pending {} (this size took {:.0} s)",
            fmt_secs(point.create),
            fmt_secs(point.noop),
            fmt_secs(point.pending),
            started.elapsed().as_secs_f64()
        );
        points.push(point);
    }
    Ok(Curve { backend, points })
}

/// The sizes of a backend: 10 to 10,000 (Citus to `citus_max`), 2 and 5 with `--quick`.
fn sizes(quick: bool, max: usize) -> Vec<usize> {
    if quick {
        vec![2, 5]
    } else {
        [10, 100, 1000, 10_000]
            .into_iter()
            .filter(|n| *n <= max)
            .collect()
    }
}

/// The largest Citus size.
const CITUS_MAX: usize = 1000;

async fn postgres(ctx: &mut Ctx) -> BoxResult<Curve> {
    let sizes = sizes(ctx.quick, usize::MAX);
    let mut all = Vec::new();
    for v in 1..=sizes.len() as i64 + 1 {
        all.push(crate::migrate::migrations_upto(v).await?);
    }
    let registry = ctx.registry_name();
    let names = ctx.names("sc", *sizes.last().unwrap_or(&0));
    let pool = ctx.pool.clone();
    curve("PostgreSQL", &sizes, &names, |v| {
        let migrations: Vec<Migration> = all[v as usize - 1].clone();
        let (pool, registry) = (pool.clone(), registry.clone());
        async move {
            Ok(Tenants::new(pool, Migrator::with_migrations(migrations))?
                .with_registry(&registry)?)
        }
    })
    .await
    // The workload's database is dropped when it ends, with every tenant in it.
}

async fn mariadb(my: &mut MyCtx) -> BoxResult<Curve> {
    let sizes = sizes(my.quick, usize::MAX);
    let registry = my.registry("mb_sc");
    let names = my.names("ms", *sizes.last().unwrap_or(&0));
    let result = {
        let my = &*my;
        curve("MariaDB", &sizes, &names, |v| {
            let handle = my.tenants(&registry, crate::mysql::migrations_upto(v));
            async move { handle }
        })
        .await
    };
    let started = Instant::now();
    my.drop_all().await?;
    println!(
        "  (dropped the MariaDB databases in {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    result
}

async fn sqlite(quick: bool) -> BoxResult<Curve> {
    let sizes = sizes(quick, usize::MAX);
    let folder = Folder::new("bench-sqlite-scaling")?;
    let names: Vec<String> = (0..*sizes.last().unwrap_or(&0))
        .map(|i| format!("t{i:05}"))
        .collect();
    let folder = &folder;
    curve("SQLite", &sizes, &names, |v| async move {
        crate::sqlite::tenants(folder, crate::sqlite::migrations_upto(v)).await
    })
    .await
}

async fn citus(cit: &mut CitusCtx) -> BoxResult<Curve> {
    let sizes = sizes(cit.quick, CITUS_MAX);
    let all = example_migrations().await?;
    let (_, registry) = cit.handle(all).await?;
    let names = cit.names("csc", *sizes.last().unwrap_or(&0));
    let mut lists = Vec::new();
    for v in 1..=sizes.len() as i64 + 1 {
        lists.push(crate::migrate::migrations_upto(v).await?);
    }
    let pool = cit.pool.clone();
    curve("Citus", &sizes, &names, |v| {
        let migrations: Vec<Migration> = lists[v as usize - 1].clone();
        let (pool, registry) = (pool.clone(), registry.clone());
        async move {
            Ok(Tenants::new(pool, Migrator::with_migrations(migrations))?
                .with_registry(&registry)?)
        }
    })
    .await
    // The schemas are dropped with the Citus workloads' others when the run ends.
}

/// Runs every backend the run reaches, adds the rows to `out` and draws `svg`.
pub async fn run(
    ctx: &mut Ctx,
    my: Option<&mut MyCtx>,
    cit: Option<&mut CitusCtx>,
    svg: &Path,
    caption: &str,
) -> BoxResult<()> {
    let mut curves = vec![postgres(ctx).await?];
    match my {
        Some(my) => curves.push(mariadb(my).await?),
        None => ctx.out.note("MariaDB: not run (no MYSQL_URL server)"),
    }
    curves.push(sqlite(ctx.quick).await?);
    match cit {
        Some(cit) => curves.push(citus(cit).await?),
        None => ctx.out.note("Citus: not run (CITUS_URL is not set)"),
    }
    rows(&mut ctx.out, &curves);
    std::fs::write(svg, draw(&curves, caption))?;
    println!("  wrote {}", svg.display());
    Ok(())
}

/// One of a point's three times.
type Measure = fn(&Point) -> f64;

/// The three operations: title, time.
const OPS: [(&str, Measure); 3] = [
    ("create N tenants, 4 at a time", |p| p.create),
    ("migrate_all, nothing pending", |p| p.noop),
    ("migrate_all, one pending ADD COLUMN", |p| p.pending),
];

/// One row per backend and operation: the times at each size, and the time per tenant at the
/// largest size against that at 100 (1.0: linear).
fn rows(out: &mut Results, curves: &[Curve]) {
    for c in curves {
        for (op, time) in OPS {
            let cells: Vec<String> = c
                .points
                .iter()
                .map(|p| format!("{}: {}", thousands(p.tenants as u64), fmt_secs(time(p))))
                .collect();
            let (Some(last), Some(base)) = (
                c.points.last(),
                c.points
                    .iter()
                    .find(|p| p.tenants >= 100)
                    .or(c.points.first()),
            ) else {
                continue;
            };
            let per = |p: &Point| time(p) / p.tenants as f64;
            out.row(Row::new(
                format!("25 {}: {op}", c.backend),
                format!(
                    "{}; per tenant at {}: {}",
                    cells.join(", "),
                    thousands(last.tenants as u64),
                    fmt_secs(per(last))
                ),
                format!(
                    "{} (per tenant at {} tenants)",
                    fmt_secs(per(base)),
                    thousands(base.tenants as u64)
                ),
                Some(per(last) / per(base)),
                Target::None,
            ));
        }
    }
}

const COLORS: [(&str, &str); 4] = [
    ("PostgreSQL", "#336791"),
    ("MariaDB", "#c0765a"),
    ("SQLite", "#5b8c2a"),
    ("Citus", "#8e44ad"),
];

/// Three log-log panels (create, no-op, one pending), one line per backend; `caption` (the
/// run's date, commit and machine) at the bottom.
pub fn draw(curves: &[Curve], caption: &str) -> String {
    let (w, h) = (1010.0, 420.0);
    let (panel_w, panel_h) = (260.0, 240.0);
    let (left, top) = (70.0, 100.0);
    let gap = 65.0;
    let all: Vec<&Point> = curves.iter().flat_map(|c| &c.points).collect();
    let x_max = all.iter().map(|p| p.tenants).max().unwrap_or(10).max(10) as f64;
    let x_min = all.iter().map(|p| p.tenants).min().unwrap_or(1).max(1) as f64;
    let (x_lo, x_hi) = (
        x_min.log10().floor(),
        x_max.log10().ceil().max(x_min.log10().floor() + 1.0),
    );
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="24" font-size="15" font-weight="bold">Lifecycle time against the number of tenants (log-log)</text>"#
    );
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="{}" fill="#555">{} · drawn by cargo bench --bench tenancy -- scaling --write</text>"##,
        h - 12.0,
        xml_escape(caption)
    );
    // Legend.
    let mut lx = left;
    for c in curves {
        let color = color(c.backend);
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="50" x2="{}" y2="50" stroke="{color}" stroke-width="2.5"/><circle cx="{}" cy="50" r="3.5" fill="{color}"/><text x="{}" y="54">{}</text>"#,
            lx + 22.0,
            lx + 11.0,
            lx + 28.0,
            c.backend
        );
        lx += 40.0 + 8.0 * c.backend.len() as f64;
    }
    for (k, (title, time)) in OPS.iter().enumerate() {
        let x0 = left + k as f64 * (panel_w + gap);
        let values: Vec<f64> = all.iter().map(|p| time(p)).filter(|v| *v > 0.0).collect();
        let lo = values
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min)
            .max(1e-4);
        let hi = values.iter().cloned().fold(0.0, f64::max).max(lo * 10.0);
        let (y_lo, y_hi) = (lo.log10().floor(), hi.log10().ceil());
        let x = |n: f64| x0 + (n.log10() - x_lo) / (x_hi - x_lo) * panel_w;
        let y = |s: f64| top + panel_h - (s.max(1e-9).log10() - y_lo) / (y_hi - y_lo) * panel_h;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{title}</text>"#,
            x0 + panel_w / 2.0,
            top - 8.0
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#999"/>"##
        );
        for e in x_lo as i32..=x_hi as i32 {
            let px = x(10f64.powi(e));
            let _ = writeln!(
                svg,
                r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{}" stroke="#ddd"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
                top + panel_h,
                top + panel_h + 16.0,
                thousands(10u64.pow(e.max(0) as u32))
            );
        }
        for e in y_lo as i32..=y_hi as i32 {
            let py = y(10f64.powi(e));
            let _ = writeln!(
                svg,
                r##"<line x1="{x0}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 + panel_w,
                x0 - 4.0,
                py + 4.0,
                axis_secs(10f64.powi(e))
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">tenants</text>"#,
            x0 + panel_w / 2.0,
            top + panel_h + 34.0
        );
        for c in curves {
            let color = color(c.backend);
            let pts: Vec<String> = c
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.tenants as f64), y(time(p))))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                pts.join(" ")
            );
            for p in &c.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}, {} tenants: {}</title></circle>"#,
                    x(p.tenants as f64),
                    y(time(p)),
                    c.backend,
                    thousands(p.tenants as u64),
                    fmt_secs(time(p))
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn color(backend: &str) -> &'static str {
    COLORS
        .iter()
        .find(|(b, _)| *b == backend)
        .map_or("#333", |(_, c)| c)
}

/// An axis label: 1 ms, 10 ms, 100 ms, 1 s, 10 s, …
fn axis_secs(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.0} s")
    }
}
