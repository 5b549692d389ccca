use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(required)]
    age: i32,
    #[tenancy(required)]
    active: bool,
}

fn main() {}
