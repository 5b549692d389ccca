//! What only a SQLite handle has: its budget of open connections and pools, and the folder of
//! tenant files.

use sqlx::Sqlite;

use super::PoolBudget;
use crate::lifecycle::Tenants;

impl Tenants<Sqlite> {
    /// The same handle with another budget of open connections and pools (see
    /// [`PoolBudget`]). The handle's pools start over: the LRU of the returned handle is
    /// empty.
    pub fn with_pool_budget(self, budget: PoolBudget) -> Self {
        self.rebuild(|s| s.store = budget)
            .expect("the rest was checked when the handle was built")
    }

    /// The folder holding the tenant files.
    pub fn folder(&self) -> &std::path::Path {
        self.store().folder()
    }

    /// The handle's budget of open pools and connections.
    pub fn pool_budget(&self) -> &PoolBudget {
        self.store().budget()
    }

    /// How many tenant pools the handle keeps open now (at most
    /// [`PoolBudget::get_max_pools`]).
    pub fn open_pools(&self) -> usize {
        self.store().open_pools()
    }

    /// How many connections the pools the handle keeps have open now, idle or in use (at
    /// most [`PoolBudget::get_max_connections`], but for connections being opened at this
    /// moment). Pools let go but still held by a caller are not counted.
    pub fn open_connections(&self) -> usize {
        self.store().open_connections()
    }
}
