//! The drop of a row-level tenant in steps, written once over each backend's [`Place`]: one
//! short operation marks it `dropping` in the registry (after its writes in flight end; its
//! next ones refused where the backend guards its shared tables), then its rows are deleted a
//! batch per operation, table by table, and a last operation sweeps what is left and
//! unregisters it. A drop that stops part-way leaves the mark: `drop` again carries on, and
//! the name cannot be taken meanwhile ([`Error::BeingDropped`]).

use super::copy::referenced_first;
use super::operations::Expected;
use super::report::{DropOptions, DropProgress, Dropped};
use super::store::{Operation, Place, Rewrite, Store};
use super::Tenants;
use crate::backend::Backend;
use crate::error::Error;
use crate::statement::Dialect;
use crate::tenant::Tenant;

/// The registry write that marks a row-level tenant as being dropped, on registry table
/// `table`, in dialect `D`: it binds the tenant's name and container, in that order.
pub(crate) fn mark_sql<D: Dialect>(table: &str) -> String {
    let (mut p1, mut p2) = (String::new(), String::new());
    D::placeholder(&mut p1, 1);
    D::placeholder(&mut p2, 2);
    format!("UPDATE {table} SET dropping = TRUE WHERE name = {p1} AND container = {p2}")
}

/// `tables` ordered so that each comes before the tables it references (`references`: pairs of a
/// referencing and a referenced table, by foreign key), ties in name order: the order in which
/// a drop deletes a tenant's rows a batch at a time, so that no batch deletes a row that a row
/// of another of its tables still references.
pub(crate) fn referencing_first(
    tables: Vec<String>,
    references: &[(String, String)],
) -> Vec<String> {
    // Each table waits for the tables that reference it.
    let graph = tables
        .into_iter()
        .map(|t| {
            let by = references
                .iter()
                .filter(|(_, to)| *to == t)
                .map(|(from, _)| from.clone());
            let by = by.collect();
            (t, by)
        })
        .collect();
    referenced_first(graph)
}

/// What a drop has deleted so far, told to its caller's callback after each batch.
struct Tally<'a> {
    tenant: &'a Tenant,
    options: &'a DropOptions,
    so_far: u64,
    total: usize,
}

impl Tally<'_> {
    /// `rows` more deleted from `table` (`table_rows` of it so far), `done` tables emptied before.
    fn deleted(&mut self, table: Option<&str>, rows: u64, table_rows: u64, done: usize) {
        self.so_far += rows;
        if let Some(f) = &self.options.on_progress {
            f(&DropProgress {
                tenant: self.tenant,
                table,
                rows,
                table_rows,
                rows_so_far: self.so_far,
                done,
                total: self.total,
            });
        }
    }
}

impl<B: Backend> Tenants<B> {
    /// [`drop`](Tenants::drop) of row-level tenant `tenant` (as registered), in steps: marked
    /// (if it is not yet), its rows deleted `options.rows_per_batch` at a time from each table
    /// of its container with the handle's tenant column, each batch an operation of its own
    /// under the tenant's lock, reported to `options.on_progress`; then the rest deleted and
    /// the tenant unregistered in one operation
    /// ([`Place::rewrite_rows`](super::store::Place::rewrite_rows)).
    pub(crate) async fn drop_rows(
        &self,
        tenant: &Tenant,
        options: &DropOptions,
    ) -> Result<Dropped, Error> {
        let column = self.tenant_column().to_owned();
        let rows = Rewrite {
            tenant,
            column: &column,
            to: None,
        };
        let store = self.store();
        let tables = self
            .locked(Operation::Drop, tenant, Expected::Placed, async |op| {
                store.mark_dropping(op, rows).await
            })
            .await?;
        let limit = options.batch();
        let mut tally = Tally {
            tenant,
            options,
            so_far: 0,
            total: tables.len(),
        };
        for (done, table) in tables.iter().enumerate() {
            let mut table_rows = 0;
            loop {
                let deleted = self
                    .operation(Operation::Drop, tenant, async |op| {
                        self.lock_dropping(op, tenant).await?;
                        store.delete_batch(op, rows, table, limit).await
                    })
                    .await?;
                if deleted > 0 {
                    table_rows += deleted;
                    tally.deleted(Some(table), deleted, table_rows, done);
                }
                // Fewer than asked: the table holds none of the tenant's rows any more, or a
                // few that changed meanwhile, which the sweep below deletes.
                if deleted < limit as u64 {
                    break;
                }
            }
        }
        let rest = self
            .operation(Operation::Drop, tenant, async |op| {
                self.lock_dropping(op, tenant).await?;
                let rest = store.rewrite_rows(op, rows).await?;
                store.set_placed(op, tenant, false).await?;
                Ok(rest)
            })
            .await?;
        if rest > 0 {
            tally.deleted(None, rest, rest, tables.len());
        }
        Ok(Dropped::Rows {
            deleted: tally.so_far,
        })
    }

    /// Takes `tenant`'s lock in operation `op` and checks that it is still being dropped:
    /// [`Error::NotATenant`] if another drop finished it meanwhile.
    async fn lock_dropping(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        tenant: &Tenant,
    ) -> Result<(), Error> {
        let store = self.store();
        store.lock(op, &tenant.own()).await?;
        match store.being_dropped(Some(op), tenant).await? {
            true => Ok(()),
            false => Err(Error::NotATenant {
                tenant: tenant.own(),
            }),
        }
    }

    /// The error for `name` found taken by a row-level tenant (read in operation `op` if one is
    /// given): [`Error::BeingDropped`] if that tenant's drop has not finished, else
    /// [`Error::TenantExists`].
    pub(crate) async fn taken(
        &self,
        op: Option<&mut <B::Store as Store<B>>::Op>,
        name: &Tenant,
    ) -> Error {
        let tenant = name.own();
        match self.store().being_dropped(op, &tenant).await {
            Ok(true) => Error::BeingDropped { tenant },
            Ok(false) => Error::TenantExists { tenant },
            Err(err) => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::referencing_first;

    #[test]
    fn referencing_tables_come_first_and_the_rest_in_name_order() {
        let tables = ["audits", "guards", "notes", "shifts"]
            .map(String::from)
            .to_vec();
        let refs = [
            ("notes", "guards"),
            ("shifts", "notes"),
            ("guards", "elsewhere"),
        ];
        let refs: Vec<(String, String)> = refs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            referencing_first(tables, &refs),
            ["audits", "shifts", "notes", "guards"]
        );
    }
}
