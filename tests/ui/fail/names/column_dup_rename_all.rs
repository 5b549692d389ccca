use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(rename_all = "lowercase")]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(rename = "firstname")]
    given_name: String,
    #[allow(non_snake_case)]
    firstName: String,
}

fn main() {}
