use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard<'a> {
    #[tenancy(id)]
    id: i64,
    name: &'a str,
}

fn main() {}
