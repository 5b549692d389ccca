//! Scratch: time export and import of a 1M-row tenant separately.
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::time::Instant;
use tenancy::Tenants;

const DDL: &str =
    "CREATE TABLE guards (id bigserial PRIMARY KEY, name text NOT NULL, position text NOT NULL, age integer, inserted_at timestamptz NOT NULL DEFAULT now())";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    let v1 = Migration::new(
        1,
        "guards".into(),
        MigrationType::Simple,
        AssertSqlSafe(DDL).into_sql_str(),
        false,
    );
    let tenants = Tenants::new(pool.clone(), Migrator::with_migrations(vec![v1]))?
        .with_registry("probe_reg")?;
    let _ = tenants.drop("probe_src").await;
    let _ = tenants.drop("probe_dst").await;
    tenants.create("probe_src").await?;
    sqlx::raw_sql("INSERT INTO probe_src.guards (name, position) SELECT 'guard ' || i, CASE WHEN i % 2 = 0 THEN 'Guard' ELSE 'Captain' END FROM generate_series(1, 1000000) i").execute(&pool).await?;
    if std::env::var("VAC").is_ok() {
        sqlx::raw_sql("VACUUM ANALYZE probe_src.guards")
            .execute(&pool)
            .await?;
        println!("vacuumed");
    }
    let mut buf = Vec::with_capacity(64 << 20);
    let t = Instant::now();
    tenants.export("probe_src", &mut buf).await?;
    println!(
        "export to memory: {:?} ({} MB)",
        t.elapsed(),
        buf.len() >> 20
    );
    let t = Instant::now();
    tenants.import(&buf[..], "probe_dst").await?;
    println!("import from memory: {:?}", t.elapsed());
    let _ = sqlx::raw_sql("DROP DATABASE IF EXISTS probe_db2")
        .execute(&pool)
        .await;
    sqlx::raw_sql("CREATE DATABASE probe_db2")
        .execute(&pool)
        .await?;
    let url2 = url.replacen("/test", "/probe_db2", 1);
    let pool2 = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url2)
        .await?;
    let v1b = Migration::new(
        1,
        "guards".into(),
        MigrationType::Simple,
        AssertSqlSafe(DDL).into_sql_str(),
        false,
    );
    let other = Tenants::new(pool2.clone(), Migrator::with_migrations(vec![v1b]))?
        .with_registry("probe_reg")?;
    for i in 0..4 {
        if i % 2 == 1 {
            println!(
                "clear_refs: {:?}",
                std::fs::write("/proc/self/clear_refs", "5")
            );
        }
        let t = Instant::now();
        let (writer, reader) = tokio::io::duplex(64 * 1024);
        let from = tenants.clone();
        let export = tokio::spawn(async move { from.export("probe_src", writer).await });
        other
            .import(tokio::io::BufReader::new(reader), "probe_src")
            .await?;
        export.await??;
        println!("piped to another database: {:?}", t.elapsed());
        other.drop("probe_src").await?;
    }
    pool2.close().await;
    sqlx::raw_sql("DROP DATABASE probe_db2")
        .execute(&pool)
        .await?;
    for cap in [64 * 1024, 1 << 20, 8 << 20] {
        tenants.drop("probe_dst").await?;
        let t = Instant::now();
        let (writer, reader) = tokio::io::duplex(cap);
        let from = tenants.clone();
        let export = tokio::spawn(async move { from.export("probe_src", writer).await });
        tenants
            .import(tokio::io::BufReader::new(reader), "probe_dst")
            .await?;
        export.await??;
        println!("piped, duplex {cap}: {:?}", t.elapsed());
    }
    let t = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut n = 0usize;
    {
        let mut out = conn.copy_out_raw("COPY probe_src.guards TO STDOUT").await?;
        use futures_util::TryStreamExt;
        while let Some(chunk) = out.try_next().await? {
            n += chunk.len();
        }
    }
    println!("raw COPY TO STDOUT: {:?} ({} MB)", t.elapsed(), n >> 20);
    drop(conn);
    let t = Instant::now();
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, position FROM probe_src.guards")
            .fetch_all(&pool)
            .await?;
    println!("sqlx fetch_all 3 cols: {:?} ({})", t.elapsed(), rows.len());
    let t = Instant::now();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT to_json(inserted_at) #>> '{}' FROM probe_src.guards")
            .fetch_all(&pool)
            .await?;
    println!("to_json timestamptz: {:?} ({})", t.elapsed(), rows.len());
    let t = Instant::now();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT inserted_at::text FROM probe_src.guards")
        .fetch_all(&pool)
        .await?;
    println!("::text timestamptz: {:?} ({})", t.elapsed(), rows.len());
    let t = Instant::now();
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT 1::int8 FROM probe_src.guards")
        .fetch_all(&pool)
        .await?;
    println!("constant: {:?} ({})", t.elapsed(), rows.len());
    tenants.drop("probe_src").await?;
    tenants.drop("probe_dst").await?;
    Ok(())
}
