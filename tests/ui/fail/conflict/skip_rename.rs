use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(skip, rename = "cached")]
    cache: Vec<String>,
}

fn main() {}
