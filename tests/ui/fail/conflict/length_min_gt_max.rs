use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(length(min = 10, max = 5))]
    name: String,
}

fn main() {}
