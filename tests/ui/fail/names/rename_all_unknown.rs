use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(rename_all = "camelcase")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
