// A relation joins columns of the same type: a name cannot refer to an id.
use tenancy::{Relation, TenantModel};

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
    site_id: Option<i64>,
}

#[derive(TenantModel)]
struct Site {
    #[tenancy(id)]
    id: i64,
    city: String,
}

fn main() {
    let _ok = Relation::new(Guard::SITE_ID, Site::ID);
    let _ = Relation::new(Guard::NAME, Site::ID);
}
