// Both models of a relation live in the same tenant, so on the same backend.
use tenancy::{Relation, TenantModel};

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    site_id: i64,
}

#[derive(TenantModel)]
#[tenancy(backend = "mysql")]
struct Site {
    #[tenancy(id)]
    id: i64,
}

fn main() {
    let _ = Relation::new(Guard::SITE_ID, Site::ID);
}
