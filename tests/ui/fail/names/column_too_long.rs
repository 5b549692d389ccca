use tenancy::TenantModel;

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    date_of_the_first_day_of_service_in_the_royal_palace_guard_of_agrabah: String,
}

fn main() {}
