//! Workload 1: generated insert / find-by-id / update / filtered query vs hand-written sqlx
//! running the same schema-qualified SQL text (taken from `tenancy::sql` and `Query::to_sql`)
//! on the same pool, in alternating rounds (A B, B A, …) so drift cancels.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;
use sqlx::AssertSqlSafe;
use tenancy::internals as sql;
use tenancy::Model;
use tenancy::{Record, Tenant, TenantModel};

use crate::common::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Library,
    Hand,
}

/// One operation, run by either side.
trait Op {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()>;
}

struct Insert<'a> {
    pool: &'a PgPool,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Insert<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let name = format!("guard {i}");
        match side {
            Side::Library => {
                let record = Guard::new(&name, "Guard")
                    .insert(self.pool, self.tenant)
                    .await?;
                std::hint::black_box(record);
            }
            Side::Hand => {
                let row: GuardRow = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(name)
                    .bind("Guard")
                    .bind(None::<i32>)
                    .fetch_one(self.pool)
                    .await?;
                std::hint::black_box(row);
            }
        }
        Ok(())
    }
}

struct Find<'a> {
    pool: &'a PgPool,
    tenant: &'a Tenant,
    sql: &'static str,
    ids: Vec<i64>,
}

impl Op for Find<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = self.ids[i % self.ids.len()];
        match side {
            Side::Library => {
                let found = Guard::find(self.pool, self.tenant, id).await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
            Side::Hand => {
                let found: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(id)
                    .fetch_optional(self.pool)
                    .await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
        }
        Ok(())
    }
}

/// A full-record update (`Record::update`: every updatable column, `RETURNING` the row).
struct Update<'a> {
    pool: &'a PgPool,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<Guard>>,
    rows: Vec<GuardRow>,
}

impl Op for Update<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let age = Some(20 + (i % 60) as i32);
        match side {
            Side::Library => {
                let n = self.records.len();
                let record = &mut self.records[i % n];
                record.age = age;
                record.update(self.pool, self.tenant).await?;
            }
            Side::Hand => {
                let n = self.rows.len();
                let row = &mut self.rows[i % n];
                let updated: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(&row.name)
                    .bind(&row.position)
                    .bind(age)
                    .bind(row.id)
                    .fetch_optional(self.pool)
                    .await?;
                *row = updated.ok_or("row gone")?;
            }
        }
        Ok(())
    }
}

/// `WHERE "position" = $1 ORDER BY "id" ASC LIMIT $2`, 10 rows back.
struct Filtered<'a> {
    pool: &'a PgPool,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Filtered<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let rows = Guard::query(self.tenant)
                    .filter(Guard::POSITION.eq("Captain"))
                    .order_by(Guard::ID.asc())
                    .limit(10)
                    .fetch_all(self.pool)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
            Side::Hand => {
                let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(self.pool)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

/// A/A control: both "sides" run the hand-written operation, to show the harness's own noise.
struct Control<'o, O: Op>(&'o mut O);

impl<O: Op> Op for Control<'_, O> {
    async fn run(&mut self, _side: Side, i: usize) -> BoxResult<()> {
        self.0.run(Side::Hand, i).await
    }
}

/// Client CPU per operation of each side: 3 alternating blocks of `n` operations per side.
async fn process_cpu(op: &mut impl Op, n: usize) -> BoxResult<(f64, f64)> {
    let mut cpu = [0.0; 2];
    for block in 0..6_u32 {
        let side = if block.is_multiple_of(2) {
            Side::Library
        } else {
            Side::Hand
        };
        let before = process_cpu_secs();
        for i in 0..n {
            op.run(side, i).await?;
        }
        cpu[usize::from(side == Side::Hand)] += process_cpu_secs() - before;
    }
    let per_op = |s: f64| s * 1e6 / (3 * n) as f64;
    Ok((per_op(cpu[0]), per_op(cpu[1])))
}

struct Outcome {
    library: f64,
    hand: f64,
    pair_median: f64,
}

/// Warms both sides, then `rounds` rounds of `per_round` operations per side. Interleaved per
/// operation (A B, B A, A B, …: the order alternates every pair), each operation timed on its
/// own, so drift in the server's commit latency hits both sides alike. Returns ops/s of each
/// side and the median of the per-round ratios.
async fn interleave(op: &mut impl Op, rounds: usize, per_round: usize) -> BoxResult<Outcome> {
    let warm = (per_round / 5).max(10);
    for i in 0..warm {
        op.run(Side::Library, i).await?;
        op.run(Side::Hand, i).await?;
    }
    let mut totals = [Duration::ZERO; 2];
    let mut pairs = Vec::with_capacity(rounds);
    let mut i = warm;
    for _ in 0..rounds {
        let mut times = [Duration::ZERO; 2];
        for _ in 0..per_round {
            let order = if i.is_multiple_of(2) {
                [Side::Library, Side::Hand]
            } else {
                [Side::Hand, Side::Library]
            };
            for side in order {
                let start = Instant::now();
                op.run(side, i).await?;
                times[usize::from(side == Side::Hand)] += start.elapsed();
            }
            i += 1;
        }
        totals[0] += times[0];
        totals[1] += times[1];
        pairs.push(times[1].as_secs_f64() / times[0].as_secs_f64());
    }
    let ops = (rounds * per_round) as f64;
    Ok(Outcome {
        library: ops / totals[0].as_secs_f64(),
        hand: ops / totals[1].as_secs_f64(),
        pair_median: median(&mut pairs),
    })
}

/// Client-side CPU per operation, without the database: building the SQL text and decoding
/// the 10 rows of the filtered query, library vs hand-written.
async fn cpu_costs(ctx: &mut Ctx, pool: &PgPool, tenant: &Tenant) -> BoxResult<()> {
    use sqlx::FromRow;
    let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {}.guards WHERE position = 'Captain' ORDER BY id LIMIT 10",
        tenant.quoted()
    )))
    .fetch_all(pool)
    .await?;
    let n = if ctx.quick { 1_000 } else { 100_000 };
    let per = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for _ in 0..n {
        let q = Guard::query(tenant)
            .filter(Guard::POSITION.eq("Captain"))
            .order_by(Guard::ID.asc())
            .limit(10);
        std::hint::black_box(q.to_sql());
    }
    let build_query = per(start);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(sql::select_by_pk::<Guard>(tenant));
    }
    let build_find = per(start);
    let start = Instant::now();
    for _ in 0..n {
        for row in &rows {
            let g = Guard::from_row(row)?;
            std::hint::black_box((tenant.clone(), g));
        }
    }
    let decode_lib = per(start);
    let start = Instant::now();
    for _ in 0..n {
        for row in &rows {
            std::hint::black_box(GuardRow::from_row(row)?);
        }
    }
    let decode_hand = per(start);
    ctx.note(format!(
        "1 client CPU per call: building the filtered query's SQL {build_query:.2} us, the find's \
         {build_find:.2} us; decoding 10 rows: TenantModel::from_row + tenant clone \
         {decode_lib:.2} us, sqlx FromRow {decode_hand:.2} us"
    ));
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let (rounds, per_round) = if ctx.quick { (4, 50) } else { (40, 400) };
    let names = ctx.guard_tenants("crud", 1, 1000).await?;
    let result = measure(ctx, &names[0], rounds, per_round).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure(ctx: &mut Ctx, name: &str, rounds: usize, per_round: usize) -> BoxResult<()> {
    let tenant = Tenant::new(name)?;
    let pool = ctx.pool.clone();
    let table = &Guard::TABLE;
    let updatable: Vec<usize> = table.updatable_indexes().collect();
    let query_sql = Guard::query(&tenant)
        .filter(Guard::POSITION.eq("Captain"))
        .order_by(Guard::ID.asc())
        .limit(10)
        .to_sql();
    let ids: Vec<i64> = (1..=1000).collect();
    let records = {
        let mut records = Vec::new();
        for id in 1..=200 {
            records.push(Guard::find(&pool, &tenant, id).await?.ok_or("seeded row")?);
        }
        records
    };
    let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT * FROM {}.guards WHERE id > 200 AND id <= 400 ORDER BY id",
        tenant.quoted()
    )))
    .fetch_all(&pool)
    .await?;
    println!(
        "  {rounds} rounds x {per_round} ops per side and operation, one task, pool of {POOL_SIZE}"
    );

    let mut ops: Vec<(&str, Outcome)> = Vec::new();
    let mut insert = Insert {
        pool: &pool,
        tenant: &tenant,
        sql: leak(sql::insert::<Guard>(&tenant, 1)),
    };
    ops.push(("insert", interleave(&mut insert, rounds, per_round).await?));
    let mut find = Find {
        pool: &pool,
        tenant: &tenant,
        sql: leak(sql::select_by_pk::<Guard>(&tenant)),
        ids,
    };
    ops.push((
        "find by id",
        interleave(&mut find, rounds, per_round).await?,
    ));
    let mut update = Update {
        pool: &pool,
        tenant: &tenant,
        sql: leak(sql::update::<Guard>(&tenant, &updatable)),
        records,
        rows,
    };
    ops.push(("update", interleave(&mut update, rounds, per_round).await?));
    let mut filtered = Filtered {
        pool: &pool,
        tenant: &tenant,
        sql: leak(query_sql),
    };
    ops.push((
        "filtered query",
        interleave(&mut filtered, rounds, per_round).await?,
    ));
    let control = interleave(&mut Control(&mut filtered), rounds, per_round).await?;
    let (cpu_lib, cpu_hand) =
        process_cpu(&mut filtered, if ctx.quick { 200 } else { 5000 }).await?;

    cpu_costs(ctx, &pool, &tenant).await?;
    ctx.note(format!(
        "1 process CPU (user + system) per filtered query, blocks of one side at a time: \
         library {cpu_lib:.0} us, hand-written {cpu_hand:.0} us"
    ));
    ctx.note(format!(
        "1 A/A control (hand-written filtered query on both sides): ratio {:.3}, median of \
         per-round ratios {:.3}",
        control.library / control.hand,
        control.pair_median
    ));
    for (name, o) in ops {
        ctx.row(Row::new(
            format!("1 {name} (generated vs hand-written)"),
            fmt_rate(o.library),
            format!("{} (hand-written sqlx, same SQL)", fmt_rate(o.hand)),
            Some(o.library / o.hand),
            Target::AtLeast(0.98),
        ));
        ctx.note(format!(
            "1 {name}: median of the {rounds} per-round ratios {:.3}",
            o.pair_median
        ));
    }
    Ok(())
}
