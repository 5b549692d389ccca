//! Workloads 21-24: the model API of issue 15 against the same statements hand-written with
//! plain sqlx, on PostgreSQL, on one connection, with the method of `method.rs`:
//!
//! - 21 `join`: `Query::join` (a semi-join, `EXISTS`) of guards at sites in one city, per
//!   tenant, vs the same SQL text with `sqlx::query_as`;
//! - 22 `preload`: `Relation::preload` of the sites of 1,000 guards (belongs to), of the guards
//!   of 100 sites (has many), and of a varying number of guards, vs one hand-written
//!   `= ANY($1)` query and a `HashMap`;
//! - 23 `stream`: `Query::fetch` of 1,000,000 rows vs sqlx's `query_as(..).fetch(..)`, and the
//!   peak RSS of each (and of `fetch_all`) at two sizes, each in a child process;
//! - 24 `upsert`: `upsert_many` of 1,000 rows, half of them conflicting, vs the same
//!   `INSERT … ON CONFLICT … DO UPDATE … RETURNING` with `sqlx::query_as`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::types::time::OffsetDateTime;
use sqlx::AssertSqlSafe;
use tenancy::internals as sql;
use tenancy::{OnConflict, Record, Relation, Tenant, TenantModel};

use crate::common::*;
use crate::method::{calibrated, compare, Op, Plan, Side};
use crate::report::{Row, Target};

/// A site of a tenant.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "sites")]
pub struct Site {
    #[tenancy(id, generated)]
    pub id: i64,
    pub name: String,
    pub city: String,
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SiteRow {
    pub id: i64,
    #[allow(dead_code)]
    pub name: String,
    #[allow(dead_code)]
    pub city: String,
}

/// A guard posted at a site (the tests' `Guard` with a `site_id`).
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards")]
pub struct Posted {
    #[tenancy(id, generated)]
    pub id: i64,
    pub name: String,
    pub position: String,
    pub age: Option<i32>,
    pub site_id: i64,
    #[tenancy(generated)]
    pub inserted_at: OffsetDateTime,
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct PostedRow {
    #[allow(dead_code)]
    pub id: i64,
    #[allow(dead_code)]
    pub name: String,
    #[allow(dead_code)]
    pub position: String,
    #[allow(dead_code)]
    pub age: Option<i32>,
    pub site_id: i64,
    #[allow(dead_code)]
    pub inserted_at: OffsetDateTime,
}

/// A badge with a unique code (the upsert's conflict target).
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "badges")]
pub struct Badge {
    #[tenancy(id, generated)]
    pub id: i64,
    pub code: String,
    pub holder: String,
    pub level: i32,
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct BadgeRow {
    #[allow(dead_code)]
    pub id: i64,
    #[allow(dead_code)]
    pub code: String,
    #[allow(dead_code)]
    pub holder: String,
    #[allow(dead_code)]
    pub level: i32,
}

const CITIES: [&str; 10] = [
    "Paris", "Lyon", "Lille", "Nantes", "Nice", "Metz", "Brest", "Dijon", "Tours", "Reims",
];

/// `n` fresh schemas, each with `sites` sites (city `CITIES[i % 10]`), `guards` guards (guard
/// `i` at site `1 + i % sites`, every fifth a captain) and an empty `badges` table; analyzed.
async fn model_tenants(
    ctx: &mut Ctx,
    prefix: &str,
    n: usize,
    sites: i64,
    guards: i64,
) -> BoxResult<Vec<String>> {
    let names = ctx.names(prefix, n);
    let cities: Vec<String> = CITIES.iter().map(|c| format!("'{c}'")).collect();
    for name in &names {
        let s = quote_ident(name);
        let ddl = format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.sites (id bigserial PRIMARY KEY, name text NOT NULL, city text NOT NULL);
             CREATE TABLE {s}.guards (id bigserial PRIMARY KEY, name text NOT NULL,
                 position text NOT NULL, age integer, site_id bigint NOT NULL,
                 inserted_at timestamptz NOT NULL DEFAULT now());
             CREATE INDEX ON {s}.guards (site_id);
             CREATE TABLE {s}.badges (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE,
                 holder text NOT NULL, level integer NOT NULL);
             INSERT INTO {s}.sites (name, city)
                 SELECT 'site ' || i, (ARRAY[{cities}])[1 + (i - 1) % 10]
                 FROM generate_series(1, {sites}) i;
             INSERT INTO {s}.guards (name, position, age, site_id)
                 SELECT 'guard ' || i, CASE WHEN i % 5 = 0 THEN 'Captain' ELSE 'Guard' END,
                        20 + i % 40, 1 + i % {sites}
                 FROM generate_series(1, {guards}) i;
             ANALYZE {s}.sites; ANALYZE {s}.guards; ANALYZE {s}.badges;",
            cities = cities.join(", ")
        );
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&ctx.pool).await?;
    }
    Ok(names)
}

fn site_of() -> Relation<Posted, Site, i64, i64> {
    Relation::new(Posted::SITE_ID, Site::ID)
}

fn guards_of() -> Relation<Site, Posted, i64, i64> {
    Relation::new(Site::ID, Posted::SITE_ID)
}

/// Seconds of recorded operations per comparison (three sides).
fn budget(quick: bool) -> Duration {
    Duration::from_secs_f64(if quick { 0.1 } else { 6.0 })
}

// ---------------------------------------------------------------------------------------------
// 21 join

struct Join<'a> {
    conn: &'a mut PgConnection,
    tenants: &'a [Tenant],
    /// The library's SQL text of each tenant.
    sqls: Vec<&'static str>,
    expected: usize,
}

impl Op for Join<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let t = i % self.tenants.len();
        match side {
            Side::Library => {
                let rows = Posted::query(&self.tenants[t])
                    .join(site_of(), Site::CITY.eq("Paris"))
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), self.expected);
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let rows: Vec<PostedRow> = sqlx::query_as(AssertSqlSafe(self.sqls[t]))
                    .bind("Paris")
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), self.expected);
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

/// Informational: the library's `EXISTS` text (hand-written) vs an `INNER JOIN` written by hand
/// (the same rows, as `sites.id` is unique).
struct ExistsVsInner<'a> {
    conn: &'a mut PgConnection,
    exists: Vec<&'static str>,
    inner: Vec<&'static str>,
    expected: usize,
}

impl Op for ExistsVsInner<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let t = i % self.exists.len();
        let sql = match side {
            Side::Library => self.exists[t],
            Side::Hand | Side::Again => self.inner[t],
        };
        let rows: Vec<PostedRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind("Paris")
            .fetch_all(&mut *self.conn)
            .await?;
        assert_eq!(rows.len(), self.expected);
        std::hint::black_box(rows);
        Ok(())
    }
}

pub async fn join(ctx: &mut Ctx) -> BoxResult<()> {
    let (n, sites, guards) = if ctx.quick {
        (2, 20, 200)
    } else {
        (10, 100, 3000)
    };
    let names = model_tenants(ctx, "jn", n, sites, guards).await?;
    let result = measure_join(ctx, &names, sites, guards).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure_join(ctx: &mut Ctx, names: &[String], sites: i64, guards: i64) -> BoxResult<()> {
    let mut conn = ctx.pool.acquire().await?;
    let conn = &mut *conn;
    let tenants: Vec<Tenant> = names.iter().map(Tenant::new).collect::<Result<_, _>>()?;
    let sqls: Vec<&'static str> = tenants
        .iter()
        .map(|t| {
            leak(
                Posted::query(t)
                    .join(site_of(), Site::CITY.eq("Paris"))
                    .to_sql(),
            )
        })
        .collect();
    let inner: Vec<&'static str> = tenants
        .iter()
        .map(|t| {
            let s = t.quoted();
            leak(format!(
                "SELECT g.\"id\", g.\"name\", g.\"position\", g.\"age\", g.\"site_id\", \
                 g.\"inserted_at\" FROM {s}.\"guards\" AS g JOIN {s}.\"sites\" AS s \
                 ON s.\"id\" = g.\"site_id\" WHERE s.\"city\" = $1"
            ))
        })
        .collect();
    // Sites 1, 11, 21, … are in Paris; guard i is at site 1 + i % sites.
    let expected = (1..=guards).filter(|i| (i % sites) % 10 == 0).count();
    println!("  SQL: {}", sqls[0]);
    println!(
        "  {} tenants x {sites} sites, {guards} guards; {expected} guards at sites in Paris per \
         tenant; tenants in turn, one connection",
        tenants.len()
    );
    let mut op = Join {
        conn: &mut *conn,
        tenants: &tenants,
        sqls: sqls.clone(),
        expected,
    };
    let t = calibrated(&mut op, budget(ctx.quick), ctx.quick).await?;
    let mut shapes = ExistsVsInner {
        conn: &mut *conn,
        exists: sqls,
        inner,
        expected,
    };
    let shape = calibrated(&mut shapes, budget(ctx.quick), ctx.quick).await?;
    ctx.out.row(t.row(
        format!("21 join: {expected} guards at Paris sites (Query::join, EXISTS)"),
        "hand-written sqlx, same SQL, same connection",
        Target::AtLeast(0.98),
    ));
    ctx.out.row(shape.row(
        "21b the same rows, both hand-written: EXISTS vs INNER JOIN",
        "INNER JOIN",
        Target::None,
    ));
    ctx.out.note(format!(
        "21: {}; 21b: {}",
        t.plan.describe(),
        shape.plan.describe()
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 22 preload

/// The distinct keys among `keys`, as the hand-written preloads collect them.
fn distinct_keys(keys: impl Iterator<Item = i64>) -> Vec<i64> {
    keys.collect::<HashSet<i64>>().into_iter().collect()
}

/// Which preload an operation runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The sites of `n` guards (a belongs-to relation), consecutive guards from a rotating start.
    SitesOfGuards { n: usize },
    /// The same with `n` varying from `min` to `max` with the operation.
    SitesOfGuardsVarying { min: usize, max: usize },
    /// The guards of `n` sites (a has-many relation).
    GuardsOfSites { n: usize },
}

struct Parents {
    tenant: Tenant,
    guards: Vec<Record<Posted>>,
    guard_rows: Vec<PostedRow>,
    sites: Vec<Record<Site>>,
    site_rows: Vec<SiteRow>,
    /// Hand-written SQL: `SELECT … FROM "t"."sites" WHERE "id" = ANY($1)`.
    sites_any: &'static str,
    /// `SELECT … FROM "t"."guards" WHERE "site_id" = ANY($1)`.
    guards_any: &'static str,
}

struct Preload<'a> {
    conn: &'a mut PgConnection,
    parents: &'a [Parents],
    shape: Shape,
}

impl Preload<'_> {
    /// The window of parents of operation `i`: tenant, start, length.
    fn window(&self, i: usize, total: usize) -> (usize, usize, usize) {
        let t = i % self.parents.len();
        let n = match self.shape {
            Shape::SitesOfGuards { n } | Shape::GuardsOfSites { n } => n,
            // The same length for every side (operation `i` runs on each).
            Shape::SitesOfGuardsVarying { min, max } => {
                min + (i.wrapping_mul(7919) % (max - min + 1))
            }
        };
        let start = (i.wrapping_mul(131)) % (total - n + 1);
        (t, start, n)
    }
}

impl Op for Preload<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        match self.shape {
            Shape::SitesOfGuards { .. } | Shape::SitesOfGuardsVarying { .. } => {
                let total = self.parents[0].guards.len();
                let (t, start, n) = self.window(i, total);
                let p = &self.parents[t];
                match side {
                    Side::Library => {
                        let records = &p.guards[start..start + n];
                        let sites = site_of().preload(&mut *self.conn, records).await?;
                        let mut found = 0;
                        for g in records {
                            found += usize::from(std::hint::black_box(sites.one(g)).is_some());
                        }
                        assert_eq!(found, n);
                    }
                    Side::Hand | Side::Again => {
                        let rows = &p.guard_rows[start..start + n];
                        let keys = distinct_keys(rows.iter().map(|g| g.site_id));
                        let sites: Vec<SiteRow> = sqlx::query_as(AssertSqlSafe(p.sites_any))
                            .bind(keys)
                            .fetch_all(&mut *self.conn)
                            .await?;
                        let by_id: HashMap<i64, SiteRow> =
                            sites.into_iter().map(|s| (s.id, s)).collect();
                        let mut found = 0;
                        for g in rows {
                            found +=
                                usize::from(std::hint::black_box(by_id.get(&g.site_id)).is_some());
                        }
                        assert_eq!(found, n);
                    }
                }
            }
            Shape::GuardsOfSites { .. } => {
                let total = self.parents[0].sites.len();
                let (t, start, n) = self.window(i, total);
                let p = &self.parents[t];
                let per_site = p.guards.len() / total;
                match side {
                    Side::Library => {
                        let records = &p.sites[start..start + n];
                        let guards = guards_of().preload(&mut *self.conn, records).await?;
                        let mut found = 0;
                        for s in records {
                            found += std::hint::black_box(guards.many(s)).len();
                        }
                        assert_eq!(found, n * per_site);
                    }
                    Side::Hand | Side::Again => {
                        let rows = &p.site_rows[start..start + n];
                        let keys = distinct_keys(rows.iter().map(|s| s.id));
                        let guards: Vec<PostedRow> = sqlx::query_as(AssertSqlSafe(p.guards_any))
                            .bind(keys)
                            .fetch_all(&mut *self.conn)
                            .await?;
                        let mut by_site: HashMap<i64, Vec<PostedRow>> = HashMap::new();
                        for g in guards {
                            by_site.entry(g.site_id).or_default().push(g);
                        }
                        let mut found = 0;
                        for s in rows {
                            found += std::hint::black_box(by_site.get(&s.id)).map_or(0, Vec::len);
                        }
                        assert_eq!(found, n * per_site);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Informational, both sides hand-written: the sites of `n` guards with the library's
/// `IN ($1, …, $n)` text (one bound value per key) vs `= ANY($1)` (one array).
struct InVsAny<'a> {
    conn: &'a mut PgConnection,
    parents: &'a [Parents],
    /// The library's text for `n` keys, per tenant.
    in_sqls: Vec<&'static str>,
    n: usize,
}

impl Op for InVsAny<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let t = i % self.parents.len();
        let p = &self.parents[t];
        let start = (i.wrapping_mul(131)) % (p.guard_rows.len() - self.n + 1);
        let rows = &p.guard_rows[start..start + self.n];
        let keys = distinct_keys(rows.iter().map(|g| g.site_id));
        assert_eq!(keys.len(), self.n);
        let sites: Vec<SiteRow> = match side {
            Side::Library => {
                let mut q = sqlx::query_as(AssertSqlSafe(self.in_sqls[t]));
                for k in keys {
                    q = q.bind(k);
                }
                q.fetch_all(&mut *self.conn).await?
            }
            Side::Hand | Side::Again => {
                sqlx::query_as(AssertSqlSafe(p.sites_any))
                    .bind(keys)
                    .fetch_all(&mut *self.conn)
                    .await?
            }
        };
        let by_id: HashMap<i64, SiteRow> = sites.into_iter().map(|s| (s.id, s)).collect();
        assert_eq!(by_id.len(), self.n);
        std::hint::black_box(by_id);
        Ok(())
    }
}

/// How many prepared statements `conn` holds (`pg_prepared_statements`).
async fn prepared_statements(conn: &mut PgConnection) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements")
        .fetch_one(conn)
        .await
        .ok()
}

pub async fn preload(ctx: &mut Ctx) -> BoxResult<()> {
    let (n, sites, guards) = if ctx.quick {
        (2, 200, 800)
    } else {
        (4, 1000, 4000)
    };
    let names = model_tenants(ctx, "pl", n, sites, guards).await?;
    let result = measure_preload(ctx, &names).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure_preload(ctx: &mut Ctx, names: &[String]) -> BoxResult<()> {
    let pool = ctx.pool.clone();
    let mut parents = Vec::new();
    for name in names {
        let tenant = Tenant::new(name)?;
        let s = tenant.quoted();
        let guards = Posted::query(&tenant)
            .order_by(Posted::ID.asc())
            .fetch_all(&pool)
            .await?;
        let guard_rows: Vec<PostedRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT * FROM {s}.guards ORDER BY id"
        )))
        .fetch_all(&pool)
        .await?;
        let sites = Site::query(&tenant)
            .order_by(Site::ID.asc())
            .fetch_all(&pool)
            .await?;
        let site_rows: Vec<SiteRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT * FROM {s}.sites ORDER BY id"
        )))
        .fetch_all(&pool)
        .await?;
        parents.push(Parents {
            sites_any: leak(format!(
                "SELECT \"id\", \"name\", \"city\" FROM {s}.\"sites\" WHERE \"id\" = ANY($1)"
            )),
            guards_any: leak(format!(
                "SELECT \"id\", \"name\", \"position\", \"age\", \"site_id\", \"inserted_at\" \
                 FROM {s}.\"guards\" WHERE \"site_id\" = ANY($1)"
            )),
            tenant,
            guards,
            guard_rows,
            sites,
            site_rows,
        });
    }
    let (big, small) = if ctx.quick { (200, 20) } else { (1000, 100) };
    println!(
        "  {} tenants x {} sites, {} guards; tenants in turn, parents a rotating window of \
         consecutive records, one connection",
        parents.len(),
        parents[0].sites.len(),
        parents[0].guards.len()
    );
    println!(
        "  library SQL for 3 keys: {}",
        Site::query(&parents[0].tenant)
            .filter(Site::ID.is_in([1_i64, 2, 3]))
            .to_sql()
    );
    println!("  hand-written SQL: {}", parents[0].sites_any);
    let mut conn = pool.acquire().await?;
    let conn = &mut *conn;
    let (quick, budget) = (ctx.quick, budget(ctx.quick));
    let shapes = [
        (
            Shape::SitesOfGuards { n: big },
            format!("22 preload: the sites of {big} guards (belongs to; {big} keys)"),
        ),
        (
            Shape::GuardsOfSites { n: small },
            format!(
                "22b preload: the guards of {small} sites (has many; {} rows)",
                small * parents[0].guards.len() / parents[0].sites.len()
            ),
        ),
        // A number of keys that changes from call to call: `IN ($1, …, $n)` is a new
        // statement text for every n.
        (
            Shape::SitesOfGuardsVarying {
                min: small,
                max: big,
            },
            format!("22c preload: the sites of {small}-{big} guards (count varies per call)"),
        ),
    ];
    let mut plans = Vec::new();
    for (shape, label) in shapes {
        let mut op = Preload {
            conn: &mut *conn,
            parents: &parents,
            shape,
        };
        let t = calibrated(&mut op, budget, quick).await?;
        ctx.out.row(t.row(
            label,
            "hand-written sqlx, = ANY($1) + HashMap, same connection",
            Target::AtLeast(0.98),
        ));
        plans.push(t.plan.describe());
    }
    if let Some(n) = prepared_statements(&mut *conn).await {
        ctx.out.note(format!(
            "22c: the connection holds {n} prepared statements afterwards (sqlx's cache keeps \
             100 per connection; every distinct key count is a new IN (…) text)"
        ));
    }
    let mut shape = InVsAny {
        conn: &mut *conn,
        parents: &parents,
        in_sqls: parents
            .iter()
            .map(|p| {
                leak(
                    Site::query(&p.tenant)
                        .filter(Site::ID.is_in(1..=big as i64))
                        .to_sql(),
                )
            })
            .collect(),
        n: big,
    };
    let t = calibrated(&mut shape, budget, quick).await?;
    ctx.out.row(t.row(
        format!(
            "22d both hand-written, {big} keys: the library's IN ($1, …, ${big}) text vs = ANY($1)"
        ),
        "= ANY($1), one array",
        Target::None,
    ));
    plans.push(t.plan.describe());
    ctx.out
        .note(format!("22, 22b, 22c, 22d: {}", plans.join("; ")));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 23 stream

/// Streams (or fetches) every row of `tenant`'s guards, `limit` at most, on `pool` or, for the
/// `-conn` kinds, on `conn`; returns the count.
async fn consume(
    pool: &PgPool,
    conn: &mut PgConnection,
    tenant: &Tenant,
    how: &str,
    limit: i64,
) -> BoxResult<usize> {
    let query = Posted::query(tenant).limit(limit as u64);
    let sql = query.to_sql();
    let mut n = 0;
    match how {
        "library" => {
            let mut rows = query.fetch(pool);
            while let Some(record) = rows.try_next().await? {
                std::hint::black_box(&record);
                n += 1;
            }
        }
        "sqlx" => {
            let mut rows = sqlx::query_as::<_, PostedRow>(AssertSqlSafe(sql))
                .bind(limit)
                .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                std::hint::black_box(&row);
                n += 1;
            }
        }
        "library-conn" => {
            let mut rows = query.fetch(&mut *conn);
            while let Some(record) = rows.try_next().await? {
                std::hint::black_box(&record);
                n += 1;
            }
        }
        "sqlx-conn" => {
            let mut rows = sqlx::query_as::<_, PostedRow>(AssertSqlSafe(sql))
                .bind(limit)
                .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                std::hint::black_box(&row);
                n += 1;
            }
        }
        "library-all" => {
            let rows = query.fetch_all(pool).await?;
            n = std::hint::black_box(rows).len();
        }
        "sqlx-all" => {
            let rows: Vec<PostedRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            n = std::hint::black_box(rows).len();
        }
        other => return Err(format!("unknown side {other}").into()),
    }
    Ok(n)
}

struct Stream<'a> {
    pool: &'a PgPool,
    conn: &'a mut PgConnection,
    tenant: &'a Tenant,
    rows: i64,
    /// The two sides: `library` vs `sqlx` (on the pool), or `library-conn` vs `sqlx-conn` (on
    /// one connection taken first).
    sides: [&'static str; 2],
}

impl Op for Stream<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        let how = match side {
            Side::Library => self.sides[0],
            Side::Hand | Side::Again => self.sides[1],
        };
        let n = consume(self.pool, self.conn, self.tenant, how, self.rows).await?;
        assert_eq!(n as i64, self.rows);
        Ok(())
    }
}

/// The child of workload 23: `--child-stream <url> <database> <tenant> <how> <rows>`. Warms the
/// connection with a 1,000-row stream of the same kind, then consumes `rows` rows; prints
/// `CHILD before_kb=… peak_kb=… secs=… rows=…` (`VmHWM` before and after).
pub fn child_main(args: &[String]) -> i32 {
    let [url, database, tenant, how, rows] = args else {
        eprintln!("usage: --child-stream <url> <database> <tenant> <how> <rows>");
        return 2;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result: BoxResult<()> = rt.block_on(async {
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()?
            .database(database);
        let pool = pool_with(&options, 2).await?;
        let mut conn = pool.acquire().await?;
        let tenant = Tenant::new(tenant)?;
        let limit: i64 = rows.parse()?;
        consume(&pool, &mut conn, &tenant, how, 1000).await?;
        let before = vm_hwm_kb();
        let start = Instant::now();
        let n = consume(&pool, &mut conn, &tenant, how, limit).await?;
        let secs = start.elapsed().as_secs_f64();
        let peak = vm_hwm_kb();
        println!("CHILD before_kb={before} peak_kb={peak} secs={secs:.3} rows={n}");
        drop(conn);
        pool.close().await;
        Ok(())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child: {e}");
            1
        }
    }
}

/// Runs the child; (peak growth in MB, seconds).
async fn child(ctx: &Ctx, tenant: &str, how: &str, rows: i64) -> BoxResult<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let args = [
        "--child-stream".to_owned(),
        ctx.url.clone(),
        ctx.database.clone(),
        tenant.to_owned(),
        how.to_owned(),
        rows.to_string(),
    ];
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new(exe).args(args).output())
            .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("CHILD "))
        .ok_or_else(|| {
            format!(
                "child {how} {rows} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    if field("rows") as i64 != rows {
        return Err(format!("child {how} read {} rows, not {rows}", field("rows")).into());
    }
    Ok(((field("peak_kb") - field("before_kb")) / 1e3, field("secs")))
}

pub async fn stream(ctx: &mut Ctx) -> BoxResult<()> {
    let rows: i64 = if ctx.quick { 20_000 } else { 1_000_000 };
    let started = Instant::now();
    let names = model_tenants(ctx, "st", 1, 100, rows).await?;
    println!(
        "  (set up {rows} rows in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let result = measure_stream(ctx, &names[0], rows).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure_stream(ctx: &mut Ctx, name: &str, rows: i64) -> BoxResult<()> {
    let tenant = Tenant::new(name)?;
    let pool = ctx.pool.clone();
    let mut conn = pool.acquire().await?;
    println!(
        "  SQL: {}",
        Posted::query(&tenant).limit(rows as u64).to_sql()
    );
    // Blocks of one stream; 6 triples (each stream of a million rows takes about a second).
    let plan = Plan::fixed(1, 1, if ctx.quick { 3 } else { 6 });
    println!("  {}", plan.describe());
    for (code, sides, what) in [
        (
            "23",
            ["library", "sqlx"],
            "Query::fetch(&pool) vs sqlx query_as(..).fetch(&pool), same SQL",
        ),
        (
            "23b",
            ["library-conn", "sqlx-conn"],
            "Query::fetch(&mut *conn) vs sqlx query_as(..).fetch(&mut *conn), one connection taken first",
        ),
    ] {
        let mut op = Stream {
            pool: &pool,
            conn: &mut conn,
            tenant: &tenant,
            rows,
            sides,
        };
        let t = compare(&mut op, plan).await?;
        let (label, baseline) = what.split_once(" vs ").unwrap_or((what, what));
        ctx.out.row(t.row(
            format!("{code} stream {} rows: {label}", thousands(rows as u64)),
            baseline,
            Target::AtLeast(0.95),
        ));
    }
    drop(conn);
    // Peak RSS growth over the whole read, each in a fresh child process: the streams, and
    // fetch_all for contrast.
    let mut mb = Vec::new();
    for how in ["library", "sqlx", "library-all", "sqlx-all"] {
        mb.push(child(ctx, name, how, rows).await?.0);
    }
    let n = thousands(rows as u64);
    ctx.out.row(Row::new(
        format!("23c peak RSS growth, Query::fetch of {n} rows"),
        format!("{:.1} MB", mb[0]),
        format!("{:.1} MB (sqlx query_as(..).fetch(&pool))", mb[1]),
        None,
        Target::None,
    ));
    ctx.out.row(Row::new(
        format!("23d peak RSS growth, Query::fetch_all of {n} rows"),
        format!("{:.1} MB", mb[2]),
        format!("{:.1} MB (sqlx query_as(..).fetch_all(&pool))", mb[3]),
        Some(mb[2] / mb[3]),
        Target::None,
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 24 upsert

struct Upsert<'a> {
    conn: &'a mut PgConnection,
    /// The tenant of each side (the same table, written alike).
    tenants: [&'a Tenant; 3],
    /// The library's text for the hand-written sides' tenants.
    sqls: [&'static str; 2],
    batch: usize,
}

/// Operation `i` writes codes `i * batch / 2 ..` for `batch` codes: the first half were
/// written by operation `i - 1` (conflicts), the second half are new.
fn badges(i: usize, batch: usize) -> Vec<Badge> {
    let first = i * batch / 2;
    (first..first + batch)
        .map(|k| Badge {
            id: 0,
            code: format!("B{k:09}"),
            holder: format!("holder {k} v{i}"),
            level: (i % 100) as i32,
        })
        .collect()
}

/// The hand-written upsert: `sql` with three values bound per model.
async fn upsert_by_hand(
    conn: &mut PgConnection,
    sql: &'static str,
    models: Vec<Badge>,
) -> BoxResult<Vec<BadgeRow>> {
    let mut q = sqlx::query_as::<_, BadgeRow>(AssertSqlSafe(sql));
    for m in models {
        q = q.bind(m.code).bind(m.holder).bind(m.level);
    }
    Ok(q.fetch_all(conn).await?)
}

impl Op for Upsert<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let models = badges(i, self.batch);
        match side {
            Side::Library => {
                let conflict = OnConflict::on(Badge::CODE)
                    .replace(Badge::HOLDER)
                    .replace(Badge::LEVEL);
                let rows =
                    Badge::upsert_many(&mut *self.conn, self.tenants[0], models, conflict).await?;
                assert_eq!(rows.len(), self.batch);
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let sql = self.sqls[side.index() - 1];
                let rows = upsert_by_hand(self.conn, sql, models).await?;
                assert_eq!(rows.len(), self.batch);
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

/// Informational: the same upsert hand-written with one array per column (`UNNEST`), 3
/// parameters instead of 3,000.
struct UpsertUnnest<'a> {
    conn: &'a mut PgConnection,
    /// `VALUES` text for the first side's tenant.
    rows_sql: &'static str,
    /// The `UNNEST` text for the tenant of each of the other two sides.
    unnest_sqls: [&'static str; 2],
    batch: usize,
}

impl Op for UpsertUnnest<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let models = badges(i, self.batch);
        let rows: Vec<BadgeRow> = match side {
            Side::Library => upsert_by_hand(self.conn, self.rows_sql, models).await?,
            Side::Hand | Side::Again => {
                let (mut codes, mut holders, mut levels) = (Vec::new(), Vec::new(), Vec::new());
                for m in models {
                    codes.push(m.code);
                    holders.push(m.holder);
                    levels.push(m.level);
                }
                sqlx::query_as(AssertSqlSafe(self.unnest_sqls[side.index() - 1]))
                    .bind(codes)
                    .bind(holders)
                    .bind(levels)
                    .fetch_all(&mut *self.conn)
                    .await?
            }
        };
        assert_eq!(rows.len(), self.batch);
        std::hint::black_box(rows);
        Ok(())
    }
}

pub async fn upsert(ctx: &mut Ctx) -> BoxResult<()> {
    let names = model_tenants(ctx, "up", 6, 1, 0).await?;
    let result = measure_upsert(ctx, &names).await;
    ctx.cleanup.drop_schemas(&ctx.pool, &names).await?;
    result
}

async fn measure_upsert(ctx: &mut Ctx, names: &[String]) -> BoxResult<()> {
    let batch = if ctx.quick { 100 } else { 1000 };
    let mut conn = ctx.pool.acquire().await?;
    let conn = &mut *conn;
    let tenants: Vec<Tenant> = names.iter().map(Tenant::new).collect::<Result<_, _>>()?;
    let sql_of = |t: &Tenant| {
        leak(sql::upsert::<Badge>(
            t,
            batch,
            &["code"],
            Some(&["holder", "level"]),
        ))
    };
    let head: String = sql_of(&tenants[1]).chars().take(160).collect();
    println!("  SQL: {head} … (the library's text, from tenancy::internals::upsert)");
    println!(
        "  batches of {batch} rows, half of each conflicting with the previous batch; each side \
         in a tenant of its own, one connection"
    );
    let mut op = Upsert {
        conn: &mut *conn,
        tenants: [&tenants[0], &tenants[1], &tenants[2]],
        sqls: [sql_of(&tenants[1]), sql_of(&tenants[2])],
        batch,
    };
    let t = calibrated(&mut op, budget(ctx.quick), ctx.quick).await?;
    ctx.out.row(t.row(
        format!("24 upsert_many: {batch} rows, half conflicting"),
        "hand-written sqlx, same SQL, same connection",
        Target::AtLeast(0.98),
    ));
    let unnest = |t: &Tenant| {
        let s = t.quoted();
        leak(format!(
            "INSERT INTO {s}.\"badges\" (\"code\", \"holder\", \"level\") \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[]) \
             ON CONFLICT (\"code\") DO UPDATE SET \"holder\" = EXCLUDED.\"holder\", \
             \"level\" = EXCLUDED.\"level\" \
             RETURNING \"id\", \"code\", \"holder\", \"level\""
        ))
    };
    let mut shapes = UpsertUnnest {
        conn: &mut *conn,
        rows_sql: sql_of(&tenants[3]),
        unnest_sqls: [unnest(&tenants[4]), unnest(&tenants[5])],
        batch,
    };
    let u = calibrated(&mut shapes, budget(ctx.quick), ctx.quick).await?;
    ctx.out.row(u.row(
        format!("24b the same upsert, both hand-written: {batch}-row VALUES vs UNNEST of 3 arrays"),
        "UNNEST, 3 parameters",
        Target::None,
    ));
    ctx.out.note(format!(
        "24: {}; 24b: {}",
        t.plan.describe(),
        u.plan.describe()
    ));
    Ok(())
}
