use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: u64,
    age: u32,
    rank: Option<u8>,
    scores: Vec<u16>,
    photo: Vec<u8>,
}

fn main() {}
