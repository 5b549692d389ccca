// A row-level test tenant is registered in a container through the test's `Tenants` handle
// and dropped after the test: committed mode only. `row_level` with `rollback` is an error at
// `row_level`, in either order; `row_level` twice at the second.

#[tenancy::test(row_level, rollback)]
async fn row_level_rollback(_tenant: tenancy::Tenant) {}

#[tenancy::test(rollback, fixtures("guards"), row_level)]
async fn rollback_row_level(_tenant: tenancy::Tenant) {}

#[tenancy::test(row_level, row_level)]
async fn twice() {}

fn main() {}
