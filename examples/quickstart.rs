//! The seed story in Rust: two tenants created with their migrations, a guard inserted into
//! `tenant_1` with a runtime prefix, updated, queried back, invisible from `tenant_2`, and both
//! tenants dropped at the end.
//!
//! Run it with `cargo run --example quickstart`. Without `DATABASE_URL` it runs on SQLite (a
//! database file per tenant, tenancy's `sqlite` feature) in a temporary folder removed at the
//! end: nothing to install. With `DATABASE_URL` the URL's scheme picks the backend:
//! `postgres://` (a schema per tenant), `mysql://` / `mariadb://` (a database per tenant;
//! feature `mysql`) or `sqlite:///path/to/folder` (kept), e.g.
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example quickstart`.
//! Through PgBouncer in transaction mode, say so on the URL:
//! `DATABASE_URL='postgres://postgres@127.0.0.1:6432/test?pgbouncer=true'`.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::mysql::MySqlPoolOptions;
use tenancy::postgres::PoolSettings;
use tenancy::Tenants;

/// The tenant migrations: what every tenant holds, written once per backend.
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations/tenant");
const MYSQL_MIGRATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/mysql/tenant"
);
const SQLITE_MIGRATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/sqlite/tenant"
);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            // Nothing configured: SQLite in a fresh temporary folder, removed at the end.
            let folder =
                std::env::temp_dir().join(format!("tenancy-quickstart-{}", std::process::id()));
            println!(
                "DATABASE_URL is not set: SQLite, a file per tenant in {}",
                folder.display()
            );
            let result = on_sqlite_folder(&folder).await;
            std::fs::remove_dir_all(&folder)?;
            return result;
        }
    };
    if url.starts_with("sqlite:") {
        return on_sqlite_folder(&tenancy::sqlite::folder_of(&url)?).await;
    }
    if let Some(rest) = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
    {
        // sqlx's MySQL driver serves MariaDB too, under `mysql://`.
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect(&format!("mysql://{rest}"))
            .await?;
        let migrator = Migrator::new(Path::new(MYSQL_MIGRATIONS)).await?;
        let tenants = Tenants::new(pool.clone(), migrator)?; // a Tenants<MySql>
        on_mysql::story(&tenants).await
    } else {
        // The lifecycle handle (creates tenants and runs the tenant migrations in them) on a
        // pool sized for many tenants: its statement cache holds every tenant's statements.
        // With `?pgbouncer=true` on the URL the handle and every executor it gives out send
        // statements PgBouncer in transaction mode can serve.
        let migrator = Migrator::new(Path::new(MIGRATIONS)).await?;
        let tenants = PoolSettings::new()
            .expected_tenants(2)
            .models(1)
            .max_connections(2)
            .connect_tenants(&url, migrator)
            .await?; // a Tenants<Postgres>
        on_postgres::story(&tenants).await
    }
}

/// The story on SQLite, with the tenant files and the registry in `folder`.
async fn on_sqlite_folder(folder: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let registry = tenancy::sqlite::open(folder.to_str().ok_or("the folder is not UTF-8")?).await?;
    let migrator = Migrator::new(Path::new(SQLITE_MIGRATIONS)).await?;
    let tenants = Tenants::new(registry, migrator)?; // a Tenants<Sqlite>
    on_sqlite::story(&tenants).await
}

/// The model and the story, written once and compiled per backend: a model names its backend
/// (`#[tenancy(backend = "mysql")]`, PostgreSQL by default) and the code is the same. An
/// application on one backend writes the module's contents as plain code.
macro_rules! quickstart {
    ($module:ident, $db:ty $(, backend = $backend:tt)?) => {
        mod $module {
            use sqlx::types::time::OffsetDateTime;
            use tenancy::{Backend, Changeset, Tenant, TenantModel, Tenants};

            #[derive(TenantModel, Debug)]
            #[tenancy(table = "guards" $(, backend = $backend)?)]
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

            pub async fn story(tenants: &Tenants<$db>) -> Result<(), Box<dyn std::error::Error>> {
                for name in ["tenant_1", "tenant_2"] {
                    if tenants.exists(name).await? {
                        tenants.drop(name).await?; // left over from an earlier run
                    }
                    // Its schema (MySQL: database) with every migration applied, or nothing.
                    let tenant = tenants.create(name).await?;
                    let container = <$db as Backend>::CONTAINER;
                    println!("created tenant {tenant} ({container} {tenant} with table guards)");
                }
                let names: Vec<String> = tenants
                    .list()
                    .await?
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                println!("tenants: {}", names.join(", "));

                // Tenant names are validated when constructed; the prefix is chosen at run time.
                let tenant_1 = Tenant::new("tenant_1")?;
                let tenant_2: Tenant = "tenant_2".parse()?;
                // Each tenant's executor (PostgreSQL, MySQL: the shared pool; SQLite: the
                // pool of the tenant's own file). It serves its tenant only.
                let db_1 = tenants.pool_for(&tenant_1).await?;
                let db_2 = tenants.pool_for(&tenant_2).await?;

                // Ecto: Repo.insert(changeset, prefix: "tenant_1")
                let guard = Guard {
                    id: 0,
                    name: "Abu".into(),
                    position: "Guard".into(),
                    inserted_at: OffsetDateTime::UNIX_EPOCH,
                    updated_at: OffsetDateTime::UNIX_EPOCH,
                };
                let mut abu = guard.insert(&db_1, &tenant_1).await?;
                println!(
                    "inserted {:?} into {} (state {:?}, id {}, inserted_at {})",
                    abu.name,
                    abu.tenant(),
                    abu.state(),
                    abu.id,
                    abu.inserted_at
                );

                // A partial update writes only the changed column; the record remembers its
                // tenant.
                let changes = Changeset::new().set(Guard::POSITION, "Captain");
                abu.apply(&db_1, &tenant_1, changes).await?;
                println!("updated position to {:?} in {}", abu.position, abu.tenant());

                // Writing the record into another tenant is refused, not silently done.
                let refused = abu.update(&db_2, &tenant_2).await.unwrap_err();
                println!("refused: {refused}");

                let captains = Guard::query(&tenant_1)
                    .filter(Guard::POSITION.eq("Captain"))
                    .fetch_all(&db_1)
                    .await?;
                println!(
                    "{} captain(s) in {}: {:?}",
                    captains.len(),
                    tenant_1,
                    captains[0].value()
                );

                let seen_by_2 = Guard::query(&tenant_2).count(&db_2).await?;
                println!("{tenant_2} sees {seen_by_2} guard(s)");
                assert_eq!(seen_by_2, 0);

                // A hostile prefix never reaches SQL.
                let hostile = Tenant::new("tenant_1\"; DROP SCHEMA public CASCADE; --");
                println!("refused: {}", hostile.unwrap_err());

                for tenant in [&tenant_1, &tenant_2] {
                    // DROP SCHEMA … CASCADE / DROP DATABASE / the file removed
                    tenants.drop(tenant.as_str()).await?;
                }
                println!("dropped tenant_1 and tenant_2");
                Ok(())
            }
        }
    };
}

quickstart!(on_postgres, sqlx::Postgres);
quickstart!(on_mysql, sqlx::MySql, backend = "mysql");
quickstart!(on_sqlite, sqlx::Sqlite, backend = "sqlite");
