use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard;

fn main() {}
