use tenancy::TenantModel;

pub struct Rank {
    pub level: i32,
}

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    rank: Rank,
    previous: Option<Rank>,
}

fn main() {}
