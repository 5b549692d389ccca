use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(tabel = "guards")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
