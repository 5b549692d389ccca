use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(required, length(max = 50))]
    #[tenancy(length(min = 1))]
    name: String,
}

fn main() {}
