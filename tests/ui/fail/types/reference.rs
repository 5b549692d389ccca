use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    name: &'static str,
    photo: &'static [u8],
}

fn main() {}
