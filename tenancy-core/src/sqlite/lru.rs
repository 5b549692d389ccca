//! The LRU of a SQLite handle's tenant pools, bounded by its [`PoolBudget`] in connections
//! and pools: a pool opening a connection beyond the budget (a new tenant's first, or a busy
//! tenant's next) makes room by closing the least recently used tenants' idle connections
//! beyond their first, then by letting their pools go.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::PoolBudget;
use crate::tenant::Tenant;

/// The open tenant pools, least recently used first out, within the handle's budget of
/// connections and pools ([`PoolBudget`]). Shared (weakly) with each pool's `after_connect`
/// callback, which makes room when a pool grows.
#[derive(Default)]
pub(super) struct Lru {
    pools: HashMap<Tenant, Kept>,
    tick: u64,
    /// The id of the next pool opened.
    next_id: u64,
}

/// A pool in the LRU: when it was last used, and which pool it is (a tenant's pool let go
/// and opened again is another).
struct Kept {
    pool: SqlitePool,
    used: u64,
    id: u64,
}

/// What making room let go: connections and pools, dropped once the LRU is unlocked (each
/// connection's worker thread then closes its file).
#[derive(Default)]
pub(super) struct Released {
    connections: Vec<SqliteConnection>,
    pools: Vec<SqlitePool>,
}

impl Lru {
    pub(super) fn get(&mut self, tenant: &Tenant) -> Option<SqlitePool> {
        self.tick += 1;
        let tick = self.tick;
        self.pools.get_mut(tenant).map(|kept| {
            kept.used = tick;
            kept.pool.clone()
        })
    }

    /// An id for a pool about to be opened.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Keeps `pool` (with id `id`) for `tenant`, or the one another task put there first,
    /// which is returned; then makes room for it within the budget.
    pub(super) fn insert(
        &mut self,
        tenant: &Tenant,
        pool: SqlitePool,
        id: u64,
        budget: &PoolBudget,
        released: &mut Released,
    ) -> SqlitePool {
        if let Some(existing) = self.get(tenant) {
            return existing;
        }
        self.tick += 1;
        let kept = Kept {
            pool: pool.clone(),
            used: self.tick,
            id,
        };
        self.pools.insert(tenant.clone(), kept);
        self.make_room(Some(tenant), 0, budget, released);
        pool
    }

    /// Pool `id` of `tenant` opened a connection: if it is the pool kept for the tenant, it
    /// counts as used now, and room is made for the connection.
    pub(super) fn grown(&mut self, tenant: &Tenant, id: u64, budget: &PoolBudget, released: &mut Released) {
        self.tick += 1;
        let tick = self.tick;
        match self.pools.get_mut(tenant) {
            Some(kept) if kept.id == id => kept.used = tick,
            _ => return,
        }
        self.make_room(Some(tenant), 0, budget, released);
    }

    /// How many pools are kept.
    pub(super) fn len(&self) -> usize {
        self.pools.len()
    }

    /// The connections open in the kept pools (idle or in use).
    pub(super) fn connections(&self) -> usize {
        self.pools
            .values()
            .map(|kept| kept.pool.size() as usize)
            .sum()
    }

    /// Brings the kept pools within the budget with room for `extra` more connections (and a
    /// pool for them), never touching `keep`'s: first closes the idle connections beyond the
    /// first of the least recently used pools, then lets the least recently used pools go
    /// (closing their idle connections; a holder keeps the rest).
    pub(super) fn make_room(
        &mut self,
        keep: Option<&Tenant>,
        extra: usize,
        budget: &PoolBudget,
        released: &mut Released,
    ) {
        let max_pools = budget.get_max_pools();
        let max_connections = budget.get_max_connections();
        let new_pool = usize::from(extra > 0);
        let mut open = self.connections() + extra;
        if open <= max_connections && self.pools.len() + new_pool <= max_pools {
            return;
        }
        let mut order: Vec<(u64, Tenant)> = self
            .pools
            .iter()
            .filter(|(tenant, _)| Some(*tenant) != keep)
            .map(|(tenant, kept)| (kept.used, tenant.clone()))
            .collect();
        order.sort_unstable();
        for (_, tenant) in &order {
            if open <= max_connections {
                break;
            }
            let pool = &self.pools[tenant].pool;
            while open > max_connections && pool.size() > 1 {
                let Some(idle) = pool.try_acquire() else {
                    break;
                };
                released.connections.push(idle.detach());
                open -= 1;
            }
        }
        let mut pools = self.pools.len() + new_pool;
        for (_, tenant) in &order {
            if open <= max_connections && pools <= max_pools {
                break;
            }
            let Some(kept) = self.pools.remove(tenant) else {
                continue;
            };
            open = open.saturating_sub(kept.pool.size() as usize);
            pools -= 1;
            while let Some(idle) = kept.pool.try_acquire() {
                released.connections.push(idle.detach());
            }
            // Dropped, not closed: a caller still holding it keeps working; its connections
            // close when the last handle goes (and idle ones after the idle timeout).
            released.pools.push(kept.pool);
        }
    }

    pub(super) fn remove(&mut self, tenant: &Tenant) -> Option<SqlitePool> {
        self.pools.remove(tenant).map(|kept| kept.pool)
    }
}

/// The `after_connect` callback of pool `id` of `tenant`: a connection it opens (one more for
/// a busy tenant, or its first again after the idle ones were closed) makes room in the LRU,
/// if the LRU still keeps that pool (one let go is outside the budget).
pub(super) fn on_connect(
    lru: Weak<Mutex<Lru>>,
    tenant: Tenant,
    id: u64,
    budget: PoolBudget,
) -> impl for<'c> Fn(
    &'c mut SqliteConnection,
    PoolConnectionMetadata,
) -> BoxFuture<'c, Result<(), sqlx::Error>>
       + Send
       + Sync
       + 'static {
    move |_, _| {
        if let Some(lru) = lru.upgrade() {
            let mut released = Released::default();
            lock(&lru).grown(&tenant, id, &budget, &mut released);
            drop(released);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

pub(super) fn lock(lru: &Mutex<Lru>) -> std::sync::MutexGuard<'_, Lru> {
    lru.lock().unwrap_or_else(|e| e.into_inner())
}
