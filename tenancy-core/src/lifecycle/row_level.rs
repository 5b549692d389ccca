//! The lifecycle of row-level tenants ([`Tenant::rows_in`]), written once over each backend's
//! [`Place`]: a row-level tenant is a registry row naming its container (no DDL); dropping one
//! deletes its rows from its container's tables; its name is a tenant name like any other, so
//! `create`, `exists`, `list` and `drop` see both kinds.

use super::operations::expect;
use super::store::{Operation, Place, Placing, PlacingMany, Rewrite, Store, Which};
use super::{TenantEvent, Tenants};
use crate::backend::Backend;
use crate::error::Error;
use crate::statement::Dialect;
use crate::tenant::Tenant;
use crate::trace;

/// `D`'s placeholder of the `n`-th bound value (1-based).
fn placeholder<D: Dialect>(n: usize) -> String {
    let mut out = String::new();
    D::placeholder(&mut out, n);
    out
}

/// The registry write of [`Place::set_placed`] on registry table `table`, in dialect `D`: an
/// insert of a row-level tenant's name and container (bound in that order, as
/// [`write_placement`] does), or (`!placed`) the delete of its row.
pub(crate) fn placement_sql<D: Dialect>(table: &str, placed: bool) -> String {
    let (p1, p2) = (placeholder::<D>(1), placeholder::<D>(2));
    match placed {
        true => format!("INSERT INTO {table} (name, container) VALUES ({p1}, {p2})"),
        false => format!("DELETE FROM {table} WHERE name = {p1} AND container = {p2}"),
    }
}

/// Runs `sql` on `executor` with `names` bound in order, as a prepared statement the
/// connection keeps if `persistent`: what it did (the rows it affected).
pub(crate) async fn run_named<'e, DB>(
    executor: impl sqlx::Executor<'e, Database = DB>,
    (sql, persistent): (String, bool),
    names: &[&str],
) -> Result<DB::QueryResult, sqlx::Error>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let mut query = sqlx::query::<DB>(sqlx::AssertSqlSafe(sql)).persistent(persistent);
    for name in names {
        query = query.bind(*name);
    }
    query.execute(executor).await
}

/// Runs `sql` on `executor` with row-level `tenant`'s name and container bound, in that
/// order, as a prepared statement the connection keeps if `persistent`: a registry write.
/// [`Error::TenantExists`] if the registry says (`duplicate`) the name is taken.
pub(crate) async fn write_placement<'e, DB>(
    executor: impl sqlx::Executor<'e, Database = DB>,
    (sql, persistent): (String, bool),
    tenant: &Tenant,
    duplicate: fn(&sqlx::Error) -> bool,
) -> Result<(), Error>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let names = [tenant.as_str(), tenant.container()];
    match run_named(executor, (sql, persistent), &names).await {
        Ok(_) => Ok(()),
        Err(e) if duplicate(&e) => Err(Error::TenantExists {
            tenant: tenant.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// [`Place::rewrite_rows`] over the `tables` of `rows.tenant`'s container that have the tenant
/// column, as its backend lists them: on `conn`, one statement per table
/// ([`Rewrite::statement`]; the table named with the container where the dialect qualifies
/// names), each kept prepared if `persistent`. What they did together (their rows affected,
/// summed).
pub(crate) async fn rewrite_tables<B>(
    conn: &mut B::Connection,
    tables: Vec<String>,
    rows: Rewrite<'_>,
    persistent: bool,
) -> Result<B::QueryResult, sqlx::Error>
where
    B: Backend + sqlx::database::HasStatementCache,
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'q> &'q str: sqlx::Encode<'q, B> + sqlx::Type<B>,
    for<'q> <B as sqlx::Database>::Arguments: sqlx::IntoArguments<B>,
{
    let mut column = String::new();
    B::Dialect::quote_ident(&mut column, rows.column);
    let mut done = B::QueryResult::default();
    for table in tables {
        let mut name = String::new();
        if B::Dialect::QUALIFIES {
            B::Dialect::quote_ident(&mut name, rows.tenant.container());
            name.push('.');
        }
        B::Dialect::quote_ident(&mut name, &table);
        let (sql, names) = rows.statement::<B::Dialect>(&name, &column);
        done.extend([run_named(&mut *conn, (sql, persistent), &names).await?]);
    }
    Ok(done)
}

/// The `SELECT` of the registry rows `(name, container)` of registry table `table` that
/// `which` chooses, in name order, in dialect `D`: it binds [`Which::value`], if any.
pub(crate) fn registered_sql<D: Dialect>(table: &str, which: Which<'_>) -> String {
    let filter = which.filter().replace('?', &placeholder::<D>(1));
    format!("SELECT name, container FROM {table}{filter} ORDER BY name")
}

/// The registry rows of [`registered_sql`] read on `executor`, kept prepared if
/// `persistent` ([`placed`] makes them tenants).
pub(crate) async fn read_registered<'e, B>(
    executor: impl sqlx::Executor<'e, Database = B>,
    table: &str,
    which: Which<'_>,
    persistent: bool,
) -> Result<Vec<(String, String)>, sqlx::Error>
where
    B: Backend + sqlx::database::HasStatementCache,
    for<'q> &'q str: sqlx::Encode<'q, B> + sqlx::Type<B>,
    for<'q> <B as sqlx::Database>::Arguments: sqlx::IntoArguments<B>,
    for<'r> (String, String): sqlx::FromRow<'r, B::Row>,
{
    let sql = registered_sql::<B::Dialect>(table, which);
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(persistent);
    if let Some(value) = which.value() {
        query = query.bind(value);
    }
    query.fetch_all(executor).await
}

/// The row-level tenants of registry rows `(name, container)`, each placed in its container.
pub(crate) fn placed(rows: Vec<(String, String)>) -> Result<Vec<Tenant>, Error> {
    rows.into_iter()
        .map(|(name, container)| {
            let container = Tenant::new(container)?;
            Ok(Tenant::new(name)?.rows_in(&container))
        })
        .collect()
}

/// What [`Tenants::create_in`] of `own` in `container` answers to what
/// [`Place::place_at_once`] found under their locks, as its step-at-a-time path answers:
/// [`Error::TenantExists`] if the name is taken, else [`expect`]'s refusal of a container
/// that is not a tenant with its container, else nothing (the tenant is registered).
fn refuse_placing<B: Backend>(
    own: &Tenant,
    container: &Tenant,
    found: Placing,
) -> Result<(), Error> {
    if found.taken {
        return Err(Error::TenantExists {
            tenant: own.clone(),
        });
    }
    expect::<B>(container, found.container, true, true)
}

/// What [`Tenants::create_in_many`] of `placed` answers to what
/// [`Place::place_many_at_once`] found under their locks, as its step-at-a-time path answers:
/// [`Error::TenantExists`] naming the first name taken, else [`expect`]'s refusal of a
/// container that is not a tenant with its container, else nothing (they are registered).
fn refuse_placing_many<B: Backend>(
    placed: &[Tenant],
    container: &Tenant,
    found: PlacingMany,
) -> Result<(), Error> {
    if let Some(taken) = found.taken {
        let tenant = match placed.iter().find(|t| t.as_str() == taken) {
            Some(tenant) => tenant.own(),
            None => Tenant::new(taken)?,
        };
        return Err(Error::TenantExists { tenant });
    }
    expect::<B>(container, found.container, true, true)
}

/// The most names one [`Tenants::create_in_many`] registers: each holds a lock until the one
/// commit (on PostgreSQL an advisory lock, counted against the server's shared lock table of
/// `max_locks_per_transaction` × connections).
pub const MAX_CREATE_IN_MANY: usize = 1_000;

impl<B: Backend> Tenants<B> {
    /// Registers every name of `names` as a row-level tenant of `container` in one
    /// transaction, all or none: what [`create_in`](Self::create_in) does for one name, for
    /// many at the cost of about one (e.g. moving the free tier of an existing product in).
    /// On PostgreSQL (and Citus) one round trip, a call of the registry's function
    /// `create_in_many`, committed durably once; MySQL and SQLite run it a step at a time in
    /// one transaction. The tenants come back in the order given.
    ///
    /// Locks every name (in byte order, so concurrent calls cannot deadlock on each other)
    /// and then `container`, as `create_in` and `create` take them; checked under the locks.
    /// [`Error::TenantExists`] naming the first name (in byte order) that is a tenant of either
    /// kind; [`Error::NotATenant`] or [`Error::ContainerMissing`] if `container` is not a
    /// tenant with its container; [`Error::DuplicateName`] if a name is given twice;
    /// [`Error::TooManyNames`] over [`MAX_CREATE_IN_MANY`] names; [`Error::InvalidTenantName`]
    /// for a name the policy refuses. In every case nothing is registered. No names: nothing
    /// is done.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let free = tenants.create("free_tier").await?;
    /// let made = tenants.create_in_many(["acme", "globex", "initech"], &free).await?;
    /// assert_eq!(made[1].as_str(), "globex");
    /// assert_eq!(tenants.tenant("initech").await?.container(), "free_tier");
    /// # Ok(()) }
    /// ```
    pub async fn create_in_many<I>(
        &self,
        names: I,
        container: &Tenant,
    ) -> Result<Vec<Tenant>, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let container = self.parse(container.container())?;
        let mut given = Vec::new();
        for name in names {
            given.push(self.parse(name)?.rows_in(&container));
        }
        if given.len() > MAX_CREATE_IN_MANY {
            return Err(Error::TooManyNames {
                names: given.len(),
                max: MAX_CREATE_IN_MANY,
            });
        }
        let mut sorted = given.clone();
        sorted.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        if let Some(twice) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateName {
                tenant: twice[0].own(),
            });
        }
        if given.is_empty() {
            return Ok(given);
        }
        let span = trace::lifecycle::<B>("create", &container);
        trace::within(span, async {
            match self.store().place_many_at_once(&sorted).await {
                Ok(Some(found)) => {
                    if let Some(taken) = sorted
                        .iter()
                        .find(|t| found.taken.as_deref() == Some(t.as_str()))
                    {
                        return Err(self.taken(None, taken).await);
                    }
                    return refuse_placing_many::<B>(&sorted, &container, found);
                }
                Ok(None) => {}
                Err(err) => return Err(self.store().explain(&container, err).await),
            }
            self.operation(Operation::Place, &container, async |op| {
                self.place_a_step_at_a_time(op, &sorted, &container).await
            })
            .await
        })
        .await?;
        for tenant in &given {
            self.publish(TenantEvent::Created(tenant.clone()));
        }
        Ok(given)
    }

    /// Registers `name` as a row-level tenant whose rows are in `container`'s tables (a tenant
    /// of this handle; see [`Tenant::rows_in`]) and returns it: one registry row, no DDL. On
    /// PostgreSQL (and Citus) that is one round trip, a call of the registry's function
    /// `create_in` that takes the locks, checks and inserts, committed durably; MySQL and
    /// SQLite run it a step at a time (a transaction, the locks, the checks, the insert).
    /// Its models are those with `#[tenancy(tenant_column = "...")]`, their tables made by
    /// `container`'s migrations.
    ///
    /// [`Error::TenantExists`] if `name` is a tenant of either kind; [`Error::NotATenant`] or
    /// [`Error::ContainerMissing`] if `container` is not a tenant with its container. Checked
    /// and registered under the locks of `name` and then `container`, the ones
    /// [`create`](Self::create) and `drop` take: of concurrent `create_in`s and `create`s of
    /// one name exactly one succeeds, and a concurrent `drop(container)` either sees this
    /// tenant or runs before it.
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let free = tenants.create("free_tier").await?;
    /// let acme = tenants.create_in("acme", &free).await?;
    /// assert!(acme.is_row_level());
    /// assert_eq!(tenants.tenant("acme").await?.container(), "free_tier");
    /// # Ok(()) }
    /// ```
    pub async fn create_in(
        &self,
        name: impl AsRef<str>,
        container: &Tenant,
    ) -> Result<Tenant, Error> {
        let (own, container, tenant) = self.parse_placed(name, container)?;
        let span = trace::lifecycle::<B>("create", &own);
        trace::within(span, async {
            match self.store().place_at_once(&tenant).await {
                Ok(Some(found)) if found.taken => return Err(self.taken(None, &own).await),
                Ok(Some(found)) => return refuse_placing::<B>(&own, &container, found),
                Ok(None) => {}
                Err(err) => return Err(self.store().explain(&own, err).await),
            }
            self.operation(Operation::Place, &own, async |op| {
                let placed = std::slice::from_ref(&tenant);
                self.place_a_step_at_a_time(op, placed, &container).await
            })
            .await
        })
        .await?;
        self.publish(TenantEvent::Created(tenant.clone()));
        Ok(tenant)
    }

    /// What [`create_in`](Self::create_in) and [`create_in_many`](Self::create_in_many) do in
    /// operation `op` when the store cannot place at once: every name of `placed` (row-level
    /// tenants of `container`, in byte order, none twice) locked, then `container`; then
    /// [`Error::TenantExists`] naming the first that is a tenant of either kind, else
    /// [`expect`]'s refusal of a container that is not a tenant with its container, else each
    /// registered.
    async fn place_a_step_at_a_time(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        placed: &[Tenant],
        container: &Tenant,
    ) -> Result<(), Error> {
        let store = self.store();
        // A name that is the container's is locked once, as the container (not every backend's
        // lock can be taken twice); it is then found taken.
        for tenant in placed.iter().filter(|t| t.as_str() != container.as_str()) {
            store.lock(op, &tenant.own()).await?;
        }
        store.lock(op, container).await?;
        for tenant in placed {
            let own = tenant.own();
            if store.inspect(op, &own).await?.registered {
                return Err(Error::TenantExists { tenant: own });
            }
            if store.placement_in(op, &own).await?.is_some() {
                return Err(self.taken(Some(op), &own).await);
            }
        }
        let found = store.inspect(op, container).await?;
        expect::<B>(container, found, true, true)?;
        for tenant in placed {
            store.set_placed(op, tenant, true).await?;
        }
        Ok(())
    }

    /// `name` and `container` validated, and `name` as a row-level tenant with its rows in
    /// `container`'s tables: (own, container, placed).
    pub(super) fn parse_placed(
        &self,
        name: impl AsRef<str>,
        container: &Tenant,
    ) -> Result<(Tenant, Tenant, Tenant), Error> {
        let own = self.parse(name)?;
        let container = self.parse(container.container())?;
        let placed = own.rows_in(&container);
        Ok((own, container, placed))
    }

    /// The tenant `name` as registered: in its own container, or a row-level tenant with its
    /// rows in its container's ([`create_in`](Self::create_in)). [`Error::NotATenant`] if it
    /// is neither. What an application resolves a name from a request or a job with, so that
    /// its statements go where the tenant's rows are.
    pub async fn tenant(&self, name: impl AsRef<str>) -> Result<Tenant, Error> {
        let tenant = self.parse(name)?;
        if self.store().exists(&tenant).await? {
            return Ok(tenant);
        }
        match self.store().placement(&tenant).await? {
            Some(placed) => Ok(placed),
            None => Err(Error::NotATenant { tenant }),
        }
    }

    /// The same handle, deleting a row-level tenant's rows by `column` when it is dropped
    /// (default `tenant_id`): every table of its container with a
    /// column of that name. Use the name your models' `tenant_column` gives.
    pub fn with_tenant_column(self, column: &str) -> Result<Self, Error> {
        if column.is_empty() || column.contains('\0') {
            return Err(Error::Unsupported {
                operation: "with_tenant_column",
                reason: format!("{column:?} is not a column name"),
            });
        }
        self.rebuild(|s| s.tenant_column = column.to_owned())
    }

    /// [`rename`](Self::rename) of row-level tenant `old` (as registered) to the free name `new`,
    /// in the same container, under both names' locks (in name order).
    pub(crate) async fn rename_rows(&self, old: &Tenant, new: &Tenant) -> Result<Tenant, Error> {
        let new_own = new.own();
        if old == &new_own {
            return Err(Error::SameName {
                tenant: new_own,
                operation: "renamed",
            });
        }
        let placed = new_own.rows_in(&old.container_tenant());
        let column = self.tenant_column().to_owned();
        self.traced("rename", Operation::Rename, old, async |op| {
            let store = self.store();
            self.lock_both(op, old, &new_own).await?;
            if store.placement_in(op, old).await?.is_none() {
                return Err(Error::NotATenant { tenant: old.own() });
            }
            if store.being_dropped(Some(op), old).await? {
                return Err(Error::BeingDropped { tenant: old.own() });
            }
            let found = store.inspect(op, &new_own).await?;
            expect::<B>(&new_own, found, false, false)?;
            self.refuse_placed(Some(op), &new_own).await?;
            store.set_placed(op, &placed, true).await?;
            let rows = Rewrite {
                tenant: old,
                column: &column,
                to: Some(&placed),
            };
            store.rewrite_rows(op, rows).await?;
            store.set_placed(op, old, false).await
        })
        .await?;
        self.publish(TenantEvent::Renamed {
            old: old.clone(),
            new: placed.clone(),
        });
        Ok(placed)
    }

    /// Refuses to drop `container` while row-level tenants have their rows in it (read in
    /// operation `op`).
    pub(crate) async fn refuse_holding(
        &self,
        op: &mut <B::Store as Store<B>>::Op,
        container: &Tenant,
    ) -> Result<(), Error> {
        let held = self.store().placed_in(op, container).await?;
        if held > 0 {
            return Err(Error::Unsupported {
                operation: "drop",
                reason: format!(
                    "tenant \"{container}\" holds the rows of {held} row-level tenant(s); drop them first (Tenants::drop of each)"
                ),
            });
        }
        Ok(())
    }

    /// Refuses `name` for a tenant of its own when a row-level tenant has it (read in
    /// operation `op` if one is given, which may hold the pool's only connection).
    pub(crate) async fn refuse_placed(
        &self,
        op: Option<&mut <B::Store as Store<B>>::Op>,
        name: &Tenant,
    ) -> Result<(), Error> {
        match op {
            Some(op) => match self.store().placement_in(op, name).await? {
                Some(_) => Err(self.taken(Some(op), name).await),
                None => Ok(()),
            },
            None => match self.store().placement(name).await? {
                Some(_) => Err(self.taken(None, name).await),
                None => Ok(()),
            },
        }
    }
}
