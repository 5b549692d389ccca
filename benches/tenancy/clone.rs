//! Workload 27: `Tenants::clone_tenant` of a template tenant holding 100,000 `guards` rows vs
//! what an application does without it: `Tenants::create` (schema and migrations) and the same
//! rows inserted through the API (`insert_many`, 10,000 rows a statement).
//!
//! Both variants run in rounds with rotating order, the baseline twice (the A/A control); each
//! round's tenants are dropped before the next variant. Every made tenant is checked to hold
//! the template's row count.

use std::time::Instant;

use sqlx::AssertSqlSafe;
use tenancy::{TenantModel, Tenants};

use crate::common::*;
use crate::method::Rounds;
use crate::report::Target;

/// Rows per `insert_many` statement (3 bound values a row, well under 65,535).
const BATCH: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Create, migrate, insert through the API.
    Baseline,
    /// The baseline again: the A/A control.
    BaselineAgain,
    Clone,
}

const VARIANTS: [Variant; 3] = [Variant::Baseline, Variant::BaselineAgain, Variant::Clone];

/// The rows of the template, as models.
fn guards(rows: usize) -> Vec<Guard> {
    (0..rows)
        .map(|i| {
            Guard::new(
                &format!("guard {i}"),
                if i % 2 == 0 { "Guard" } else { "Captain" },
            )
        })
        .collect()
}

/// Creates `name` and inserts `rows` through the API.
async fn create_and_insert(tenants: &Tenants, name: &str, rows: &[Guard]) -> BoxResult<()> {
    let tenant = tenants.create(name).await?;
    for batch in rows.chunks(BATCH) {
        Guard::insert_many(tenants, &tenant, batch.to_vec()).await?;
    }
    Ok(())
}

async fn count(ctx: &Ctx, schema: &str) -> BoxResult<i64> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.guards",
        quote_ident(schema)
    )))
    .fetch_one(&ctx.pool)
    .await?)
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let rows = if ctx.quick { 1_000 } else { 100_000 };
    let rounds = if ctx.quick { 1 } else { 5 };
    let registry = ctx.registry_name();
    let tenants = Tenants::new(ctx.pool.clone(), guards_migrator())?.with_registry(&registry)?;
    let models = guards(rows);
    let template = ctx.names("tpl", 1).remove(0);
    create_and_insert(&tenants, &template, &models).await?;
    println!(
        "  template {template}: {} rows; {rounds} rounds, each variant makes one tenant a round \
         (order rotating), dropped before the next",
        thousands(rows as u64)
    );
    let mut times = Rounds::new(VARIANTS.len());
    let mut result = Ok(());
    'rounds: for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let name = ctx.names("cl", 1).remove(0);
            let start = Instant::now();
            let made = match VARIANTS[vi] {
                Variant::Clone => tenants
                    .clone_tenant(&template, &name)
                    .await
                    .map(drop)
                    .map_err(Into::into),
                _ => create_and_insert(&tenants, &name, &models).await,
            };
            times.push(vi, start.elapsed().as_secs_f64());
            let counted = match made {
                Ok(()) => count(ctx, &name).await,
                Err(e) => Err(e),
            };
            tenants.drop(&name).await?;
            match counted {
                Ok(n) if n == rows as i64 => {}
                Ok(n) => {
                    result = Err(format!("{name} holds {n} rows, not {rows}").into());
                    break 'rounds;
                }
                Err(e) => {
                    result = Err(e);
                    break 'rounds;
                }
            }
        }
    }
    tenants.drop(&template).await?;
    ctx.cleanup.drop_schemas(&ctx.pool, &[registry]).await?;
    result?;
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    ctx.out.row(times.row(
        format!(
            "27 clone a tenant of {} rows: Tenants::clone_tenant",
            thousands(rows as u64)
        ),
        at(Variant::Clone),
        at(Variant::Baseline),
        Some(at(Variant::BaselineAgain)),
        "Tenants::create + the rows through insert_many",
        Target::AtMost(0.2),
    ));
    ctx.out.note(format!(
        "{rounds} rounds of one tenant per variant; ratios are medians of the per-round ratios \
         (<= 0.20x: at least 5x faster)"
    ));
    Ok(())
}
