// Attributes of other namespaces are left alone; only the unknown tenancy key is an error.
use tenancy::TenantModel;

/// A guard.
#[derive(TenantModel)]
#[allow(dead_code)]
struct Guard {
    /// The key.
    #[tenancy(id)]
    #[allow(unused)]
    id: i64,
    #[tenancy(nope)]
    name: String,
}

fn main() {}
