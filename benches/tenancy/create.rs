//! Workload 3: `Tenants::create` × N with `examples/migrations/tenant` vs the floor: the same
//! statements (register, `CREATE SCHEMA`, `search_path`, the migration SQL verbatim, the
//! bookkeeping row) run by one server-side PL/pgSQL loop in one transaction.
//!
//! Also measured: concurrent creates (pool size), and the server-side loop committing after
//! every tenant (the durability the library gives: one durable transaction per tenant). All
//! variants run in rounds with rotating order, each round's tenants dropped before the next
//! variant.

use std::time::Instant;

use sqlx::migrate::{Migration, Migrator};
use sqlx::AssertSqlSafe;
use tenancy::Tenants;

use crate::common::*;
use crate::method::Rounds;
use crate::report::Target;

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let n = if ctx.quick { 5 } else { 1000 };
    let registry = ctx.registry_name();
    let all = example_migrations().await?;
    let tenants = Tenants::new(ctx.pool.clone(), Migrator::with_migrations(all.clone()))?
        .with_registry(&registry)?;
    tenants.list().await?; // creates the registry
    let result = measure(ctx, &tenants, &registry, &all, n).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &[registry]).await?;
    result
}

/// Checks that a variant registered its `n` tenants, then unregisters and drops them (so
/// every variant starts from the same catalog size).
async fn finish(
    ctx: &Ctx,
    registry: &str,
    names: &[String],
    result: BoxResult<()>,
) -> BoxResult<()> {
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.tenants WHERE name = ANY($1)",
        quote_ident(registry)
    )))
    .bind(names)
    .fetch_one(&ctx.pool)
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {}.tenants WHERE name = ANY($1)",
        quote_ident(registry)
    )))
    .bind(names)
    .execute(&ctx.pool)
    .await?;
    ctx.cleanup.drop_schemas(&ctx.pool, names).await?;
    result?;
    if count != names.len() as i64 {
        return Err(format!("expected {} registered tenants, found {count}", names.len()).into());
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Floor,
    /// The floor again: the A/A control.
    FloorAgain,
    Library,
    LibraryConcurrent,
    CommitEach,
}

const VARIANTS: [Variant; 5] = [
    Variant::Floor,
    Variant::FloorAgain,
    Variant::Library,
    Variant::LibraryConcurrent,
    Variant::CommitEach,
];

struct Setup<'a> {
    tenants: &'a Tenants,
    registry: &'a str,
    ups: Vec<Migration>,
}

/// Creates `names` the way `variant` does.
async fn create(ctx: &mut Ctx, s: &Setup<'_>, variant: Variant, names: &[String]) -> BoxResult<()> {
    let workers = POOL_SIZE as usize;
    let floor = Apply {
        create_schema: true,
        ddl: s.ups[0].sql.as_str(),
        registry: Some(s.registry),
        migration: Some(&s.ups[0]),
        guard_rows: 0,
    };
    match variant {
        Variant::Floor | Variant::FloorAgain => ctx.server.apply(names, &floor).await,
        Variant::CommitEach => ctx.server.apply_each(names, &floor).await,
        Variant::Library => {
            for name in names {
                s.tenants.create(name).await?;
            }
            Ok(())
        }
        Variant::LibraryConcurrent => {
            let t = s.tenants.clone();
            each_concurrent(names, workers, move |name| {
                let t = t.clone();
                async move {
                    t.create(name).await?;
                    Ok(())
                }
            })
            .await
        }
    }
}

async fn measure(
    ctx: &mut Ctx,
    tenants: &Tenants,
    registry: &str,
    all: &[Migration],
    n: usize,
) -> BoxResult<()> {
    let ups = ups(all);
    assert_eq!(ups.len(), 1, "the floor records one migration");
    let workers = POOL_SIZE as usize;
    let setup = Setup {
        tenants,
        registry,
        ups: ups.iter().map(|m| (*m).clone()).collect(),
    };
    let rounds = if n >= 100 { 20 } else { 1 };
    let per_round = n / rounds;
    println!(
        "  {rounds} rounds; each round every variant creates {per_round} fresh tenants (order \
         rotating), which are dropped before the next variant"
    );
    let mut times = Rounds::new(VARIANTS.len());
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let names = ctx.names("cr", per_round);
            let start = Instant::now();
            let result = create(ctx, &setup, VARIANTS[vi], &names).await;
            times.push(vi, start.elapsed().as_secs_f64());
            finish(ctx, registry, &names, result).await?;
        }
    }
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    let rows = [
        (
            Variant::Library,
            format!("3 create {n} tenants: Tenants::create, sequential"),
            Target::AtMost(1.5),
        ),
        (
            Variant::LibraryConcurrent,
            format!("3b create {n} tenants: Tenants::create, {workers} concurrent"),
            Target::AtMost(1.5),
        ),
        (
            Variant::CommitEach,
            format!("3c create {n} tenants: server-side loop, COMMIT per tenant (reference)"),
            Target::None,
        ),
    ];
    for (v, label, target) in rows {
        ctx.out.row(times.row(
            label,
            at(v),
            at(Variant::Floor),
            Some(at(Variant::FloorAgain)),
            "floor: one server-side loop, one transaction",
            target,
        ));
    }
    ctx.out.note(format!(
        "{rounds} rounds of {per_round} tenants per variant; ratios are medians of the per-round ratios"
    ));
    Ok(())
}
