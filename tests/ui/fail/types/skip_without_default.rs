use tenancy::TenantModel;

pub struct Cache;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(skip)]
    cache: Cache,
}

fn main() {}
