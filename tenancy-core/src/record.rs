//! Record metadata: a model value together with the tenant it belongs to and its state, the
//! `__meta__` of an Ecto schema.

use std::ops::{Deref, DerefMut};

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
/// and a tenant other than the record's own is refused with [`Error::TenantMismatch`](crate::Error::TenantMismatch) before
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

impl<M> Record<M> {
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
}
