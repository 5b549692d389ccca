use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(length = 5)]
    name: String,
    #[tenancy(length(min = -1, max = "20"))]
    position: String,
}

fn main() {}
