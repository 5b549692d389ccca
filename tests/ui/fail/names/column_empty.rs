use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(rename = "")]
    name: String,
    #[tenancy(rename = "position\0")]
    position: String,
}

fn main() {}
