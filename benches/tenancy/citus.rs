//! Workloads 18-20 on a Citus cluster (`CITUS_URL`, the coordinator; `.ci/run` starts a
//! 3-node cluster): every tenant a distributed schema on one of the workers.
//!
//! - 18 `citus-create`: `Tenants::create` × N with `examples/migrations/tenant` vs the floor, a
//!   server-side PL/pgSQL loop running the same statements (register, `CREATE SCHEMA`, the
//!   migration's statements, `citus_schema_distribute`, the bookkeeping row) in one
//!   transaction on the same cluster. (A `CREATE TABLE` that PL/pgSQL runs in a distributed
//!   schema stays local, so the loop distributes each schema with its tables.) Also the library's statement-at-a-time path (forced with
//!   a no-op `create_with` hook) against its one-round-trip batch, and 4 concurrent creates.
//! - 19 `citus-pending`: `migrate_all` of one pending `ADD COLUMN` over N tenants vs the loop
//!   (the `ALTER TABLE` and the bookkeeping row per tenant, one transaction).
//! - 20 `citus-lookups`: `Guard::find` at random over 100 tenants spread over the workers vs
//!   over one tenant (4 tasks, a pool built with `PoolSettings`).
//!
//! Everything runs in the coordinator's database with names of its own (no database per
//! workload: a new database would need the extension and the nodes set up again) and is
//! dropped at the end.

use std::sync::Arc;
use std::time::Instant;

use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection};
use tenancy::postgres::PoolSettings;
use tenancy::{Tenant, Tenants};

use crate::common::*;
use crate::method::{paired, Rounds};
use crate::report::{Results, Row, Target};

/// The run's Citus context.
pub struct CitusCtx {
    pub url: String,
    pub version: String,
    pub pool: PgPool,
    conn: PgConnection,
    pub quick: bool,
    /// The current workload's rows and notes.
    pub out: Results,
    /// Schemas made by the run, dropped by [`CitusCtx::finish`].
    made: Vec<String>,
}

const LOOP_FUNCTIONS: &str = r#"
CREATE FUNCTION pg_temp.citus_apply(
    names text[], create_schema boolean, stmts text[], registry text,
    version bigint, description text, checksum bytea, guard_rows int
) RETURNS void LANGUAGE plpgsql AS $bench$
DECLARE n text; s text;
BEGIN
    -- A CREATE TABLE run by PL/pgSQL in a distributed schema stays a local table: the schema
    -- is made with its tables first, then distributed (with them) by citus_schema_distribute.
    PERFORM set_config('citus.enable_schema_based_sharding', 'off', true);
    FOREACH n IN ARRAY names LOOP
        IF create_schema THEN
            EXECUTE format('INSERT INTO %I.tenants (name) VALUES ($1)', registry) USING n;
            EXECUTE format('CREATE SCHEMA %I', n);
        END IF;
        PERFORM set_config('search_path', format('%I', n), true);
        FOREACH s IN ARRAY stmts LOOP
            EXECUTE s;
        END LOOP;
        IF create_schema THEN
            PERFORM citus_schema_distribute(n::regnamespace);
        END IF;
        EXECUTE format('INSERT INTO %I.migrations (tenant, version, description, checksum, execution_ms) VALUES ($1, $2, $3, $4, 0)', registry)
            USING n, version, description, checksum;
        IF guard_rows > 0 THEN
            EXECUTE format('INSERT INTO %I.guards (name, position) SELECT ''guard '' || i, ''Guard'' FROM generate_series(1, $1) i', n)
                USING guard_rows;
        END IF;
    END LOOP;
END
$bench$;
"#;

impl CitusCtx {
    /// Connects to `CITUS_URL`.
    pub async fn new(quick: bool) -> BoxResult<Self> {
        let url = std::env::var("CITUS_URL").map_err(|_| {
            "workloads 18-20 need CITUS_URL, the coordinator of a Citus cluster with two workers \
             (`.ci/run` starts one with ../shared/citus/cluster.sh; add ?sslmode=disable for \
             its self-signed certificate)"
        })?;
        let options = url.parse()?;
        let pool = pool_with(&options, POOL_SIZE).await?;
        let version: String =
            sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
                .fetch_optional(&pool)
                .await?
                .ok_or("CITUS_URL names a server without the citus extension")?;
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::raw_sql(LOOP_FUNCTIONS).execute(&mut conn).await?;
        Ok(CitusCtx {
            url,
            version,
            pool,
            conn,
            quick,
            out: Results::default(),
            made: Vec::new(),
        })
    }

    pub fn names(&mut self, prefix: &str, n: usize) -> Vec<String> {
        let head = tenancy_testdb::unique_name(prefix);
        let names: Vec<String> = (0..n).map(|i| format!("{head}_{i}")).collect();
        self.made.extend(names.iter().cloned());
        names
    }

    /// A handle on a fresh registry with `migrations`.
    pub async fn handle(&mut self, migrations: Vec<Migration>) -> BoxResult<(Tenants, String)> {
        let registry = tenancy_testdb::unique_name("cbench");
        self.made.push(registry.clone());
        let tenants = Tenants::new(self.pool.clone(), Migrator::with_migrations(migrations))?
            .with_registry(&registry)?;
        tenants.list().await?; // creates the registry (and detects Citus)
        Ok((tenants, registry))
    }

    /// The loop: creates (or, without `create_schema`, migrates) `names` in one transaction.
    async fn apply(
        &mut self,
        names: &[String],
        create_schema: bool,
        registry: &str,
        migration: &Migration,
        guard_rows: i32,
    ) -> BoxResult<()> {
        sqlx::query("SELECT pg_temp.citus_apply($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(names)
            .bind(create_schema)
            .bind(statements(migration.sql.as_str()))
            .bind(registry)
            .bind(migration.version)
            .bind(migration.description.to_string())
            .bind(migration.checksum.to_vec())
            .bind(guard_rows)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Drops what the run made, 20 schemas per transaction.
    pub async fn finish(&mut self) -> BoxResult<()> {
        let made = std::mem::take(&mut self.made);
        for chunk in made.chunks(20) {
            let list: Vec<String> = chunk.iter().map(|n| quote_ident(n)).collect();
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", list.join(", "));
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

/// The statements of a migration file for the loop's `EXECUTE` (one each: Citus refuses index
/// DDL in a multi-statement string). Split at `;`: the example migrations hold none elsewhere.
fn statements(sql: &str) -> Vec<String> {
    sql.split(';')
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        })
        .map(str::to_owned)
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Floor,
    /// The floor again: the A/A control.
    FloorAgain,
    Library,
    StatementAtATime,
    Concurrent,
}

const CREATES: [Create; 5] = [
    Create::Floor,
    Create::FloorAgain,
    Create::Library,
    Create::StatementAtATime,
    Create::Concurrent,
];

/// Workload 18.
pub async fn create(ctx: &mut CitusCtx) -> BoxResult<()> {
    let n = if ctx.quick { 4 } else { 100 };
    let all = example_migrations().await?;
    let migration = ups(&all)[0].clone();
    let (tenants, registry) = ctx.handle(all.clone()).await?;
    let rounds = if ctx.quick { 1 } else { 4 };
    let per_round = n / rounds;
    println!(
        "  {rounds} rounds; each round every variant creates {per_round} fresh tenants (order \
         rotating)"
    );
    let mut times = Rounds::new(CREATES.len());
    for round in 0..rounds {
        for k in 0..CREATES.len() {
            let vi = (k + round) % CREATES.len();
            let names = ctx.names("cc", per_round);
            let start = Instant::now();
            match CREATES[vi] {
                Create::Floor | Create::FloorAgain => {
                    ctx.apply(&names, true, &registry, &migration, 0).await?
                }
                Create::Library => {
                    for name in &names {
                        tenants.create(name).await?;
                    }
                }
                Create::StatementAtATime => {
                    for name in &names {
                        tenants
                            .create_with(name, Box::new(|_, _| Box::pin(async { Ok(()) })))
                            .await?;
                    }
                }
                Create::Concurrent => {
                    let t = tenants.clone();
                    each_concurrent(&names, POOL_SIZE as usize, move |name| {
                        let t = t.clone();
                        async move {
                            t.create(name).await?;
                            Ok(())
                        }
                    })
                    .await?
                }
            }
            times.push(vi, start.elapsed().as_secs_f64());
        }
    }
    let placed = tenants.placement().await?;
    let mut per_node = std::collections::BTreeMap::new();
    for p in &placed {
        let node = p.node.as_ref().map_or("-".to_owned(), ToString::to_string);
        *per_node.entry(node).or_insert(0) += 1;
    }
    ctx.out.note(format!(
        "the {} tenants created are spread over the workers as {per_node:?}",
        placed.len()
    ));
    let at = |v: Create| CREATES.iter().position(|x| *x == v).unwrap();
    for (v, label) in [
        (Create::Library, "18 create {n} tenants: Tenants::create"),
        (
            Create::StatementAtATime,
            "18b create {n} tenants: statement at a time (create_with)",
        ),
        (
            Create::Concurrent,
            "18c create {n} tenants: Tenants::create, 4 concurrent",
        ),
    ] {
        ctx.out.row(times.row(
            label.replace("{n}", &n.to_string()),
            at(v),
            at(Create::Floor),
            Some(at(Create::FloorAgain)),
            "floor: one server-side loop, one transaction",
            Target::None,
        ));
    }
    Ok(())
}

/// Workload 19.
pub async fn pending(ctx: &mut CitusCtx) -> BoxResult<()> {
    let n = if ctx.quick { 4 } else { 100 };
    let all = example_migrations().await?;
    let v1 = ups(&all)[0].clone();
    let v2_all = v2_migrations().await?;
    let v2 = ups(&v2_all)[1].clone();
    // Two fleets at v1, made by the loop: one for the library, one for the floor.
    let (_, floor_registry) = ctx.handle(all.clone()).await?;
    let (_, lib_registry) = ctx.handle(all.clone()).await?;
    let floor_names = ctx.names("cpf", n);
    let lib_names = ctx.names("cpl", n);
    for (names, registry) in [(&floor_names, &floor_registry), (&lib_names, &lib_registry)] {
        for chunk in names.chunks(25) {
            ctx.apply(chunk, true, registry, &v1, 0).await?;
        }
    }
    let lib = Tenants::new(ctx.pool.clone(), Migrator::with_migrations(v2_all))?
        .with_registry(&lib_registry)?;
    let start = Instant::now();
    ctx.apply(&floor_names, false, &floor_registry, &v2, 0)
        .await?;
    let floor = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let report = lib
        .migrate_all(tenancy::MigrateOptions::default().concurrency(POOL_SIZE as usize))
        .await?;
    let library = start.elapsed().as_secs_f64();
    if !report.is_success() || report.changed().count() != n {
        return Err(format!("migrate_all migrated {} of {n}", report.changed().count()).into());
    }
    ctx.out.row(Row::new(
        format!("19 migrate_all, one pending ADD COLUMN, {n} tenants"),
        fmt_secs(library),
        format!(
            "{} (floor: one server-side loop, one transaction)",
            fmt_secs(floor)
        ),
        Some(library / floor),
        Target::None,
    ));
    Ok(())
}

/// Workload 20.
pub async fn lookups(ctx: &mut CitusCtx) -> BoxResult<()> {
    let n = 100;
    let rows_per = 20;
    let total = if ctx.quick { 200 } else { 2000 };
    // The `guards` table of workload 2 (the bench's `Guard` model).
    let v1 = Migration::new(
        1,
        "guards".into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(GUARDS_DDL)),
        false,
    );
    let all = vec![v1.clone()];
    let (handle, registry) = ctx.handle(all.clone()).await?;
    let names = ctx.names("cl", n);
    for chunk in names.chunks(25) {
        ctx.apply(chunk, true, &registry, &v1, rows_per).await?;
    }
    let nodes: std::collections::BTreeSet<String> = handle
        .placement()
        .await?
        .into_iter()
        .filter_map(|p| p.node.map(|n| n.to_string()))
        .collect();
    ctx.out.note(format!(
        "the {n} tenants live on {} worker(s): {nodes:?}",
        nodes.len()
    ));
    let pool = PoolSettings::new()
        .expected_tenants(n)
        .models(1)
        .max_connections(POOL_SIZE)
        .connect(&ctx.url)
        .await?;
    let tenants: Arc<Vec<Tenant>> =
        Arc::new(names.iter().map(Tenant::new).collect::<Result<_, _>>()?);
    // Warm every connection's statements once, then one tenant, one tenant again (the A/A
    // control) and all of them, in rotating order.
    run_lookups(&pool, &tenants, n, total, rows_per, 7).await?;
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    let rounds = if ctx.quick { 1 } else { 10 };
    for round in 0..rounds {
        for k in 0..3 {
            let v = (k + round) % 3;
            let spread = if v == 2 { n } else { 1 };
            let seed = round as u64 * 10 + v as u64;
            rates[v].push(run_lookups(&pool, &tenants, spread, total, rows_per, seed).await?);
        }
    }
    pool.close().await;
    let (ratio, interval) = paired(&rates[2], &rates[0]);
    ctx.out.row(
        Row::new(
            format!("20 point lookups over {n} tenants on the workers"),
            fmt_rate(median(&mut rates[2].clone())),
            format!("{} (1 tenant)", fmt_rate(median(&mut rates[0].clone()))),
            Some(ratio),
            Target::None,
        )
        .interval(interval)
        .aa(paired(&rates[1], &rates[0]).0),
    );
    Ok(())
}

/// `total` `Guard::find`s by `POOL_SIZE` tasks over the first `n` tenants; lookups per second.
async fn run_lookups(
    pool: &PgPool,
    tenants: &Arc<Vec<Tenant>>,
    n: usize,
    total: usize,
    rows_per: i32,
    seed: u64,
) -> BoxResult<f64> {
    use tenancy::TenantModel;
    let tasks = POOL_SIZE as usize;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (pool, tenants) = (pool.clone(), Arc::clone(tenants));
        set.spawn(async move {
            let mut rng = Rng::new(seed ^ (task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..total / tasks {
                let t = &tenants[rng.below(n)];
                let id = 1 + rng.below(rows_per as usize) as i64;
                let found = Guard::find(&pool, t, id)
                    .await
                    .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
                if found.is_none() {
                    return Err::<(), BoxError>(format!("no guard {id} in {t}").into());
                }
            }
            Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
