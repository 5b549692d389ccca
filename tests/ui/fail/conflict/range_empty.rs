use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(range())]
    age: i32,
}

fn main() {}
