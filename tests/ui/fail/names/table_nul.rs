use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table = "guards\0")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
