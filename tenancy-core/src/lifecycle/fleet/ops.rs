//! The operations of a [`Fleet`]: each one [`Tenants`]'s operation on the tenant's database;
//! those that change the map (create, drop, rename, clone, import, `create_in`) under the
//! tenant's fleet lock in the home, the map changed in the same home transaction once the
//! database's operation committed. A process that stops between the two leaves a tenant the
//! map does not name, or names where it is not: [`Fleet::reconcile`] reads the registries and
//! puts the map right.

use std::future::Future;

use futures_util::future::try_join_all;
use tokio::io::{AsyncBufRead, AsyncWrite};

use super::store::FleetStore;
use super::Fleet;
use crate::backend::Backend;
use crate::error::Error;
use crate::lifecycle::report::{
    DropOptions, Dropped, MigrateOptions, Moved, Outcome, Planned, RelocateOptions, Relocated,
    Report, TenantStatus,
};
use crate::lifecycle::store::{Operation, Store};
use crate::lifecycle::{Lifecycle, TenantEvent, Tenants};
use crate::tenant::Tenant;
use crate::tenant_pool::TenantPool;

/// One home operation's connection.
type HomeOp<B> = <<B as Backend>::Store as Store<B>>::Op;

impl<B: Backend> Fleet<B> {
    /// Validates `name` under the home's naming policy.
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        self.home().parse(name)
    }

    /// Runs `steps` in one home operation holding the fleet locks of `tenants` (in name
    /// order), then commits what it changed of the map.
    pub(crate) async fn holding<T: Send>(
        &self,
        tenants: &[&Tenant],
        steps: impl AsyncFnOnce(&mut HomeOp<B>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut sorted: Vec<&Tenant> = tenants.to_vec();
        sorted.sort();
        let home = self.home();
        home.operation(Operation::Fleet, sorted[0], async |op| {
            for tenant in &sorted {
                home.store().hold(op, tenant, true).await?;
            }
            steps(op).await
        })
        .await
    }

    /// Refuses `tenant` for a new tenant if the map or any database has it (a database may
    /// hold a tenant the map does not name yet: [`reconcile`](Self::reconcile) adopts it).
    async fn refuse_taken(&self, op: &mut HomeOp<B>, tenant: &Tenant) -> Result<(), Error> {
        let taken = Error::TenantExists {
            tenant: tenant.clone(),
        };
        if self.home().store().map_in(op, tenant).await?.is_some() {
            return Err(taken);
        }
        for i in 0..self.count() {
            if self.handle(i).exists(tenant.as_str()).await? {
                return Err(taken);
            }
        }
        Ok(())
    }

    /// The database a new tenant goes to: the one with the fewest tenants (the first of
    /// those).
    async fn fewest(&self) -> Result<usize, Error> {
        let counts = self.home().store().map_counts().await?;
        let held = |i: usize| {
            counts
                .iter()
                .find(|(name, _)| name == self.name_of(i))
                .map_or(0, |(_, n)| *n)
        };
        Ok((0..self.count())
            .min_by_key(|i| (held(*i), *i))
            .expect("a fleet has a database"))
    }

    /// Creates tenant `name` in `database`, as [`Tenants::create`] does, and puts it in the map.
    /// [`Error::TenantExists`] if any database has it.
    pub async fn create_on(&self, name: impl AsRef<str>, database: &str) -> Result<Tenant, Error> {
        let i = self.index_of(database)?;
        self.create_at(name, Some(i), async |tenants, tenant| {
            tenants.create(tenant.as_str()).await
        })
        .await
    }

    /// Makes a tenant named `name` with `make` on database `at` (the one with the fewest if
    /// `None`) under its fleet lock, and puts it in the map.
    async fn create_at(
        &self,
        name: impl AsRef<str>,
        at: Option<usize>,
        make: impl AsyncFnOnce(&Tenants<B>, &Tenant) -> Result<Tenant, Error>,
    ) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        let (made, i) = self
            .holding(&[&tenant], async |op| {
                self.refuse_taken(op, &tenant).await?;
                let i = match at {
                    Some(i) => i,
                    None => self.fewest().await?,
                };
                let made = make(self.handle(i), &tenant).await?;
                self.home()
                    .store()
                    .map_set(op, &tenant, Some(self.name_of(i)))
                    .await?;
                Ok((made, i))
            })
            .await?;
        self.remember(tenant.as_str(), i);
        self.publish(TenantEvent::Created(made.clone()));
        Ok(made)
    }

    /// Every tenant of database `database` that the map puts there, by name.
    pub async fn list_on(&self, database: &str) -> Result<Vec<Tenant>, Error> {
        let i = self.index_of(database)?;
        let map = self.home().store().map_all().await?;
        self.mapped_in(i, &map).await
    }

    /// Every tenant with the database the map puts it in, by name: the map read once, each
    /// database's registry once. A tenant a database holds and the map puts elsewhere (a copy
    /// a stopped move left, until [`reconcile`](Self::reconcile)) is not listed.
    pub async fn list_by_database(&self) -> Result<Vec<(Tenant, &str)>, Error> {
        let map = self.home().store().map_all().await?;
        let mut all = Vec::new();
        for i in 0..self.count() {
            let here = self.mapped_in(i, &map).await?;
            all.extend(here.into_iter().map(|t| (t, self.name_of(i))));
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// The tenants database `i` holds that `map` (by name) puts there.
    async fn mapped_in(&self, i: usize, map: &[(String, String)]) -> Result<Vec<Tenant>, Error> {
        let database = self.name_of(i);
        let mut tenants = self.handle(i).list().await?;
        tenants.retain(|t| {
            map.binary_search_by(|(name, _)| name.as_str().cmp(t.as_str()))
                .is_ok_and(|at| map[at].1 == database)
        });
        Ok(tenants)
    }

    /// The handle of the database tenant `name` is in (read from the map now).
    async fn on(&self, name: &str) -> Result<(&Tenants<B>, Tenant), Error> {
        let tenant = self.parse(name)?;
        let i = self.read_route(&tenant).await?;
        Ok((self.handle(i), tenant))
    }

    /// The reports of the databases' runs (run concurrently), as one with every tenant by
    /// name.
    async fn merged<T, Fut>(runs: impl IntoIterator<Item = Fut>) -> Result<Report<T>, Error>
    where
        Fut: Future<Output = Result<Report<T>, Error>>,
    {
        let reports = try_join_all(runs).await?;
        let mut tenants: Vec<_> = reports.into_iter().flat_map(|r| r.tenants).collect();
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(Report { tenants })
    }
}

impl<B: Backend> Lifecycle for Fleet<B> {
    type Backend = B;

    fn parse(&self, name: &str) -> Result<Tenant, Error> {
        Fleet::parse(self, name)
    }

    fn subscribe(&self, f: impl Fn(&TenantEvent) + Send + Sync + 'static) {
        Fleet::subscribe(self, f)
    }

    async fn pool_for(&self, tenant: &Tenant) -> Result<TenantPool<B>, Error> {
        let i = self.route(tenant).await?;
        self.handle(i).pool_for(tenant).await
    }

    async fn create(&self, name: &str) -> Result<Tenant, Error> {
        self.create_at(name, None, async |tenants, tenant| {
            tenants.create(tenant.as_str()).await
        })
        .await
    }

    async fn drop_tenant(&self, name: &str) -> Result<Dropped, Error> {
        self.drop_with(name, DropOptions::default()).await
    }

    async fn drop_with(&self, name: &str, options: DropOptions) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let dropped = self
            .holding(&[&tenant], async |op| {
                let store = self.home().store();
                let Some(database) = store.map_in(op, &tenant).await? else {
                    return Err(Error::NotATenant {
                        tenant: tenant.clone(),
                    });
                };
                let dropped = self
                    .handle(self.index_of(&database)?)
                    .drop_with(tenant.as_str(), options)
                    .await?;
                store.map_set(op, &tenant, None).await?;
                Ok(dropped)
            })
            .await?;
        self.forget_route(&tenant);
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    async fn create_in(&self, name: &str, container: &str) -> Result<Tenant, Error> {
        let container = self.parse(container)?;
        let i = self.read_route(&container).await?;
        self.create_at(name, Some(i), async |tenants, tenant| {
            tenants.create_in(tenant.as_str(), &container).await
        })
        .await
    }

    async fn rename(&self, old: &str, new: &str) -> Result<Tenant, Error> {
        let (old, new) = (self.parse(old)?, self.parse(new)?);
        let (renamed, i) = self
            .holding(&[&old, &new], async |op| {
                let store = self.home().store();
                let Some(database) = store.map_in(op, &old).await? else {
                    return Err(Error::NotATenant {
                        tenant: old.clone(),
                    });
                };
                if old != new {
                    self.refuse_taken(op, &new).await?;
                }
                let i = self.index_of(&database)?;
                let renamed = self.handle(i).rename(old.as_str(), new.as_str()).await?;
                store.map_set(op, &old, None).await?;
                store.map_set(op, &new, Some(&database)).await?;
                Ok((renamed, i))
            })
            .await?;
        self.forget_route(&old);
        self.remember(new.as_str(), i);
        self.publish(TenantEvent::Renamed {
            old,
            new: renamed.clone(),
        });
        Ok(renamed)
    }

    async fn promote(&self, name: &str) -> Result<Relocated, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.promote(name).await
    }

    async fn demote(&self, name: &str, container: &str) -> Result<Relocated, Error> {
        self.demote_with(name, container, RelocateOptions::default())
            .await
    }

    async fn promote_with(&self, name: &str, options: RelocateOptions) -> Result<Relocated, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.promote_with(name, options).await
    }

    async fn demote_with(
        &self,
        name: &str,
        container: &str,
        options: RelocateOptions,
    ) -> Result<Relocated, Error> {
        let (tenants, _) = self.on(name).await?;
        let (into, container) = self.on(container).await?;
        if !std::ptr::eq(tenants, into) {
            return Err(Error::Unsupported {
                operation: "demote",
                reason: format!(
                    "tenant \"{name}\" and tenant \"{container}\" are in two databases; move one to the other's first (Fleet::move_tenant)"
                ),
            });
        }
        tenants.demote_with(name, &container, options).await
    }

    async fn clone_tenant(&self, from: &str, to: &str) -> Result<Tenant, Error> {
        let source = self.parse(from)?;
        let i = self.read_route(&source).await?;
        self.create_at(to, Some(i), async |tenants, tenant| {
            tenants.clone_tenant(from, tenant.as_str()).await
        })
        .await
    }

    async fn export<W: AsyncWrite + Unpin + Send>(
        &self,
        name: &str,
        writer: W,
    ) -> Result<Moved, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.export(name, writer).await
    }

    async fn import<R: AsyncBufRead + Unpin + Send>(
        &self,
        reader: R,
        name: &str,
    ) -> Result<Tenant, Error> {
        self.create_at(name, None, async |tenants, tenant| {
            tenants.import(reader, tenant.as_str()).await
        })
        .await
    }

    async fn exists(&self, name: &str) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        Ok(self.home().store().map_of(tenant.as_str()).await?.is_some())
    }

    async fn list(&self) -> Result<Vec<Tenant>, Error> {
        let all = self.list_by_database().await?;
        Ok(all.into_iter().map(|(tenant, _)| tenant).collect())
    }

    async fn tenant(&self, name: &str) -> Result<Tenant, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.tenant(name).await
    }

    async fn migrate(&self, name: &str) -> Result<Outcome, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.migrate(name).await
    }

    async fn rollback(&self, name: &str, target: i64) -> Result<Outcome, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.rollback(name, target).await
    }

    async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        let n = self.count();
        Self::merged((0..n).map(|i| self.handle(i).migrate_all(options.clone()))).await
    }

    async fn rollback_all(&self, target: i64, options: MigrateOptions) -> Result<Report, Error> {
        let n = self.count();
        Self::merged((0..n).map(|i| self.handle(i).rollback_all(target, options.clone()))).await
    }

    async fn plan(&self) -> Result<Report<Planned>, Error> {
        let n = self.count();
        Self::merged((0..n).map(|i| self.handle(i).plan())).await
    }

    async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        let each = try_join_all((0..self.count()).map(|i| self.handle(i).status())).await?;
        let mut all: Vec<TenantStatus> = each.into_iter().flatten().collect();
        all.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(all)
    }

    async fn status_of(&self, name: &str) -> Result<TenantStatus, Error> {
        let (tenants, _) = self.on(name).await?;
        tenants.status_of(name).await
    }
}
