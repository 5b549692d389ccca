use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(generated)]
    #[tenancy(skip)]
    created_at: i64,
}

fn main() {}
