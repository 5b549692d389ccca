use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(length(min = 1, min = 2))]
    name: String,
}

fn main() {}
