//! Tenants spread over several databases of one backend: the handle [`Fleet`], a
//! [`Tenants`] handle per database and, in the first one's registry (the *home*), the map of
//! each tenant to its database. Every operation is the one of [`Tenants`] on the tenant's
//! database, under the tenant's fleet lock where it changes the map ([`ops`]); a tenant moves
//! to another database by an export streamed into an import while its writes wait
//! ([`moving`]); what a process that stopped part-way left is put right by
//! [`Fleet::reconcile`] ([`reconcile`]). The backend gives the map, its lock, the fence that
//! holds a tenant's writes and the digest of its tables ([`FleetStore`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::Postgres;

use super::{Subscribers, TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;

pub(crate) mod moving;
pub(crate) mod ops;
pub(crate) mod reconcile;
pub(crate) mod store;

use self::store::FleetStore;

/// How long a [`Fleet`] trusts what it read of a tenant's database before reading it again,
/// unless the handle says otherwise ([`Fleet::with_route_ttl`]).
pub const DEFAULT_ROUTE_TTL: Duration = Duration::from_secs(5);

/// One handle over tenants spread over several databases of one backend (PostgreSQL, or
/// MySQL/MariaDB servers, where a tenant cannot [move](Self::move_tenant) between them): a
/// [`Tenants`] handle per database, each named, the first one the *home*, whose registry also
/// maps each tenant to its database. It does everything a [`Tenants`] handle does
/// ([`Lifecycle`](crate::Lifecycle)), on the tenant's database; `create` places a tenant in the
/// database with the fewest ([`create_on`](Self::create_on) names one), and `&fleet` is an
/// executor that routes each statement to its tenant's database. A tenant moves to another
/// database with [`move_tenant`](Self::move_tenant).
///
/// ```no_run
/// # async fn demo(a: tenancy_core::Tenants, b: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
/// use tenancy_core::{Fleet, Lifecycle};
/// let fleet = Fleet::new([("eu1", a), ("eu2", b)]).await?;
/// let acme = fleet.create("acme").await?; // in the database with the fewest tenants
/// assert_eq!(fleet.database_of("acme").await?, "eu1");
/// let moved = fleet.move_tenant("acme", "eu2").await?; // its writes wait meanwhile
/// assert_eq!(moved.to, "eu2");
/// # Ok(()) }
/// ```
///
/// Every create, drop, rename, clone and import of a fleet's tenant goes through the fleet
/// (a tenant made through one database's own handle is not in the map;
/// [`reconcile`](Self::reconcile) adopts it). Each database is a database of its own (two handles on one
/// database with two registries would share its schemas). The home's map changes in a
/// transaction of the home's pool held through each operation (PostgreSQL; on MySQL, on a
/// connection of its own, as every lifecycle operation there): give the home's pool at least
/// two connections.
pub struct Fleet<B: Backend = Postgres> {
    inner: Arc<FleetInner<B>>,
}

impl<B: Backend> Clone for Fleet<B> {
    fn clone(&self) -> Self {
        Fleet {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> std::fmt::Debug for Fleet<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field(
                "databases",
                &self
                    .inner
                    .databases
                    .iter()
                    .map(|d| &d.0)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

struct FleetInner<B: Backend> {
    databases: Vec<(String, Tenants<B>)>,
    /// What was read of each tenant's database (by container name), and when.
    routes: RwLock<HashMap<Arc<str>, (usize, Instant)>>,
    ttl: Duration,
    subscribers: Subscribers,
}

impl<B: Backend> Fleet<B> {
    /// A fleet over `databases` (name and handle; the first is the home, whose registry holds
    /// the map), after putting right what a process that stopped part-way left
    /// ([`reconcile`](Self::reconcile)). Refused ([`Error::Unsupported`]): no database, a name
    /// given twice or empty, handles whose tenant migrations differ, SQLite, Citus.
    pub async fn new<N: Into<String>>(
        databases: impl IntoIterator<Item = (N, Tenants<B>)>,
    ) -> Result<Self, Error> {
        let databases: Vec<(String, Tenants<B>)> = databases
            .into_iter()
            .map(|(name, tenants)| (name.into(), tenants))
            .collect();
        let refuse = |reason: String| Error::Unsupported {
            operation: "Fleet::new",
            reason,
        };
        let Some((_, home)) = databases.first() else {
            return Err(refuse("no database was given".to_owned()));
        };
        let ours: Vec<(i64, &[u8])> = home
            .migrations()
            .ups()
            .map(|m| (m.version, &*m.checksum))
            .collect();
        for (i, (name, tenants)) in databases.iter().enumerate() {
            if name.is_empty() || name.contains('\0') {
                return Err(refuse(format!("{name:?} is no database name")));
            }
            if databases[..i].iter().any(|(other, _)| other == name) {
                return Err(refuse(format!("database \"{name}\" is named twice")));
            }
            let theirs: Vec<(i64, &[u8])> = tenants
                .migrations()
                .ups()
                .map(|m| (m.version, &*m.checksum))
                .collect();
            if theirs != ours {
                return Err(refuse(format!(
                    "the tenant migrations of database \"{name}\" are not those of \"{}\" (versions {:?} and {:?})",
                    databases[0].0,
                    theirs.iter().map(|m| m.0).collect::<Vec<_>>(),
                    ours.iter().map(|m| m.0).collect::<Vec<_>>(),
                )));
            }
        }
        home.store().map_ready().await?;
        let fleet = Fleet {
            inner: Arc::new(FleetInner {
                databases,
                routes: RwLock::new(HashMap::new()),
                ttl: DEFAULT_ROUTE_TTL,
                subscribers: Subscribers::default(),
            }),
        };
        fleet.reconcile().await?;
        Ok(fleet)
    }

    /// The same fleet, reading a tenant's database again once what it read is older than `ttl`
    /// (default [`DEFAULT_ROUTE_TTL`]). A tenant another process moved is reached where it
    /// was until then: a statement there fails with [`Error::UnknownTenant`] (its old copy is
    /// gone) and never reaches another tenant's data; [`forget_route`](Self::forget_route)
    /// makes the next one read the map again at once. `Duration::ZERO`: read it for every
    /// statement.
    pub fn with_route_ttl(self, ttl: Duration) -> Self {
        let inner = &self.inner;
        Fleet {
            inner: Arc::new(FleetInner {
                databases: inner.databases.clone(),
                routes: RwLock::new(HashMap::new()),
                ttl,
                subscribers: Subscribers::of(inner.subscribers.all()),
            }),
        }
    }

    /// Every database by name, with its handle, the home first.
    pub fn databases(&self) -> impl Iterator<Item = (&str, &Tenants<B>)> {
        self.inner.databases.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The handle of database `name` ([`Error::Unsupported`] naming the fleet's databases if
    /// there is none).
    pub fn database(&self, name: &str) -> Result<&Tenants<B>, Error> {
        Ok(&self.inner.databases[self.index_of(name)?].1)
    }

    /// The name of the database tenant `name` is in, read from the map now
    /// ([`Error::NotATenant`] if the map has no such tenant).
    pub async fn database_of(&self, name: impl AsRef<str>) -> Result<&str, Error> {
        let tenant = self.parse(name)?;
        let i = self.read_route(&tenant).await?;
        Ok(&self.inner.databases[i].0)
    }

    /// Forgets what was read of `tenant`'s database: its next statement reads the map again.
    pub fn forget_route(&self, tenant: &Tenant) {
        self.routes_mut().remove(tenant.container());
    }

    /// The home: the handle whose registry holds the map.
    pub(crate) fn home(&self) -> &Tenants<B> {
        &self.inner.databases[0].1
    }

    pub(crate) fn handle(&self, i: usize) -> &Tenants<B> {
        &self.inner.databases[i].1
    }

    pub(crate) fn name_of(&self, i: usize) -> &str {
        &self.inner.databases[i].0
    }

    pub(crate) fn count(&self) -> usize {
        self.inner.databases.len()
    }

    pub(crate) fn index_of(&self, name: &str) -> Result<usize, Error> {
        self.inner
            .databases
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| Error::Unsupported {
                operation: "a fleet of databases",
                reason: format!(
                    "no database named \"{name}\" (the fleet's: {})",
                    self.inner
                        .databases
                        .iter()
                        .map(|(n, _)| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, (usize, Instant)>> {
        self.inner.routes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that `tenant` (a container's name) is in database `i`.
    pub(crate) fn remember(&self, tenant: &str, i: usize) {
        self.routes_mut()
            .insert(Arc::from(tenant), (i, Instant::now()));
    }

    /// The database of `tenant`'s container: what was read of it if it is recent enough,
    /// else read from the map.
    pub(crate) async fn route(&self, tenant: &Tenant) -> Result<usize, Error> {
        let fresh = {
            let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
            routes
                .get(tenant.container())
                .filter(|(_, at)| at.elapsed() < self.inner.ttl)
                .map(|(i, _)| *i)
        };
        match fresh {
            Some(i) => Ok(i),
            None => self.read_route(&tenant.container_tenant()).await,
        }
    }

    /// The database of `tenant` (by its own name), read from the map now.
    pub(crate) async fn read_route(&self, tenant: &Tenant) -> Result<usize, Error> {
        let Some(database) = self.home().store().map_of(tenant.as_str()).await? else {
            self.routes_mut().remove(tenant.as_str());
            return Err(Error::NotATenant {
                tenant: tenant.own(),
            });
        };
        let i = self.index_of(&database)?;
        self.remember(tenant.as_str(), i);
        Ok(i)
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        self.inner.subscribers.publish(event)
    }

    /// Calls `f` after every create, drop and rename made through this fleet (or its clones)
    /// has committed.
    pub fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        self.inner.subscribers.add(f)
    }
}

impl<B: Backend> crate::exec::OnBackend for &Fleet<B> {
    type Backend = B;
}

/// The fleet routes: each statement runs on its tenant's database, through that database's
/// handle (which routes further where it must). A statement on several tenants at once is
/// refused: they may be in several databases (run it on each database's handle, with the
/// tenants [`Fleet::list_on`] gives).
impl<'c, B: Backend> crate::exec::Executor<'c> for &'c Fleet<B> {
    fn __session(
        self,
        tenant: Option<&Tenant>,
    ) -> futures_util::future::BoxFuture<'c, Result<crate::backend::Session<'c, B>, Error>> {
        let tenant = tenant.cloned();
        Box::pin(async move {
            let Some(tenant) = tenant else {
                return Err(Error::Unsupported {
                    operation: "a statement on several tenants",
                    reason:
                        "the tenants of a fleet may be in several databases; run it on each \
                             database's handle (Fleet::databases) with its tenants (Fleet::list_on)"
                            .to_owned(),
                });
            };
            let i = self.route(&tenant).await?;
            crate::exec::Executor::__session(self.handle(i), Some(&tenant)).await
        })
    }
}
