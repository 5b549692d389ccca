use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(backend = "oracle")]
struct Guard {
    #[tenancy(id)]
    id: i64,
    name: String,
}

fn main() {}
