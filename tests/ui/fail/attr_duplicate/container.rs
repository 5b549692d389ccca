use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table = "guards")]
#[tenancy(rename_all = "camelCase", table = "sentries")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
