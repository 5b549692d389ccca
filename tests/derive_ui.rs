//! Compile-time behaviour of `#[derive(TenantModel)]` and `#[tenancy::test]` (`fail/test_attr`):
//! what they accept, and the error each mistake produces (`tests/ui/fail/<group>/<case>.stderr`).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test derive_ui`, then
//! read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/**/*.rs");
}
