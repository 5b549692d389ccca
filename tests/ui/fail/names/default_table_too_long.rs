use tenancy::TenantModel;

#[derive(TenantModel)]
struct GuardOfTheRoyalPalaceOfAgrabahAndOfEveryOtherPalaceInTheKingdom {
    #[tenancy(id)]
    id: i64,
}

fn main() {}
