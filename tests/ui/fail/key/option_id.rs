use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: Option<i64>,
    name: String,
}

fn main() {}
