// A tenant model needs a tenant: it cannot be reached as a shared one.
use tenancy::{Shared, TenantModel};

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
}

fn main() {
    let _ = Shared::<Guard>::query();
}
