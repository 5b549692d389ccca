//! PostgreSQL, and PostgreSQL on a Citus coordinator: a schema per tenant
//! (`"tenant"."guards"`), on Citus a distributed schema living whole on one worker node.
//!
//! What only this backend has: [`PoolSettings`] (a pool sized for many tenants),
//! [`PgBouncer`] (sending through PgBouncer in transaction mode), the Citus [`Flavour`] with
//! [`Placement`] and moving tenants between [`Node`]s, containers of row-level tenants
//! distributed by the tenant column ([`RowSharding`]), [`CitusError`], and (feature
//! `testing`) `RollbackTenant` for `#[tenancy::test(rollback)]`.
//!
//! Inside: the dialect, how a statement is sent (a stale plan re-prepared, PgBouncer's way),
//! what its errors mean (every SQLSTATE the crate looks at is named here and nowhere else), and
//! its lifecycle store.

mod backend;
mod binary;
mod citus;
mod citus_guard;
mod citus_rows;
mod copy;
mod dialect;
#[cfg(test)]
mod dialect_tests;
mod errors;
mod fleet;
mod guard_sql;
mod handle;
mod pgbouncer;
mod pool;
mod place;
mod port;
pub(crate) mod sql;
mod send;
mod store;
mod tier;
#[cfg(feature = "testing")]
mod testing;

pub use citus::{CitusError, CitusRefusal, Flavour, InvalidNode, MoveMode, Node, Placement};
pub use citus_rows::RowSharding;
pub use pgbouncer::PgBouncer;
pub use pool::{PoolSettings, PGBOUNCER_PARAM, STATEMENTS_PER_MODEL};
#[cfg(feature = "testing")]
pub use testing::{RollbackArg, RollbackTenant};
#[cfg(feature = "testing")]
#[doc(hidden)]
pub use testing::__run_rollback;
pub(crate) use dialect::{PgDialect, PgMode};
pub(crate) use errors::{
    is_duplicate_schema, is_lock_timeout, is_not_supported, is_unique_violation,
};
pub(crate) use send::{args, pool_rows, schema_rows};
