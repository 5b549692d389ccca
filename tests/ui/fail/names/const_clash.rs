#![allow(non_snake_case)]
use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    ab: String,
    aB: String,
}

fn main() {}
