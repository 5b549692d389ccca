use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    tenant_id: i64,
    #[tenancy(id)]
    guard_id: i64,
}

fn main() {}
