use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table = "")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
