//! Schema-per-tenant multi-tenancy for PostgreSQL on sqlx.
#![warn(missing_docs)]

pub use tenancy_core::*;
pub use tenancy_derive::TenantModel;
