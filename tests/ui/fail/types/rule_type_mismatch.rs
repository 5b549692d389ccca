// Rule mistakes only the type checker sees (behind an alias, or in the values): each error points
// at the rule or value to change.
use tenancy::TenantModel;

type Age = i32;

fn check_code(code: &i64) -> Result<(), String> {
    Err(code.to_string())
}

#[derive(TenantModel)]
struct Guard {
    #[tenancy(id)]
    id: i64,
    #[tenancy(required)]
    age: Age,
    #[tenancy(custom = "check_code")]
    code: String,
    #[tenancy(range(min = 0, max = 1.5))]
    score: f64,
}

fn main() {}
