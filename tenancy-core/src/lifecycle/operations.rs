//! The tenant lifecycle, written once for every backend over its [`Store`]: create, drop,
//! rename, migrate and roll back one tenant, and the reads (exists, list, status). Each
//! operation validates its names, runs in its span, takes the tenant's lock, checks what it
//! found there, lets the store do each step, ends with the store's commit or undo, explains its
//! error, and announces what it changed to the handle's subscribers.

use sqlx::migrate::Migration;

use super::plan::History;
use super::report::{DropOptions, Dropped, Outcome, TenantStatus};
use super::store::{CreateHook, Direction, Found, Operation, Place, Store};
use super::{TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;
use crate::trace;

/// What an operation expects to find of its tenant under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// Registered, its container there.
    Own,
    /// Neither registered (as either kind) nor its container there.
    Free,
    /// Registered as a row-level tenant.
    Placed,
}

/// Refuses to act on what an operation found of a tenant.
pub(crate) fn expect<B: Backend>(
    tenant: &Tenant,
    found: Found,
    registered: bool,
    container: bool,
) -> Result<(), Error> {
    let tenant = tenant.clone();
    match (found.registered, registered) {
        (true, false) => return Err(Error::TenantExists { tenant }),
        (false, true) => return Err(Error::NotATenant { tenant }),
        _ => {}
    }
    match (found.container, container) {
        (true, false) => Err(Error::ContainerExists {
            tenant,
            container: B::CONTAINER,
        }),
        (false, true) => Err(Error::ContainerMissing {
            tenant,
            container: B::CONTAINER,
        }),
        _ => Ok(()),
    }
}

impl<B: Backend> Tenants<B> {
    /// Runs one operation of kind `operation` on the store: begins it, runs `steps` on it,
    /// and ends it with the store's commit or undo; the error names its tenant.
    pub(crate) async fn operation<T: Send>(
        &self,
        operation: Operation,
        tenant: &Tenant,
        steps: impl AsyncFnOnce(&mut <B::Store as Store<B>>::Op) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let store = self.store();
        let result = async {
            let mut op = store.begin(operation).await?;
            let result = steps(&mut op).await;
            store.finish(op, result).await
        }
        .await;
        match result {
            Ok(value) => Ok(value),
            Err(err) => Err(store.explain(tenant, err).await),
        }
    }

    /// Runs one `operation` (see [`operation`](Self::operation)) in the lifecycle span `name`
    /// of `tenant`: what a public operation that takes its own locks runs as.
    pub(crate) async fn traced<T: Send>(
        &self,
        name: &'static str,
        operation: Operation,
        tenant: &Tenant,
        steps: impl AsyncFnOnce(&mut <B::Store as Store<B>>::Op) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let span = trace::lifecycle::<B>(name, tenant);
        trace::within(span, self.operation(operation, tenant, steps)).await
    }

    /// Runs one `operation` (see [`operation`](Self::operation)) on `tenant` under its lock:
    /// takes the lock, checks that `tenant` is as `expected`, then runs `steps`.
    pub(crate) async fn locked<T: Send>(
        &self,
        operation: Operation,
        tenant: &Tenant,
        expected: Expected,
        steps: impl AsyncFnOnce(&mut <B::Store as Store<B>>::Op) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.operation(operation, tenant, async |op| {
            let store = self.store();
            store.lock(op, &tenant.own()).await?;
            match expected {
                Expected::Own => expect::<B>(tenant, store.inspect(op, tenant).await?, true, true)?,
                Expected::Free => {
                    expect::<B>(tenant, store.inspect(op, tenant).await?, false, false)?;
                    self.refuse_placed(Some(op), tenant).await?;
                }
                Expected::Placed => {
                    if store.placement_in(op, tenant).await?.is_none() {
                        return Err(Error::NotATenant {
                            tenant: tenant.clone(),
                        });
                    }
                }
            }
            steps(op).await
        })
        .await
    }

    /// Makes `tenant` (locked and free) and applies every up migration to it.
    pub(crate) async fn make_migrated(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        let store = self.store();
        store.make(op, tenant).await?;
        store.enter(op, tenant).await?;
        let ups: Vec<&Migration> = self.migrations().ups().collect();
        store.apply(op, tenant, &ups, Direction::Up).await
    }

    /// Creates tenant `name` with every migration applied, or nothing, and returns it. Of
    /// concurrent creates of one name exactly one succeeds; the others get
    /// [`Error::TenantExists`]. [`Error::ContainerExists`] if a schema (database, file) of that
    /// name exists but is no tenant; [`Error::Migration`] names a failing migration.
    ///
    /// PostgreSQL creates the schema, runs the migrations and registers the tenant in one
    /// transaction, sent as one batch (on a failure it is redone a statement at a time, which
    /// names the exact error). MySQL, whose DDL commits at once, registers the tenant, creates
    /// its database and migrates it, and on any failure drops the database and unregisters
    /// the tenant again. SQLite builds the migrated file under a temporary name and links it
    /// into place as `<folder>/<name>.db`, never replacing a file.
    pub async fn create(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        self.create_inner(name.as_ref(), None).await
    }

    /// [`create`](Self::create), running `hook` after the migrations on the connection that
    /// ran them, as part of the creation: if it fails, nothing is created.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// tenants
    ///     .create_with("acme", Box::new(|conn, _tenant| Box::pin(async move {
    ///         // Unqualified names resolve in the new tenant here.
    ///         sqlx::query("INSERT INTO guards (name, position) VALUES ('Abu', 'Guard')")
    ///             .execute(conn)
    ///             .await?;
    ///         Ok(())
    ///     })))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_with(
        &self,
        name: impl AsRef<str>,
        hook: CreateHook<B>,
    ) -> Result<Tenant, Error> {
        self.create_inner(name.as_ref(), Some(hook)).await
    }

    async fn create_inner(&self, name: &str, hook: Option<CreateHook<B>>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        self.refuse_placed(None, &tenant).await?;
        let span = trace::lifecycle::<B>("create", &tenant);
        trace::within(span, async {
            if hook.is_none() {
                let done = self
                    .store()
                    .create_at_once(&tenant, self.migrations())
                    .await;
                match done {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(err) => return Err(self.store().explain(&tenant, err).await),
                }
            }
            self.locked(Operation::Create, &tenant, Expected::Free, async |op| {
                self.make_migrated(op, &tenant).await?;
                if let Some(hook) = hook {
                    self.store().hook(op, &tenant, hook).await?;
                }
                Ok(())
            })
            .await
        })
        .await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// Drops tenant `name` and everything in it, and unregisters it. Refuses names that are
    /// not tenants ([`Error::NotATenant`]): `drop` never touches a schema (database, file) it
    /// did not create. A registered tenant whose container is already gone is unregistered and
    /// reported as [`Dropped::Unregistered`]. On SQLite the tenant's pool in this process is
    /// closed first (waiting for connections in use), and its file removed with `-wal` and
    /// `-shm`.
    ///
    /// A row-level tenant ([`create_in`](Self::create_in)) is dropped in steps, none of them a
    /// long transaction: first, once its writes in flight have ended, it is marked as being
    /// dropped in the registry (PostgreSQL and SQLite then refuse its inserts, and updates of
    /// the tenant column to it, with [`Error::NotPlaced`]); then its rows are deleted from
    /// every table of its container with the handle's tenant column, [`DROP_BATCH_ROWS`] rows
    /// per statement and transaction, table by table (referencing tables first); last, what is
    /// left is deleted and it is unregistered in one transaction. If it stops part-way (an
    /// error, the process killed, the future dropped), the tenant stays marked: `drop` of it
    /// again carries on where it stopped, and until then `create`, `create_in`, `rename` onto
    /// its name, and `rename`, `promote` of it are refused with [`Error::BeingDropped`].
    /// Meanwhile it is still a tenant for [`exists`](Self::exists), [`list`](Self::list) and
    /// [`tenant`](Self::tenant), and its reads see the rows not deleted yet; its writes are
    /// refused from the mark on ([`Error::NotPlaced`]). To choose the batch size or follow it
    /// batch by batch, [`drop_with`](Self::drop_with).
    ///
    /// [`DROP_BATCH_ROWS`]: crate::DROP_BATCH_ROWS
    pub async fn drop(&self, name: impl AsRef<str>) -> Result<Dropped, Error> {
        self.drop_with(name, DropOptions::default()).await
    }

    /// [`drop`](Self::drop), deleting a row-level tenant's rows `options.rows_per_batch` at a
    /// time and telling `options.on_progress` after each batch (committed) how many rows it
    /// deleted from which table ([`DropProgress`](crate::DropProgress)). The reports' `rows`
    /// add up to [`Dropped::Rows`]'s `deleted`. A tenant with a container of its own is
    /// dropped as `drop` does, without reports.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// use tenancy_core::DropOptions;
    ///
    /// let options = DropOptions::default().rows_per_batch(5_000).on_progress(|p| {
    ///     eprintln!("{:?}: {} rows ({} so far)", p.table, p.rows, p.rows_so_far);
    /// });
    /// tenants.drop_with("acme", options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_with(
        &self,
        name: impl AsRef<str>,
        options: DropOptions,
    ) -> Result<Dropped, Error> {
        let tenant = self.parse(name)?;
        let span = trace::lifecycle::<B>("drop", &tenant);
        if let Some(placed) = self.store().placement(&tenant).await? {
            let dropped = trace::within(span, self.drop_rows(&placed, &options)).await?;
            self.publish(TenantEvent::Dropped(placed));
            return Ok(dropped);
        }
        let dropped = trace::within(
            span,
            self.operation(Operation::Drop, &tenant, async |op| {
                let store = self.store();
                store.lock(op, &tenant).await?;
                let found = store.inspect(op, &tenant).await?;
                if !found.registered {
                    return Err(Error::NotATenant {
                        tenant: tenant.clone(),
                    });
                }
                self.refuse_holding(op, &tenant).await?;
                store.remove(op, &tenant, found).await?;
                Ok(if found.container {
                    Dropped::Schema
                } else {
                    Dropped::Unregistered
                })
            }),
        )
        .await?;
        self.publish(TenantEvent::Dropped(tenant));
        Ok(dropped)
    }

    /// Renames tenant `old` to `new`, keeping its data and migration history, under both
    /// names' locks (taken in name order, so two renames cannot wait on each other).
    /// [`Error::SameName`] if they are the same; [`Error::NotATenant`] or
    /// [`Error::ContainerMissing`] for `old`; [`Error::TenantExists`] or [`Error::ContainerExists`]
    /// for `new`. MySQL, which has no `RENAME DATABASE`, moves every table to a new database
    /// with one `RENAME TABLE`, and refuses a database holding views, triggers, routines or
    /// events ([`Error::Unsupported`], nothing changed). SQLite links the file under the new
    /// name (closing `old`'s pool in this process first).
    ///
    /// A row-level tenant is renamed in its container: its rows take the new name in the
    /// handle's tenant column, and its registry row the new name, in one operation.
    pub async fn rename(
        &self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        if let Some(placed) = self.store().placement(&self.parse(&old)?).await? {
            let new = self.parse(new)?;
            return self.rename_rows(&placed, &new).await;
        }
        let (old, new) = self
            .onto_new_name(Operation::Rename, old, new, async |op, old, new| {
                self.store().rename(op, old, new).await
            })
            .await?;
        self.publish(TenantEvent::Renamed {
            old,
            new: new.clone(),
        });
        Ok(new)
    }

    /// Runs `operation` (rename or clone) from tenant `source` onto the free name `target`:
    /// both validated ([`Error::SameName`] if they are one), both locked, `source` checked to
    /// be a tenant with its container and `target` to be free, then `steps`, in the span of
    /// the tenant the operation is about (rename: `source`; clone: the new `target`), which its
    /// errors name.
    pub(crate) async fn onto_new_name(
        &self,
        operation: Operation,
        source: impl AsRef<str>,
        target: impl AsRef<str>,
        steps: impl AsyncFnOnce(&mut <B::Store as Store<B>>::Op, &Tenant, &Tenant) -> Result<(), Error>,
    ) -> Result<(Tenant, Tenant), Error> {
        let source = self.parse(source)?;
        let target = self.parse(target)?;
        let (name, done, about) = match operation {
            Operation::Clone => ("clone", "cloned", &target),
            _ => ("rename", "renamed", &source),
        };
        if source == target {
            return Err(Error::SameName {
                tenant: source,
                operation: done,
            });
        }
        self.refuse_row_level_source(name, done, &source).await?;
        self.refuse_placed(None, &target).await?;
        self.traced(name, operation, about, async |op| {
            self.lock_source_and_target(op, &source, &target).await?;
            steps(op, &source, &target).await
        })
        .await?;
        Ok((source, target))
    }

    /// Refuses `operation` (`done`: its past participle) whose source `tenant` is a row-level
    /// tenant: [`Error::Unsupported`] naming it and the container its rows are in, before
    /// anything is locked or written. A clone or an export takes a tenant's container whole.
    pub(crate) async fn refuse_row_level_source(
        &self,
        operation: &'static str,
        done: &str,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        match self.store().placement(tenant).await? {
            Some(placed) => Err(Error::Unsupported {
                operation,
                reason: format!(
                    "tenant \"{placed}\" is a row-level tenant, its rows in the tables of tenant \"{container}\"; only a tenant with its own {kind} can be {done} ({operation} \"{container}\" as a whole, which holds the rows of every tenant in it)",
                    container = placed.container(),
                    kind = B::CONTAINER,
                ),
            }),
            None => Ok(()),
        }
    }

    /// Takes both names' locks (in name order, so two operations on the same pair cannot
    /// wait on each other), then checks that `source` is a tenant with its container and that
    /// `target` is neither a tenant, nor a container, nor a row-level tenant (again under the
    /// lock: a `create_in` may have taken the name while this waited for it).
    async fn lock_source_and_target(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        source: &Tenant,
        target: &Tenant,
    ) -> Result<(), Error> {
        let store = self.store();
        self.lock_both(op, source, target).await?;
        expect::<B>(source, store.inspect(op, source).await?, true, true)?;
        expect::<B>(target, store.inspect(op, target).await?, false, false)?;
        self.refuse_placed(Some(op), target).await
    }

    /// Takes the locks of the names `a` and `b` in name order, so two operations on the same
    /// pair cannot wait on each other; together ([`Store::lock_each`]), so that an operation
    /// reading from one snapshot (a PostgreSQL clone) takes it once it holds both.
    pub(crate) async fn lock_both(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        a: &Tenant,
        b: &Tenant,
    ) -> Result<(), Error> {
        let (first, second) = if a < b { (a, b) } else { (b, a) };
        let store = self.store();
        store.lock_each(op, &[&first.own(), &second.own()]).await
    }

    /// Whether `name` is a tenant (registered). An invalid name is an error, not `false`.
    pub async fn exists(&self, name: impl AsRef<str>) -> Result<bool, Error> {
        let tenant = self.parse(name)?;
        Ok(self.store().exists(&tenant).await? || self.store().placement(&tenant).await?.is_some())
    }

    /// Every tenant, sorted by name: only those created through this handle's registry, in
    /// their own containers or row-level ([`create_in`](Self::create_in), each placed in its
    /// container).
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        let mut all = self.store().list().await?;
        all.extend(self.store().placements().await?);
        all.sort();
        Ok(all)
    }

    /// Every tenant's applied, pending and changed migrations (PostgreSQL and MySQL: one
    /// registry query; SQLite: each tenant's file, a few at a time).
    ///
    /// A row-level tenant ([`create_in`](Self::create_in)) shows its container's migrations,
    /// which are its tables'.
    pub async fn status(&self) -> Result<Vec<TenantStatus>, Error> {
        let mut all = self.container_status().await?;
        for tenant in self.store().placements().await? {
            let container = all
                .iter()
                .find(|s| s.tenant.as_str() == tenant.container())
                .cloned();
            if let Some(status) = container {
                all.push(TenantStatus { tenant, ..status });
            }
        }
        all.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(all)
    }

    /// [`status`](Self::status) of the tenants with containers of their own: what migrations
    /// run on.
    pub(crate) async fn container_status(&self) -> Result<Vec<TenantStatus>, Error> {
        let histories = self.store().histories().await?;
        Ok(histories
            .into_iter()
            .map(|(tenant, history)| self.migrations().status(tenant, history))
            .collect())
    }

    /// Tenant `name`'s applied, pending and changed migrations. [`Error::NotATenant`] if it is
    /// not registered.
    pub async fn status_of(&self, name: impl AsRef<str>) -> Result<TenantStatus, Error> {
        let tenant = self.parse(name)?;
        // A row-level tenant's migrations are its container's.
        let (tenant, container) = match self.store().placement(&tenant).await? {
            Some(placed) => (placed.clone(), placed.container_tenant()),
            None => (tenant.clone(), tenant),
        };
        match self.store().history_of(&container).await {
            Ok(Some(history)) => Ok(self.migrations().status(tenant, history)),
            Ok(None) => Err(Error::NotATenant { tenant }),
            Err(err) => Err(err.about(&tenant)),
        }
    }

    /// Applies the pending migrations of tenant `name` under its lock, after checking there
    /// that the tenant is registered ([`Error::NotATenant`]) and its container exists
    /// ([`Error::ContainerMissing`]: nothing is run, so unqualified migration SQL never resolves
    /// in another schema). [`Error::Migration`] names the migration that failed;
    /// [`Error::ChecksumMismatch`] if an applied one was edited since (never re-run);
    /// [`Error::Dirty`] if one stopped part-way earlier on a server without transactional DDL
    /// (MySQL).
    ///
    /// PostgreSQL and SQLite apply them in one transaction, so the tenant ends at its old or
    /// its new version (PostgreSQL in one round trip when nothing changed since it was read,
    /// and durably: [`Error::ServerRestarted`] if the server restarted meanwhile). MySQL
    /// records each migration's start and end.
    pub async fn migrate(&self, name: impl AsRef<str>) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let store = self.store();
        let span = trace::migration::<B>("migrate", &tenant, self.latest_version());
        trace::within(span, async {
            let read = match store.history_unlocked(&tenant).await {
                Ok(read) => read,
                Err(err) => return Err(store.explain(&tenant, err).await),
            };
            if let Some(read) = &read {
                read.check_clean(&tenant)?;
                if self
                    .migrations()
                    .pending(&tenant, &read.applied)?
                    .is_empty()
                {
                    return Ok(Outcome::UpToDate);
                }
            }
            let started = store.run_started().await?;
            let (outcome, changed) = self.migrate_one(&tenant, read).await?;
            if changed > 0 {
                store.run_finished(&started, changed, "migrate").await?;
            }
            Ok(outcome)
        })
        .await
    }

    /// Migrates `tenant`, whose history was `read` without its lock if the store could (see
    /// [`Store::migrate_at_once`]); returns the outcome and whether it changed the tenant.
    pub(crate) async fn migrate_one(
        &self,
        tenant: &Tenant,
        read: Option<History>,
    ) -> Result<(Outcome, usize), Error> {
        let store = self.store();
        if let Some(read) = read {
            read.check_clean(tenant)?;
            let pending = self.migrations().pending(tenant, &read.applied)?;
            if pending.is_empty() {
                return Ok((Outcome::UpToDate, 0));
            }
            // Anything but done is redone a step at a time, which finds the tenant afresh and
            // names the exact error.
            if let Ok(true) = store.migrate_at_once(tenant, &read, &pending).await {
                let versions = pending.iter().map(|m| m.version).collect();
                return Ok((Outcome::Migrated(versions), 1));
            }
        }
        let outcome = self.migrate_locked(tenant, Direction::Up, 0).await?;
        let changed = usize::from(outcome != Outcome::UpToDate);
        Ok((outcome, changed))
    }

    /// Reverts every migration of tenant `name` above version `target` with its down
    /// migration, newest first, under its lock and in one transaction where the backend has
    /// transactional DDL. [`Error::Irreversible`] if one has no down migration (nothing is run
    /// then); otherwise the errors of [`migrate`](Self::migrate).
    pub async fn rollback(&self, name: impl AsRef<str>, target: i64) -> Result<Outcome, Error> {
        let tenant = self.parse(name)?;
        let span = trace::migration::<B>("rollback", &tenant, Some(target));
        trace::within(span, self.migrate_locked(&tenant, Direction::Down, target)).await
    }

    /// Migrates (`Up`) or rolls back to `target` (`Down`) one tenant a step at a time, under
    /// its lock, after checking there that it is registered, its container exists and no
    /// migration of it stopped part-way.
    pub(crate) async fn migrate_locked(
        &self,
        tenant: &Tenant,
        direction: Direction,
        target: i64,
    ) -> Result<Outcome, Error> {
        self.locked(Operation::Migrate, tenant, Expected::Own, async |op| {
            let store = self.store();
            let history = store.history(op, tenant).await?;
            history.check_clean(tenant)?;
            let migrations = self.migrations();
            let plan = match direction {
                Direction::Up => migrations.pending(tenant, &history.applied)?,
                Direction::Down => migrations.to_revert(tenant, &history.applied, target)?,
            };
            if plan.is_empty() {
                return Ok(Outcome::UpToDate);
            }
            store.enter(op, tenant).await?;
            store.apply(op, tenant, &plan, direction).await?;
            let versions = plan.iter().map(|m| m.version).collect();
            Ok(match direction {
                Direction::Up => Outcome::Migrated(versions),
                Direction::Down => Outcome::RolledBack(versions),
            })
        })
        .await
    }

    /// The newest migration version, which `migrate` and `migrate_all` go to.
    pub(crate) fn latest_version(&self) -> Option<i64> {
        self.migrations().versions().last().copied()
    }
}
