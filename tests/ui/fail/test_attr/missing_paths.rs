// A migrations folder or a fixture file that does not exist: each error points at its string.

#[tenancy::test(migrations = "db/nowhere", fixtures("guards", "seed/none.sql"))]
async fn missing_migrations() {}

#[tenancy::test(fixtures("guards", "absent"))]
async fn missing_fixture() {}

fn main() {}
