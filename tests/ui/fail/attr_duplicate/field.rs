use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id, id)]
    id: i64,
    #[tenancy(rename = "full_name", rename = "name")]
    name: String,
}

fn main() {}
