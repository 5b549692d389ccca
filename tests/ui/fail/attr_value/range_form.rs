use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(range(min = "a", max))]
    age: i32,
}

fn main() {}
