// An option the attribute does not know: the error points at its key.

#[tenancy::test(migrations = "migrations/tenant", isolation = "rollback")]
async fn unknown_key() {}

fn main() {}
