//! Compile-time behaviour of `#[derive(TenantModel)]` and `#[tenancy::test]` (`fail/test_attr`):
//! what they accept, and the error each mistake produces (`tests/ui/fail/<group>/<case>.stderr`).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test derive_ui`, then
//! read every changed `.stderr`.

#[test]
fn ui() {
    test_attr_folders();
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/**/*.rs");
}

/// `#[tenancy::test]` looks its migrations folder and fixtures up relative to the crate being
/// compiled, which for trybuild's cases is its project, `<target>/tests/trybuild/tenancy`:
/// the default folder `migrations/tenant` and the fixture `guards` exist there (empty), so
/// that only the cases about missing ones report them.
fn test_attr_folders() {
    let exe = std::env::current_exe().expect("the test's path");
    // <target>/<profile>/deps/derive_ui-<hash>
    let target = exe.ancestors().nth(3).expect("the target folder");
    let project = target.join("tests/trybuild/tenancy");
    std::fs::create_dir_all(project.join("migrations/tenant")).expect("create migrations/tenant");
    std::fs::create_dir_all(project.join("migrations/fixtures"))
        .expect("create migrations/fixtures");
    std::fs::write(project.join("migrations/fixtures/guards.sql"), "").expect("write a fixture");
}
