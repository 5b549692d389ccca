use tenancy::TenantModel;

// The tenant column is the library's: not a field as well.
#[derive(TenantModel)]
#[tenancy(tenant_column = "tenant_id")]
struct Guard {
    #[tenancy(id)]
    id: i64,
    tenant_id: String,
}

// A shared model's rows are every tenant's.
#[derive(TenantModel)]
#[tenancy(shared = "public", tenant_column = "tenant_id")]
struct Plan {
    #[tenancy(id)]
    id: i64,
}

// An empty name.
#[derive(TenantModel)]
#[tenancy(tenant_column = "")]
struct Site {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
