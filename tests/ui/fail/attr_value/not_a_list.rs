use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy = "guards"]
struct Guard {
    #[tenancy]
    #[tenancy(id)]
    id: i64,
}

fn main() {}
