#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use tenancy_core::*;
pub use tenancy_derive::TenantModel;

/// `#[tenancy::test]`: an async test with a fresh, migrated tenant, dropped afterwards (also
/// when the test panics). Needs the `testing` feature; see [`testing`].
///
/// Options: `migrations = "..."`, `fixtures(...)`, `rollback` (PostgreSQL: one transaction,
/// rolled back), `backend = "mysql"` / `"sqlite"`, and `row_level`: the test's tenant is a
/// row-level tenant ([`Tenants::create_in`], [`Tenant::is_row_level`]) in a fresh, migrated
/// container made for the test; fixtures run in the container, and the rows they write with
/// `tenant_id` set to [`testing::FIXTURE_TENANT`] become the tenant's; the tenant, then the
/// container, are dropped after the test (and swept after a killed run). `row_level` is
/// committed mode's: it is refused with `rollback`.
pub use tenancy_derive::test;

/// The tenant of each request for axum / tower services: resolvers, `TenantLayer`,
/// `CurrentTenant`, `TenantCache` (the `tenancy-axum` crate, with the `axum` feature).
#[cfg(feature = "axum")]
pub use tenancy_axum as axum;

#[doc = include_str!("../docs/derive.md")]
pub mod derive {}
