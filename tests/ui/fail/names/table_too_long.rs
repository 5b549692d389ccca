use tenancy::TenantModel;

#[derive(TenantModel)]
#[tenancy(table = "guards_of_the_royal_palace_of_agrabah_and_of_every_other_palace_too")]
struct Guard {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
