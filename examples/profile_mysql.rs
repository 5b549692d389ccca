//! For profiling the client's cost per statement on MySQL / MariaDB, as `profile_ops` does on
//! PostgreSQL: `n` finds, or inserts each read back by `LAST_INSERT_ID()` (in one transaction),
//! on one connection, by the library (`lib`) or by hand-written sqlx with the library's SQL text
//! (`hand`), in database `profile_ops` of `MYSQL_URL` (dropped and made again). Count
//! instructions with cachegrind at two sizes and subtract, so the set-up cancels out:
//!
//! ```sh
//! cargo build --release --example profile_mysql
//! for side in lib hand; do for n in 1000 3000; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=cg.$side.$n \
//!     target/release/examples/profile_mysql $side find $n
//! done; done   # (I refs at 3000 - at 1000) / 2000 = instructions per find, per side
//! ```
use sqlx::mysql::MySqlConnection;
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, Connection};
use tenancy::{Tenant, TenantModel};

#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "mysql")]
pub struct Guard {
    #[tenancy(id, generated)]
    pub id: u64,
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
    pub id: u64,
    pub name: String,
    pub position: String,
    pub age: Option<i32>,
    pub inserted_at: OffsetDateTime,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: profile_mysql <lib|hand> <find|insert> <n>";
    let [_, side, op, n] = args.as_slice() else {
        return Err(usage.into());
    };
    let (side, op, n) = (
        side.as_str(),
        op.as_str(),
        n.parse::<usize>().map_err(|_| usage)?,
    );
    let url = std::env::var("MYSQL_URL")?;
    let mut conn = MySqlConnection::connect(&url).await?;
    let tenant = Tenant::new("profile_ops")?;
    sqlx::raw_sql(AssertSqlSafe(
        "DROP DATABASE IF EXISTS profile_ops; CREATE DATABASE profile_ops;
         CREATE TABLE profile_ops.guards (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
           name VARCHAR(50) NOT NULL, position VARCHAR(50) NOT NULL, age INT,
           inserted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
         INSERT INTO profile_ops.guards (name, position) SELECT CONCAT('g', seq), 'Guard' FROM seq_1_to_1000",
    ))
    .execute(&mut conn)
    .await?;
    let find_sql = tenancy::internals::select_by_pk::<Guard>(&tenant);
    let insert_sql = tenancy::internals::insert::<Guard>(&tenant, 1);
    let read_back = find_sql.replace(" = ?", " = LAST_INSERT_ID()");
    let mut tx = conn.begin().await?;
    for i in 0..n {
        let id = 1 + (i % 1000) as u64;
        match (side, op) {
            ("lib", "find") => {
                let f = Guard::find(&mut *tx, &tenant, id).await?;
                std::hint::black_box(f.unwrap());
            }
            ("hand", "find") => {
                let f: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(find_sql.as_str()))
                    .bind(id)
                    .fetch_optional(&mut *tx)
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
                .insert(&mut *tx, &tenant)
                .await?;
                std::hint::black_box(r);
            }
            ("hand", "insert") => {
                sqlx::query(AssertSqlSafe(insert_sql.as_str()))
                    .bind(format!("guard {i}"))
                    .bind("Guard")
                    .bind(None::<i32>)
                    .execute(&mut *tx)
                    .await?;
                let row: Option<GuardRow> = sqlx::query_as(AssertSqlSafe(read_back.as_str()))
                    .fetch_optional(&mut *tx)
                    .await?;
                std::hint::black_box(row.unwrap());
            }
            _ => return Err(usage.into()),
        }
    }
    tx.rollback().await?;
    sqlx::raw_sql("DROP DATABASE profile_ops")
        .execute(&mut conn)
        .await?;
    Ok(())
}
