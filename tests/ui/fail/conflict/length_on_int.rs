use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(length(max = 3))]
    age: Option<i32>,
}

fn main() {}
