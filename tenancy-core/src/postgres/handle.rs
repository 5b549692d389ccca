//! What only a PostgreSQL handle has: shared schemas on the migrations' `search_path`,
//! PgBouncer's way of sending statements, the Citus flavour, row-level security and a
//! container distributed by the tenant column on Citus.

use sqlx::{AssertSqlSafe, Postgres, Transaction};

use super::backend::{tell, RENAMED_TO_SETTING, TENANT_SETTING};
use super::citus::{citus_sql, CitusError, Flavour};
use super::citus_rows::{distribute_sql, RowSharding, COLUMN_SETTING, SEQUENTIAL, SPREAD};
use super::is_not_supported;
use super::place::tables_with;
use super::store::PgStore;
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::operations::Expected;
use crate::lifecycle::store::Operation;
use crate::lifecycle::Tenants;
use crate::tenant::Tenant;
use crate::trace;

impl Tenants<Postgres> {
    /// The same handle with `schemas` after the tenant's own on the `search_path` of its
    /// migrations and create hooks, so that unqualified names of shared objects there (types,
    /// extension functions, e.g. in `public`) resolve.
    ///
    /// By default the path holds the tenant's schema alone, so an unqualified name in a
    /// migration can only mean an object of the tenant (or of `pg_catalog`). With shared
    /// schemas on the path, an `ALTER` or `DROP` of a name the tenant lacks reaches the shared
    /// schema's object of that name instead of failing: qualify such statements.
    pub fn with_shared_schemas<S: Into<String>>(
        self,
        schemas: impl IntoIterator<Item = S>,
    ) -> Self {
        let schemas: Vec<String> = schemas.into_iter().map(Into::into).collect();
        self.rebuild(|s| s.store.shared_schemas = schemas)
            .expect("the rest was checked when the handle was built")
    }

    /// The same handle, for a pool that reaches PostgreSQL through PgBouncer in transaction
    /// mode: every statement of the lifecycle, and every model statement sent through the
    /// handle (`&tenants`), the [`TenantPool`](crate::TenantPool)s it gives out and their
    /// transactions, is unnamed and runs inside a transaction (see
    /// [`PgBouncer`](crate::postgres::PgBouncer)). Build the pool with
    /// [`PoolSettings::pgbouncer`](crate::postgres::PoolSettings::pgbouncer), or build both with
    /// [`PoolSettings::connect_tenants`](crate::postgres::PoolSettings::connect_tenants) and
    /// `?pgbouncer=true`.
    pub fn behind_pgbouncer(self) -> Self {
        self.rebuild(|s| s.store.pgbouncer = true)
            .expect("the rest was checked when the handle was built")
    }

    /// Whether the handle sends its statements the way PgBouncer in transaction mode can serve
    /// them ([`behind_pgbouncer`](Self::behind_pgbouncer)).
    pub fn is_behind_pgbouncer(&self) -> bool {
        !self.pg().persistent()
    }

    /// The same handle, told that the server is a Citus coordinator (or, with
    /// [`Flavour::Postgres`], that it is not), instead of finding out at its first operation.
    ///
    /// By default a handle asks the server once, when it first uses the registry, whether the
    /// `citus` extension is installed in the database. On Citus it keeps the registry local to
    /// the coordinator, makes each tenant's schema a distributed schema when creating it
    /// (whatever the database's `citus.enable_schema_based_sharding`), and sends migrations so
    /// that Citus accepts them (see the README's "Citus" section). Saying
    /// [`Flavour::Postgres`] on a Citus server gives schemas that are not distributed.
    pub fn with_flavour(self, flavour: Flavour) -> Self {
        self.rebuild(|s| s.store.flavour = Some(flavour))
            .expect("the rest was checked when the handle was built")
    }

    /// Whether the server is a Citus coordinator (see [`with_flavour`](Self::with_flavour));
    /// asked once per handle, with the registry's set-up.
    pub async fn flavour(&self) -> Result<Flavour, Error> {
        self.pg().ensure_registry().await?;
        Ok(self.pg().flavour_now())
    }

    /// The same handle, telling PostgreSQL's row-level security who a row-level tenant's
    /// statement is for: each statement the handle (`&tenants`) and its
    /// [`TenantPool`](crate::TenantPool)s send for a row-level tenant
    /// ([`Tenant::rows_in`]) runs in a transaction that first sets `tenancy.tenant` to the
    /// tenant's name (`set_config(…, true)`, local to the transaction, so safe behind
    /// PgBouncer), which the policies of [`enable_row_security`](Self::enable_row_security)
    /// compare each row's tenant column with: a second wall behind the library's own filter.
    /// The same call (the registry's `enter_rows`) first checks that the tenant is still placed
    /// in the container the statement names, under a shared advisory lock of the tenant's rows
    /// held to the end of the transaction (no row lock: a reading transaction stays read-only):
    /// a [`Tenant`] resolved before a [`promote`](Self::promote) is refused with
    /// [`Error::NotPlaced`] for reads and writes alike, and a promote waits for the tenant's
    /// transactions in flight while the next ones wait for it. A role that may not create the
    /// registry uses the one its administrator made. A single statement costs three more round
    /// trips (`BEGIN`, the setting, `COMMIT`; BENCHMARKS.md workload 30 counts them); inside a
    /// caller's transaction, one more per statement ([`begin_rows`](Self::begin_rows) says it
    /// once for a whole transaction instead). On Citus, where the policies run on the workers,
    /// the tenant is said with a `SET LOCAL` that Citus propagates to them
    /// (`citus.propagate_set_commands` set to `local` for the rest of the transaction).
    ///
    /// Checks first that the pool's role is subject to row-level security: a superuser or a
    /// role with `BYPASSRLS` is not, and is refused ([`Error::Unsupported`] naming the role).
    pub async fn with_row_security(self) -> Result<Self, Error> {
        let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_catalog.pg_roles \
             WHERE rolname = current_user",
        )
        .persistent(self.pg().persistent())
        .fetch_one(self.pool())
        .await?;
        if superuser || bypass {
            let why = if superuser { "a superuser" } else { "has BYPASSRLS" };
            return Err(Error::Unsupported {
                operation: "with_row_security",
                reason: format!(
                    "the pool's role \"{role}\" is {why}, so PostgreSQL applies no row-level security policy to it; connect as a role without SUPERUSER and BYPASSRLS"
                ),
            });
        }
        self.rebuild(|s| s.store.row_security = true)
    }

    /// Whether statements say their row-level tenant to row-level security
    /// ([`with_row_security`](Self::with_row_security)).
    pub fn has_row_security(&self) -> bool {
        self.pg().mode().row_security.is_some()
    }

    /// Puts a row-level security policy on every table of tenant `container` with the
    /// handle's tenant column (default `tenant_id`): `ENABLE` and `FORCE ROW LEVEL SECURITY`
    /// (so the tables' owner is held to it too), and a policy `tenancy_tenant` letting a
    /// statement read and write only rows whose tenant column equals the `tenancy.tenant`
    /// setting of its transaction (none set: no row); a rename of a row-level tenant also says
    /// the new name in `tenancy.renamed_to`, whose rows the policy lets it see and write, so a
    /// rename by a role the policies hold gives the rows their new key (a container whose
    /// policies an older version made refuses such a rename whole: run this again). Run it
    /// after the migrations that make such tables (again after one adds a table), as a role
    /// that owns them; the pool the application serves requests with must be another role,
    /// without `SUPERUSER` and `BYPASSRLS` ([`with_row_security`](Self::with_row_security)).
    /// Under the container's lock, in one transaction; returns the tables it covered. On Citus
    /// the policies reach every shard, in a distributed schema and after
    /// [`distribute_rows`](Self::distribute_rows) alike.
    pub async fn enable_row_security(&self, container: &Tenant) -> Result<Vec<String>, Error> {
        let container = self.parse(container.container())?;
        let column = self.tenant_column().to_owned();
        self.locked(Operation::Migrate, &container, Expected::Own, async |op| {
            let persistent = self.pg().persistent();
            let tables = tables_with(op.conn(), persistent, container.as_str(), &column).await?;
            let col = double_quoted(&column);
            let mut batch = String::new();
            for table in &tables {
                let t = format!("{}.{}", container.quoted(), double_quoted(table));
                // Unset, a setting reads `''` once the session set it (a placeholder's reset
                // value), so `''` means none: no row with an empty tenant is seen or written
                // outside a tenant's transaction on a connection that served one. The rename's
                // setting is in `USING` too: an `UPDATE` whose `WHERE` reads the row must also
                // be able to see the row it writes.
                let setting = |name| format!("{col} = NULLIF(current_setting('{name}', true), '')");
                let (check, renamed) = (setting(TENANT_SETTING), setting(RENAMED_TO_SETTING));
                batch.push_str(&format!(
                    "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n\
                     ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n\
                     DROP POLICY IF EXISTS tenancy_tenant ON {t};\n\
                     CREATE POLICY tenancy_tenant ON {t} USING ({check} OR {renamed}) \
                     WITH CHECK ({check} OR {renamed});\n"
                ));
            }
            if !batch.is_empty() {
                // On Citus each statement goes as a query string of its own (in a `DO` block),
                // as it must to reach the shards of a distributed table.
                let batch = match self.pg().on_citus() {
                    true => citus_sql(&batch).into_owned(),
                    false => batch,
                };
                sqlx::raw_sql(AssertSqlSafe(batch)).execute(op.conn()).await?;
            }
            Ok(tables)
        })
        .await
    }

    /// A transaction on the handle's pool in which `tenant`'s row-level security setting is
    /// said once (`set_config('tenancy.tenant', …, true)`): every statement in it, the
    /// library's or hand-written, sees and writes only that tenant's rows of tables under
    /// [`enable_row_security`](Self::enable_row_security)'s policies. Commit or roll it back as
    /// any sqlx transaction. On Citus this is how hand-written SQL says its tenant: a
    /// `set_config('tenancy.tenant', …)` of its own would not reach the workers.
    pub async fn begin_rows(&self, tenant: &Tenant) -> Result<Transaction<'static, Postgres>, Error> {
        let mut tx = self.pool().begin().await?;
        let enter = super::sql::enter_rows(self.pg().registry());
        tell(&mut tx, (enter, tenant), self.pg().persistent())
            .await
            .map_err(|e| crate::backend::from_db::<Postgres>(e, tenant, ""))?;
        Ok(tx)
    }

    /// The PostgreSQL store.
    pub(crate) fn pg(&self) -> &PgStore {
        self.store()
    }
}

impl Tenants<Postgres> {
    /// Citus's row-based sharding for the container of row-level tenants `container`
    /// ([`create_in`](Self::create_in)): its tables with the handle's tenant column (default
    /// `tenant_id`) distributed by that column, colocated, so each tenant's rows live on one
    /// shard and the container's tenants spread over every worker; its other tables made
    /// reference tables (a copy on every node). Without it the container is a distributed
    /// schema like every tenant, all of its tenants on one worker.
    ///
    /// Run it once, after the migrations that make the container's tables; later migrations of
    /// the container distribute the tables they add the same way, in their own transaction.
    /// The rows already there are moved into the shards, under Citus's table locks: run it
    /// before the container fills, or at a quiet moment (how long its statements wait was not
    /// measured). Under the container's lock, in one transaction: if Citus refuses a table,
    /// nothing changes. Citus requires every primary key and unique index of a distributed
    /// table, and every foreign key between two of them, to include the tenant column (e.g.
    /// `PRIMARY KEY (tenant_id, id)`); what it refuses is an [`Error::Refused`] whose source is
    /// [`CitusError::RowSharding`], naming the table. Running it again distributes what is not
    /// yet: with nothing new, it answers the same [`RowSharding`] and changes nothing. Writes of
    /// other sessions meanwhile wait for its transaction. A partitioned table is distributed
    /// with its partitions. Tables under forced row-level security policies
    /// ([`enable_row_security`](Self::enable_row_security)) are not forced while their rows
    /// are copied (Citus copies them with the running role's statements, which the policies
    /// would filter for an owner without `SUPERUSER` or `BYPASSRLS`), and forced again, on
    /// every shard, before it returns.
    ///
    /// On a row-distributed container a [`rename`](Self::rename) of a row-level tenant copies
    /// its rows under the new name and deletes the old ones (Citus does not change a row's
    /// distribution column in place), and the container has no single node
    /// ([`placement_of`](Self::placement_of) is `None`, [`move_to`](Self::move_to) refuses it):
    /// Citus's shard rebalancer moves its shards.
    ///
    /// [`Error::Unsupported`] if no table of `container` has the tenant column;
    /// [`Error::NotATenant`] if `container` is not a tenant of its own; Citus only
    /// ([`CitusError::NotCitus`] otherwise).
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// let free_tier = tenants.create("free_tier").await?;
    /// let spread = tenants.distribute_rows(&free_tier).await?;
    /// println!("by tenant: {:?}, reference: {:?}", spread.by_tenant, spread.reference);
    /// let acme = tenants.create_in("acme", &free_tier).await?; // its rows on one shard
    /// # Ok(()) }
    /// ```
    pub async fn distribute_rows(&self, container: &Tenant) -> Result<RowSharding, Error> {
        let container = self.parse(container.container())?;
        self.require_citus("distribute_rows").await?;
        let column = self.tenant_column().to_owned();
        let span = trace::lifecycle::<Postgres>("distribute_rows", &container);
        let work = self.locked(Operation::Migrate, &container, Expected::Own, async |op| {
            let persistent = self.pg().persistent();
            let with = tables_with(op.conn(), persistent, container.as_str(), &column).await?;
            if with.is_empty() {
                return Err(Error::Unsupported {
                    operation: "distribute_rows",
                    reason: format!(
                        "no table of \"{container}\" has the tenant column \"{column}\", so \
                         there is nothing to distribute its rows by"
                    ),
                });
            }
            sqlx::raw_sql(SEQUENTIAL).execute(op.conn()).await?;
            // The block undistributes the distributed schema first.
            sqlx::query(COLUMN_SETTING)
                .persistent(false)
                .bind(&column)
                .execute(op.conn())
                .await?;
            sqlx::raw_sql(AssertSqlSafe(distribute_sql(&container)))
                .execute(op.conn())
                .await
                .map_err(|source| match source {
                    // Citus refusing a table; anything else (a lock timeout, a lost
                    // connection) is what it is.
                    source if is_not_supported(&source) => CitusError::RowSharding {
                        source: source.into(),
                    }
                    .refusing("distribute_rows", Some(&container)),
                    source => Error::from(source),
                })?;
            let spread: Vec<(String, bool)> = sqlx::query_as(SPREAD)
                .persistent(false)
                .bind(container.as_str())
                .fetch_all(op.conn())
                .await?;
            let mut out = RowSharding::default();
            for (table, by_tenant) in spread {
                match by_tenant {
                    true => out.by_tenant.push(table),
                    false => out.reference.push(table),
                }
            }
            Ok(out)
        });
        trace::within(span, work).await
    }
}
