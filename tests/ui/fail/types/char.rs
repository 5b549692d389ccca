use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    initial: char,
    big: i128,
}

fn main() {}
