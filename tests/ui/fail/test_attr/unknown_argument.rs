// An argument a test cannot ask for: the error points at its type and lists the accepted ones.

#[tenancy::test]
async fn unknown_argument(tenant: tenancy::Tenant, name: String) {
    let _ = (tenant, name);
}

fn main() {}
