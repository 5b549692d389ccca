//! Workload 29: row-level tenants (`#[tenancy(tenant_column = "tenant_id")]`,
//! `Tenant::rows_in`), the rows of many tenants in one container's `guards` table.
//!
//! - CRUD, as workload 1 measures it (`method`: library, hand-written sqlx, hand-written again
//!   as the A/A control, in rotating blocks on one connection): insert … RETURNING, find by
//!   id, update … RETURNING, delete by id and the filtered query of one row-level tenant whose
//!   1,000 rows are interleaved with those of 1,000 other tenants in one container. The
//!   hand-written side sends the library's own text (`tenancy::internals`, `Query::to_sql`),
//!   with its `"tenant_id" = $n` filter (or the insert's `tenant_id` value) bound to the
//!   tenant's name as the library binds it.
//! - Point lookups (`RowGuard::find`) over 1, 1,000 and 100,000 row-level tenants of one
//!   container (10 rows each, 1,000,000 rows, inserted by one `INSERT … SELECT` from
//!   `generate_series`) on one pool of a few connections, as workload 2 measures them: each
//!   many-tenant rate against the one-tenant rate of the same pool, the one-tenant rate
//!   measured twice as the A/A control; the same lookups hand-written with sqlx (the same SQL)
//!   as an untargeted reference of what the server alone makes of the bigger working set.
//! - Creating a row-level tenant (`Tenants::create_in`: a registry row, no DDL) against
//!   creating a tenant with its own schema (`Tenants::create`: the schema and this module's
//!   migration), on the same handle in the same run: blocks of creates of each kind in rounds,
//!   the six orders of the three blocks in turn, the schema creates twice (the A/A control);
//!   the ratio is of the times per create. Every block's tenants are dropped before the next
//!   block. The note gives, from blocks of each in turn on the same pool, one create_in, one
//!   create_in a step at a time (a registry without its function `create_in`: the way of MySQL,
//!   SQLite and PostgreSQL before it), and what one costs at least (a durable one-row insert, a
//!   bare `SELECT 1`), and the round trips of each, counted by a relay.
//!
//! - Dropping a row-level tenant of 1,000,000 rows (`Tenants::drop`, in batches) against one
//!   `DELETE` of the same rows, in alternating rounds (29e, no target: what the batches cost).
//!
//! The containers are ordinary tenants made by `Tenants::create` with this module's migration.

use std::sync::Arc;
use std::time::Instant;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, SqlSafeStr};
use tenancy::internals as sql;
use tenancy::{Dropped, Record, Tenant, TenantModel, Tenants};

use crate::common::*;
use crate::crud::{crud_budget, plans_note};
use crate::method::{calibrated, compare, fmt_op, paired, Compared, Op, Plan, Side};
use crate::report::{Row, Target};

/// The container's table: `guards` with the tenant column, the primary key on `id` alone
/// (ids are unique across the container) and an index on (tenant_id, id) for what one
/// tenant reads in key order.
pub(crate) const ROW_GUARDS_DDL: &str = "CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guards_tenant_id_id ON guards (tenant_id, id)";

/// The `Guard` of workloads 1 and 2, its rows kept in a container's table with their tenant's
/// name in `tenant_id`.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", tenant_column = "tenant_id")]
pub struct RowGuard {
    #[tenancy(id, generated)]
    pub id: i64,
    #[tenancy(required, length(max = 50))]
    pub name: String,
    #[tenancy(required)]
    pub position: String,
    #[tenancy(range(min = 16, max = 120))]
    pub age: Option<i32>,
    #[tenancy(generated)]
    pub inserted_at: OffsetDateTime,
}

impl RowGuard {
    pub(crate) fn new(name: &str, position: &str) -> Self {
        RowGuard {
            id: 0,
            name: name.into(),
            position: position.into(),
            age: None,
            inserted_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// The name of the row-level tenant under test in the CRUD part.
const UNDER_TEST: &str = "acme";

/// `rl_<n>`: the other row-level tenants' names.
fn other(n: usize) -> String {
    format!("rl_{n}")
}

/// The library's text of one statement, checked to carry the tenant filter (or value) where
/// the hand-written side binds it.
fn checked(what: &str, text: String, shape: &str) -> BoxResult<&'static str> {
    if text.contains(shape) {
        Ok(leak(text))
    } else {
        Err(format!("the {what} of a row-level tenant is no longer ...{shape}...: {text}").into())
    }
}

/// Insert: each side keeps what it inserted, for the delete.
struct Insert<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<RowGuard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<GuardRow>,
}

impl Op for Insert<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let name = format!("guard {i}");
        match side {
            Side::Library => {
                let record = RowGuard::new(&name, "Guard")
                    .insert(&mut *self.conn, self.tenant)
                    .await?;
                self.records.push(record);
            }
            Side::Hand | Side::Again => {
                let row: GuardRow = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(name)
                    .bind("Guard")
                    .bind(None::<i32>)
                    .bind(self.tenant.as_str())
                    .fetch_one(&mut *self.conn)
                    .await?;
                self.rows.push(row);
            }
        }
        Ok(())
    }
}

/// Find by id, over the ids of the tenant's rows.
struct Find<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    ids: &'a [i64],
}

impl Op for Find<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = self.ids[i % self.ids.len()];
        match side {
            Side::Library => {
                let found = RowGuard::find(&mut *self.conn, self.tenant, id).await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
            Side::Hand | Side::Again => {
                let found: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(self.tenant.as_str())
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

/// A full-record update (`Record::update`), each side on 200 rows of its own.
struct Update<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<RowGuard>>,
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
                    .bind(self.tenant.as_str())
                    .bind(row.id)
                    .fetch_optional(&mut *self.conn)
                    .await?;
                *row = updated.ok_or("row gone")?;
            }
        }
        Ok(())
    }
}

/// Delete by key of the rows the insert made, checking one row was affected.
struct Delete<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<RowGuard>>,
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
                    .bind(self.tenant.as_str())
                    .bind(row.id)
                    .execute(&mut *self.conn)
                    .await?;
                assert_eq!(done.rows_affected(), 1);
            }
        }
        Ok(())
    }
}

/// `WHERE "tenant_id" = $1 AND "position" = $2 ORDER BY "id" ASC LIMIT $3`, 10 rows back.
struct Filtered<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Filtered<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let rows = captains(self.tenant).fetch_all(&mut *self.conn).await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(self.tenant.as_str())
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

/// The filtered query of the CRUD part.
fn captains(tenant: &Tenant) -> tenancy::Query<RowGuard> {
    RowGuard::query(tenant)
        .filter(RowGuard::POSITION.eq("Captain"))
        .order_by(RowGuard::ID.asc())
        .limit(10)
}

/// A container made by `Tenants::create` (this module's migration), tracked for cleanup.
pub(crate) async fn container(ctx: &Ctx, tenants: &Tenants, prefix: &str) -> BoxResult<Tenant> {
    let name = ctx.names(prefix, 1).remove(0);
    Ok(tenants.create(&name).await?)
}

/// `VACUUM (ANALYZE)` of a container's `guards` after its bulk insert (the server may run
/// without autovacuum): statistics for the planner, hint bits set and the visibility map
/// written before anything is timed.
pub(crate) async fn vacuum(ctx: &Ctx, container: &Tenant) -> BoxResult<()> {
    let sql = format!("VACUUM (ANALYZE) {}.guards", container.quoted());
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&ctx.pool).await?;
    Ok(())
}

/// A handle on `pool` and `registry` whose one migration is `ddl` (a `guards` table with the
/// tenant column).
pub(crate) fn handle(pool: &PgPool, registry: &str, ddl: impl Into<String>) -> BoxResult<Tenants> {
    let v1 = Migration::new(
        1,
        "guards with a tenant column".into(),
        MigrationType::Simple,
        AssertSqlSafe(ddl.into()).into_sql_str(),
        false,
    );
    Ok(Tenants::new(pool.clone(), Migrator::with_migrations(vec![v1]))?.with_registry(registry)?)
}

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let registry = ctx.registry_name();
    let tenants = handle(&ctx.pool, &registry, ROW_GUARDS_DDL)?;
    let crud_box = container(ctx, &tenants, "rlc").await?;
    let lookup_box = container(ctx, &tenants, "rlk").await?;
    let mut result = crud(ctx, &crud_box).await;
    if result.is_ok() {
        result = lookups(ctx, &lookup_box).await;
    }
    if result.is_ok() {
        result = creates(ctx, (&tenants, &registry), &crud_box).await;
    }
    let drop_box = container(ctx, &tenants, "rld").await?;
    if result.is_ok() {
        result = drops(ctx, &tenants, &drop_box).await;
    }
    let names = [
        crud_box.as_str().to_owned(),
        lookup_box.as_str().to_owned(),
        drop_box.as_str().to_owned(),
        registry,
    ];
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

/// Part (a): CRUD of one row-level tenant among 1,000 others (10 with `--quick`).
async fn crud(ctx: &mut Ctx, container: &Tenant) -> BoxResult<()> {
    let others = if ctx.quick { 10 } else { 1_000 };
    let (own_rows, other_rows) = (1_000, 5);
    let c = container.quoted();
    // The tenant's rows and the others' in one statement, in an order that interleaves them
    // (as rows written over time by many tenants would be).
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {c}.guards (tenant_id, name, position) \
         SELECT t, 'guard ' || i, CASE WHEN i % 5 = 0 THEN 'Captain' ELSE 'Guard' END \
         FROM (SELECT $1::text AS t, i FROM generate_series(1, $2) i \
               UNION ALL \
               SELECT 'rl_' || n, i FROM generate_series(0, $3 - 1) n, generate_series(1, $4) i) r \
         ORDER BY md5(t || ':' || i)"
    )))
    .bind(UNDER_TEST)
    .bind(own_rows)
    .bind(others as i32)
    .bind(other_rows)
    .execute(&ctx.pool)
    .await?;
    vacuum(ctx, container).await?;
    let tenant = Tenant::new(UNDER_TEST)?.rows_in(container);
    let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {c}.guards WHERE tenant_id = $1 ORDER BY id"
    )))
    .bind(UNDER_TEST)
    .fetch_all(&ctx.pool)
    .await?;
    if ids.len() != own_rows as usize {
        return Err(format!("{UNDER_TEST} holds {} rows, not {own_rows}", ids.len()).into());
    }
    println!(
        "  container {}: {UNDER_TEST}'s {own_rows} rows among {} of {others} other row-level \
         tenants ({other_rows} each), interleaved",
        container.as_str(),
        thousands((others * other_rows as usize) as u64)
    );

    let mut conn = ctx.pool.acquire().await?;
    let conn = &mut *conn;
    // As in workload 1: commits do not wait for the disk, on every side alike.
    sqlx::raw_sql("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    let updatable: Vec<usize> = RowGuard::TABLE.updatable_indexes().collect();
    let insert_sql = checked(
        "insert",
        sql::insert::<RowGuard>(&tenant, 1),
        r#""tenant_id") VALUES ($1, $2, $3, $4)"#,
    )?;
    let find_sql = checked(
        "find",
        sql::select_by_pk::<RowGuard>(&tenant),
        r#"WHERE "tenant_id" = $1 AND "id" = $2"#,
    )?;
    let update_sql = checked(
        "update",
        sql::update::<RowGuard>(&tenant, &updatable),
        r#"WHERE "tenant_id" = $4 AND "id" = $5"#,
    )?;
    let delete_sql = checked(
        "delete",
        sql::delete_by_pk::<RowGuard>(&tenant),
        r#"WHERE "tenant_id" = $1 AND "id" = $2"#,
    )?;
    let query_sql = checked(
        "filtered query",
        captains(&tenant).to_sql(),
        r#"WHERE "tenant_id" = $1 AND "position" = $2 ORDER BY "id" ASC LIMIT $3"#,
    )?;
    // 200 rows per side for the update: the library's as records, the others as rows.
    let mut records = Vec::new();
    for &id in &ids[..200] {
        records.push(
            RowGuard::find(&mut *conn, &tenant, id)
                .await?
                .ok_or("seeded row")?,
        );
    }
    let mut rows = [Vec::new(), Vec::new()];
    for (k, rows) in rows.iter_mut().enumerate() {
        *rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, name, position, age, inserted_at FROM {c}.guards WHERE id = ANY($1) \
             ORDER BY id"
        )))
        .bind(&ids[200 * (k + 1)..200 * (k + 2)])
        .fetch_all(&mut *conn)
        .await?;
    }
    let (budget, quick) = (crud_budget(ctx.quick), ctx.quick);
    println!("  one task, one connection; about {budget:?} of recorded operations each");

    let mut ops: Vec<(&str, Compared)> = Vec::new();
    let mut insert = Insert {
        conn: &mut *conn,
        tenant: &tenant,
        sql: insert_sql,
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
        sql: find_sql,
        ids: &ids,
    };
    ops.push(("find by id", calibrated(&mut find, budget, quick).await?));
    let mut update = Update {
        conn: &mut *conn,
        tenant: &tenant,
        sql: update_sql,
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
        sql: delete_sql,
        records: inserted,
        rows: inserted_rows,
    };
    ops.push(("delete by id", compare(&mut delete, insert_run).await?));
    let mut filtered = Filtered {
        conn: &mut *conn,
        tenant: &tenant,
        sql: query_sql,
    };
    ops.push((
        "filtered query",
        calibrated(&mut filtered, budget, quick).await?,
    ));
    for (op, c) in &ops {
        ctx.out.row(c.row(
            format!("29 row-level {op}"),
            "hand-written sqlx, same SQL, same connection",
            Target::AtLeast(0.98),
        ));
    }
    ctx.out.note(plans_note(&ops));
    let generic = |sql: &str| shorten(&sql.replace(&container.quoted(), "<container>"));
    ctx.out.note(format!(
        "the texts both sides send (the library's, its tenant bound as a value): find \
         `{}`; filtered query `{}`",
        generic(find_sql),
        generic(query_sql)
    ));
    cpu_costs(ctx, &tenant, container).await
}

/// A statement's text with its column list elided (`SELECT … FROM`).
fn shorten(sql: &str) -> String {
    match (sql.find("SELECT "), sql.find(" FROM ")) {
        (Some(s), Some(f)) if s < f => format!("{}SELECT … {}", &sql[..s], &sql[f + 1..]),
        _ => sql.to_owned(),
    }
}

/// Client-side CPU per call without the database: the find's text for a row-level tenant and
/// for the container as a tenant of its own (no filter), and the filtered query's.
async fn cpu_costs(ctx: &mut Ctx, tenant: &Tenant, container: &Tenant) -> BoxResult<()> {
    let n = if ctx.quick { 1_000 } else { 100_000 };
    let per = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(sql::select_by_pk::<RowGuard>(tenant));
    }
    let find_rows = per(start);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(sql::select_by_pk::<RowGuard>(container));
    }
    let find_own = per(start);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(captains(tenant).to_sql());
    }
    let query = per(start);
    ctx.out.note(format!(
        "client CPU per call, no database: building the find's SQL {find_rows:.2} µs for the \
         row-level tenant, {find_own:.2} µs for the container as a tenant of its own (no \
         filter); the filtered query's {query:.2} µs"
    ));
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Create {
    /// `Tenants::create`: a schema and its migration (the baseline).
    Schema = 0,
    /// The baseline again: the A/A control.
    SchemaAgain = 1,
    /// `Tenants::create_in` of the container.
    RowLevel = 2,
    /// `Tenants::create_in_many` of the container: many names in one call.
    Batch = 3,
}

/// Every order of a round's four blocks, one after the other: over 24 rounds each kind of
/// create runs in each position, and right after each other kind (whose untimed drops, of
/// schemas or of registry rows, come just before it), equally often, across the rounds'
/// boundaries too. (With the rotations of one order instead, the schema creates always
/// followed the row-level block or ran first, and the A/A read 0.93-0.96.)
fn orders() -> Vec<[Create; 4]> {
    use Create::*;
    let all = [Schema, SchemaAgain, RowLevel, Batch];
    let mut orders = Vec::new();
    for a in 0..4 {
        for b in (0..4).filter(|&b| b != a) {
            for c in (0..4).filter(|&c| c != a && c != b) {
                let d = 6 - a - b - c;
                orders.push([all[a], all[b], all[c], all[d]]);
            }
        }
    }
    orders
}

/// Part (c): `Tenants::create_in` and `Tenants::create_in_many` vs `Tenants::create`, per
/// create (see the module documentation). Each round is one block of each kind, in one of the
/// 24 orders in turn; row-level blocks hold more creates (each is much shorter), so each block
/// lasts long enough to time; the ratios are of the times per create, the median of the
/// per-round ratios over many short rounds (with 40 rounds of 30 creates the A/A's interval
/// was [0.84, 1.09]; with 1,200 rounds of one, [0.985, 1.009]).
async fn creates(
    ctx: &mut Ctx,
    (tenants, registry): (&Tenants, &str),
    container: &Tenant,
) -> BoxResult<()> {
    let (rounds, schemas, rows, batch) = if ctx.quick {
        (24, 1, 5, 20)
    } else {
        (1_200, 1, 10, 100)
    };
    // Untimed: one of each, so that the first block pays no first-use costs.
    let warm = ctx.names("rlw", 3);
    tenants.create(&warm[0]).await?;
    let placed = tenants.create_in(&warm[1], container).await?;
    let resolved = tenants.tenant(&warm[1]).await?;
    if resolved != placed || resolved.container() != container.as_str() {
        return Err(format!("{} resolves to {resolved:?}, not {placed:?}", warm[1]).into());
    }
    tenants.create_in_many(&warm[2..], container).await?;
    for name in warm.iter().rev() {
        tenants.drop(name).await?;
    }
    ctx.cleanup.drop_schemas(&ctx.pool, &warm).await?;
    println!(
        "  {rounds} rounds; each round {schemas} Tenants::create (twice: the A/A control), \
         {rows} Tenants::create_in and one Tenants::create_in_many of {batch} names in {}, in \
         each of the 24 orders in turn, each block dropped before the next",
        container.as_str()
    );
    let unregister = format!(
        "DELETE FROM {}.row_tenants WHERE name = ANY($1)",
        quote_ident(registry)
    );
    let orders = orders();
    // secs[variant][round]: seconds per create.
    let mut secs = vec![Vec::new(); orders[0].len()];
    for round in 0..rounds {
        for variant in orders[round % orders.len()] {
            let n = match variant {
                Create::RowLevel => rows,
                Create::Batch => batch,
                _ => schemas,
            };
            let names = ctx.names("rlcr", n);
            let start = Instant::now();
            let mut made = Ok(());
            if variant == Create::Batch {
                made = tenants.create_in_many(&names, container).await.map(drop);
            } else {
                for name in &names {
                    made = match variant {
                        Create::RowLevel => tenants.create_in(name, container).await.map(drop),
                        _ => tenants.create(name).await.map(drop),
                    };
                    if made.is_err() {
                        break;
                    }
                }
            }
            secs[variant as usize].push(start.elapsed().as_secs_f64() / n as f64);
            // Untimed: drop what the block made (a row-level tenant holds no rows here; the
            // batch's registry rows in one statement).
            if variant == Create::Batch {
                let gone = sqlx::query(AssertSqlSafe(unregister.as_str()))
                    .bind(&names)
                    .execute(&ctx.pool)
                    .await?
                    .rows_affected();
                if made.is_ok() && gone != n as u64 {
                    return Err(format!("create_in_many registered {gone} of {n} names").into());
                }
            } else {
                for name in &names {
                    match tenants.drop(name).await {
                        Ok(Dropped::Rows { deleted: 0 } | Dropped::Schema) => {}
                        Ok(other) => return Err(format!("drop of {name}: {other:?}").into()),
                        Err(tenancy::Error::NotATenant { .. }) if made.is_err() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            made?;
            ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
        }
    }
    let (schema, again, row, many) = (
        Create::Schema as usize,
        Create::SchemaAgain as usize,
        Create::RowLevel as usize,
        Create::Batch as usize,
    );
    let aa = paired(&secs[again], &secs[schema]).0;
    let per = |v: &Vec<f64>| fmt_op(median(&mut v.clone()));
    let baseline = format!(
        "{}/create (Tenants::create of a schema tenant, the container's migration, same handle)",
        per(&secs[schema])
    );
    let (ratio, interval) = paired(&secs[row], &secs[schema]);
    ctx.out.row(
        Row::new(
            "29d create a row-level tenant: Tenants::create_in",
            format!("{}/create", per(&secs[row])),
            baseline.clone(),
            Some(ratio),
            Target::AtMost(0.02),
        )
        .interval(interval)
        .aa(aa),
    );
    let (ratio, interval) = paired(&secs[many], &secs[schema]);
    ctx.out.row(
        Row::new(
            format!("29d create {batch} row-level tenants in one call: Tenants::create_in_many, per tenant"),
            format!("{}/create", per(&secs[many])),
            baseline,
            Some(ratio),
            Target::AtMost(0.02),
        )
        .interval(interval)
        .aa(aa),
    );
    let floor = create_floor(ctx, (tenants, registry), container).await?;
    ctx.out.note(format!(
        "29d: {rounds} rounds of {schemas} schema create(s) (twice), {rows} create_in and one \
         create_in_many of {batch}, the 24 orders of the four blocks in turn; each ratio is the \
         median of the per-round ratios of the time per create (<= 0.02x: at least 50x faster); \
         {floor}"
    ));
    Ok(())
}

/// Part (e): dropping a row-level tenant of 1,000,000 rows (20,000 with `--quick`) among a
/// neighbour's 100,000 (2,000), `Tenants::drop` (its rows deleted in batches of
/// [`tenancy::DROP_BATCH_ROWS`], each in its own transaction, then unregistered), against one
/// `DELETE … WHERE tenant_id = $1` of the same rows (its floor: one statement, one
/// transaction), in rounds of both, alternating which goes first. Each side's tenant is
/// created and filled by one `INSERT … SELECT` before it is timed; the container's guard is
/// put on by an untimed drop first.
async fn drops(ctx: &mut Ctx, tenants: &Tenants, container: &Tenant) -> BoxResult<()> {
    let (rows, rounds) = if ctx.quick {
        (20_000, 1)
    } else {
        (1_000_000, 3)
    };
    let c = container.quoted();
    let fill = |tenant: &str, n: usize| {
        format!(
            "INSERT INTO {c}.guards (tenant_id, name, position, age) \
             SELECT '{tenant}', 'g' || i, 'Guard', 30 FROM generate_series(1, {n}) i"
        )
    };
    let seeded = async |name: &str, n: usize| -> BoxResult<Tenant> {
        let tenant = tenants.create_in(name, container).await?;
        sqlx::raw_sql(AssertSqlSafe(fill(name, n)))
            .execute(&ctx.pool)
            .await?;
        Ok(tenant)
    };
    let names = ctx.names("rldt", 2 + 2 * rounds);
    seeded(&names[0], rows / 10).await?;
    let first = seeded(&names[1], 10).await?;
    tenants.drop(first.as_str()).await?;
    vacuum(ctx, container).await?;
    let (mut library, mut floor) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for side in [round % 2, 1 - round % 2] {
            let name = &names[2 + 2 * round + side];
            let tenant = seeded(name, rows).await?;
            let start = Instant::now();
            if side == 0 {
                match tenants.drop(tenant.as_str()).await? {
                    Dropped::Rows { deleted } if deleted == rows as u64 => {}
                    other => return Err(format!("drop of {name}: {other:?}").into()),
                }
                library.push(start.elapsed().as_secs_f64());
            } else {
                let sql = format!("DELETE FROM {c}.guards WHERE tenant_id = $1");
                let done = sqlx::query(AssertSqlSafe(sql))
                    .bind(name)
                    .execute(&ctx.pool)
                    .await?;
                floor.push(start.elapsed().as_secs_f64());
                if done.rows_affected() != rows as u64 {
                    return Err(format!("DELETE of {name}: {} rows", done.rows_affected()).into());
                }
                tenants.drop(tenant.as_str()).await?;
            }
        }
    }
    let (ratio, interval) = paired(&library, &floor);
    let per = |v: &Vec<f64>| fmt_secs(median(&mut v.clone()));
    ctx.out.row(
        Row::new(
            format!(
                "29e drop a row-level tenant of {rows} rows: Tenants::drop, batches of {}",
                tenancy::DROP_BATCH_ROWS
            ),
            per(&library),
            format!(
                "{} (one DELETE … WHERE tenant_id = $1 of the same rows)",
                per(&floor)
            ),
            Some(ratio),
            Target::None,
        )
        .interval(interval),
    );
    ctx.out.note(format!(
        "29e: {rounds} round(s), the two sides alternating which goes first; a neighbour of {} \
         rows in the container; the ratio is the median of the per-round ratios of the times",
        rows / 10
    ));
    Ok(())
}

/// A registry of its own whose function `create_in` is dropped (as one made by an older
/// version would lack it), so that its handle's `create_in` goes a step at a time (MySQL's and
/// SQLite's way, and PostgreSQL's before the function): the handle, the registry, and a
/// container in it.
async fn stepwise(ctx: &mut Ctx) -> BoxResult<(Tenants, String, Tenant)> {
    let registry = ctx.registry_name();
    let tenants = handle(&ctx.pool, &registry, ROW_GUARDS_DDL)?;
    let container = container(ctx, &tenants, "rlsb").await?;
    without_create_in(ctx, &tenants, &registry, &container).await?;
    Ok((tenants, registry, container))
}

/// Drops the function `create_in` of `registry`, which `tenants` (a handle on it that made
/// sure of the registry already) then finds missing in a first, untimed, create_in in
/// `container`: its create_ins go a step at a time from then on.
async fn without_create_in(
    ctx: &mut Ctx,
    tenants: &Tenants,
    registry: &str,
    container: &Tenant,
) -> BoxResult<()> {
    let sql = format!(
        "DROP FUNCTION {}.create_in(text, text, text)",
        quote_ident(registry)
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&ctx.pool).await?;
    let warm = ctx.names("rlsw", 1).remove(0);
    tenants.create_in(&warm, container).await?;
    tenants.drop(&warm).await?;
    Ok(())
}

/// What a create_in costs, and at least, on this pool: medians over blocks of each in turn, of
/// `create_in`, of `create_in` a step at a time ([`stepwise`]), of a durable one-row `INSERT`
/// (what create_in writes, committed as it commits) and of a bare `SELECT 1`, each one call
/// through the same pool; and round trips per call counted by a relay between a pool and the
/// server. A text for the note.
async fn create_floor(
    ctx: &mut Ctx,
    (tenants, registry): (&Tenants, &str),
    container: &Tenant,
) -> BoxResult<String> {
    let (blocks, per_block) = if ctx.quick { (4, 5) } else { (24, 50) };
    let (slow, slow_registry, slow_box) = stepwise(ctx).await?;
    let table = format!("{}.create_floor", container.quoted());
    let sql = format!("CREATE TABLE {table} (name text PRIMARY KEY, container text NOT NULL)");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&ctx.pool).await?;
    let insert = format!("INSERT INTO {table} (name, container) VALUES ($1, $2)");
    let mut secs: [Vec<f64>; 4] = Default::default();
    for block in 0..blocks {
        for k in 0..secs.len() {
            let which = (k + block) % secs.len();
            let names = ctx.names("rlfl", per_block);
            let start = Instant::now();
            for name in &names {
                match which {
                    0 => {
                        tenants.create_in(name, container).await?;
                    }
                    1 => {
                        slow.create_in(name, &slow_box).await?;
                    }
                    2 => {
                        sqlx::query(AssertSqlSafe(insert.as_str()))
                            .bind(name)
                            .bind(container.as_str())
                            .execute(&ctx.pool)
                            .await?;
                    }
                    _ => {
                        sqlx::query("SELECT 1").execute(&ctx.pool).await?;
                    }
                }
            }
            secs[which].push(start.elapsed().as_secs_f64() / per_block as f64);
            for name in &names {
                match which {
                    0 => drop(tenants.drop(name).await?),
                    1 => drop(slow.drop(name).await?),
                    _ => {}
                }
            }
        }
    }
    let sql = format!("DROP TABLE {table}");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&ctx.pool).await?;
    let [placed, stepped, inserted, selected] = secs.map(|mut v| fmt_op(median(&mut v)));
    let trips = round_trips(
        ctx,
        [
            (tenants, registry, container),
            (&slow, &slow_registry, &slow_box),
        ],
    )
    .await?;
    slow.drop(slow_box.as_str()).await?;
    ctx.cleanup
        .drop_schemas(&ctx.pool, &[slow_box.as_str().to_owned(), slow_registry])
        .await?;
    Ok(format!(
        "per call, in {blocks} blocks of {per_block} of each in turn on the same pool: \
         create_in {placed}, create_in a step at a time (a registry without its function \
         create_in, as MySQL and SQLite go) {stepped}, a durable one-row INSERT {inserted}, a \
         bare SELECT 1 {selected} (sqlx's pool pings a connection when it is taken and when it \
         is given back); {trips}"
    ))
}

/// Round trips per `create_in` of each `(handle, registry, container)` (the second going a
/// step at a time), and per bare `SELECT 1`, through a pool behind a
/// [`Relay`](crate::tiers::Relay): a text for the note.
async fn round_trips(ctx: &mut Ctx, handles: [(&Tenants, &str, &Tenant); 2]) -> BoxResult<String> {
    let host = ctx.options.get_host().to_owned();
    if host.starts_with('/') {
        return Ok("round trips not counted (the server is reached by a Unix socket)".into());
    }
    let relay = crate::tiers::Relay::start(host, ctx.options.get_port()).await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(relay.options(&ctx.options))
        .await?;
    let calls = 50;
    let mut per = Vec::new();
    for (i, (tenants, registry, container)) in handles.into_iter().enumerate() {
        // Its first create_in makes sure of the registry, which puts the function back.
        let relayed = handle(&pool, registry, ROW_GUARDS_DDL)?;
        let names = ctx.names("rlrt", calls + 1);
        relayed.create_in(&names[calls], container).await?;
        if i == 1 {
            without_create_in(ctx, &relayed, registry, container).await?;
        }
        let before = relay.turns();
        for name in &names[..calls] {
            relayed.create_in(name, container).await?;
        }
        per.push((relay.turns() - before) as f64 / calls as f64);
        for name in &names {
            tenants.drop(name).await?;
        }
    }
    let before = relay.turns();
    for _ in 0..calls {
        sqlx::query("SELECT 1").execute(&pool).await?;
    }
    let bare = (relay.turns() - before) as f64 / calls as f64;
    pool.close().await;
    Ok(format!(
        "round trips counted by a relay between a pool and the server: {:.2} per create_in, \
         {:.2} per create_in a step at a time, {bare:.2} per bare SELECT 1 through the same pool",
        per[0], per[1]
    ))
}

/// Rows per row-level tenant in the lookups' container.
const LOOKUP_ROWS: i64 = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    Library,
    Hand,
}

/// The id of row `j` (0-based) of tenant `t`: the insert writes ids so.
fn lookup_id(t: usize, j: usize) -> i64 {
    t as i64 * LOOKUP_ROWS + j as i64 + 1
}

/// `total` lookups by `POOL_SIZE` tasks over the first `n` tenants; lookups per second.
async fn rate(
    pool: &PgPool,
    strategy: Strategy,
    tenants: &Arc<Vec<Tenant>>,
    sql: &'static str,
    n: usize,
    total: usize,
    seed: u64,
) -> BoxResult<f64> {
    let tasks = POOL_SIZE as usize;
    let per_task = total / tasks;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let pool = pool.clone();
        let tenants = Arc::clone(tenants);
        set.spawn(async move {
            let mut rng = Rng::new(seed ^ (task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..per_task {
                let t = rng.below(n);
                let id = lookup_id(t, rng.below(LOOKUP_ROWS as usize));
                match strategy {
                    Strategy::Library => {
                        let found = RowGuard::find(&pool, &tenants[t], id).await?;
                        assert!(found.is_some());
                    }
                    Strategy::Hand => {
                        let found: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(sql))
                            .bind(tenants[t].as_str())
                            .bind(id)
                            .fetch_optional(&pool)
                            .await?;
                        assert!(found.is_some());
                    }
                }
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok((per_task * tasks) as f64 / start.elapsed().as_secs_f64())
}

/// Part (b): point lookups over 1 / 1,000 / 100,000 row-level tenants of one container.
async fn lookups(ctx: &mut Ctx, container: &Tenant) -> BoxResult<()> {
    let sizes: [usize; 3] = if ctx.quick {
        [1, 10, 100]
    } else {
        [1, 1_000, 100_000]
    };
    let (total, reps) = if ctx.quick { (400, 1) } else { (2_000, 25) };
    let max = sizes[2];
    let c = container.quoted();
    let started = Instant::now();
    // Every tenant's first row, then every tenant's second, …: one tenant's rows are spread
    // over the table as rows written over time would be; ids say which row is whose.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {c}.guards (id, tenant_id, name, position) \
         SELECT t * $2 + j + 1, 'rl_' || t, 'guard ' || j, \
                CASE WHEN j % 5 = 0 THEN 'Captain' ELSE 'Guard' END \
         FROM generate_series(0, $2 - 1) j, generate_series(0, $1 - 1) t"
    )))
    .bind(max as i64)
    .bind(LOOKUP_ROWS)
    .execute(&ctx.pool)
    .await?;
    vacuum(ctx, container).await?;
    let inserted = started.elapsed().as_secs_f64();
    let tenants: Arc<Vec<Tenant>> = Arc::new(
        (0..max)
            .map(|t| Tenant::new(other(t)).map(|x| x.rows_in(container)))
            .collect::<Result<_, _>>()?,
    );
    let sql = checked(
        "find",
        sql::select_by_pk::<RowGuard>(&tenants[0]),
        r#"WHERE "tenant_id" = $1 AND "id" = $2"#,
    )?;
    // The last tenant's last row is there, and not another tenant's.
    let last = lookup_id(max - 1, LOOKUP_ROWS as usize - 1);
    if RowGuard::find(&ctx.pool, &tenants[max - 1], last)
        .await?
        .is_none()
        || RowGuard::find(&ctx.pool, &tenants[0], last)
            .await?
            .is_some()
    {
        return Err("the lookups' rows are not where their ids say".into());
    }
    let layout = layout(ctx, container, sql).await?;
    println!(
        "  container {}: {} row-level tenants × {LOOKUP_ROWS} rows, inserted and vacuumed in \
         {inserted:.1} s; {total} lookups per measurement by {POOL_SIZE} tasks, {reps} \
         repetitions",
        container.as_str(),
        thousands(max as u64)
    );
    // A pool of its own, as sqlx's defaults make it (the statement is one text for every
    // row-level tenant of the container: one cache entry per connection).
    let pool = &PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_with(ctx.options.clone())
        .await?;
    let strategies = [Strategy::Library, Strategy::Hand];
    // Warm: every connection settles on the statement's generic plan (6 runs each), and the
    // largest cell reads a good part of the table once, untimed.
    for &s in &strategies {
        rate(pool, s, &tenants, sql, sizes[0], 8 * POOL_SIZE as usize, 1).await?;
        rate(pool, s, &tenants, sql, max, 10 * total, 2).await?;
    }
    // rates[cell][strategy]: the sizes, then 1 tenant again (the A/A control).
    let mut rates = vec![vec![Vec::new(); strategies.len()]; sizes.len() + 1];
    for rep in 0..reps {
        for k in 0..strategies.len() {
            let vi = (k + rep) % strategies.len();
            for j in 0..=sizes.len() {
                let si = (j + rep) % (sizes.len() + 1);
                let n = sizes[si % sizes.len()];
                let seed = 1000 + (si * 10 + rep) as u64;
                let r = rate(pool, strategies[vi], &tenants, sql, n, total, seed).await?;
                rates[si][vi].push(r);
            }
        }
    }
    for (vi, s) in strategies.iter().enumerate() {
        let (code, label, target) = match s {
            Strategy::Library => ("29b", "RowGuard::find", Target::AtLeast(0.90)),
            Strategy::Hand => ("29c", "hand-written sqlx, same SQL", Target::None),
        };
        let one = median(&mut rates[0][vi].clone());
        let aa = paired(&rates[sizes.len()][vi], &rates[0][vi]).0;
        for (si, &n) in sizes.iter().enumerate().skip(1) {
            let (ratio, interval) = paired(&rates[si][vi], &rates[0][vi]);
            ctx.out.row(
                Row::new(
                    format!(
                        "{code} lookups over {} row-level tenants in one container: {label}, \
                         default pool",
                        thousands(n as u64)
                    ),
                    fmt_rate(median(&mut rates[si][vi].clone())),
                    format!("{} (the same pool, 1 tenant)", fmt_rate(one)),
                    Some(ratio),
                    target,
                )
                .interval(interval)
                .aa(aa),
            );
        }
    }
    pool.close().await;
    ctx.out.note(layout);
    Ok(())
}

/// The lookups' container as the server holds it: rows, sizes against `shared_buffers`, and
/// the generic plan of the find (what a prepared statement runs after five executions).
async fn layout(ctx: &Ctx, container: &Tenant, find: &str) -> BoxResult<String> {
    let table = format!("{}.guards", container.quoted());
    let (rows, heap, indexes, buffers): (i64, String, String, String) =
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM {table}), \
                    pg_size_pretty(pg_table_size('{table}')), \
                    pg_size_pretty(pg_indexes_size('{table}')), \
                    current_setting('shared_buffers')"
        )))
        .fetch_one(&ctx.pool)
        .await?;
    let mut conn = ctx.pool.acquire().await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE bench_find (text, bigint) AS {find}"
    )))
    .execute(&mut *conn)
    .await?;
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN (COSTS OFF) EXECUTE bench_find('rl_1', 12)")
            .fetch_all(&mut *conn)
            .await?;
    sqlx::raw_sql("DEALLOCATE bench_find; RESET plan_cache_mode")
        .execute(&mut *conn)
        .await?;
    let plan: Vec<&str> = plan.iter().map(|l| l.trim()).collect();
    Ok(format!(
        "the lookups' container: {} rows, table {heap}, indexes {indexes} (primary key on id, \
         (tenant_id, id)), shared_buffers {buffers}; the find's generic plan: {}",
        thousands(rows as u64),
        plan.join("; ")
    ))
}
