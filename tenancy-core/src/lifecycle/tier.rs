//! Moving a tenant between the two tiers, written once over each backend's [`Place`]:
//! [`promote`](Tenants::promote) gives a row-level tenant a container of its own (made and
//! migrated, its rows moved in), [`demote`](Tenants::demote) moves a tenant's rows into
//! another tenant's container and drops its own. Each is one operation under both names'
//! locks: all or nothing.

use super::operations::expect;
use super::report::{RelocateOptions, Relocated};
use super::store::{Move, Moved, Operation, Place, Store, Toward, Watch};
use super::{TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;

impl<B: Backend> Tenants<B> {
    /// Gives row-level tenant `name` ([`create_in`](Self::create_in)) a container of its
    /// own: in one operation, under the locks of `name` and of its container, the container
    /// is made and migrated as [`create`](Self::create) would, the tenant's rows move from
    /// every table of the container it shared that has the handle's tenant column
    /// ([`with_tenant_column`](Self::with_tenant_column)) into the table of the same name in
    /// its own (keeping their keys; its sequences continue after the shared ones), and it is
    /// registered as a tenant of its own. All or nothing. Returns where it is now and how many
    /// rows moved.
    ///
    /// While it runs, the tenant's reads go on (they see its rows where they were). Updates
    /// and deletes of its rows wait for the whole move and then find no rows there (they
    /// moved). Its inserts wait, on PostgreSQL where every table moved has a primary key, only
    /// for the end: its rows are copied first, then its inserts are held and the rows inserted
    /// meanwhile copied too (elsewhere they wait for the whole move). The first promote out of
    /// a container also holds every tenant's writes to its tables while it runs (installing the
    /// guard below takes a table lock); on Citus every promote does, from the start of the
    /// rows' move to its commit.
    ///
    /// Afterwards, a [`Tenant`] resolved before it still names the old container: its inserts
    /// there fail with [`Error::NotPlaced`] (the guard: a trigger on the container's tables
    /// that checks a row's tenant is placed there); its reads, updates and deletes there find
    /// no rows, unless the handle has row security, which refuses them too. Resolve the tenant
    /// again ([`tenant`](Self::tenant)); the axum layer's cache follows the change.
    ///
    /// [`Error::NotATenant`] if `name` is not a row-level tenant (a tenant with its own
    /// container is refused with [`Error::Unsupported`]), [`Error::ContainerExists`] if a
    /// container of its name exists; [`Error::Pending`] (and the others of
    /// [`clone_tenant`](Self::clone_tenant)) if the shared container is not at the latest
    /// migration.
    ///
    /// PostgreSQL: one transaction. MySQL / MariaDB (whose DDL commits at once): the database
    /// is made and migrated first, then one transaction moves the rows and switches the
    /// placement; a failure before its commit drops the database again, as a failed `create`
    /// does. The guard there is two triggers per shared table, so a container that has had a
    /// tenant promoted out of it is refused by `clone_tenant` and `rename` (which refuse
    /// databases holding triggers). SQLite (which commits each file on its own): the shared
    /// file's write lock is held for the whole move (every tenant of it waits to write, within
    /// the busy timeout), the new file is built and filled under a temporary name, linked into
    /// place and registered, and then the shared file deletes the rows and adds the guard (a
    /// table of the tenants moved out, read by a trigger per shared table) in one commit.
    /// Citus: one transaction; the tenant's schema is a distributed schema, and the guard is
    /// Citus's (the tenant's name in the registry's reference table `row_gone`, read by a
    /// trigger on the workers' shards).
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let moved = tenants.promote("acme").await?;
    /// assert!(!moved.tenant.is_row_level());
    /// # Ok(()) }
    /// ```
    ///
    /// To follow it table by table, [`promote_with`](Self::promote_with).
    pub async fn promote(&self, name: impl AsRef<str>) -> Result<Relocated, Error> {
        self.promote_with(name, RelocateOptions::default()).await
    }

    /// [`promote`](Self::promote), telling `options.on_progress` how it goes
    /// ([`RelocateProgress`](crate::RelocateProgress)): as it starts making the tenant's
    /// container, after each table's rows are copied (and on PostgreSQL caught up) and deleted
    /// from the shared container, and as it switches the placement. Each table is reported
    /// once its statement is done: a table's rows move in one statement.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// use tenancy_core::{RelocateOptions, RelocatePhase};
    ///
    /// let options = RelocateOptions::default().on_progress(|p| {
    ///     if let (RelocatePhase::Copying, Some(table)) = (p.phase, p.table) {
    ///         eprintln!("{table}: {} rows ({}/{} tables)", p.rows, p.done, p.total);
    ///     }
    /// });
    /// let moved = tenants.promote_with("acme", options).await?;
    /// eprintln!("{} rows moved", moved.rows);
    /// # Ok(()) }
    /// ```
    pub async fn promote_with(
        &self,
        name: impl AsRef<str>,
        options: RelocateOptions,
    ) -> Result<Relocated, Error> {
        let own = self.parse(name)?;
        let watch = Watch(options.on_progress.as_ref());
        self.relocate(&own, Toward::Own, async |op, column| {
            let store = self.store();
            let placed = self.placed_locked(op, &own).await?;
            let container = placed.container_tenant();
            let found = store.inspect(op, &own).await?;
            expect::<B>(&own, found, false, false)?;
            let history = store.history(op, &container).await?;
            self.at_latest(&container, &history)?;
            let rows = Move::new(&placed, column, Toward::Own, watch);
            rows.making();
            self.make_migrated(op, &own).await?;
            let moved = store.move_rows(op, &rows).await?;
            Ok((own.clone(), moved))
        })
        .await
    }

    /// The reverse of [`promote`](Self::promote): tenant `name`, with its own container,
    /// becomes a row-level tenant of `container` (a tenant with its own container at the same
    /// migrations). In one operation, under both names' locks: the rows of every table of
    /// `name` with the handle's tenant column are inserted into `container`'s table of the
    /// same name with that column set to `name` (keeping their keys: a key another tenant's
    /// row has fails the whole demote), `container`'s sequences move past the moved keys,
    /// and `name`'s container is dropped. All or nothing.
    ///
    /// Keys that the two containers both handed out after a promote collide: the demote then
    /// fails whole ([`Error::Database`], a unique violation), so give shared tables keys that
    /// include the tenant column, or UUIDs, where tenants move back. On MySQL the rows are
    /// committed into `container` before `name`'s database is dropped: if that drop fails, the
    /// tenant is registered both ways (its own container answers first) until it is dropped.
    ///
    /// [`Error::Unsupported`] if a table of `name` without the tenant column holds rows (they
    /// would have nowhere to go; nothing is moved), or if `name` holds row-level tenants
    /// itself; [`Error::NotATenant`] /
    /// [`Error::ContainerMissing`] if either is not a tenant with its container,
    /// [`Error::SameName`] if they are one, [`Error::Pending`] if either is behind the latest
    /// migration. Afterwards, statements of a [`Tenant`] resolved before it fail (its
    /// container is gone).
    ///
    /// To follow it table by table, [`demote_with`](Self::demote_with).
    pub async fn demote(
        &self,
        name: impl AsRef<str>,
        container: &Tenant,
    ) -> Result<Relocated, Error> {
        self.demote_with(name, container, RelocateOptions::default())
            .await
    }

    /// [`demote`](Self::demote), telling `options.on_progress` how it goes
    /// ([`RelocateProgress`](crate::RelocateProgress)): after each table's rows are copied
    /// into `container`, and as it switches the placement (and drops the tenant's own
    /// container), as [`promote_with`](Self::promote_with) does.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants, free: tenancy_core::Tenant) -> Result<(), tenancy_core::Error> {
    /// use tenancy_core::RelocateOptions;
    ///
    /// let options = RelocateOptions::default().on_progress(|p| {
    ///     eprintln!("{:?} {:?}: {} rows so far", p.phase, p.table, p.rows_so_far);
    /// });
    /// tenants.demote_with("acme", &free, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn demote_with(
        &self,
        name: impl AsRef<str>,
        container: &Tenant,
        options: RelocateOptions,
    ) -> Result<Relocated, Error> {
        let (own, container, placed) = self.parse_placed(name, container)?;
        if own == container {
            return Err(Error::SameName {
                tenant: own,
                operation: "demoted into",
            });
        }
        let watch = Watch(options.on_progress.as_ref());
        self.relocate(&own, Toward::Shared, async |op, column| {
            let store = self.store();
            self.lock_both(op, &own, &container).await?;
            let found = store.inspect(op, &own).await?;
            expect::<B>(&own, found, true, true)?;
            expect::<B>(&container, store.inspect(op, &container).await?, true, true)?;
            self.refuse_holding(op, &own).await?;
            for tenant in [&own, &container] {
                let history = store.history(op, tenant).await?;
                self.at_latest(tenant, &history)?;
            }
            let moved = store
                .move_rows(op, &Move::new(&placed, column, Toward::Shared, watch))
                .await?;
            store.remove(op, &own, found).await?;
            Ok((placed.clone(), moved))
        })
        .await
    }

    /// Runs a move of tenant `own`'s rows `toward` a tier ([`promote`](Self::promote) or
    /// [`demote`](Self::demote)): refused before anything starts if the store cannot move
    /// rows, else one operation in its span, whose `steps` get the handle's tenant column and
    /// return the tenant as placed after the move and the rows moved, told to subscribers.
    async fn relocate(
        &self,
        own: &Tenant,
        toward: Toward,
        steps: impl AsyncFnOnce(&mut <B::Store as Store<B>>::Op, &str) -> Result<(Tenant, Moved), Error>,
    ) -> Result<Relocated, Error> {
        let name = toward.operation();
        let operation = match toward {
            Toward::Own => Operation::Promote,
            Toward::Shared => Operation::Demote,
        };
        let column = self.tenant_column().to_owned();
        let (tenant, moved) = self
            .traced(name, operation, own, async |op| steps(op, &column).await)
            .await?;
        self.publish(TenantEvent::Moved(tenant.clone()));
        Ok(Relocated {
            tenant,
            rows: moved.rows,
            copying: moved.copying,
        })
    }

    /// Row-level tenant `own` as registered, with its name's and its container's locks taken
    /// in name order (read again under them: a concurrent operation may have moved it).
    async fn placed_locked(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        own: &Tenant,
    ) -> Result<Tenant, Error> {
        let store = self.store();
        let Some(seen) = store.placement_in(op, own).await? else {
            return Err(match store.inspect(op, own).await?.registered {
                true => Error::Unsupported {
                    operation: "promote",
                    reason: format!("tenant \"{own}\" has a container of its own already"),
                },
                false => Error::NotATenant {
                    tenant: own.clone(),
                },
            });
        };
        self.lock_both(op, own, &seen.container_tenant()).await?;
        if store.being_dropped(Some(op), own).await? {
            return Err(Error::BeingDropped {
                tenant: own.clone(),
            });
        }
        match store.placement_in(op, own).await? {
            Some(placed) if placed.container() == seen.container() => Ok(placed),
            _ => Err(Error::Unsupported {
                operation: "promote",
                reason: format!(
                    "tenant \"{own}\" was moved or dropped while it was being promoted; try again"
                ),
            }),
        }
    }
}

/// Refuses a promote out of `from` whose deletes would reach rows that do not move: of
/// `keys`, the foreign keys whose `ON DELETE` changes the referencing row (cascade, set null,
/// set default) as (referencing container, referencing table, key, referenced table of
/// `from`), one into a table `moves` says moves, from a table that does not move with it.
pub(crate) fn refuse_changing_keys(
    from: &Tenant,
    moves: impl Fn(&str) -> bool,
    keys: Vec<(String, String, String, String)>,
) -> Result<(), Error> {
    for (container, table, key, referenced) in keys {
        if moves(&referenced) && !(container == from.as_str() && moves(&table)) {
            return Err(Error::Unsupported {
                operation: "promote",
                reason: format!(
                    "foreign key {key:?} of {container}.{table} changes its rows when a row of \
                     {referenced:?} is deleted (ON DELETE CASCADE, SET NULL or SET DEFAULT), and \
                     those rows do not move with the tenant; nothing was moved"
                ),
            });
        }
    }
    Ok(())
}

/// A demote refused: `table` of tenant `own` has rows and no tenant column `column`.
pub(crate) fn nowhere_to_go(table: &str, own: &Tenant, shared: &Tenant, column: &str) -> Error {
    Error::Unsupported {
        operation: "demote",
        reason: format!(
            "table {table:?} of tenant \"{own}\" holds rows and has no column {column:?}: they would have nowhere to go in \"{shared}\""
        ),
    }
}

/// A promote undone: of `table`, `copied` rows of tenant `own` were copied but `deleted`
/// deleted (a write got past the locks).
pub(crate) fn counts_differ(table: &str, own: &Tenant, copied: u64, deleted: u64) -> Error {
    Error::Unsupported {
        operation: "promote",
        reason: format!(
            "table {table:?}: {copied} row(s) of tenant \"{own}\" copied but {deleted} deleted; nothing was moved"
        ),
    }
}
