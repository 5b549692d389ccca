use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(skip, id)]
    id: i64,
}

fn main() {}
