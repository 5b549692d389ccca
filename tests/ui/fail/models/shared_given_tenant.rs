// A shared model lives in one schema for every tenant: it takes no tenant.
use tenancy::{Tenant, TenantModel};

#[derive(TenantModel)]
#[tenancy(shared = "public")]
struct Plan {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
}

fn main() {
    let tenant = Tenant::new("acme").unwrap();
    let _ = Plan::query(&tenant);
}
