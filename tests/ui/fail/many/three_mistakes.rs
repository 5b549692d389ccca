// Three unrelated mistakes (an unknown attribute, an unsupported type, no primary key): one
// build reports all three.
use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(tabel = "guards")]
struct Guard {
    id: i64,
    #[tenancy(length(max = 50))]
    name: String,
    age: u32,
}

fn main() {}
