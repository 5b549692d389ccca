#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use tenancy_core::*;
pub use tenancy_derive::TenantModel;

#[doc = include_str!("../docs/derive.md")]
pub mod derive {}
