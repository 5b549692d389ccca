use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(range(min = 1.5, max = -2))]
    score: f64,
}

fn main() {}
