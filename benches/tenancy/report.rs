//! What the program reports: rows with a computed verdict (gated by the A/A control), one
//! section per workload, the summary, the run's facts (command, machine, date, commit), the
//! Markdown printed at the end and, with `--write`, written into BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{fmt_secs, BoxResult};

/// How far from 1 an A/A control may read before the rows it gates print "unresolved".
pub const AA_TOLERANCE: f64 = 0.02;

/// What a row's ratio (or, for absolute targets, its measured value) must be.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// ratio ≥ x (throughput).
    AtLeast(f64),
    /// ratio ≤ x (time, memory).
    AtMost(f64),
    /// measured value ≤ limit, shown with the unit given (seconds or MB).
    Under(f64, &'static str),
    /// Informational row.
    None,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtLeast(x) => format!(">= {x:.2}x"),
            Target::AtMost(x) => format!("<= {x:.2}x"),
            Target::Under(x, "s") => format!("measured <= {}", fmt_secs(x)),
            Target::Under(x, unit) => format!("measured <= {x} {unit}"),
            Target::None => "-".into(),
        }
    }
}

/// A row's computed verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The target was missed and the A/A control says the method could see it.
    No,
    /// The A/A control read outside 1.00 ± [`AA_TOLERANCE`]: no verdict.
    Unresolved,
    Yes,
    /// No target.
    None,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Yes => "yes",
            Verdict::No => "NO",
            Verdict::Unresolved => "unresolved",
            Verdict::None => "-",
        }
    }
}

/// One line of a workload's table.
pub struct Row {
    pub label: String,
    pub measured: String,
    /// The denominator: its value and, in parentheses, what it is.
    pub baseline: String,
    pub ratio: Option<f64>,
    /// A distribution-free 95 % interval of the ratio (of a median of paired ratios).
    pub interval: Option<(f64, f64)>,
    /// The A/A control that gates this row's verdict: the baseline against itself, measured
    /// the same way in the same run.
    pub aa: Option<f64>,
    pub target: Target,
    /// The measured value in the unit of an absolute target.
    pub value: Option<f64>,
}

impl Row {
    pub fn new(
        label: impl Into<String>,
        measured: impl Into<String>,
        baseline: impl Into<String>,
        ratio: Option<f64>,
        target: Target,
    ) -> Self {
        Row {
            label: label.into(),
            measured: measured.into(),
            baseline: baseline.into(),
            ratio,
            interval: None,
            aa: None,
            target,
            value: None,
        }
    }

    /// Sets the value an absolute target is checked against.
    pub fn value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets the A/A control that gates the verdict.
    pub fn aa(mut self, aa: f64) -> Self {
        self.aa = Some(aa);
        self
    }

    /// Sets the 95 % interval of the ratio.
    pub fn interval(mut self, interval: (f64, f64)) -> Self {
        self.interval = Some(interval);
        self
    }

    fn met(&self) -> Option<bool> {
        match self.target {
            Target::AtLeast(x) => self.ratio.map(|r| r >= x),
            Target::AtMost(x) => self.ratio.map(|r| r <= x),
            Target::Under(limit, _) => self.value.map(|v| v <= limit),
            Target::None => None,
        }
    }

    pub fn verdict(&self) -> Verdict {
        match (self.met(), self.aa) {
            (None, _) => Verdict::None,
            (Some(_), Some(aa)) if (aa - 1.0).abs() > AA_TOLERANCE => Verdict::Unresolved,
            (Some(true), _) => Verdict::Yes,
            (Some(false), _) => Verdict::No,
        }
    }

    /// How far the row is from missing its target (below 1: missed), for picking the row a
    /// workload's summary line shows.
    fn margin(&self) -> f64 {
        match (self.target, self.ratio, self.value) {
            (Target::AtLeast(x), Some(r), _) => r / x,
            (Target::AtMost(x), Some(r), _) => x / r,
            (Target::Under(limit, _), _, Some(v)) => limit / v,
            _ => f64::INFINITY,
        }
    }

    /// What the baseline is: the text of the baseline cell's last parentheses (every row
    /// writes its baseline as `value (what)`), or the whole cell.
    fn denominator(&self) -> &str {
        let cell = self.baseline.trim_end();
        let Some(inner) = cell.strip_suffix(')') else {
            return cell;
        };
        let mut depth = 0;
        for (i, c) in inner.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' if depth == 0 => return &inner[i + 1..],
                '(' => depth -= 1,
                _ => {}
            }
        }
        cell
    }

    fn ratio_text(&self) -> String {
        match (self.ratio, self.interval) {
            (Some(r), Some((lo, hi))) => format!("{r:.3} [{lo:.3}, {hi:.3}]"),
            (Some(r), None) => format!("{r:.3}"),
            (None, _) => "-".into(),
        }
    }

    fn aa_text(&self) -> String {
        self.aa.map_or("-".into(), |aa| format!("{aa:.3}"))
    }

    /// The row as the program prints it while running.
    pub fn line(&self) -> String {
        format!(
            "{}: {} (baseline {}), ratio {}, A/A {}, target {}, met {}",
            self.label,
            self.measured,
            self.baseline,
            self.ratio_text(),
            self.aa_text(),
            self.target.text(),
            self.verdict().text()
        )
    }
}

/// Rows and notes a workload adds while it runs.
#[derive(Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Checks of correctness that failed (not times): the section is still written, and the
    /// run exits non-zero.
    pub failures: Vec<String>,
}

impl Results {
    pub fn row(&mut self, row: Row) {
        println!("  -> {}", row.line());
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes.push(note);
    }

    /// Records a failed check of correctness (see [`Results::failures`]).
    pub fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("  FAILED: {what}");
        self.failures.push(what);
    }

    pub fn take(&mut self) -> Results {
        std::mem::take(self)
    }
}

/// The facts of one run of the program, printed with every table.
pub struct RunInfo {
    /// The command line, with the environment it read (passwords left out).
    pub command: String,
    pub machine: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// `git rev-parse --short HEAD`, `-dirty` with uncommitted changes to tracked files.
    pub commit: String,
}

impl RunInfo {
    pub fn gather(args: &[String]) -> RunInfo {
        let mut env = Vec::new();
        for key in ["DATABASE_URL", "MYSQL_URL", "CITUS_URL"] {
            if let Ok(value) = std::env::var(key) {
                env.push(format!("{key}='{}'", without_password(&value)));
            }
        }
        let profile = if cfg!(debug_assertions) {
            " --profile dev"
        } else {
            ""
        };
        let args: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| *a != "--bench")
            .collect();
        let tail = if args.is_empty() {
            String::new()
        } else {
            format!(" -- {}", args.join(" "))
        };
        env.push(format!("cargo bench{profile} --bench tenancy{tail}"));
        RunInfo {
            command: env.join(" "),
            machine: machine(),
            date: utc_now(),
            commit: commit(),
        }
    }

    fn day(&self) -> &str {
        self.date.split(' ').next().unwrap_or("")
    }
}

/// `url` with the password (if any) replaced by `…`.
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let host_start = rest.find('@');
    let path_start = rest.find('/').unwrap_or(rest.len());
    match host_start {
        Some(at) if at < path_start => {
            let user = &rest[..at];
            match user.split_once(':') {
                Some((name, _)) => format!("{}{name}:…{}", &url[..scheme_end], &rest[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// CPUs, their model, memory and kernel, from `/proc`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let memory_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} GB", kb / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("?".into(), |s| s.trim().to_owned());
    format!("{cpus} CPUs ({model}), {memory_gb}, Linux {kernel}")
}

fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}-dirty"),
        _ => head,
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// One workload's results and the circumstances it ran in.
pub struct Section {
    pub number: usize,
    pub name: &'static str,
    pub title: &'static str,
    /// The server (or library) it ran against, e.g. `PostgreSQL 15.20`.
    pub server: String,
    pub results: Results,
    /// The 1-minute load average before and after.
    pub load: (String, String),
    pub secs: f64,
}

impl Section {
    /// The verdict over every row with a target: NO if any row missed its target (with its
    /// A/A in bounds), else unresolved if any row has no verdict, else yes; `-` without targets.
    pub fn verdict(&self) -> Verdict {
        self.results
            .rows
            .iter()
            .map(Row::verdict)
            .min()
            .unwrap_or(Verdict::None)
    }

    /// The row the summary shows: among the rows with the section's verdict, the one nearest
    /// to (or furthest past) its target; without targets, the first row with a ratio.
    fn headline(&self) -> Option<&Row> {
        let verdict = self.verdict();
        let rows = &self.results.rows;
        if verdict == Verdict::None {
            return rows.iter().find(|r| r.ratio.is_some());
        }
        rows.iter()
            .filter(|r| r.verdict() == verdict)
            .min_by(|a, b| a.margin().total_cmp(&b.margin()))
    }

    /// The one line of the summary table.
    pub fn summary_line(&self, run: &RunInfo) -> String {
        let key = format!("{} `{}`", self.number, self.name);
        let run_cell = format!(
            "{} · {} · load {}→{}",
            run.day(),
            run.commit,
            self.load.0,
            self.load.1
        );
        match self.headline() {
            Some(row) => cells(&[
                key,
                format!("{}; baseline: {}", row.label, row.denominator()),
                row.ratio_text(),
                row.aa_text(),
                row.target.text(),
                self.verdict().text().into(),
                run_cell,
            ]),
            None => cells(&[
                key,
                "no ratio".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                self.verdict().text().into(),
                run_cell,
            ]),
        }
    }

    /// The section as Markdown: heading, the run's facts, the table, the notes; between the
    /// markers `--write` looks for.
    pub fn markdown(&self, run: &RunInfo) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "<!-- workload:{} -->", self.name);
        let _ = writeln!(out, "### {} `{}`: {}", self.number, self.name, self.title);
        let _ = writeln!(
            out,
            "{} · `{}` · {} · {} · commit {} · 1-minute load {} before, {} after · {:.0} s\n",
            self.server,
            run.command,
            run.machine,
            run.date,
            run.commit,
            self.load.0,
            self.load.1,
            self.secs
        );
        out.push_str(&cells(&ROW_HEADERS.map(String::from)));
        out.push('\n');
        out.push_str(&separator(ROW_HEADERS.len()));
        out.push('\n');
        for row in &self.results.rows {
            out.push_str(&cells(&[
                row.label.clone(),
                row.measured.clone(),
                row.baseline.clone(),
                row.ratio_text(),
                row.aa_text(),
                row.target.text(),
                row.verdict().text().into(),
            ]));
            out.push('\n');
        }
        // The notes' list follows the table directly: a list item ends a table (GFM).
        if !self.results.notes.is_empty() {
            for note in &self.results.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        let _ = writeln!(out, "<!-- /workload:{} -->", self.name);
        out
    }
}

const ROW_HEADERS: [&str; 7] = [
    "row",
    "measured",
    "baseline (denominator)",
    "ratio [95 % interval]",
    "A/A",
    "target",
    "met?",
];

const SUMMARY_HEADERS: [&str; 7] = [
    "workload",
    "headline row; its baseline (the denominator)",
    "ratio [95 % interval]",
    "A/A",
    "target",
    "met?",
    "run",
];

fn cells(cells: &[String]) -> String {
    let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    format!("| {} |", escaped.join(" | "))
}

fn separator(n: usize) -> String {
    format!("|{}", " --- |".repeat(n))
}

/// The summary table of `sections`, in their order.
pub fn summary_markdown(sections: &[Section], run: &RunInfo) -> String {
    let lines: Vec<String> = sections.iter().map(|s| s.summary_line(run)).collect();
    summary_table(&lines)
}

fn summary_table(lines: &[String]) -> String {
    let mut out = cells(&SUMMARY_HEADERS.map(String::from));
    out.push('\n');
    out.push_str(&separator(SUMMARY_HEADERS.len()));
    out.push('\n');
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

const SUMMARY_BEGIN: &str = "<!-- summary:begin -->";
const SUMMARY_END: &str = "<!-- summary:end -->";
const WORKLOADS_END: &str = "<!-- workloads:end -->";

/// The workload a summary line is about: the name between its first backticks.
fn summary_key(line: &str) -> Option<&str> {
    let start = line.find('`')? + 1;
    let len = line[start..].find('`')?;
    Some(&line[start..start + len])
}

/// Writes `sections` into the document at `path`: each replaces its workload's block (or is
/// inserted where its number puts it), and its line of the summary table; the lines and
/// blocks of workloads this run did not measure stay as they were. `order` lists every
/// workload name in the program's order.
pub fn write_document(
    path: &Path,
    sections: &[Section],
    run: &RunInfo,
    order: &[&str],
) -> BoxResult<()> {
    let mut doc = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let position = |name: &str| order.iter().position(|n| *n == name).unwrap_or(usize::MAX);
    // The summary.
    let (begin, end) = match (doc.find(SUMMARY_BEGIN), doc.find(SUMMARY_END)) {
        (Some(b), Some(e)) if b < e => (b + SUMMARY_BEGIN.len(), e),
        _ => {
            return Err(format!(
                "{} has no {SUMMARY_BEGIN} … {SUMMARY_END} markers",
                path.display()
            )
            .into())
        }
    };
    let mut lines: Vec<(usize, String)> = doc[begin..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| workload |"))
        .filter_map(|l| {
            let key = summary_key(l)?;
            if sections.iter().any(|s| s.name == key) {
                None
            } else {
                Some((position(key), l.to_owned()))
            }
        })
        .collect();
    for s in sections {
        lines.push((position(s.name), s.summary_line(run)));
    }
    lines.sort_by_key(|(p, _)| *p);
    let table = summary_table(&lines.into_iter().map(|(_, l)| l).collect::<Vec<_>>());
    doc.replace_range(begin..end, &format!("\n{table}"));
    // The workloads' blocks.
    for s in sections {
        let open = format!("<!-- workload:{} -->", s.name);
        let close = format!("<!-- /workload:{} -->\n", s.name);
        let block = s.markdown(run);
        match (doc.find(&open), doc.find(&close)) {
            (Some(b), Some(e)) if b < e => doc.replace_range(b..e + close.len(), &block),
            _ => {
                // Before the first block of a later workload, or at the end of the results.
                let later = order
                    .iter()
                    .skip(position(s.name).saturating_add(1))
                    .filter_map(|n| doc.find(&format!("<!-- workload:{n} -->")))
                    .min();
                let at = later
                    .or_else(|| doc.find(WORKLOADS_END))
                    .ok_or_else(|| format!("{} has no {WORKLOADS_END} marker", path.display()))?;
                doc.insert_str(at, &block);
            }
        }
    }
    std::fs::write(path, doc)?;
    Ok(())
}
