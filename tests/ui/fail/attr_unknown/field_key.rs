use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(primary_key)]
    id: i64,
    #[tenancy(requird, max_length(50))]
    name: String,
}

fn main() {}
