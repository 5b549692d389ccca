// `migrations` takes a string: the error points at the value.

#[tenancy::test(migrations = migrations::tenant)]
async fn migrations_value() {}

fn main() {}
