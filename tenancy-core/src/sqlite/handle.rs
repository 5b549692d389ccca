//! What only a SQLite handle has: its budget of open pools, and the folder of tenant files.

use sqlx::Sqlite;

use super::PoolBudget;
use crate::lifecycle::Tenants;

impl Tenants<Sqlite> {
    /// The same handle with another budget of open pools and connections (see
    /// [`PoolBudget`]).
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
}
