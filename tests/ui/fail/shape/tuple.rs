use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard(i64, String);

fn main() {}
