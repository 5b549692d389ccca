// A `#[tenancy::test]` function must be `async`: the error points at `fn`.

#[tenancy::test]
fn not_async(tenant: tenancy::Tenant) {
    let _ = tenant;
}

fn main() {}
