#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use tenancy_core::*;
pub use tenancy_derive::TenantModel;

/// `#[tenancy::test]`: an async test with a fresh, migrated tenant, dropped afterwards (also
/// when the test panics). Needs the `testing` feature; see [`testing`].
pub use tenancy_derive::test;

/// The tenant of each request for axum / tower services: resolvers, `TenantLayer`,
/// `CurrentTenant`, `TenantCache` (the `tenancy-axum` crate, with the `axum` feature).
#[cfg(feature = "axum")]
pub use tenancy_axum as axum;

#[doc = include_str!("../docs/derive.md")]
pub mod derive {}
