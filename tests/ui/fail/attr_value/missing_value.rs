use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(rename =, custom)]
    name: String,
}

fn main() {}
