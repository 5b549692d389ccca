//! The seed story in Rust: one `guards` table in two tenant schemas, a guard inserted into
//! `tenant_1` with a runtime prefix, updated, queried back, and invisible from `tenant_2`.
//!
//! Run it with `cargo run --example quickstart`. It uses `DATABASE_URL` when set, otherwise it
//! starts a private throwaway PostgreSQL cluster (like the tests).

use sqlx::postgres::PgPoolOptions;
use sqlx::types::time::OffsetDateTime;
use tenancy::{Changeset, Tenant, TenantModel};

#[derive(TenantModel, Debug)]
#[tenancy(table = "guards")]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    #[tenancy(required, length(max = 100))]
    name: String,
    #[tenancy(required)]
    position: String,
    #[tenancy(generated)]
    inserted_at: OffsetDateTime,
    #[tenancy(generated)]
    updated_at: OffsetDateTime,
}

/// The tenant tables. Plain DDL for now; `{schema}` is the quoted tenant schema.
const TENANT_DDL: &str = r#"
CREATE SCHEMA {schema};
CREATE TABLE {schema}.guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION {schema}.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE UPDATE ON {schema}.guards
    FOR EACH ROW EXECUTE FUNCTION {schema}.touch_updated_at();
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = tenancy_testdb::database_url()?;
    let pool = PgPoolOptions::new().max_connections(2).connect(&url).await?;

    // Tenant names are validated when constructed; the prefix is chosen at run time.
    let tenant_1 = Tenant::new("tenant_1")?;
    let tenant_2: Tenant = "tenant_2".parse()?;
    for tenant in [&tenant_1, &tenant_2] {
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", tenant.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&pool).await?;
        let ddl = TENANT_DDL.replace("{schema}", &tenant.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(&pool).await?;
        println!("created schema {} with table guards", tenant.quoted());
    }

    // Ecto: Repo.insert(changeset, prefix: "tenant_1")
    let guard = Guard {
        id: 0,
        name: "Abu".into(),
        position: "Guard".into(),
        inserted_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    };
    let mut abu = guard.insert(&pool, &tenant_1).await?;
    println!(
        "inserted {:?} into {} (state {:?}, id {}, inserted_at {})",
        abu.name,
        abu.tenant(),
        abu.state(),
        abu.id,
        abu.inserted_at
    );

    // A partial update writes only the changed column; the record remembers its tenant.
    let changes = Changeset::new().set(Guard::POSITION, "Captain");
    abu.apply(&pool, &tenant_1, changes).await?;
    println!(
        "updated position to {:?} in {} (updated_at {})",
        abu.position,
        abu.tenant(),
        abu.updated_at
    );

    // Writing the record into another tenant is refused, not silently done.
    let refused = abu.update(&pool, &tenant_2).await.unwrap_err();
    println!("refused: {refused}");

    let captains = Guard::query(&tenant_1)
        .filter(Guard::POSITION.eq("Captain"))
        .fetch_all(&pool)
        .await?;
    println!("{} captain(s) in {}: {:?}", captains.len(), tenant_1, captains[0].value());

    let seen_by_2 = Guard::query(&tenant_2).count(&pool).await?;
    println!("{tenant_2} sees {seen_by_2} guard(s)");
    assert_eq!(seen_by_2, 0);

    // A hostile prefix never reaches SQL.
    let hostile = Tenant::new("tenant_1\"; DROP SCHEMA public CASCADE; --").unwrap_err();
    println!("refused: {hostile}");

    for tenant in [&tenant_1, &tenant_2] {
        let drop = format!("DROP SCHEMA {} CASCADE", tenant.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&pool).await?;
    }
    println!("dropped tenant_1 and tenant_2");
    Ok(())
}
