//! MySQL and MariaDB: a database per tenant (`` `tenant`.`table` ``). Every MySQL error number
//! the crate looks at is named in this folder (errors.rs) and nowhere else.

mod backend;
mod dialect;
#[cfg(test)]
mod dialect_tests;
mod errors;
mod copy;
mod fleet;
mod op;
mod place;
mod port;
mod store;
mod tier;
#[cfg(feature = "testing")]
mod testing;
mod write;

pub(crate) use dialect::{MariaDbInsert, MySqlDialect, MySqlMode};
pub(crate) use errors::{
    is_database_exists, is_duplicate_entry, is_lock_wait_timeout, is_missing_table,
    is_unknown_database,
};
