use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    name: String,
    #[tenancy(rename = "name")]
    full_name: String,
}

fn main() {}
