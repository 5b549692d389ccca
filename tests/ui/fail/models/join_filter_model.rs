// A join's filter is on the joined model's columns, not the queried model's.
use tenancy::{Relation, Tenant, TenantModel};

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
    site_id: i64,
}

#[derive(TenantModel)]
struct Site {
    #[tenancy(id)]
    id: i64,
    city: String,
}

fn main() {
    let tenant = Tenant::new("acme").unwrap();
    let at_site = Relation::new(Guard::SITE_ID, Site::ID);
    let _ = Guard::query(&tenant).join(at_site, Guard::NAME.eq("Ann"));
}
