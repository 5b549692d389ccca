//! Nothing to use: this crate's test (`tests/readme.rs`) runs the Rust code blocks of the
//! workspace's `README.md`, which `build.rs` copies out of it, against the test database.
