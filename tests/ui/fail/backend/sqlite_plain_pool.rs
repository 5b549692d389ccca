// On SQLite each tenant is its own file: a plain pool does not know whose file it has open,
// so it is no executor. The error says to take the tenant's pool.
use tenancy::{Tenant, TenantModel};

#[derive(TenantModel)]
#[tenancy(backend = "sqlite")]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
}

async fn find(pool: &sqlx::SqlitePool, tenant: &Tenant) {
    let _ = Guard::find(pool, tenant, 1).await;
}

fn main() {}
