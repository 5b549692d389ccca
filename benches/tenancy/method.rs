//! The comparison method of the per-operation workloads (CRUD 1, 9, 14; 21-24).
//!
//! Three sides run in one task: the library, its baseline (the same statement hand-written
//! with sqlx), and the baseline again, the A/A control. They take turns in small blocks of
//! operations (a block lasts about a millisecond), one block of each side per *triple*, the
//! order of the three rotating through all six permutations, and every side runs the same
//! operation indices, so each side does the same work at nearly the same moment. Per triple:
//! the ratio baseline time / library time (the library's relative throughput) and baseline /
//! baseline-again (the A/A). The result is the median over triples of each, with a
//! distribution-free 95 % interval of the median; a median of paired ratios ignores the
//! occasional block stalled by the machine, which a ratio of sums does not. Client CPU time
//! of the process (all threads, `CLOCK_PROCESS_CPUTIME_ID`) is read around every block too.
//!
//! A row whose A/A reads outside 1.00 ± [`AA_TOLERANCE`](crate::report::AA_TOLERANCE) prints
//! "unresolved" instead of a verdict (`report::Row::verdict`).

use std::time::{Duration, Instant};

use crate::common::{fmt_secs, median, BoxResult};
use crate::report::{Row, Target};

/// Who runs an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The library's operation.
    Library,
    /// The hand-written sqlx.
    Hand,
    /// The hand-written sqlx again: the A/A control.
    Again,
}

impl Side {
    /// 0, 1, 2: for operations that keep state per side.
    pub fn index(self) -> usize {
        match self {
            Side::Library => 0,
            Side::Hand => 1,
            Side::Again => 2,
        }
    }
}

/// One operation, run by any side.
#[allow(async_fn_in_trait)]
pub trait Op {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()>;

    /// Runs before each triple, untimed (e.g. `BEGIN`).
    async fn before_triple(&mut self) -> BoxResult<()> {
        Ok(())
    }

    /// Runs after each triple, untimed (e.g. `COMMIT`).
    async fn after_triple(&mut self) -> BoxResult<()> {
        Ok(())
    }
}

/// The CPU time this process has used, all threads (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the valid pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How many operations a comparison runs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Operations per block.
    pub block: usize,
    /// Unrecorded triples first.
    pub warm: usize,
    /// Recorded triples.
    pub triples: usize,
    /// If set, `triples` is recomputed from the time of the unrecorded triples, for about this
    /// much of recorded operations (the calibration's few operations misjudge a mixed run).
    pub budget: Option<Duration>,
    /// The fewest recorded triples.
    pub min: usize,
}

/// Operation indices of the calibration, far from those the comparison uses (an upsert's
/// conflicts depend on the indices run before).
const CALIBRATION_BASE: usize = 1 << 32;

impl Plan {
    /// A plan of blocks of about a millisecond and about `budget` of recorded operations in
    /// all (three sides), from the time of a few operations of the baseline.
    pub async fn calibrate(op: &mut impl Op, budget: Duration, quick: bool) -> BoxResult<Plan> {
        // The first operations prepare statements and warm caches: only the last 8 count.
        let probe = 8;
        op.before_triple().await?;
        for i in 0..probe {
            op.run(Side::Hand, CALIBRATION_BASE + i).await?;
        }
        let start = Instant::now();
        for i in probe..2 * probe {
            op.run(Side::Hand, CALIBRATION_BASE + i).await?;
        }
        let per_op = (start.elapsed().as_secs_f64() / probe as f64).max(1e-6);
        op.after_triple().await?;
        let block = ((1e-3 / per_op).round() as usize).clamp(1, 64);
        let min = if quick { 3 } else { 7 };
        let triples = fit(budget.as_secs_f64() / (3.0 * block as f64 * per_op), min);
        Ok(Plan {
            block,
            warm: (triples / 10).clamp(1, 50),
            triples,
            budget: Some(budget),
            min,
        })
    }

    /// A plan of `triples` triples of blocks of `block` operations, after `warm` unrecorded.
    pub fn fixed(block: usize, warm: usize, triples: usize) -> Plan {
        Plan {
            block,
            warm,
            triples,
            budget: None,
            min: triples,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} triples of blocks of {} operation(s) per side, after {} unrecorded",
            self.triples, self.block, self.warm
        )
    }
}

/// A number of triples, at least `min`.
fn fit(triples: f64, min: usize) -> usize {
    (triples as usize).clamp(min, 100_000)
}

/// What [`compare`] measured.
pub struct Compared {
    /// The plan as run (its triples recomputed if it had a budget; no budget).
    pub plan: Plan,
    /// Median wall time per operation (seconds): library, baseline.
    pub library: f64,
    pub hand: f64,
    /// Median over triples of baseline time / library time, and its 95 % interval.
    pub ratio: f64,
    pub interval: (f64, f64),
    /// Median over triples of baseline time / baseline-again time.
    pub aa: f64,
    /// Client CPU per operation (seconds): library, baseline.
    pub cpu_library: f64,
    pub cpu_hand: f64,
    /// Median over triples of baseline CPU / library CPU.
    pub cpu_ratio: f64,
}

const ORDERS: [[Side; 3]; 6] = [
    [Side::Library, Side::Hand, Side::Again],
    [Side::Hand, Side::Again, Side::Library],
    [Side::Again, Side::Library, Side::Hand],
    [Side::Library, Side::Again, Side::Hand],
    [Side::Again, Side::Hand, Side::Library],
    [Side::Hand, Side::Library, Side::Again],
];

/// Runs `plan` (see the module documentation).
pub async fn compare(op: &mut impl Op, mut plan: Plan) -> BoxResult<Compared> {
    let mut wall: [Vec<f64>; 3] = Default::default();
    let mut cpu: [Vec<f64>; 3] = Default::default();
    let mut i = 0;
    let mut t = 0;
    let warm_start = Instant::now();
    while t < plan.warm + plan.triples {
        if let (true, Some(budget)) = (t == plan.warm, plan.budget.take()) {
            let per_triple = warm_start.elapsed().as_secs_f64() / plan.warm.max(1) as f64;
            plan.triples = fit(budget.as_secs_f64() / per_triple.max(1e-9), plan.min);
        }
        op.before_triple().await?;
        for side in ORDERS[t % ORDERS.len()] {
            let (c0, w0) = (cpu_time(), Instant::now());
            for j in 0..plan.block {
                op.run(side, i + j).await?;
            }
            let w = w0.elapsed().as_secs_f64();
            let c = (cpu_time() - c0).as_secs_f64();
            if t >= plan.warm {
                wall[side.index()].push(w);
                cpu[side.index()].push(c);
            }
        }
        op.after_triple().await?;
        i += plan.block;
        t += 1;
    }
    let per = |secs: &[f64]| {
        let mut per_op: Vec<f64> = secs.iter().map(|s| s / plan.block as f64).collect();
        median(&mut per_op)
    };
    let ratios = |num: &[f64], den: &[f64]| -> Vec<f64> {
        num.iter().zip(den).map(|(n, d)| n / d.max(1e-12)).collect()
    };
    let (ratio, interval) = median_interval(&mut ratios(&wall[1], &wall[0]));
    let aa = median(&mut ratios(&wall[1], &wall[2]));
    let cpu_ratio = median(&mut ratios(&cpu[1], &cpu[0]));
    let ops = (plan.triples * plan.block) as f64;
    Ok(Compared {
        plan,
        library: per(&wall[0]),
        hand: per(&wall[1]),
        ratio,
        interval,
        aa,
        cpu_library: cpu[0].iter().sum::<f64>() / ops,
        cpu_hand: cpu[1].iter().sum::<f64>() / ops,
        cpu_ratio,
    })
}

/// [`Plan::calibrate`] then [`compare`].
pub async fn calibrated(op: &mut impl Op, budget: Duration, quick: bool) -> BoxResult<Compared> {
    let plan = Plan::calibrate(op, budget, quick).await?;
    compare(op, plan).await
}

impl Compared {
    /// The row of this comparison: wall and client CPU time per operation of each side, the
    /// ratio with its interval, the A/A.
    pub fn row(&self, label: impl Into<String>, baseline: &str, target: Target) -> Row {
        Row::new(
            label,
            format!(
                "{}/op, CPU {}",
                fmt_op(self.library),
                fmt_op(self.cpu_library)
            ),
            format!(
                "{}/op, CPU {} ({baseline})",
                fmt_op(self.hand),
                fmt_op(self.cpu_hand)
            ),
            Some(self.ratio),
            target,
        )
        .interval(self.interval)
        .aa(self.aa)
    }
}

/// A time per operation: µs below a millisecond, ms below a second, else s.
pub fn fmt_op(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// The median and a distribution-free 95 % interval of it (order statistics n/2 ± 0.98·√n).
pub fn median_interval(values: &mut [f64]) -> (f64, (f64, f64)) {
    let med = median(values);
    let n = values.len();
    if n == 0 {
        return (med, (f64::NAN, f64::NAN));
    }
    let half = 0.98 * (n as f64).sqrt();
    let lo = (n as f64 / 2.0 - half).floor().max(0.0) as usize;
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    (med, (values[lo], values[hi]))
}

/// For workloads that time variants in rounds: the median of the per-round ratios
/// `num[r] / den[r]` and its 95 % interval.
pub fn paired(num: &[f64], den: &[f64]) -> (f64, (f64, f64)) {
    let mut ratios: Vec<f64> = num.iter().zip(den).map(|(n, d)| n / d).collect();
    median_interval(&mut ratios)
}

/// Seconds per variant and round, for the workloads that time whole variants (creating or
/// migrating many tenants) in rounds of rotating order, one of the variants being the
/// baseline run a second time (the A/A control).
pub struct Rounds {
    /// `secs[variant][round]`.
    secs: Vec<Vec<f64>>,
}

impl Rounds {
    pub fn new(variants: usize) -> Self {
        Rounds {
            secs: vec![Vec::new(); variants],
        }
    }

    pub fn push(&mut self, variant: usize, secs: f64) {
        self.secs[variant].push(secs);
    }

    /// Every round of `variant`, summed.
    pub fn total(&self, variant: usize) -> f64 {
        self.secs[variant].iter().sum()
    }

    /// Each round of `variant`, as text.
    pub fn each(&self, variant: usize) -> String {
        let all: Vec<String> = self.secs[variant].iter().map(|s| fmt_secs(*s)).collect();
        all.join(", ")
    }

    /// The row of `variant` against `base`: the totals, and the median over rounds of
    /// variant time / base time (lower is faster), gated by `again` / `base` when the
    /// baseline ran twice.
    pub fn row(
        &self,
        label: impl Into<String>,
        variant: usize,
        base: usize,
        again: Option<usize>,
        baseline: &str,
        target: Target,
    ) -> Row {
        let (ratio, interval) = paired(&self.secs[variant], &self.secs[base]);
        let row = Row::new(
            label,
            fmt_secs(self.total(variant)),
            format!("{} ({baseline})", fmt_secs(self.total(base))),
            Some(ratio),
            target,
        )
        .interval(interval);
        match again {
            Some(a) => row.aa(paired(&self.secs[a], &self.secs[base]).0),
            None => row,
        }
    }
}
