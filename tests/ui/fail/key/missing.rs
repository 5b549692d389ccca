use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    id: i64,
    name: String,
}

fn main() {}
