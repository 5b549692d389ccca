// A rollback test cannot ask for a pool (other connections cannot see its uncommitted tenant):
// the error points at the type.

#[tenancy::test(rollback)]
async fn rollback_pool(tenant: tenancy::Tenant, pool: sqlx::PgPool, tenants: tenancy::Tenants) {
    let _ = (tenant, pool, tenants);
}

fn main() {}
