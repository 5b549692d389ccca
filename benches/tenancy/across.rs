//! Workload 8: counting one model's rows across 1,000 tenants, three ways, interleaved:
//!
//! - the library: `Guard::query_across(&tenants).count(&pool)` (one `UNION ALL` statement per
//!   100 tenants);
//! - the loop a user would write without it: `Guard::query(&tenant).count(&pool)` per tenant,
//!   one after the other;
//! - one hand-written `SELECT sum(n) FROM (SELECT count(*) … UNION ALL …)` over all tenants,
//!   text built once before timing.

use std::time::Instant;

use sqlx::AssertSqlSafe;
use tenancy::{Tenant, TenantModel};

use crate::common::*;
use crate::report::{Row, Target};

const ROWS_PER_TENANT: i32 = 20;

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let n = if ctx.quick { 5 } else { 1000 };
    let names = ctx.guard_tenants("ac", n, ROWS_PER_TENANT).await?;
    let result = measure(ctx, &names).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure(ctx: &mut Ctx, names: &[String]) -> BoxResult<()> {
    let reps = if ctx.quick { 1 } else { 9 };
    let n = names.len();
    let tenants: Vec<Tenant> = names.iter().map(Tenant::new).collect::<Result<_, _>>()?;
    let union: &'static str = leak(format!(
        "SELECT sum(n)::bigint FROM ({}) AS per_tenant",
        names
            .iter()
            .map(|s| format!("SELECT count(*) AS n FROM {}.guards", quote_ident(s)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    ));
    let expected = i64::from(ROWS_PER_TENANT) * n as i64;
    let pool = &ctx.pool;
    println!(
        "  {n} tenants x {ROWS_PER_TENANT} rows, {reps} interleaved repetitions (order rotating)"
    );
    // times[variant]: 0 library, 1 loop, 2 hand-written UNION ALL. One warm-up round first.
    let mut times = vec![Vec::new(); 3];
    for rep in 0..=reps {
        for k in 0..3 {
            let variant = (k + rep) % 3;
            let start = Instant::now();
            let total = match variant {
                0 => Guard::query_across(&tenants).count(pool).await?,
                1 => {
                    let mut total = 0;
                    for tenant in &tenants {
                        total += Guard::query(tenant).count(pool).await?;
                    }
                    total
                }
                _ => {
                    sqlx::query_scalar(AssertSqlSafe(union))
                        .fetch_one(pool)
                        .await?
                }
            };
            let took = start.elapsed().as_secs_f64();
            assert_eq!(total, expected, "variant {variant}");
            if rep > 0 {
                times[variant].push(took);
            }
        }
    }
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    ctx.out.row(Row::new(
        format!("8 count across {n} tenants: query_across (median of {reps})"),
        fmt_secs(med[0]),
        format!("{} (a loop of Guard::query(t).count)", fmt_secs(med[1])),
        Some(med[0] / med[1]),
        Target::None,
    ));
    ctx.out.row(Row::new(
        format!("8b count across {n} tenants: query_across (median of {reps})"),
        fmt_secs(med[0]),
        format!("{} (one hand-written UNION ALL)", fmt_secs(med[2])),
        Some(med[0] / med[2]),
        Target::None,
    ));
    ctx.out.note(format!(
        "query_across sends {} statement(s) of up to {} tenants; the loop sends {n}; the \
         hand-written query 1",
        n.div_ceil(tenancy::DEFAULT_TENANTS_PER_STATEMENT),
        tenancy::DEFAULT_TENANTS_PER_STATEMENT
    ));
    Ok(())
}
