#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use tenancy_core::*;
pub use tenancy_derive::TenantModel;

/// The tenant of each request for axum / tower services: resolvers, `TenantLayer`,
/// `CurrentTenant`, `TenantCache` (the `tenancy-axum` crate, with the `axum` feature).
#[cfg(feature = "axum")]
pub use tenancy_axum as axum;

#[doc = include_str!("../docs/derive.md")]
pub mod derive {}
