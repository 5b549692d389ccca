use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(id)]
struct Guard {
    #[tenancy(id, table = "guards")]
    id: i64,
}

fn main() {}
