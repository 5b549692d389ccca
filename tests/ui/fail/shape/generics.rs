use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard<T> {
    #[tenancy(id)]
    id: i64,
    value: T,
}

fn main() {}
