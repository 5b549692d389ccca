//! The SQLite backend: a database file per tenant (`<folder>/<tenant>.db`), each with a small
//! pool of its own kept in an LRU, and a registry file beside them. Every SQLite result code
//! and message the crate looks at is named in this folder (errors.rs) and nowhere else.
//!
//! SQLite cannot name another file's tables in a statement (beyond the `ATTACH` limit of 10
//! per connection), so this backend routes instead of qualifying: a statement names
//! `"main"."table"`, the file its connection has open, and only a tenant's own
//! [`TenantPool`](crate::TenantPool) (from [`Tenants::pool_for`](crate::Tenants::pool_for)) is
//! an executor. A plain `SqlitePool` is not one: it does not know whose file it has open.

mod backend;
mod dialect;
#[cfg(test)]
mod dialect_tests;
mod errors;
mod files;
mod handle;
mod lru;
mod place;
mod port;
mod store;
mod tier;
#[cfg(feature = "testing")]
mod testing;

pub(crate) use dialect::SqliteDialect;
pub(crate) use errors::{is_busy, is_cantopen, is_unique_violation};
pub(crate) use files::{file_options, registry_file};
pub use files::{folder_of, open, PoolBudget};
