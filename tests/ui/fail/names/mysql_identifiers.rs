// MariaDB refuses identifiers ending with white space or holding characters outside the Basic
// Multilingual Plane; a MySQL model with such a name is refused at compile time, each name at
// its token.
use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(backend = "mysql", table = "guards ")]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    #[tenancy(rename = "badge🛡")]
    badge: String,
}

fn main() {}
