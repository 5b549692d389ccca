//! For profiling the client's cost per statement: `n` finds, one-row inserts, filtered
//! queries, or filtered queries of a row-level tenant (`rowlevel`: `acme`'s rows among another
//! tenant's in one table with a tenant column) on one connection, by the library (`lib`) or by hand-written sqlx with the library's
//! SQL text (`hand`), in schema `profile_ops` of `DATABASE_URL` (dropped and made again).
//! Count instructions with cachegrind at two sizes and subtract, so the set-up cancels out:
//!
//! ```sh
//! cargo build --release --example profile_ops
//! for side in lib hand; do for n in 1000 3000; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=cg.$side.$n \
//!     target/release/examples/profile_ops $side find $n
//! done; done   # (I refs at 3000 - at 1000) / 2000 = instructions per find, per side
//! ```
//!
//! `cg_annotate` per file, or a per-function difference of the two sides, shows where the
//! library's extra instructions go (BENCHMARKS.md, "Where the client time goes").
use sqlx::postgres::PgConnection;
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, Connection};
use tenancy::{Tenant, TenantModel};

#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards")]
pub struct Guard {
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

/// `Guard` with its rows among other tenants' in one container (a row-level tenant's).
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "rl_guards", tenant_column = "tenant_id")]
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

#[derive(sqlx::FromRow, Debug, Clone)]
#[allow(dead_code)]
pub struct GuardRow {
    pub id: i64,
    pub name: String,
    pub position: String,
    pub age: Option<i32>,
    pub inserted_at: OffsetDateTime,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: profile_ops <lib|hand> <find|insert|filtered|rowlevel> <n>";
    let [_, side, op, n] = args.as_slice() else {
        return Err(usage.into());
    };
    let (side, op, n) = (
        side.as_str(),
        op.as_str(),
        n.parse::<usize>().map_err(|_| usage)?,
    );
    let url = std::env::var("DATABASE_URL")?;
    let mut conn = PgConnection::connect(&url).await?;
    let tenant = Tenant::new("profile_ops")?;
    sqlx::raw_sql(AssertSqlSafe(
        "DROP SCHEMA IF EXISTS profile_ops CASCADE; CREATE SCHEMA profile_ops;
         CREATE TABLE profile_ops.guards (id bigserial PRIMARY KEY, name text NOT NULL,
           position text NOT NULL, age integer, inserted_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO profile_ops.guards (name, position) SELECT 'g' || i, CASE WHEN i % 2 = 0 THEN 'Captain' ELSE 'Guard' END FROM generate_series(1, 1000) i;
         CREATE TABLE profile_ops.rl_guards (id bigserial PRIMARY KEY, tenant_id text NOT NULL,
           name text NOT NULL, position text NOT NULL, age integer,
           inserted_at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX ON profile_ops.rl_guards (tenant_id, id);
         INSERT INTO profile_ops.rl_guards (tenant_id, name, position) SELECT t, 'g' || i, CASE WHEN i % 2 = 0 THEN 'Captain' ELSE 'Guard' END FROM generate_series(1, 1000) i, (VALUES ('acme'), ('other')) v(t);
         SET synchronous_commit = off",
    ))
    .execute(&mut conn)
    .await?;
    let find_sql = tenancy::internals::select_by_pk::<Guard>(&tenant);
    let insert_sql = tenancy::internals::insert::<Guard>(&tenant, 1);
    let acme = Tenant::new("acme")?.rows_in(&tenant);
    let rowlevel_sql = RowGuard::query(&acme)
        .filter(RowGuard::POSITION.eq("Captain"))
        .order_by(RowGuard::ID.asc())
        .limit(10)
        .to_sql();
    let filtered_sql = Guard::query(&tenant)
        .filter(Guard::POSITION.eq("Captain"))
        .order_by(Guard::ID.asc())
        .limit(10)
        .to_sql();
    for i in 0..n {
        let id = 1 + (i % 1000) as i64;
        match (side, op) {
            ("lib", "find") => {
                let f = Guard::find(&mut conn, &tenant, id).await?;
                std::hint::black_box(f.unwrap());
            }
            ("hand", "find") => {
                let f: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(find_sql.as_str()))
                    .bind(id)
                    .fetch_optional(&mut conn)
                    .await?;
                std::hint::black_box(f.unwrap());
            }
            ("lib", "insert") => {
                let r = Guard {
                    id: 0,
                    name: format!("guard {i}"),
                    position: "Guard".into(),
                    age: None,
                    inserted_at: OffsetDateTime::UNIX_EPOCH,
                }
                .insert(&mut conn, &tenant)
                .await?;
                std::hint::black_box(r);
            }
            ("hand", "insert") => {
                let row: GuardRow = sqlx::query_as(AssertSqlSafe(insert_sql.as_str()))
                    .bind(format!("guard {i}"))
                    .bind("Guard")
                    .bind(None::<i32>)
                    .fetch_one(&mut conn)
                    .await?;
                std::hint::black_box(row);
            }
            ("lib", "filtered") => {
                let rows = Guard::query(&tenant)
                    .filter(Guard::POSITION.eq("Captain"))
                    .order_by(Guard::ID.asc())
                    .limit(10)
                    .fetch_all(&mut conn)
                    .await?;
                std::hint::black_box(rows);
            }
            ("hand", "filtered") => {
                let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(filtered_sql.as_str()))
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(&mut conn)
                    .await?;
                std::hint::black_box(rows);
            }
            ("lib", "rowlevel") => {
                let rows = RowGuard::query(&acme)
                    .filter(RowGuard::POSITION.eq("Captain"))
                    .order_by(RowGuard::ID.asc())
                    .limit(10)
                    .fetch_all(&mut conn)
                    .await?;
                std::hint::black_box(rows);
            }
            ("hand", "rowlevel") => {
                let rows: Vec<GuardRow> = sqlx::query_as(AssertSqlSafe(rowlevel_sql.as_str()))
                    .bind(acme.as_str())
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(&mut conn)
                    .await?;
                std::hint::black_box(rows);
            }
            _ => return Err(usage.into()),
        }
    }
    sqlx::raw_sql("DROP SCHEMA profile_ops CASCADE")
        .execute(&mut conn)
        .await?;
    Ok(())
}
