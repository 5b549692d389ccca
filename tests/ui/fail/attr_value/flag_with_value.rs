use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id = "x")]
    id: i64,
    #[tenancy(required(true))]
    name: String,
}

fn main() {}
