//! Upsert: insert rows, and where one conflicts on a unique key, update the stored row or keep
//! it ([`OnConflict`]).

use std::marker::PhantomData;

use crate::backend::Conflict;
use crate::crud;
use crate::error::Error;
use crate::exec::Executor;
use crate::filter::Column;
use crate::model::Model;
use crate::record::Record;
use crate::statement::OnConflictAction;
use crate::tenant::Tenant;

/// What [`TenantModel::upsert`](crate::TenantModel::upsert) does when a row conflicts with a stored one on a unique key
/// (Ecto's `on_conflict:` and `conflict_target:`). Start with [`OnConflict::on`], naming the
/// columns of a unique index or constraint; by default the stored row gets every column the
/// insert writes except the conflict target ([`replace_all`](Self::replace_all)).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, models: Vec<M>, email: Column<M, String>, name: Column<M, String>) -> Result<(), Error> {
/// // Insert, or update the name of the guard with that email.
/// let stored = M::upsert_many(pool, tenant, models, OnConflict::on(email).replace(name)).await?;
/// # Ok(()) }
/// ```
///
/// On MySQL and MariaDB an update on conflict is `ON DUPLICATE KEY UPDATE`: a conflict on
/// **any** unique key of the table takes it, not only on the target; the target is what the
/// stored row is read back by, so it must be a unique key. `do_nothing` there reads the target
/// first (`FOR UPDATE`) and inserts only if it is absent, so, as on PostgreSQL and SQLite, a
/// conflict on another unique key is an error.
pub struct OnConflict<M: Model> {
    target: Vec<usize>,
    per_tenant: bool,
    action: Action,
    model: PhantomData<fn() -> M>,
}

#[derive(Debug, Clone)]
enum Action {
    ReplaceAll,
    Replace(Vec<usize>),
    Nothing,
}

impl<M: Model> std::fmt::Debug for OnConflict<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnConflict")
            .field("target", &self.target_names())
            .field("action", &self.action)
            .finish()
    }
}

impl<M: Model> OnConflict<M> {
    /// Conflicts on the unique column `column` (add more with [`and`](Self::and) for a
    /// unique key of several columns).
    pub fn on<T>(column: Column<M, T>) -> Self {
        OnConflict {
            target: vec![column.index()],
            per_tenant: false,
            action: Action::ReplaceAll,
            model: PhantomData,
        }
    }

    /// Adds `column` to the conflict target.
    pub fn and<T>(mut self, column: Column<M, T>) -> Self {
        self.target.push(column.index());
        self
    }

    /// The unique key is per tenant: on a table that holds the rows of several tenants (a
    /// model with a [`tenant_column`](crate::TableDef::tenant_column)), the conflict target is
    /// that column, then the columns named: `ON CONFLICT ("tenant_id", "name")`, for a unique
    /// index on `(tenant_id, name)`, which lets every tenant hold a row of that name (and
    /// which Citus requires of a table distributed by the tenant column). Without it the
    /// target is the columns named alone, for a key unique across the table, where another
    /// tenant's conflicting row is left as it is. A table of one tenant's rows is per tenant
    /// already: there this changes nothing. MySQL names no target (`ON DUPLICATE KEY`): there
    /// it changes nothing either.
    ///
    /// ```no_run
    /// # use tenancy_core::*;
    /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, models: Vec<M>, name: Column<M, String>, position: Column<M, String>) -> Result<(), Error> {
    /// // `CREATE UNIQUE INDEX … ON guards (tenant_id, name)`: each tenant's names are its own.
    /// let conflict = OnConflict::on(name).per_tenant().replace(position);
    /// let stored = M::upsert_many(pool, tenant, models, conflict).await?;
    /// # Ok(()) }
    /// ```
    pub fn per_tenant(mut self) -> Self {
        self.per_tenant = true;
        self
    }

    /// On conflict, sets every column the insert writes, except the target's, to the new
    /// values (the default).
    pub fn replace_all(mut self) -> Self {
        self.action = Action::ReplaceAll;
        self
    }

    /// On conflict, sets `column` to the new value (call again for more columns; the others
    /// keep their stored values).
    pub fn replace<T>(mut self, column: Column<M, T>) -> Self {
        match &mut self.action {
            Action::Replace(columns) => columns.push(column.index()),
            _ => self.action = Action::Replace(vec![column.index()]),
        }
        self
    }

    /// On conflict, keeps the stored row unchanged; that row is not returned.
    pub fn do_nothing(mut self) -> Self {
        self.action = Action::Nothing;
        self
    }

    fn names(&self, indexes: &[usize]) -> Vec<&'static str> {
        indexes.iter().map(|&i| M::TABLE.columns[i].name).collect()
    }

    /// The conflict target as the statement names it: the tenant column first when
    /// [`per_tenant`](Self::per_tenant) on a table that has one.
    fn target_names(&self) -> Vec<&'static str> {
        let tenant_column = M::TABLE.tenant_column.filter(|_| self.per_tenant);
        tenant_column
            .into_iter()
            .chain(self.names(&self.target))
            .collect()
    }

    /// The columns an update on conflict sets (`None`: do nothing), checked.
    fn plan(&self) -> Result<(Vec<&'static str>, Option<Vec<&'static str>>), Error> {
        let table = &M::TABLE;
        let invalid = |problem: String| Error::InvalidQuery {
            table: table.name,
            problem,
        };
        for (i, &c) in self.target.iter().enumerate() {
            let column = &table.columns[c];
            if column.generated {
                return Err(invalid(format!(
                    "conflict target column {:?} is generated by the database, so an insert never writes it; name a unique column the insert writes",
                    column.name
                )));
            }
            if self.target[..i].contains(&c) {
                return Err(invalid(format!(
                    "conflict target names column {:?} twice",
                    column.name
                )));
            }
        }
        let update = match &self.action {
            Action::Nothing => return Ok((self.target_names(), None)),
            Action::ReplaceAll => table
                .updatable_indexes()
                .filter(|c| !self.target.contains(c))
                .collect(),
            Action::Replace(columns) => {
                for (i, &c) in columns.iter().enumerate() {
                    let column = &table.columns[c];
                    if !column.is_updatable() {
                        return Err(Error::ReadOnlyColumn {
                            table: table.name,
                            column: column.name,
                        });
                    }
                    if columns[..i].contains(&c) {
                        return Err(invalid(format!(
                            "upsert replaces column {:?} twice",
                            column.name
                        )));
                    }
                }
                columns.clone()
            }
        };
        if update.is_empty() {
            return Err(invalid(
                "the upsert has no column to update on conflict (every column is the target, the key or generated); use `do_nothing`".to_owned(),
            ));
        }
        Ok((self.target_names(), Some(self.names(&update))))
    }
}

fn action<'a>(update: &'a Option<Vec<&'static str>>) -> OnConflictAction<'a> {
    match update {
        Some(columns) => OnConflictAction::Update(columns),
        None => OnConflictAction::Nothing,
    }
}

impl<M: Model> OnConflict<M> {
    /// Upserts `models` into `tenant` as this says ([`TenantModel::upsert_many`](crate::TenantModel::upsert_many)):
    /// checked first, then one statement (or MySQL's write and read back per row).
    pub(crate) async fn upsert<'c, E>(
        &self,
        executor: E,
        tenant: Tenant,
        models: Vec<M>,
    ) -> Result<Vec<Record<M>>, Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        let (target, update) = self.plan()?;
        let conflict = Conflict {
            target: &self.target,
            target_names: &target,
            action: action(&update),
        };
        crud::upsert_many(executor, tenant, models, conflict).await
    }
}
