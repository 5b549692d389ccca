use tenancy::TenantModel;

#[derive(TenantModel)]
enum Rank {
    Private,
    Captain,
}

fn main() {}
