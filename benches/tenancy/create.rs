//! Workload 3: `Tenants::create` × N with `examples/migrations/tenant` vs the floor: the same
//! statements (register, `CREATE SCHEMA`, `search_path`, the migration SQL verbatim, the
//! bookkeeping row) run by one server-side PL/pgSQL loop in one transaction.
//!
//! Also measured: concurrent creates (pool size); prototypes of `create` in fewer round trips
//! (the first statements joined into the `BEGIN` batch; the whole transaction as one
//! simple-protocol batch, sequential and concurrent); and the server-side loop committing after
//! every tenant (the durability the library gives: one transaction per tenant). All variants
//! run in rounds with rotating order, each round's tenants dropped before the next variant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::PgPool;
use sqlx::AssertSqlSafe;
use sqlx::Connection;
use tenancy::{Tenant, Tenants};

use crate::common::*;

/// Prototype: one tenant's whole creation as one simple-protocol batch (one round trip, one
/// implicit transaction; an error anywhere rolls all of it back).
fn batched_create(registry: &str, name: &str, ups: &[&Migration]) -> String {
    let r = quote_ident(registry);
    let mut sql = format!(
        "INSERT INTO {r}.tenants (name) VALUES ({n});\nCREATE SCHEMA {q};\nSET LOCAL search_path TO {q}, \"public\";\n",
        n = literal(name),
        q = quote_ident(name),
    );
    for m in ups {
        sql.push_str(m.sql.as_str());
        sql.push_str(";\n");
    }
    for m in ups {
        sql.push_str(&format!(
            "INSERT INTO {r}.migrations (tenant, version, description, checksum, execution_ms) VALUES ({}, {}, convert_from(decode('{}', 'hex'), 'UTF8'), decode('{}', 'hex'), 0);\n",
            literal(name),
            m.version,
            hex(m.description.as_bytes()),
            hex(&m.checksum),
        ));
    }
    sql
}

async fn migrate_and_commit(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    registry: &Tenant,
    name: &str,
    ups: &[Migration],
) -> BoxResult<()> {
    let mut millis = Vec::new();
    for m in ups {
        let start = Instant::now();
        sqlx::raw_sql(m.sql.clone()).execute(&mut *tx).await?;
        millis.push(start.elapsed().as_millis() as i64);
    }
    sqlx::query(AssertSqlSafe(tenancy::sql::lifecycle::record_applied(
        registry,
    )))
    .bind(name)
    .bind(ups.iter().map(|m| m.version).collect::<Vec<_>>())
    .bind(
        ups.iter()
            .map(|m| m.description.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(ups.iter().map(|m| m.checksum.to_vec()).collect::<Vec<_>>())
    .bind(millis)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Prototype of a proposed `Tenants::create`: the same statements and the same bound
/// bookkeeping insert, but the first four joined into the `BEGIN` batch (sqlx's `begin_with`,
/// so sqlx still tracks the transaction). Round trips: `BEGIN` batch, one per migration, the
/// bookkeeping insert, `COMMIT`, plus the two `search_path` reads (before and after) when
/// `check` is set: 6 (or 4) for one migration, against 9 today.
async fn proposal_create(
    pool: &PgPool,
    registry: &Tenant,
    name: &str,
    ups: &[Migration],
    check: bool,
) -> BoxResult<()> {
    let tenant = Tenant::new(name)?;
    let mut conn = pool.acquire().await?;
    let path = "SELECT current_setting('search_path')";
    let before: Option<String> = if check {
        Some(sqlx::query_scalar(path).fetch_one(&mut *conn).await?)
    } else {
        None
    };
    let begin = format!(
        "BEGIN; {}; {}; {}",
        tenancy::sql::lifecycle::register(registry).replace("$1", &literal(name)),
        tenancy::sql::lifecycle::create_schema(&tenant),
        tenancy::sql::lifecycle::set_local_search_path(&tenant),
    );
    let failed = match conn.begin_with(AssertSqlSafe(begin)).await {
        Ok(tx) => {
            migrate_and_commit(tx, registry, name, ups).await?;
            None
        }
        Err(e) => Some(e),
    };
    if let Some(e) = failed {
        // sqlx does not roll back a failed custom BEGIN batch: do it here.
        if conn.is_in_transaction() {
            sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
        }
        return Err(e.into());
    }
    if let Some(before) = before {
        let after: String = sqlx::query_scalar(path).fetch_one(&mut *conn).await?;
        if after != before {
            conn.close().await?;
        }
    }
    Ok(())
}

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
    Library,
    LibraryConcurrent,
    Proposal6,
    Proposal4,
    Batch,
    BatchConcurrent,
    CommitEach,
}

const VARIANTS: [Variant; 8] = [
    Variant::Floor,
    Variant::Library,
    Variant::LibraryConcurrent,
    Variant::Proposal6,
    Variant::Proposal4,
    Variant::Batch,
    Variant::BatchConcurrent,
    Variant::CommitEach,
];

struct Setup<'a> {
    tenants: &'a Tenants,
    registry: &'a str,
    registry_tenant: Tenant,
    ups: Arc<Vec<Migration>>,
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
        Variant::Floor => ctx.server.apply(names, &floor).await,
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
        Variant::Proposal6 | Variant::Proposal4 => {
            let check = variant == Variant::Proposal6;
            for name in names {
                proposal_create(&ctx.pool, &s.registry_tenant, name, &s.ups, check).await?;
            }
            Ok(())
        }
        Variant::Batch => {
            let refs: Vec<&Migration> = s.ups.iter().collect();
            for name in names {
                sqlx::raw_sql(AssertSqlSafe(batched_create(s.registry, name, &refs)))
                    .execute(&ctx.pool)
                    .await?;
            }
            Ok(())
        }
        Variant::BatchConcurrent => {
            let (pool, reg, ups) = (ctx.pool.clone(), s.registry.to_owned(), Arc::clone(&s.ups));
            each_concurrent(names, workers, move |name| {
                let (pool, reg, ups) = (pool.clone(), reg.clone(), Arc::clone(&ups));
                async move {
                    let refs: Vec<&Migration> = ups.iter().collect();
                    sqlx::raw_sql(AssertSqlSafe(batched_create(&reg, &name, &refs)))
                        .execute(&pool)
                        .await?;
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
        registry_tenant: Tenant::new(registry)?,
        ups: Arc::new(ups.iter().map(|m| (*m).clone()).collect()),
    };
    let rounds = if n >= 100 { 20 } else { 1 };
    let per_round = n / rounds;
    println!(
        "  {rounds} rounds; each round every variant creates {per_round} fresh tenants (order \
         rotating), which are dropped before the next variant"
    );
    let mut totals = [Duration::ZERO; VARIANTS.len()];
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let names = ctx.names("cr", per_round);
            let start = Instant::now();
            let result = create(ctx, &setup, VARIANTS[vi], &names).await;
            totals[vi] += start.elapsed();
            finish(ctx, registry, &names, result).await?;
        }
    }
    let secs = |v: Variant| totals[VARIANTS.iter().position(|x| *x == v).unwrap()];
    let floor = secs(Variant::Floor).as_secs_f64();
    let baseline = format!(
        "{} (floor: one server-side loop, one transaction)",
        fmt_secs(floor)
    );
    let rows = [
        (
            Variant::Library,
            "3 create {n} tenants: Tenants::create, sequential".to_owned(),
            Target::AtMost(1.5),
        ),
        (
            Variant::LibraryConcurrent,
            format!("3b create {{n}} tenants: Tenants::create, {workers} concurrent"),
            Target::AtMost(1.5),
        ),
        (
            Variant::Proposal6,
            "3c create {n} tenants: proposal, 6 round trips (BEGIN batch), sequential".to_owned(),
            Target::AtMost(1.5),
        ),
        (
            Variant::Proposal4,
            "3d create {n} tenants: proposal without the search_path check, 4 round trips, sequential"
                .to_owned(),
            Target::AtMost(1.5),
        ),
        (
            Variant::Batch,
            "3e create {n} tenants: prototype, 1 round trip per tenant, sequential".to_owned(),
            Target::None,
        ),
        (
            Variant::BatchConcurrent,
            format!("3f create {{n}} tenants: prototype, 1 round trip per tenant, {workers} concurrent"),
            Target::None,
        ),
        (
            Variant::CommitEach,
            "3g create {n} tenants: server-side loop, COMMIT per tenant (reference)".to_owned(),
            Target::None,
        ),
    ];
    for (v, label, target) in rows {
        let d = secs(v).as_secs_f64();
        ctx.row(Row::new(
            label.replace("{n}", &n.to_string()),
            fmt_secs(d),
            baseline.clone(),
            Some(d / floor),
            target,
        ));
    }
    Ok(())
}
