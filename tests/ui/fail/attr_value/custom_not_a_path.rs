use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(custom = "not a path")]
    name: String,
    #[tenancy(custom = check_position)]
    position: String,
}

fn main() {}
