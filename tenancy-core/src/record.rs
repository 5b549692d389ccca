//! Record metadata: a model value together with the tenant it belongs to and its state, the
//! `__meta__` of an Ecto schema.

use std::ops::{Deref, DerefMut};

use crate::crud;
use crate::error::Error;
use crate::exec::Executor;
use crate::model::TenantModel;
use crate::query::{Column, SqlValue};
use crate::tenant::Tenant;

/// Where a record stands with respect to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Made in memory for a tenant, not yet inserted.
    Built,
    /// Inserted into, or loaded from, its tenant's table.
    Loaded,
    /// Deleted from its tenant's table.
    Deleted,
}

/// A model value with its metadata: the [`Tenant`] it was inserted into or loaded from, and its
/// [`State`].
///
/// It dereferences to the model, so fields read and write as usual (`record.name`). Writes
/// (`update`, `apply`, `delete`) name the tenant at the call site like every other operation,
/// and a tenant other than the record's own is refused with [`Error::TenantMismatch`] before
/// anything is sent: a record loaded for one tenant can never be written into another by
/// mistake, e.g. when it is handed to a request of a different tenant.
///
/// To copy data across tenants on purpose, take the value out with
/// [`into_inner`](Self::into_inner) and insert it into the other tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<M> {
    tenant: Tenant,
    state: State,
    value: M,
}

impl<M> Record<M> {
    /// A record of `value` for `tenant`, not yet inserted ([`State::Built`]).
    pub fn new(tenant: Tenant, value: M) -> Self {
        Record {
            tenant,
            state: State::Built,
            value,
        }
    }

    pub(crate) fn loaded(tenant: Tenant, value: M) -> Self {
        Record {
            tenant,
            state: State::Loaded,
            value,
        }
    }

    /// The tenant the record belongs to.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The record's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The model value.
    pub fn value(&self) -> &M {
        &self.value
    }

    /// The model value, without its metadata.
    pub fn into_inner(self) -> M {
        self.value
    }
}

impl<M> Deref for Record<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.value
    }
}

impl<M> DerefMut for Record<M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.value
    }
}

impl<M: TenantModel> Record<M> {
    /// Refuses a write to any tenant but the record's own, and any state but `expected`.
    pub(crate) fn check(&self, tenant: &Tenant, expected: State) -> Result<(), Error> {
        if *tenant != self.tenant {
            return Err(Error::TenantMismatch {
                table: M::TABLE.name,
                record: self.tenant.clone(),
                requested: tenant.clone(),
            });
        }
        if self.state != expected {
            return Err(Error::InvalidState {
                table: M::TABLE.name,
                tenant: self.tenant.clone(),
                expected,
                found: self.state,
            });
        }
        Ok(())
    }

    pub(crate) fn set_loaded(&mut self, value: M) {
        self.value = value;
        self.state = State::Loaded;
    }

    pub(crate) fn set_deleted(&mut self) {
        self.state = State::Deleted;
    }

    pub(crate) fn value_mut(&mut self) -> &mut M {
        &mut self.value
    }

    /// Inserts a [`Built`](State::Built) record into its tenant (which `tenant` must be) and
    /// refreshes it from the stored row.
    pub async fn insert<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Built)?;
        crud::insert_record(executor, self).await
    }

    /// Validates, then writes every column (except the primary key and generated columns) to the
    /// record's row in its own tenant, and refreshes the record from the stored row.
    ///
    /// Fails with [`Error::TenantMismatch`] if `tenant` is not the record's,
    /// [`Error::InvalidState`] unless the record is loaded, and [`Error::NotFound`] if the row is
    /// gone.
    pub async fn update<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        self.value.validate()?;
        let columns: Vec<usize> = M::TABLE.updatable_indexes().collect();
        crud::update_columns(executor, self, &columns).await
    }

    /// Applies a [`Changeset`]: validates the record as it would be with the changes, writes only
    /// the changed columns, and refreshes the record from the stored row. If validation or the
    /// write fails, the record is left exactly as it was.
    pub async fn apply<'c, E>(
        &mut self,
        executor: E,
        tenant: &Tenant,
        mut changes: Changeset<M>,
    ) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        if let Some(column) = changes
            .changes
            .iter()
            .map(|c| &M::TABLE.columns[c.column()])
            .find(|c| !c.is_updatable())
        {
            return Err(Error::ReadOnlyColumn {
                table: M::TABLE.name,
                column: column.name,
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        changes.swap_into(self.value_mut());
        let result = match self.value.validate() {
            Ok(()) => {
                let columns: Vec<usize> = changes.changes.iter().map(|c| c.column()).collect();
                crud::update_columns(executor, self, &columns).await
            }
            Err(errors) => Err(Error::Validation(errors)),
        };
        if result.is_err() {
            // Swapping again puts the old values back.
            changes.swap_into(self.value_mut());
        }
        result
    }

    /// Deletes the record's row from its own tenant; the record becomes
    /// [`Deleted`](State::Deleted). [`Error::NotFound`] if the row was already gone.
    pub async fn delete<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        crud::delete(executor, self).await
    }
}

/// A set of changes to some columns of a record, applied with [`Record::apply`]: only these
/// columns are written, like an Ecto changeset.
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, mut guard: Record<M>, position: Column<M, String>) -> Result<(), Error> {
/// let changes = Changeset::new().set(position, "Captain");
/// guard.apply(pool, tenant, changes).await?; // UPDATE … SET "position" = $1 WHERE "id" = $2
/// # Ok(()) }
/// ```
pub struct Changeset<M> {
    changes: Vec<Box<dyn Change<M>>>,
}

impl<M> Default for Changeset<M> {
    fn default() -> Self {
        Changeset {
            changes: Vec::new(),
        }
    }
}

impl<M> std::fmt::Debug for Changeset<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.changes.iter().map(|c| c.column()))
            .finish()
    }
}

impl<M: TenantModel> Changeset<M> {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `column` to `value`; setting a column twice keeps the last value.
    pub fn set<T: SqlValue<M::Backend>>(
        mut self,
        column: Column<M, T>,
        value: impl Into<T>,
    ) -> Self {
        self.changes.retain(|c| c.column() != column.index());
        self.changes.push(Box::new(SetColumn {
            column,
            value: value.into(),
        }));
        self
    }

    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many columns change.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    fn swap_into(&mut self, model: &mut M) {
        for change in &mut self.changes {
            change.swap(model);
        }
    }
}

trait Change<M>: Send + Sync {
    fn column(&self) -> usize;
    /// Exchanges the held value with the model's field; doing it twice restores both.
    fn swap(&mut self, model: &mut M);
}

struct SetColumn<M, T> {
    column: Column<M, T>,
    value: T,
}

impl<M: 'static, T: Send + Sync + 'static> Change<M> for SetColumn<M, T> {
    fn column(&self) -> usize {
        self.column.index()
    }

    fn swap(&mut self, model: &mut M) {
        std::mem::swap(self.column.field(model), &mut self.value);
    }
}
