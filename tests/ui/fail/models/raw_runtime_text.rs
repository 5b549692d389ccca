// A raw statement's text is a `&'static str`: a string built at run time (with a tenant's name
// or user input in it) is not one.
use tenancy::{Raw, Tenant};

fn main() {
    let tenant = Tenant::new("acme").unwrap();
    let text = format!("SELECT * FROM {tenant}.guards");
    let _ = Raw::<sqlx::Postgres>::new(&text);
}
