// SQLite keeps each tenant in a file of its own: no shared schema to put the table in.
use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(backend = "sqlite", shared = "main")]
struct Plan {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
}

fn main() {}
