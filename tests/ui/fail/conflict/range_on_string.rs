use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(range(min = 1, max = 50))]
    name: String,
}

fn main() {}
