//! The tenant migrations of a handle and the planning over them, pure (no database): what is
//! pending, what a rollback reverts, each tenant's status, and the dry-run plan.

use sqlx::migrate::Migration;

use super::report::TenantStatus;
use crate::error::Error;
use crate::tenant::Tenant;

/// Applied migrations, `(version, checksum)` by version.
pub(crate) type Applied = Vec<(i64, Vec<u8>)>;

/// A tenant's migration history as its store records it.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The migrations applied, `(version, checksum)` by version.
    pub(crate) applied: Applied,
    /// Migrations that started and did not finish, on a server without transactional DDL
    /// (MySQL), by version.
    pub(crate) dirty: Vec<i64>,
}

impl History {
    /// A history with nothing left part-way.
    pub(crate) fn clean(applied: Applied) -> Self {
        History {
            applied,
            dirty: Vec::new(),
        }
    }

    /// [`Error::Dirty`] naming the first migration that stopped part-way, if one did.
    pub(crate) fn check_clean(&self, tenant: &Tenant) -> Result<(), Error> {
        match self.dirty.first() {
            Some(&version) => Err(Error::Dirty {
                tenant: tenant.clone(),
                version,
            }),
            None => Ok(()),
        }
    }
}

/// The tenant migrations of a [`Tenants`](crate::Tenants) handle, sorted by version. (Public only because the
/// crate's store trait names it; its module is private.)
#[doc(hidden)]
#[derive(Clone)]
pub struct Migrations {
    all: Vec<Migration>,
    ignore_missing: bool,
    versions: Vec<i64>,
    checksums: Vec<Vec<u8>>,
}

impl Migrations {
    pub(crate) fn new(mut all: Vec<Migration>, ignore_missing: bool) -> Result<Self, Error> {
        if let Some(m) = all.iter().find(|m| m.no_tx) {
            return Err(Error::NonTransactionalMigration {
                version: m.version,
                description: m.description.to_string(),
            });
        }
        all.sort();
        let ups = all.iter().filter(|m| m.migration_type.is_up_migration());
        let (versions, checksums) = ups.map(|m| (m.version, m.checksum.to_vec())).unzip();
        Ok(Migrations {
            all,
            ignore_missing,
            versions,
            checksums,
        })
    }

    /// The up migrations' versions, ascending.
    pub(crate) fn versions(&self) -> &[i64] {
        &self.versions
    }

    /// The up migrations' checksums, in the order of [`versions`](Self::versions).
    pub(crate) fn checksums(&self) -> &[Vec<u8>] {
        &self.checksums
    }

    pub(crate) fn len(&self) -> usize {
        self.versions.len()
    }

    /// The up migrations, by version.
    pub(crate) fn ups(&self) -> impl Iterator<Item = &Migration> {
        self.all
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
    }

    /// The status of `tenant`, whose store recorded `history`.
    pub(crate) fn status(&self, tenant: Tenant, history: History) -> TenantStatus {
        let History { applied, dirty } = history;
        let changed = applied
            .iter()
            .filter(|(v, c)| self.ups().any(|m| m.version == *v && *m.checksum != **c))
            .map(|(v, _)| *v)
            .collect();
        let versions: Vec<i64> = applied.into_iter().map(|(v, _)| v).collect();
        let pending = self
            .versions
            .iter()
            .copied()
            .filter(|v| !versions.contains(v) && !dirty.contains(v))
            .collect();
        TenantStatus {
            tenant,
            applied: versions,
            pending,
            changed,
            dirty,
        }
    }

    fn down(&self, version: i64) -> Option<&Migration> {
        self.all
            .iter()
            .find(|m| m.version == version && m.migration_type.is_down_migration())
    }

    /// The up migrations `tenant` still needs, given what is applied. A changed checksum or an
    /// applied version unknown here (unless `ignore_missing`) is an error: nothing is re-run.
    pub(crate) fn pending(
        &self,
        tenant: &Tenant,
        applied: &[(i64, Vec<u8>)],
    ) -> Result<Vec<&Migration>, Error> {
        for (version, checksum) in applied {
            match self.ups().find(|m| m.version == *version) {
                Some(m) if *m.checksum != **checksum => {
                    return Err(Error::ChecksumMismatch {
                        tenant: tenant.clone(),
                        version: *version,
                    })
                }
                Some(_) => {}
                None if self.ignore_missing => {}
                None => {
                    return Err(Error::UnknownMigration {
                        tenant: tenant.clone(),
                        version: *version,
                    })
                }
            }
        }
        Ok(self
            .ups()
            .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
            .collect())
    }

    /// What [`pending`](Self::pending) would give for the tenant of `status`, from its status
    /// alone (no checksums needed: `status.changed` names the edited ones): the same checks in
    /// the same order, so a dry run and the real run cannot disagree.
    pub(crate) fn plan(&self, status: &TenantStatus) -> Result<Vec<i64>, Error> {
        if let Some(&version) = status.dirty.first() {
            return Err(Error::Dirty {
                tenant: status.tenant.clone(),
                version,
            });
        }
        for &version in &status.applied {
            if status.changed.contains(&version) {
                return Err(Error::ChecksumMismatch {
                    tenant: status.tenant.clone(),
                    version,
                });
            }
            if !self.versions.contains(&version) && !self.ignore_missing {
                return Err(Error::UnknownMigration {
                    tenant: status.tenant.clone(),
                    version,
                });
            }
        }
        Ok(status.pending.clone())
    }

    /// The down migrations that take `tenant` back to `target` (every applied version above it,
    /// newest first).
    pub(crate) fn to_revert(
        &self,
        tenant: &Tenant,
        applied: &[(i64, Vec<u8>)],
        target: i64,
    ) -> Result<Vec<&Migration>, Error> {
        let mut versions: Vec<i64> = applied
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v > target)
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
            .into_iter()
            .map(|version| {
                self.down(version).ok_or(Error::Irreversible {
                    tenant: tenant.clone(),
                    version,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::MigrationType;
    use sqlx::SqlSafeStr;

    fn m(version: i64, kind: MigrationType, sql: &'static str) -> Migration {
        Migration::new(
            version,
            format!("m{version}").into(),
            kind,
            sqlx::AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    }

    fn set() -> Migrations {
        Migrations::new(
            vec![
                m(2, MigrationType::ReversibleUp, "CREATE TABLE b ()"),
                m(1, MigrationType::Simple, "CREATE TABLE a ()"),
                m(2, MigrationType::ReversibleDown, "DROP TABLE b"),
                m(3, MigrationType::ReversibleUp, "CREATE TABLE c ()"),
                m(3, MigrationType::ReversibleDown, "DROP TABLE c"),
            ],
            false,
        )
        .unwrap()
    }

    fn t() -> Tenant {
        Tenant::new("acme").unwrap()
    }

    fn applied(set: &Migrations, versions: &[i64]) -> Vec<(i64, Vec<u8>)> {
        set.ups()
            .filter(|m| versions.contains(&m.version))
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect()
    }

    fn versions(ms: &[&Migration]) -> Vec<i64> {
        ms.iter().map(|m| m.version).collect()
    }

    #[test]
    fn pending_is_what_is_not_applied_in_version_order() {
        let s = set();
        assert_eq!(versions(&s.pending(&t(), &[]).unwrap()), [1, 2, 3]);
        assert_eq!(
            versions(&s.pending(&t(), &applied(&s, &[1, 3])).unwrap()),
            [2]
        );
        assert!(s
            .pending(&t(), &applied(&s, &[1, 2, 3]))
            .unwrap()
            .is_empty());
    }

    fn status(applied: &[i64], pending: &[i64], changed: &[i64]) -> TenantStatus {
        TenantStatus {
            tenant: t(),
            applied: applied.to_vec(),
            pending: pending.to_vec(),
            changed: changed.to_vec(),
            dirty: Vec::new(),
        }
    }

    /// A tenant with a dirty version (2) gets no plan, whatever else it has applied.
    fn refuses_dirty(s: &Migrations) {
        let mut dirty = status(&[1], &[3], &[]);
        dirty.dirty = vec![2];
        assert!(matches!(
            s.plan(&dirty),
            Err(Error::Dirty { version: 2, .. })
        ));
    }

    #[test]
    fn a_plan_makes_the_checks_of_the_run_in_its_order() {
        let s = set();
        assert_eq!(s.plan(&status(&[1], &[2, 3], &[])).unwrap(), [2, 3]);
        assert!(s.plan(&status(&[1, 2, 3], &[], &[])).unwrap().is_empty());
        assert!(matches!(
            s.plan(&status(&[1, 2], &[3], &[2])),
            Err(Error::ChecksumMismatch { version: 2, .. })
        ));
        // The first applied version with a problem decides, as in `pending`.
        assert!(matches!(
            s.plan(&status(&[1, 5, 7], &[2, 3], &[7])),
            Err(Error::UnknownMigration { version: 5, .. })
        ));
        refuses_dirty(&s);
        let lenient = Migrations::new(s.all.clone(), true).unwrap();
        assert_eq!(
            lenient.plan(&status(&[1, 5], &[2, 3], &[])).unwrap(),
            [2, 3]
        );
    }

    #[test]
    fn a_changed_checksum_is_reported_not_rerun() {
        let s = set();
        let mut a = applied(&s, &[1, 2]);
        a[1].1 = vec![0; 4];
        assert!(matches!(
            s.pending(&t(), &a),
            Err(Error::ChecksumMismatch { version: 2, .. })
        ));
    }

    #[test]
    fn an_unknown_applied_version_is_an_error_unless_ignored() {
        let s = set();
        let mut a = applied(&s, &[1]);
        a.push((99, vec![1]));
        assert!(matches!(
            s.pending(&t(), &a),
            Err(Error::UnknownMigration { version: 99, .. })
        ));
        refuses_dirty(&s);
        let lenient = Migrations::new(s.all.clone(), true).unwrap();
        assert_eq!(versions(&lenient.pending(&t(), &a).unwrap()), [2, 3]);
    }

    #[test]
    fn revert_goes_newest_first_and_needs_down_migrations() {
        let s = set();
        let a = applied(&s, &[1, 2, 3]);
        let downs = s.to_revert(&t(), &a, 1).unwrap();
        assert_eq!(versions(&downs), [3, 2]);
        assert!(downs.iter().all(|m| m.migration_type.is_down_migration()));
        assert!(matches!(
            s.to_revert(&t(), &a, 0),
            Err(Error::Irreversible { version: 1, .. })
        ));
        assert!(s.to_revert(&t(), &a, 3).unwrap().is_empty());
    }

    #[test]
    fn no_transaction_migrations_are_refused() {
        let mut bad = m(
            1,
            MigrationType::Simple,
            "CREATE INDEX CONCURRENTLY x ON a (id)",
        );
        bad.no_tx = true;
        assert!(matches!(
            Migrations::new(vec![bad], false),
            Err(Error::NonTransactionalMigration { version: 1, .. })
        ));
    }
}
