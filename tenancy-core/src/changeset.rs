//! [`Changeset`]: a partial update of a record, writing only the columns it sets.

use crate::filter::Column;
use crate::model::Model;
use crate::value::SqlValue;

/// A set of changes to some columns of a record, applied with [`Record::apply`](crate::Record::apply): only these
/// columns are written, like an Ecto changeset.
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<M: Model<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, mut guard: Record<M>, position: Column<M, String>) -> Result<(), Error> {
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

impl<M: Model> Changeset<M> {
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

    /// The indexes of the columns it sets.
    pub(crate) fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.changes.iter().map(|c| c.column())
    }

    /// Exchanges the held values with the model's fields; doing it twice restores both.
    pub(crate) fn swap_into(&mut self, model: &mut M) {
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
