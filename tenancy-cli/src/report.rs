//! Output formatting: pure functions from results to lines of text.

use std::error::Error as StdError;

use tenancy_core::{
    DropProgress, Outcome, Planned, RelocatePhase, RelocateProgress, Report, Tenant, TenantStatus,
};

/// Versions as `1,2,3`, or `-` for none.
pub fn versions(versions: &[i64]) -> String {
    if versions.is_empty() {
        return "-".to_owned();
    }
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Versions applied in the tenant that are not in the migrations folder (`known`).
pub fn unknown(status: &TenantStatus, known: &[i64]) -> Vec<i64> {
    status
        .applied
        .iter()
        .copied()
        .filter(|v| !known.contains(v))
        .collect()
}

/// Joins cells into lines, padding every column but the last to its widest cell, two spaces
/// apart. Rows may have different numbers of cells.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        })
        .collect()
}

/// The `status` table: one line per tenant,
/// `acme  applied 1,2  pending 3`, plus `changed V` (applied, file edited since), `unknown V`
/// (applied, no longer in the migrations folder) and `dirty V` (stopped part-way, MySQL) when
/// there are any.
pub fn status_lines(statuses: &[TenantStatus], known: &[i64]) -> Vec<String> {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let mut row = vec![
                s.tenant.to_string(),
                format!("applied {}", versions(&s.applied)),
                format!("pending {}", versions(&s.pending)),
            ];
            if !s.changed.is_empty() {
                row.push(format!("changed {}", versions(&s.changed)));
            }
            let unknown = unknown(s, known);
            if !unknown.is_empty() {
                row.push(format!("unknown {}", versions(&unknown)));
            }
            if !s.dirty.is_empty() {
                row.push(format!("dirty {}", versions(&s.dirty)));
            }
            row
        })
        .collect();
    table(&rows)
}

/// `placement`: one line per tenant, `acme  10.0.0.5:9701`, or `-` for a tenant not placed yet
/// (no table).
pub fn placement_lines(placement: &[tenancy_core::postgres::Placement]) -> Vec<String> {
    let rows: Vec<Vec<String>> = placement
        .iter()
        .map(|p| {
            vec![
                p.tenant.to_string(),
                p.node
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            ]
        })
        .collect();
    table(&rows)
}

/// What `migrate` would do to one tenant, from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing pending.
    UpToDate,
    /// These versions would be applied, in order.
    Apply(Vec<i64>),
    /// Migrating would fail, for this reason.
    Fail(String),
}

/// What `migrate` would do to a tenant, from core's plan ([`Tenants::plan`], the same checks
/// as the real run): its error becomes the reason it would fail.
///
/// [`Tenants::plan`]: tenancy_core::Tenants::plan
pub fn plan(planned: Result<Planned, tenancy_core::Error>) -> Plan {
    match planned {
        Ok(Planned::UpToDate) => Plan::UpToDate,
        Ok(Planned::Apply(versions)) => Plan::Apply(versions),
        Err(err) => Plan::Fail(err.to_string()),
    }
}

/// The lines of a dry run: `acme  would apply 3,4`, `beta  up to date`,
/// `gamma  would fail: …`.
pub fn plan_lines(plans: &[(Tenant, Plan)]) -> Vec<String> {
    let rows: Vec<Vec<String>> = plans
        .iter()
        .map(|(tenant, plan)| {
            let what = match plan {
                Plan::UpToDate => "up to date".to_owned(),
                Plan::Apply(v) => format!("would apply {}", versions(v)),
                Plan::Fail(why) => format!("would fail: {why}"),
            };
            vec![tenant.to_string(), what]
        })
        .collect();
    table(&rows)
}

/// Which way a run goes; it decides the words used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `migrate`.
    Migrate,
    /// `rollback`.
    Rollback,
    /// `migrate --dry-run`.
    DryRun,
}

/// One tenant's result of `migrate` or `rollback`: `acme: migrated 2,3`,
/// `acme: rolled back 3,2`, `acme: up to date`, `acme: nothing to roll back`.
pub fn outcome_line(tenant: &Tenant, outcome: &Outcome) -> String {
    match outcome {
        Outcome::UpToDate => format!("{tenant}: up to date"),
        Outcome::Migrated(v) => format!("{tenant}: migrated {}", versions(v)),
        Outcome::RolledBack(v) => format!("{tenant}: rolled back {}", versions(v)),
    }
}

/// [`outcome_line`] for a rollback, where "up to date" reads as "nothing to roll back".
pub fn rollback_line(tenant: &Tenant, outcome: &Outcome) -> String {
    match outcome {
        Outcome::UpToDate => format!("{tenant}: nothing to roll back"),
        other => outcome_line(tenant, other),
    }
}

/// How many tenants of a run changed, were left as they were, and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Migrated or rolled back (or, in a dry run, would be).
    pub changed: usize,
    /// Nothing to do.
    pub unchanged: usize,
    /// Failed (or would fail).
    pub failed: usize,
}

impl Counts {
    /// The counts of a `migrate_all` or `rollback_all` report.
    pub fn of_report(report: &Report) -> Self {
        let failed = report.failed().count();
        let changed = report.changed().count();
        Counts {
            changed,
            unchanged: report.tenants.len() - changed - failed,
            failed,
        }
    }

    /// The counts of a dry run.
    pub fn of_plans(plans: &[(Tenant, Plan)]) -> Self {
        plans.iter().fold(Counts::default(), |mut c, (_, plan)| {
            match plan {
                Plan::UpToDate => c.unchanged += 1,
                Plan::Apply(_) => c.changed += 1,
                Plan::Fail(_) => c.failed += 1,
            }
            c
        })
    }

    /// Every tenant counted.
    pub fn total(&self) -> usize {
        self.changed + self.unchanged + self.failed
    }
}

/// The summary line of an `--all` run, e.g. `migrated 3, up to date 7, failed 1`.
pub fn summary(action: Action, counts: Counts) -> String {
    let Counts {
        changed,
        unchanged,
        failed,
    } = counts;
    match action {
        Action::Migrate => format!("migrated {changed}, up to date {unchanged}, failed {failed}"),
        Action::Rollback => {
            format!("rolled back {changed}, nothing to roll back {unchanged}, failed {failed}")
        }
        Action::DryRun => {
            format!("would migrate {changed}, up to date {unchanged}, would fail {failed}")
        }
    }
}

/// The messages of `err` and its sources, outermost first. Each error of this library says
/// only its own part, with its cause in `source`, so nothing is said twice.
pub fn error_chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut lines = vec![err.to_string()];
    let mut next = err.source();
    while let Some(source) = next {
        lines.push(source.to_string());
        next = source.source();
    }
    lines
}

/// An error as printed on stderr: `error: <prefix><message>`, then one indented
/// `caused by: …` line per further cause.
pub fn render_error(prefix: &str, err: &(dyn StdError + 'static)) -> String {
    let chain = error_chain(err);
    let mut out = format!("error: {prefix}{}", chain[0]);
    for cause in &chain[1..] {
        out.push_str("\n  caused by: ");
        out.push_str(cause);
    }
    out
}

/// A failed tenant of an `--all` run: [`render_error`] prefixed with `<tenant>: `.
pub fn tenant_failure(tenant: &Tenant, err: &tenancy_core::Error) -> String {
    render_error(&format!("{tenant}: "), err)
}

/// One step of a `promote` or `demote` as a line of its progress on stderr:
/// `promote acme: copied guards into acme: 3 rows (1/2 tables, 3 rows so far)`. `container`
/// names the backend's container (`schema`, `database`, `file`).
pub fn relocate_line(p: &RelocateProgress<'_>, container: &str) -> String {
    let step = match (p.phase, p.table) {
        (RelocatePhase::Making, _) => format!("making its {container}"),
        (RelocatePhase::Switching, _) => {
            let dropping = match p.operation {
                "demote" => format!(" and dropping its {container}"),
                _ => String::new(),
            };
            format!(
                "switching{dropping} ({}, {} moved)",
                counted(p.total as u64, "table"),
                counted(p.rows_so_far, "row")
            )
        }
        (phase, table) => {
            let table = table.unwrap_or("-");
            let what = match phase {
                RelocatePhase::Copying => format!("copied {table} into {}", p.to),
                RelocatePhase::CatchingUp => format!("caught up {table} into {}", p.to),
                RelocatePhase::Deleting => format!("deleted {table} from {}", p.from),
                other => format!("{other:?} {table}"),
            };
            format!(
                "{what}: {} ({}/{} tables, {} so far)",
                counted(p.rows, "row"),
                p.done,
                p.total,
                counted(p.rows_so_far, "row")
            )
        }
    };
    format!("{} {}: {step}", p.operation, p.tenant)
}

/// A line for a batch of a row-level tenant's drop: `drop acme: deleted 10000 rows from guards
/// (1/2 tables, 20000 rows so far)`.
pub fn drop_line(p: &DropProgress<'_>) -> String {
    let from = match p.table {
        Some(table) => format!("from {table}"),
        None => "left over".to_owned(),
    };
    format!(
        "drop {}: deleted {} {from} ({}/{} tables, {} so far)",
        p.tenant.own(),
        counted(p.rows, "row"),
        p.done,
        p.total,
        counted(p.rows_so_far, "row")
    )
}

/// `n` and `thing`, plural unless `n` is 1: `1 row`, `2 rows`.
fn counted(n: u64, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenancy_core::TenantResult;

    fn t(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    fn status(name: &str, applied: &[i64], pending: &[i64], changed: &[i64]) -> TenantStatus {
        TenantStatus {
            tenant: t(name),
            applied: applied.to_vec(),
            pending: pending.to_vec(),
            changed: changed.to_vec(),
            dirty: Vec::new(),
        }
    }

    #[test]
    fn versions_are_comma_separated_or_a_dash() {
        assert_eq!(versions(&[]), "-");
        assert_eq!(versions(&[7]), "7");
        assert_eq!(versions(&[1, 2, 20240101]), "1,2,20240101");
    }

    #[test]
    fn status_lines_align_columns_and_show_problems() {
        let lines = status_lines(
            &[
                status("acme", &[1, 2], &[3], &[]),
                status("b", &[1], &[2, 3], &[1]),
                status("corp_long", &[1, 2, 3, 9], &[], &[]),
            ],
            &[1, 2, 3],
        );
        assert_eq!(
            lines,
            [
                "acme       applied 1,2      pending 3",
                "b          applied 1        pending 2,3  changed 1",
                "corp_long  applied 1,2,3,9  pending -    unknown 9",
            ]
        );
    }

    #[test]
    fn no_tenants_no_lines() {
        assert!(status_lines(&[], &[1]).is_empty());
        assert!(plan_lines(&[]).is_empty());
    }

    #[test]
    fn a_plan_is_core_s_plan_with_its_error_as_the_reason() {
        assert_eq!(
            plan(Ok(Planned::Apply(vec![2, 3]))),
            Plan::Apply(vec![2, 3])
        );
        assert_eq!(plan(Ok(Planned::UpToDate)), Plan::UpToDate);
        let changed = tenancy_core::Error::ChecksumMismatch {
            tenant: Tenant::new("a").unwrap(),
            version: 2,
        };
        assert!(matches!(
            plan(Err(changed)),
            Plan::Fail(why) if why.contains("migration 2 of tenant \"a\" changed")
        ));
    }

    #[test]
    fn plan_lines_read_as_sentences() {
        let lines = plan_lines(&[
            (t("acme"), Plan::Apply(vec![3])),
            (t("beta_co"), Plan::UpToDate),
            (t("c"), Plan::Fail("boom".into())),
        ]);
        assert_eq!(
            lines,
            [
                "acme     would apply 3",
                "beta_co  up to date",
                "c        would fail: boom"
            ]
        );
    }

    #[test]
    fn outcome_lines() {
        let acme = t("acme");
        assert_eq!(
            outcome_line(&acme, &Outcome::Migrated(vec![2, 3])),
            "acme: migrated 2,3"
        );
        assert_eq!(outcome_line(&acme, &Outcome::UpToDate), "acme: up to date");
        assert_eq!(
            rollback_line(&acme, &Outcome::RolledBack(vec![3, 2])),
            "acme: rolled back 3,2"
        );
        assert_eq!(
            rollback_line(&acme, &Outcome::UpToDate),
            "acme: nothing to roll back"
        );
    }

    #[test]
    fn summary_counts_each_kind() {
        let report = Report {
            tenants: vec![
                TenantResult {
                    tenant: t("a"),
                    result: Ok(Outcome::Migrated(vec![2])),
                },
                TenantResult {
                    tenant: t("b"),
                    result: Ok(Outcome::UpToDate),
                },
                TenantResult {
                    tenant: t("c"),
                    result: Ok(Outcome::UpToDate),
                },
                TenantResult {
                    tenant: t("d"),
                    result: Err(tenancy_core::Error::NotATenant { tenant: t("d") }),
                },
            ],
        };
        let counts = Counts::of_report(&report);
        assert_eq!(counts.total(), 4);
        assert_eq!(
            summary(Action::Migrate, counts),
            "migrated 1, up to date 2, failed 1"
        );
        assert_eq!(
            summary(Action::Rollback, counts),
            "rolled back 1, nothing to roll back 2, failed 1"
        );
        let plans = [
            (t("a"), Plan::Apply(vec![1])),
            (t("b"), Plan::Fail("x".into())),
        ];
        assert_eq!(
            summary(Action::DryRun, Counts::of_plans(&plans)),
            "would migrate 1, up to date 0, would fail 1"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("top")]
    struct Top(#[source] Outer);

    #[test]
    fn error_chain_lists_every_cause_in_order() {
        let err = Top(Outer(Inner(std::io::Error::other("disk on fire"))));
        assert_eq!(error_chain(&err), ["top", "outer", "inner", "disk on fire"]);
        assert_eq!(
            render_error("acme: ", &err),
            "error: acme: top\n  caused by: outer\n  caused by: inner\n  caused by: disk on fire"
        );
    }

    #[test]
    fn tenant_failure_names_the_tenant_and_the_rule() {
        let err = tenancy_core::Error::from(Tenant::new("Bad").unwrap_err());
        let text = tenant_failure(&t("acme"), &err);
        assert!(
            text.starts_with("error: acme: invalid tenant name \"Bad\""),
            "{text}"
        );
        assert!(!text.contains("caused by"), "{text}");
    }
}
