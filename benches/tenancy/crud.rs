//! Workload 1: generated insert / find by id / update / delete / filtered query vs hand-written
//! sqlx running the same schema-qualified SQL text (taken from `tenancy::sql` and
//! `Query::to_sql`), both on one connection taken from the pool, with the A/A control measured
//! in the same rotation (`method`).

use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use tenancy::internals as sql;
use tenancy::Model;
use tenancy::{Record, Tenant, TenantModel};

use crate::common::*;
use crate::method::{calibrated, compare, Compared, Op, Plan, Side};
use crate::report::Target;

/// Insert: each side keeps what it inserted, for the delete.
struct Insert<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<Guard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<GuardRow>,
}

impl Op for Insert<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let name = format!("guard {i}");
        match side {
            Side::Library => {
                let record = Guard::new(&name, "Guard")
                    .insert(&mut *self.conn, self.tenant)
                    .await?;
                self.records.push(record);
            }
            Side::Hand | Side::Again => {
                let row: GuardRow = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(name)
                    .bind("Guard")
                    .bind(None::<i32>)
                    .fetch_one(&mut *self.conn)
                    .await?;
                self.rows.push(row);
            }
        }
        Ok(())
    }
}

struct Find<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Find<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = 1 + (i % 1000) as i64;
        match side {
            Side::Library => {
                let found = Guard::find(&mut *self.conn, self.tenant, id).await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
            Side::Hand | Side::Again => {
                let found: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(id)
                    .fetch_optional(&mut *self.conn)
                    .await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
        }
        Ok(())
    }
}

/// A full-record update (`Record::update`: every updatable column, `RETURNING` the row), each
/// side on 200 rows of its own.
struct Update<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<Guard>>,
    /// The rows of the hand-written side and of its A/A twin.
    rows: [Vec<GuardRow>; 2],
}

impl Op for Update<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let age = Some(20 + (i % 60) as i32);
        match side {
            Side::Library => {
                let n = self.records.len();
                let record = &mut self.records[i % n];
                record.age = age;
                record.update(&mut *self.conn, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let rows = &mut self.rows[side.index() - 1];
                let n = rows.len();
                let row = &mut rows[i % n];
                let updated: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(&row.name)
                    .bind(&row.position)
                    .bind(age)
                    .bind(row.id)
                    .fetch_optional(&mut *self.conn)
                    .await?;
                *row = updated.ok_or("row gone")?;
            }
        }
        Ok(())
    }
}

/// Delete by key: each side deletes rows the insert made (`Record::delete` vs `DELETE … WHERE
/// id = $1`, checking one row was affected).
struct Delete<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<Guard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<GuardRow>,
}

impl Op for Delete<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let mut record = self.records.pop().ok_or("no record left to delete")?;
                record.delete(&mut *self.conn, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let row = self.rows.pop().ok_or("no row left to delete")?;
                let done = sqlx::query(AssertSqlSafe(self.sql))
                    .bind(row.id)
                    .execute(&mut *self.conn)
                    .await?;
                assert_eq!(done.rows_affected(), 1);
            }
        }
        Ok(())
    }
}

/// `WHERE "position" = $1 ORDER BY "id" ASC LIMIT $2`, 10 rows back.
struct Filtered<'a> {
    conn: &'a mut PgConnection,
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
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

/// Client-side CPU per call without the database: building the SQL text and decoding the 10
/// rows of the filtered query, library vs hand-written.
async fn cpu_costs(ctx: &mut Ctx, conn: &mut PgConnection, tenant: &Tenant) -> BoxResult<()> {
    use sqlx::FromRow;
    let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {}.guards WHERE position = 'Captain' ORDER BY id LIMIT 10",
        tenant.quoted()
    )))
    .fetch_all(&mut *conn)
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
    ctx.out.note(format!(
        "client CPU per call, no database: building the filtered query's SQL {build_query:.2} \
         µs, the find's {build_find:.2} µs; decoding 10 rows: TenantModel::from_row + tenant \
         clone {decode_lib:.2} µs, sqlx FromRow {decode_hand:.2} µs"
    ));
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let names = ctx.guard_tenants("crud", 1, 1000).await?;
    let result = measure(ctx, &names[0]).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

/// Seconds of recorded operations per CRUD operation (three sides).
pub fn crud_budget(quick: bool) -> Duration {
    Duration::from_secs_f64(if quick { 0.1 } else { 8.0 })
}

async fn measure(ctx: &mut Ctx, name: &str) -> BoxResult<()> {
    let tenant = Tenant::new(name)?;
    let mut conn = ctx.pool.acquire().await?;
    let conn = &mut *conn;
    // Commits do not wait for the disk (on both sides alike): a flush per write would drown
    // the difference between them.
    sqlx::raw_sql("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    let table = &Guard::TABLE;
    let updatable: Vec<usize> = table.updatable_indexes().collect();
    let query_sql = Guard::query(&tenant)
        .filter(Guard::POSITION.eq("Captain"))
        .order_by(Guard::ID.asc())
        .limit(10)
        .to_sql();
    let mut records = Vec::new();
    for id in 1..=200 {
        records.push(
            Guard::find(&mut *conn, &tenant, id)
                .await?
                .ok_or("seeded row")?,
        );
    }
    let mut rows = [Vec::new(), Vec::new()];
    for (k, rows) in rows.iter_mut().enumerate() {
        *rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT * FROM {}.guards WHERE id > $1 AND id <= $1 + 200 ORDER BY id",
            tenant.quoted()
        )))
        .bind(200 * (k as i64 + 1))
        .fetch_all(&mut *conn)
        .await?;
    }
    let (budget, quick) = (crud_budget(ctx.quick), ctx.quick);
    println!("  one task, one connection; about {budget:?} of recorded operations each");

    let mut ops: Vec<(&str, Compared)> = Vec::new();
    let mut insert = Insert {
        conn: &mut *conn,
        tenant: &tenant,
        sql: leak(sql::insert::<Guard>(&tenant, 1)),
        records: Vec::new(),
        rows: Vec::new(),
    };
    let insert_plan = Plan::calibrate(&mut insert, budget, quick).await?;
    ops.push((
        "insert … RETURNING",
        compare(&mut insert, insert_plan).await?,
    ));
    let insert_run = ops[0].1.plan;
    let (inserted, inserted_rows) = (insert.records, insert.rows);
    let mut find = Find {
        conn: &mut *conn,
        tenant: &tenant,
        sql: leak(sql::select_by_pk::<Guard>(&tenant)),
    };
    ops.push(("find by id", calibrated(&mut find, budget, quick).await?));
    let mut update = Update {
        conn: &mut *conn,
        tenant: &tenant,
        sql: leak(sql::update::<Guard>(&tenant, &updatable)),
        records,
        rows,
    };
    ops.push((
        "update … RETURNING",
        calibrated(&mut update, budget, quick).await?,
    ));
    // As many deletes as the insert made, per side.
    let mut delete = Delete {
        conn: &mut *conn,
        tenant: &tenant,
        sql: leak(sql::delete_by_pk::<Guard>(&tenant)),
        records: inserted,
        rows: inserted_rows,
    };
    ops.push(("delete by id", compare(&mut delete, insert_run).await?));
    let mut filtered = Filtered {
        conn: &mut *conn,
        tenant: &tenant,
        sql: leak(query_sql),
    };
    ops.push((
        "filtered query",
        calibrated(&mut filtered, budget, quick).await?,
    ));
    for (op, c) in &ops {
        ctx.out.row(c.row(
            format!("1 {op}"),
            "hand-written sqlx, same SQL, same connection",
            Target::AtLeast(0.98),
        ));
    }
    ctx.out.note(plans_note(&ops));
    cpu_costs(ctx, conn, &tenant).await
}

/// One note: each operation's plan and its client CPU ratio.
pub fn plans_note(ops: &[(&str, Compared)]) -> String {
    let parts: Vec<String> = ops
        .iter()
        .map(|(op, c)| {
            format!(
                "{op}: {} (client CPU, baseline / library per triple: {:.3})",
                c.plan.describe(),
                c.cpu_ratio
            )
        })
        .collect();
    parts.join("; ")
}
