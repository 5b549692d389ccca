use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table = 5, rename_all = camelCase)]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
