//! Knowing whether a tenant exists without a catalog query per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tenancy_core::{Error, Lifecycle, Tenant, TenantEvent, Tenants};

/// How long answers are kept and how many.
///
/// ```
/// use std::time::Duration;
/// use tenancy_axum::CacheConfig;
///
/// let config = CacheConfig::default()
///     .with_positive_ttl(Duration::from_secs(60))
///     .with_negative_ttl(Duration::from_secs(1))
///     .with_capacity(1_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    positive_ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
}

impl Default for CacheConfig {
    /// 30 s for "exists", 5 s for "does not exist", at most 10 000 names.
    fn default() -> Self {
        CacheConfig {
            positive_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            capacity: 10_000,
        }
    }
}

impl CacheConfig {
    /// How long "this tenant exists" is believed: the longest a tenant dropped by another
    /// process (or another [`Tenants`] handle) keeps resolving. Zero disables positive caching.
    pub fn with_positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl;
        self
    }

    /// How long "no such tenant" is believed: the longest a tenant created by another process
    /// keeps answering 404. Zero disables negative caching.
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The most names kept. Requests for random names cannot grow the cache past it; when it is
    /// full, expired answers are forgotten first, then negative ones, then arbitrary ones, down
    /// to seven eighths of the capacity. Zero disables caching.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The positive TTL.
    pub fn positive_ttl(&self) -> Duration {
        self.positive_ttl
    }

    /// The negative TTL.
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn ttl(&self, exists: bool) -> Duration {
        if exists {
            self.positive_ttl
        } else {
            self.negative_ttl
        }
    }
}

/// Where a [`TenantCache`] reads the time: [`SystemClock`] unless built
/// [`with_clock`](TenantCache::with_clock). A clock of your own lets a test expire answers
/// without sleeping.
///
/// ```
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
/// use tenancy_axum::Clock;
///
/// /// Time that moves only when told to.
/// struct ManualClock(Mutex<Instant>);
///
/// impl ManualClock {
///     fn advance(&self, by: Duration) {
///         *self.0.lock().unwrap() += by;
///     }
/// }
///
/// impl Clock for ManualClock {
///     fn now(&self) -> Instant {
///         *self.0.lock().unwrap()
///     }
/// }
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current instant; never earlier than a previous answer.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock ([`Instant::now`]), the default [`Clock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Whether tenants exist, remembered with an expiry, kept current by the lifecycle handle.
///
/// - A miss costs one [`Tenants::exists`] query; its answer is kept for the
///   [positive](CacheConfig::with_positive_ttl) or [negative](CacheConfig::with_negative_ttl) TTL.
/// - The cache [subscribes](Tenants::subscribe) to the handle it was built from: a tenant
///   created, dropped or renamed through that handle (or its clones) is known at once, without
///   waiting for the TTL. Changes made elsewhere (another process, a handle built separately)
///   are seen when the TTL runs out.
/// - Concurrent misses for one name are **not** coalesced: each asks the database (at most one
///   query per request, bounded by the pool). An answer that raced with a lifecycle event is not
///   cached over the event's fresher one.
/// - Database errors are returned, never cached.
///
/// Generic over the handle: [`Tenants`] (PostgreSQL) by default, `Tenants<MySql>` or any
/// [`Lifecycle`].
///
/// Cheap to clone; clones share the entries. The subscription holds only a weak reference, so
/// dropping every clone frees the cache (the handle keeps a no-op callback).
pub struct TenantCache<L = Tenants> {
    shared: Arc<Shared<L>>,
}

impl<L> Clone for TenantCache<L> {
    fn clone(&self) -> Self {
        TenantCache {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<L> {
    tenants: L,
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    entries: Mutex<Entries>,
}

impl<L> fmt::Debug for TenantCache<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache")
            .field("config", &self.shared.config)
            .field("len", &self.shared.lock().map.len())
            .finish_non_exhaustive()
    }
}

impl<L: Lifecycle> TenantCache<L> {
    /// A cache over `tenants` with the [default](CacheConfig::default) configuration.
    pub fn new(tenants: &L) -> Self {
        Self::with_config(tenants, CacheConfig::default())
    }

    /// A cache over `tenants` with `config`.
    pub fn with_config(tenants: &L, config: CacheConfig) -> Self {
        Self::with_clock(tenants, config, SystemClock)
    }

    /// A cache over `tenants` with `config` that reads the time from `clock` (to test expiry
    /// without sleeping; see [`Clock`]).
    pub fn with_clock(tenants: &L, config: CacheConfig, clock: impl Clock) -> Self {
        let shared = Arc::new(Shared {
            tenants: tenants.clone(),
            entries: Mutex::new(Entries::new(config.capacity)),
            config,
            clock: Arc::new(clock),
        });
        let weak: Weak<Shared<L>> = Arc::downgrade(&shared);
        tenants.subscribe(move |event| {
            if let Some(shared) = weak.upgrade() {
                shared.apply(event, shared.clock.now());
            }
        });
        TenantCache { shared }
    }

    /// Whether `tenant` exists: from the cache while its answer is fresh, otherwise from the
    /// database (one [`Tenants::exists`] query).
    ///
    /// # Errors
    ///
    /// The query's error on a miss ([`Error::InvalidTenantName`] if the handle's policy refuses
    /// the name, [`Error::Database`] if the database cannot be reached).
    pub async fn exists(&self, tenant: &Tenant) -> Result<bool, Error> {
        Ok(self.placed(tenant).await?.is_some())
    }

    /// `tenant` as registered, placed where its rows are (a row-level tenant in its
    /// container: [`Tenants::tenant`]), or `None` if it is not a tenant: from the cache while
    /// its answer is fresh, otherwise from the database.
    ///
    /// # Errors
    ///
    /// As [`exists`](Self::exists).
    pub async fn placed(&self, tenant: &Tenant) -> Result<Option<Tenant>, Error> {
        let epoch = {
            let entries = self.shared.lock();
            if let Some(found) = entries.get(tenant.as_str(), self.shared.clock.now()) {
                return Ok(found);
            }
            entries.epoch
        };
        let found = match self.shared.tenants.tenant(tenant.as_str()).await {
            Ok(placed) => Some(placed),
            Err(Error::NotATenant { .. }) => None,
            Err(err) => return Err(err),
        };
        let now = self.shared.clock.now();
        let mut entries = self.shared.lock();
        if entries.epoch != epoch {
            // A lifecycle event or invalidation came in while the query ran; what it recorded
            // is at least as new as this answer, and this answer may predate it.
            return Ok(entries.get(tenant.as_str(), now).unwrap_or(found));
        }
        let exists = found.is_some();
        entries.insert(
            found.as_ref().unwrap_or(tenant),
            exists,
            self.shared.config.ttl(exists),
            now,
        );
        Ok(found)
    }

    /// Forgets what is known about `tenant`; the next lookup asks the database.
    pub fn invalidate(&self, tenant: &Tenant) {
        let mut entries = self.shared.lock();
        entries.map.remove(tenant.as_str());
        entries.epoch += 1;
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.shared.lock();
        entries.map.clear();
        entries.epoch += 1;
    }

    /// How many names are cached (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.shared.lock().map.len()
    }

    /// Whether no name is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    /// The lifecycle handle the cache asks and listens to.
    pub fn tenants(&self) -> &L {
        &self.shared.tenants
    }
}

impl<L> Shared<L> {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The entries are valid after any panic (each update is one map operation).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, event: &TenantEvent, now: Instant) {
        let config = &self.config;
        let mut entries = self.lock();
        entries.epoch += 1;
        match event {
            TenantEvent::Created(tenant) | TenantEvent::Moved(tenant) => {
                entries.insert(tenant, true, config.ttl(true), now)
            }
            TenantEvent::Dropped(tenant) => entries.insert(tenant, false, config.ttl(false), now),
            TenantEvent::Renamed { old, new } => {
                entries.insert(old, false, config.ttl(false), now);
                entries.insert(new, true, config.ttl(true), now);
            }
            // An event this version does not know: forget everything rather than guess.
            _ => entries.map.clear(),
        }
    }
}

/// The bounded map, with time passed in so its rules are tested without sleeping.
struct Entries {
    map: HashMap<Tenant, Entry>,
    capacity: usize,
    /// Bumped by every event and invalidation, so a query that raced with one can tell.
    epoch: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    exists: bool,
    expires: Instant,
}

impl Entries {
    fn new(capacity: usize) -> Self {
        Entries {
            map: HashMap::new(),
            capacity,
            epoch: 0,
        }
    }

    /// The fresh answer for `name`: the tenant as placed if it exists (the key it was cached
    /// under carries its placement), `None` if not; `None` outside if nothing fresh is known.
    fn get(&self, name: &str, now: Instant) -> Option<Option<Tenant>> {
        self.map
            .get_key_value(name)
            .filter(|(_, entry)| entry.expires > now)
            .map(|(tenant, entry)| entry.exists.then(|| tenant.clone()))
    }

    fn insert(&mut self, tenant: &Tenant, exists: bool, ttl: Duration, now: Instant) {
        if ttl.is_zero() || self.capacity == 0 {
            self.map.remove(tenant.as_str());
            return;
        }
        if !self.map.contains_key(tenant.as_str()) && self.map.len() >= self.capacity {
            self.make_room(now);
        }
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        // Removed first: an insert keeps the old key, and the key is where the tenant's rows are.
        self.map.remove(tenant.as_str());
        self.map.insert(tenant.clone(), Entry { exists, expires });
    }

    /// Shrinks the map to seven eighths of the capacity, so sweeps happen at most once per
    /// eighth of the capacity inserted (amortised O(1) per insert).
    fn make_room(&mut self, now: Instant) {
        let target = self.capacity - (self.capacity / 8).max(1);
        self.map.retain(|_, entry| entry.expires > now);
        if self.map.len() > target {
            // Under a flood of made-up names: "does not exist" is the cheapest to learn again.
            self.map.retain(|_, entry| entry.exists);
        }
        if self.map.len() > target {
            // More live tenants than the capacity: forget some, they are asked for again.
            let excess = self.map.len() - target;
            let victims: Vec<Tenant> = self.map.keys().take(excess).cloned().collect();
            for victim in victims {
                self.map.remove(victim.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    const SEC: Duration = Duration::from_secs(1);

    /// Whether `name` is known to exist (`None`: not known).
    fn known(e: &Entries, name: &str, now: Instant) -> Option<bool> {
        e.get(name, now).map(|found| found.is_some())
    }

    #[test]
    fn a_cached_tenant_keeps_where_its_rows_are() {
        let now = Instant::now();
        let mut e = Entries::new(10);
        let acme = t("acme").rows_in(&t("free"));
        e.insert(&acme, true, SEC, now);
        let found = e.get("acme", now).unwrap().unwrap();
        assert_eq!(found.container(), "free");
        // Promoted (its own container now): the new answer replaces the placement.
        e.insert(&t("acme"), true, SEC, now);
        assert!(!e.get("acme", now).unwrap().unwrap().is_row_level());
    }

    #[test]
    fn answers_expire() {
        let now = Instant::now();
        let mut e = Entries::new(10);
        e.insert(&t("a"), true, SEC, now);
        e.insert(&t("b"), false, 2 * SEC, now);
        assert_eq!(known(&e, "a", now), Some(true));
        assert_eq!(known(&e, "b", now + SEC), Some(false));
        assert_eq!(known(&e, "a", now + SEC), None);
        assert_eq!(known(&e, "b", now + 2 * SEC), None);
        assert_eq!(known(&e, "c", now), None);
    }

    #[test]
    fn zero_ttl_or_capacity_caches_nothing() {
        let now = Instant::now();
        let mut e = Entries::new(10);
        e.insert(&t("a"), true, SEC, now);
        e.insert(&t("a"), false, Duration::ZERO, now);
        assert_eq!(known(&e, "a", now), None);
        let mut none = Entries::new(0);
        none.insert(&t("a"), true, SEC, now);
        assert!(none.map.is_empty());
    }

    #[test]
    fn size_is_bounded_and_negatives_go_first() {
        let now = Instant::now();
        let mut e = Entries::new(16);
        for i in 0..4 {
            e.insert(&t(&format!("real_{i}")), true, SEC, now);
        }
        for i in 0..1_000 {
            e.insert(&t(&format!("fake_{i}")), false, SEC, now);
            assert!(e.map.len() <= 16);
        }
        for i in 0..4 {
            assert_eq!(known(&e, &format!("real_{i}"), now), Some(true), "real_{i}");
        }
    }

    #[test]
    fn expired_entries_are_swept_first() {
        let now = Instant::now();
        let mut e = Entries::new(8);
        for i in 0..8 {
            e.insert(&t(&format!("old_{i}")), true, SEC, now);
        }
        let later = now + 2 * SEC;
        e.insert(&t("new"), false, SEC, later);
        assert_eq!(e.map.len(), 1);
        assert_eq!(known(&e, "new", later), Some(false));
    }

    #[test]
    fn more_live_tenants_than_capacity_still_bounded() {
        let now = Instant::now();
        let mut e = Entries::new(8);
        for i in 0..100 {
            e.insert(&t(&format!("real_{i}")), true, SEC, now);
            assert!(e.map.len() <= 8);
        }
        assert_eq!(known(&e, "real_99", now), Some(true));
    }

    #[test]
    fn updating_a_cached_name_does_not_evict() {
        let now = Instant::now();
        let mut e = Entries::new(2);
        e.insert(&t("a"), true, SEC, now);
        e.insert(&t("b"), true, SEC, now);
        e.insert(&t("a"), false, SEC, now);
        assert_eq!(known(&e, "a", now), Some(false));
        assert_eq!(known(&e, "b", now), Some(true));
    }
}
