//! What lifecycle runs report: per-tenant outcomes, reports, progress, options and status.

use std::sync::Arc;

use crate::error::Error;
use crate::tenant::Tenant;

/// What migrating one tenant would do, found by [`Tenants::plan`](crate::Tenants::plan) without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Nothing is pending.
    UpToDate,
    /// These versions would be applied, in order.
    Apply(Vec<i64>),
}

/// What migrating (or rolling back) one tenant did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was pending.
    UpToDate,
    /// These migrations were applied, in order.
    Migrated(Vec<i64>),
    /// These migrations were reverted, in order.
    RolledBack(Vec<i64>),
}

/// One tenant's line in a [`Report`].
#[derive(Debug)]
pub struct TenantResult<T = Outcome, E = Error> {
    /// The tenant.
    pub tenant: Tenant,
    /// What happened to it.
    pub result: Result<T, E>,
}

/// The per-tenant result of a run across tenants: [`Tenants::migrate_all`](crate::Tenants::migrate_all) or
/// [`Tenants::rollback_all`](crate::Tenants::rollback_all) (in tenant name order), or [`Tenants::for_each`](crate::Tenants::for_each) (in the order
/// run, with what its closure returned). A failing tenant does not stop the others.
#[derive(Debug)]
pub struct Report<T = Outcome, E = Error> {
    /// Every tenant, with what happened to it.
    pub tenants: Vec<TenantResult<T, E>>,
}

impl<T, E> Default for Report<T, E> {
    fn default() -> Self {
        Report {
            tenants: Vec::new(),
        }
    }
}

impl<T, E> Report<T, E> {
    /// Tenants that failed, with their errors.
    pub fn failed(&self) -> impl Iterator<Item = (&Tenant, &E)> {
        self.tenants
            .iter()
            .filter_map(|t| t.result.as_ref().err().map(|e| (&t.tenant, e)))
    }

    /// Tenants that succeeded, with their values.
    pub fn succeeded(&self) -> impl Iterator<Item = (&Tenant, &T)> {
        self.tenants
            .iter()
            .filter_map(|t| t.result.as_ref().ok().map(|v| (&t.tenant, v)))
    }

    /// Whether no tenant failed.
    pub fn is_success(&self) -> bool {
        self.failed().next().is_none()
    }
}

impl Report {
    /// Tenants where migrations were applied or reverted.
    pub fn changed(&self) -> impl Iterator<Item = &TenantResult> {
        self.tenants
            .iter()
            .filter(|t| matches!(t.result, Ok(Outcome::Migrated(_) | Outcome::RolledBack(_))))
    }

    /// How many tenants were already up to date.
    pub fn up_to_date(&self) -> usize {
        self.tenants
            .iter()
            .filter(|t| matches!(t.result, Ok(Outcome::UpToDate)))
            .count()
    }
}

/// Progress of a run across tenants, reported after each tenant that had work
/// ([`Tenants::migrate_all`](crate::Tenants::migrate_all)) or after each tenant ([`Tenants::for_each`](crate::Tenants::for_each)).
#[derive(Debug)]
pub struct Progress<'a, T = Outcome, E = Error> {
    /// Tenants finished so far (of those that had work).
    pub done: usize,
    /// Tenants that had work.
    pub total: usize,
    /// The tenant just finished.
    pub tenant: &'a Tenant,
    /// What happened to it.
    pub result: &'a Result<T, E>,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Options of [`Tenants::migrate_all`](crate::Tenants::migrate_all) and [`Tenants::rollback_all`](crate::Tenants::rollback_all).
#[derive(Clone, Default)]
pub struct MigrateOptions {
    /// How many tenants to migrate at once; default: the pool's maximum size.
    pub concurrency: Option<usize>,
    /// Called after each tenant that had work.
    pub on_progress: Option<ProgressFn>,
}

impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("concurrency", &self.concurrency)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl MigrateOptions {
    /// Sets the number of tenants migrated at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Sets the progress callback.
    pub fn on_progress(mut self, f: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }
}

/// One tenant's migration status, from [`Tenants::status`](crate::Tenants::status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    /// The tenant.
    pub tenant: Tenant,
    /// Applied versions, ascending.
    pub applied: Vec<i64>,
    /// Versions not yet applied, ascending.
    pub pending: Vec<i64>,
    /// Applied versions whose checksum differs from the migration's now.
    pub changed: Vec<i64>,
    /// Versions whose migration stopped part-way, on a server without transactional DDL
    /// (MySQL/MariaDB): `migrate` refuses the tenant with [`Error::Dirty`] until it is repaired.
    /// Not in `applied` nor in `pending`. Always empty on PostgreSQL.
    pub dirty: Vec<i64>,
}

/// What [`Tenants::drop`](crate::Tenants::drop) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// The tenant's container (schema, database, file) and everything in it were dropped, and
    /// the tenant unregistered.
    Schema,
    /// The tenant's container was already gone (dropped outside tenancy); the tenant was
    /// unregistered.
    Unregistered,
    /// A row-level tenant: its rows were deleted from its container's tables, and it was
    /// unregistered.
    Rows {
        /// How many rows were deleted.
        deleted: u64,
    },
}

/// What an export or import moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Moved {
    /// Tables.
    pub tables: u64,
    /// Rows, in all tables.
    pub rows: u64,
}

/// What a [`promote`](crate::Tenants::promote) or [`demote`](crate::Tenants::demote) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Relocated {
    /// The tenant as placed now: in its own container after a promote, a row-level tenant
    /// of the container it was moved into after a demote.
    pub tenant: Tenant,
    /// How many rows moved (over every table with the tenant column).
    pub rows: u64,
    /// How long the statements that copied the rows took together, inside the move (the first
    /// pass and, on a PostgreSQL promote, the catch-up of rows inserted meanwhile); the rest is
    /// making and migrating the container, waiting for locks, deleting and switching.
    pub copying: std::time::Duration,
}

/// Which step of a [`promote`](crate::Tenants::promote_with) or
/// [`demote`](crate::Tenants::demote_with) a [`RelocateProgress`] reports. The steps of a
/// table are reported once that table's statement is done, with its rows; `Making` and
/// `Switching` as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelocatePhase {
    /// A promote makes the tenant's own container and migrates it (before any row moves).
    Making,
    /// The tenant's rows of the table were copied into the container they move to
    /// (referenced tables first).
    Copying,
    /// A PostgreSQL promote where every table moved has a primary key: the rows of the table
    /// inserted while the first copy ran were copied too (the tenant's inserts are held from
    /// the first of these on).
    CatchingUp,
    /// A promote: the tenant's rows of the table were deleted from the shared container
    /// (referencing tables first).
    Deleting,
    /// Every row has moved: the placement switches and the move is made durable (a demote
    /// also drops the tenant's own container).
    Switching,
}

/// Where a [`promote`](crate::Tenants::promote_with) or
/// [`demote`](crate::Tenants::demote_with) is, reported to [`RelocateOptions::on_progress`]
/// while it runs: after each table of each step, and at its first and last step. All of it
/// is one operation: a move that fails afterwards moved nothing, whatever was reported.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RelocateProgress<'a> {
    /// `"promote"` or `"demote"`.
    pub operation: &'static str,
    /// The tenant that moves (by its name).
    pub tenant: &'a Tenant,
    /// The container its rows move out of.
    pub from: &'a Tenant,
    /// The container they move into.
    pub to: &'a Tenant,
    /// The step.
    pub phase: RelocatePhase,
    /// The table of the step; `None` for [`Making`](RelocatePhase::Making) and
    /// [`Switching`](RelocatePhase::Switching).
    pub table: Option<&'a str>,
    /// The rows of `table` this step copied or deleted (0 without a table).
    pub rows: u64,
    /// The rows of this step so far, over its tables done; at
    /// [`Switching`](RelocatePhase::Switching), every row moved.
    pub rows_so_far: u64,
    /// The tables of this step done, this one included (at `Switching`: every table).
    pub done: usize,
    /// The tables that move: those with the tenant column (0 at `Making`, before they are
    /// known).
    pub total: usize,
}

/// A callback of [`RelocateOptions::on_progress`].
pub type RelocateProgressFn = Arc<dyn Fn(&RelocateProgress<'_>) + Send + Sync>;

/// Options of [`Tenants::promote_with`](crate::Tenants::promote_with) and
/// [`Tenants::demote_with`](crate::Tenants::demote_with).
#[derive(Clone, Default)]
pub struct RelocateOptions {
    /// Called as the move goes ([`RelocateProgress`]), on the task running it: keep it quick.
    pub on_progress: Option<RelocateProgressFn>,
}

impl std::fmt::Debug for RelocateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelocateOptions")
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl RelocateOptions {
    /// Sets the progress callback.
    pub fn on_progress(
        mut self,
        f: impl Fn(&RelocateProgress<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }
}

/// The rows a row-level tenant's drop deletes per statement (and transaction) unless told
/// otherwise ([`DropOptions::rows_per_batch`]).
pub const DROP_BATCH_ROWS: usize = 10_000;

/// Where a [`drop_with`](crate::Tenants::drop_with) of a row-level tenant is, reported to
/// [`DropOptions::on_progress`] after each batch of its rows deleted (each batch committed
/// before it is reported). A drop that stops part-way keeps what it deleted: calling `drop`
/// again carries on.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DropProgress<'a> {
    /// The tenant being dropped (as registered: its container is where its rows are).
    pub tenant: &'a Tenant,
    /// The table the batch deleted from; `None` for the last sweep of every table, made as the
    /// tenant is unregistered (rows written after their table's batches, where the backend
    /// lets them in).
    pub table: Option<&'a str>,
    /// The rows this batch deleted.
    pub rows: u64,
    /// The rows this call deleted from `table` so far, this batch included.
    pub table_rows: u64,
    /// The rows this call deleted so far, over every table, this batch included.
    pub rows_so_far: u64,
    /// The tables emptied before this one.
    pub done: usize,
    /// The tables with the tenant column.
    pub total: usize,
}

/// A callback of [`DropOptions::on_progress`].
pub type DropProgressFn = Arc<dyn Fn(&DropProgress<'_>) + Send + Sync>;

/// Options of [`Tenants::drop_with`](crate::Tenants::drop_with).
#[derive(Clone, Default)]
pub struct DropOptions {
    /// The rows of a row-level tenant deleted per statement; `None`: [`DROP_BATCH_ROWS`].
    pub rows_per_batch: Option<usize>,
    /// Called after each batch ([`DropProgress`]), on the task running the drop: keep it quick.
    pub on_progress: Option<DropProgressFn>,
}

impl std::fmt::Debug for DropOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropOptions")
            .field("rows_per_batch", &self.rows_per_batch)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl DropOptions {
    /// Sets the rows deleted per statement (at least 1).
    pub fn rows_per_batch(mut self, n: usize) -> Self {
        self.rows_per_batch = Some(n.max(1));
        self
    }

    /// Sets the progress callback.
    pub fn on_progress(mut self, f: impl Fn(&DropProgress<'_>) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// The rows per batch: as set, else [`DROP_BATCH_ROWS`].
    pub(crate) fn batch(&self) -> usize {
        self.rows_per_batch.unwrap_or(DROP_BATCH_ROWS)
    }
}
