//! Cloning a tenant, written once for every backend over its [`Store`]: `to` becomes a copy of
//! `from` (tables, rows, migration history) in one operation, all or nothing. A backend that
//! copies whole containers does it in one step ([`Store::copy_whole`], SQLite's file); the
//! others make `to` as `create` does and copy the rows on the server ([`Store::copy_rows`]).
//! Also the order in which those copies fill tables: referenced tables first.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::History;
use super::store::{Operation, Store};
use super::{TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;

impl<B: Backend> Tenants<B> {
    /// Creates tenant `to` as a copy of tenant `from`: the same tables with the same rows and
    /// the same migration history, so a template tenant makes new tenants with seed data.
    /// Returns `to`. All or nothing: if anything fails, `to` does not exist afterwards (no
    /// container, no registry row). `from` is not changed.
    ///
    /// A row-level `from` is refused before anything is locked ([`Error::Unsupported`], naming
    /// its container, which is cloned as a whole). Under both names' locks (taken in name
    /// order), `from` must be a tenant with its container ([`Error::NotATenant`],
    /// [`Error::ContainerMissing`]) at the handle's latest migration: [`Error::Pending`] if it
    /// is behind (migrate it first; a clone is never migrated on the way), [`Error::Dirty`],
    /// [`Error::ChecksumMismatch`] or [`Error::UnknownMigration`] if its history does not
    /// match the migrations. `to` must be free ([`Error::TenantExists`],
    /// [`Error::ContainerExists`]) and differ from `from` ([`Error::SameName`]). Subscribers see
    /// [`TenantEvent::Created`] of `to`.
    ///
    /// The copy is the server's own, from one consistent view of `from`:
    /// - PostgreSQL (and Citus): one `REPEATABLE READ` transaction creates `to`'s schema with
    ///   the migrations, then copies every table with `INSERT … SELECT` (referenced tables
    ///   first, `to`'s triggers off while it runs) from its one snapshot of `from` (whose writes
    ///   go on, unseen), and sets `to`'s sequences (`serial`, identity) to where `from`'s are.
    ///   The snapshot is taken once the transaction holds both names' locks (taken for the
    ///   session just before it begins, then handed to it), so its checks see what anything that
    ///   held them committed meanwhile (a `create_in` of `to`: [`Error::TenantExists`]).
    /// - MySQL / MariaDB: creates `to`'s database with the migrations, then copies every table
    ///   with `INSERT … SELECT` across databases in one transaction, whose locking reads hold
    ///   `from`'s writes until it commits (`AUTO_INCREMENT` moves past the copied keys); on a
    ///   failure the database is dropped and the tenant unregistered again. A `from` whose
    ///   database holds triggers is refused ([`Error::Unsupported`]): they would fire on the
    ///   copied rows.
    /// - SQLite: `VACUUM INTO` a new file under a temporary name while `from`'s file is
    ///   write-locked, linked into place as `to`'s file (never replacing one) and registered.
    ///
    /// On PostgreSQL and MySQL every table of `from` must be one its migrations make: a table
    /// added by hand has none in `to` to fill, and the clone fails ([`Error::Database`],
    /// nothing created). Materialized views are made by the migrations, not refreshed.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let acme = tenants.clone_tenant("template", "acme").await?;
    /// # Ok(()) }
    /// ```
    pub async fn clone_tenant(
        &self,
        from: impl AsRef<str>,
        to: impl AsRef<str>,
    ) -> Result<Tenant, Error> {
        let made = self.onto_new_name(Operation::Clone, from, to, async |op, from, to| {
            let store = self.store();
            let history = store.history(op, from).await?;
            self.at_latest(from, &history)?;
            if store.copy_whole(op, from, to).await? {
                return Ok(());
            }
            self.make_migrated(op, to).await?;
            store.copy_rows(op, from, to).await
        });
        let (_, to) = made.await?;
        self.publish(TenantEvent::Created(to.clone()));
        Ok(to)
    }

    /// Refuses `tenant` unless its history is exactly every up migration (what a clone of it
    /// records, and what a promote or demote needs on both sides): the error saying how it
    /// differs.
    pub(crate) fn at_latest(&self, tenant: &Tenant, history: &History) -> Result<(), Error> {
        history.check_clean(tenant)?;
        let migrations = self.migrations();
        let pending = migrations.pending(tenant, &history.applied)?;
        if !pending.is_empty() {
            return Err(Error::Pending {
                tenant: tenant.clone(),
                pending: pending.iter().map(|m| m.version).collect(),
            });
        }
        // Known to the handle only when it ignores missing migrations: a clone could not
        // record them.
        let known = migrations.versions();
        if let Some(&(version, _)) = history.applied.iter().find(|(v, _)| !known.contains(v)) {
            return Err(Error::UnknownMigration {
                tenant: tenant.clone(),
                version,
            });
        }
        Ok(())
    }
}

/// `tables` (each with the tables it references) ordered so that every table comes after the
/// tables it references, ties and cycles in name order: the order in which a copy fills them
/// so each row's references are there before it. References to tables not listed are
/// ignored.
pub(crate) fn referenced_first(tables: Vec<(String, Vec<String>)>) -> Vec<String> {
    let names: BTreeSet<String> = tables.iter().map(|(name, _)| name.clone()).collect();
    let mut waits: BTreeMap<String, BTreeSet<String>> = tables
        .into_iter()
        .map(|(name, refs)| {
            let refs = refs
                .into_iter()
                .filter(|r| *r != name && names.contains(r))
                .collect();
            (name, refs)
        })
        .collect();
    let mut order = Vec::with_capacity(waits.len());
    while !waits.is_empty() {
        let ready: Vec<String> = waits
            .iter()
            .filter(|(_, refs)| refs.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        // A cycle: its first table by name goes next (its references fail or are deferred).
        let next = match ready.is_empty() {
            true => vec![waits.keys().next().cloned().unwrap_or_default()],
            false => ready,
        };
        for name in next {
            waits.remove(&name);
            for refs in waits.values_mut() {
                refs.remove(&name);
            }
            order.push(name);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::referenced_first;

    fn t(name: &str, refs: &[&str]) -> (String, Vec<String>) {
        (name.into(), refs.iter().map(|r| r.to_string()).collect())
    }

    #[test]
    fn referenced_tables_come_first_and_the_rest_in_name_order() {
        let order = referenced_first(vec![
            t("a_badges", &["guards", "z_ranks"]),
            t("guards", &["z_ranks", "guards"]),
            t("notes", &["elsewhere"]),
            t("z_ranks", &[]),
        ]);
        assert_eq!(order, ["notes", "z_ranks", "guards", "a_badges"]);
    }

    #[test]
    fn a_cycle_is_broken_in_name_order() {
        let order = referenced_first(vec![t("b", &["a"]), t("a", &["b"]), t("c", &["a"])]);
        assert_eq!(order, ["a", "b", "c"]);
    }
}
