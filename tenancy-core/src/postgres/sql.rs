//! SQL of the tenant lifecycle: the registry of tenants, per-tenant migration bookkeeping,
//! schema DDL and locks. The registry lives in its own schema (default `_tenancy`), holding
//!
//! - `tenants(name)`: every schema this library created; only these count as tenants;
//! - `migrations(tenant, version, …)`: which sqlx migrations (version and checksum) are applied
//!   in which tenant. One table for all tenants, so finding who is behind is one query;
//! - `last_migrate_run`: one row, when the last `migrate`/`migrate_all` that changed anything
//!   finished and how many tenants it migrated. Writing it is the run's durable commit;
//! - `check_batch(tenant, problem)`: raises `problem` ([`CHANGED_SINCE_READ`] or
//!   [`WRONG_SCHEMA`]) as the SQLSTATE, with a message naming the tenant, unless it is `NULL`;
//!   the one-round-trip batches compute the problem in SQL and call it to refuse work;
//! - `create_in(tenant, container, lock_timeout)`: registers a row-level tenant in one call
//!   ([`create_in`]): under the advisory locks of its name and then its container, each of its
//!   statements reading with a snapshot of its own taken after them, it checks the name is
//!   free and the container a registered tenant with its schema, inserts the row if so, and
//!   returns what it found;
//! - `create_in_many(tenants, container, lock_timeout)`: the same for many names in one call
//!   ([`create_in_many`]): every name's lock (in byte order), then the container's; all of them
//!   registered, or none (it returns the first name taken);
//! - `enter_rows(tenant, container)`: under row security, checks the tenant is placed in the
//!   container (else [`NOT_PLACED`]) under a shared advisory lock of its rows held to the end of
//!   the transaction, and says it to the policies (on Citus, to the workers' too:
//!   [`super::citus_rows::SAY_ROW_TENANT`]);
//! - `placed_guard()`: a row trigger's function refusing ([`NOT_PLACED`]) a row whose tenant
//!   column (the trigger's first argument) names neither the table's schema's own tenant nor a
//!   row-level tenant registered in it and not being dropped (`dropping`, set by the first step
//!   of its drop), after taking a `KEY SHARE` lock on that tenant's registry row (so a promote,
//!   drop or rename, which locks the row `FOR UPDATE`, waits for the writes in flight, and the
//!   writes after it wait for it and then fail); with a second argument (the schema's oid) it
//!   leaves [`PLACED_SETTING`] for the trigger's `WHEN`.

use std::fmt::Write as _;
use std::time::Duration;

use sqlx::migrate::Migration;

use crate::tenant::Tenant;

use crate::ident::{double_quote_into, quote_into};

/// SQLSTATE a batch raises when the tenant is not what the caller read before sending it
/// (unregistered since, or migrated by someone else).
pub const CHANGED_SINCE_READ: &str = "TNCY1";

/// SQLSTATE a batch raises if the tenant's schema is not first on the `search_path` after
/// `SET LOCAL` (a server that ignored it): nothing then runs in the wrong schema.
pub const WRONG_SCHEMA: &str = "TNCY2";

/// SQLSTATE the placement guard raises (`placed_guard`, installed by a promote on a shared
/// container's tables): a row-level tenant's row written to a container that does not hold its
/// rows.
pub const NOT_PLACED: &str = "TNCY3";

/// The advisory lock of a row-level tenant's rows (`<prefix><tenant name>`, hashed): taken shared
/// by `enter_rows` for a whole transaction, exclusive by a promote, so that a promote waits for
/// the tenant's transactions under row security and they wait for it. An advisory lock, not a
/// row lock: a reading transaction stays read-only (no transaction id, no commit to flush, fine
/// on a standby).
pub(crate) fn rows_lock_prefix(registry: &Tenant) -> String {
    format!("tenancy-rows:{}:", registry.as_str())
}

/// `SELECT <registry>.enter_rows($1, $2)`: a row-level tenant (`$1`) checked to be placed in
/// container `$2` and said to the row-level security policies, for the rest of the transaction.
/// Interned: one text per registry for the life of the process (a handle's mode is `Copy`).
pub(crate) fn enter_rows(registry: &Tenant) -> &'static str {
    static TEXTS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let text = format!("SELECT {}.enter_rows($1, $2)", q(registry));
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    match texts.iter().find(|t| **t == text) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(text.into_boxed_str());
            texts.push(leaked);
            leaked
        }
    }
}

/// The trigger (on each table of a container with the tenant column, once a tenant was
/// promoted, dropped or renamed out of it) that runs `placed_guard`.
pub(crate) const PLACED_TRIGGER: &str = "tenancy_placed";

/// The setting `placed_guard` leaves for the rest of the transaction once it has checked and
/// locked a tenant's registry row (`<container's schema oid>/<tenant>`, the oid its trigger
/// passes as its second argument; `set_config(…, true)`): the trigger's `WHEN` skips the
/// function for the next rows of that tenant in that container, whose registry row the
/// transaction already holds (a bulk insert pays the check once). Reverted with a savepoint
/// rolled back, as the lock is released.
pub(crate) const PLACED_SETTING: &str = "tenancy.placed";

fn q(schema: &Tenant) -> String {
    schema.quoted()
}

/// Creates the registry if it is absent. Runs as one implicit transaction holding a
/// transaction-level advisory lock, so concurrent first uses do not race on `IF NOT EXISTS`.
pub fn ensure_registry(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT pg_advisory_xact_lock(hashtextextended({lock}, 0));
CREATE SCHEMA IF NOT EXISTS {r};
CREATE TABLE IF NOT EXISTS {r}.tenants (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {r}.migrations (
    tenant text NOT NULL REFERENCES {r}.tenants (name) ON DELETE CASCADE ON UPDATE CASCADE,
    version bigint NOT NULL,
    description text NOT NULL,
    checksum bytea NOT NULL,
    installed_on timestamptz NOT NULL DEFAULT now(),
    execution_ms bigint NOT NULL,
    PRIMARY KEY (tenant, version)
);
CREATE TABLE IF NOT EXISTS {r}.row_tenants (
    name text PRIMARY KEY,
    container text NOT NULL REFERENCES {r}.tenants (name) ON UPDATE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    dropping boolean NOT NULL DEFAULT false
);
DO $tenancy$ BEGIN
    -- A registry made before drops of row-level tenants went in steps gets their mark.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                   WHERE attrelid = {row_tenants}::regclass AND attname = 'dropping'
                     AND NOT attisdropped) THEN
        ALTER TABLE {r}.row_tenants ADD COLUMN dropping boolean NOT NULL DEFAULT false;
    END IF;
END $tenancy$;
CREATE OR REPLACE FUNCTION {r}.check_batch(_tenant text, _problem text) RETURNS void
LANGUAGE plpgsql AS $tenancy$
BEGIN
    IF _problem = '{CHANGED_SINCE_READ}' THEN
        RAISE EXCEPTION 'tenant % changed since it was read', _tenant USING ERRCODE = _problem;
    ELSIF _problem IS NOT NULL THEN
        RAISE EXCEPTION 'schema of tenant % does not exist', _tenant USING ERRCODE = _problem;
    END IF;
END
$tenancy$;
CREATE OR REPLACE FUNCTION {r}.enter_rows(_tenant text, _container text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tenancy$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended({rows_lock} || _tenant, 0));
    PERFORM 1 FROM {r}.row_tenants WHERE name = _tenant AND container = _container;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % has no rows in % (promoted, renamed or dropped since it was resolved)',
            _tenant, _container USING ERRCODE = '{NOT_PLACED}';
    END IF;
    IF current_setting('citus.propagate_set_commands', true) IS NULL THEN
        PERFORM set_config('tenancy.tenant', _tenant, true);
    ELSE
{say_on_citus}
    END IF;
END
$tenancy$;
CREATE OR REPLACE FUNCTION {r}.create_in(_tenant text, _container text, _lock_timeout text,
    OUT name_taken boolean, OUT container_registered boolean, OUT container_schema boolean)
LANGUAGE plpgsql VOLATILE AS $tenancy$
BEGIN
    IF _lock_timeout IS NOT NULL THEN
        PERFORM pg_catalog.set_config('lock_timeout', _lock_timeout, true);
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({lock_prefix} || _tenant, 0));
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({lock_prefix} || _container, 0));
    -- Each statement from here on reads with a snapshot taken after the locks (VOLATILE, READ
    -- COMMITTED): what a create, rename or drop that held them committed is seen.
    name_taken := EXISTS (SELECT 1 FROM {r}.tenants t WHERE t.name = _tenant)
        OR EXISTS (SELECT 1 FROM {r}.row_tenants p WHERE p.name = _tenant);
    container_registered := EXISTS (SELECT 1 FROM {r}.tenants t WHERE t.name = _container);
    container_schema := pg_catalog.to_regnamespace(_container) IS NOT NULL;
    IF NOT name_taken AND container_registered AND container_schema THEN
        INSERT INTO {r}.row_tenants (name, container) VALUES (_tenant, _container);
    END IF;
END
$tenancy$;
CREATE OR REPLACE FUNCTION {r}.create_in_many(_tenants text[], _container text,
    _lock_timeout text, OUT taken text, OUT container_registered boolean,
    OUT container_schema boolean)
LANGUAGE plpgsql VOLATILE AS $tenancy$
DECLARE
    _tenant text;
BEGIN
    IF _lock_timeout IS NOT NULL THEN
        PERFORM pg_catalog.set_config('lock_timeout', _lock_timeout, true);
    END IF;
    -- The names' locks in byte order (concurrent batches take them in one order), then the
    -- container's: as create_in takes a name's and then its container's.
    FOR _tenant IN SELECT n FROM unnest(_tenants) n ORDER BY n COLLATE \"C\" LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({lock_prefix} || _tenant, 0));
    END LOOP;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({lock_prefix} || _container, 0));
    SELECT n INTO taken FROM unnest(_tenants) n
        WHERE EXISTS (SELECT 1 FROM {r}.tenants t WHERE t.name = n)
           OR EXISTS (SELECT 1 FROM {r}.row_tenants p WHERE p.name = n)
        ORDER BY n COLLATE \"C\" LIMIT 1;
    container_registered := EXISTS (SELECT 1 FROM {r}.tenants t WHERE t.name = _container);
    container_schema := pg_catalog.to_regnamespace(_container) IS NOT NULL;
    IF taken IS NULL AND container_registered AND container_schema THEN
        INSERT INTO {r}.row_tenants (name, container) SELECT n, _container FROM unnest(_tenants) n;
    END IF;
END
$tenancy$;
CREATE OR REPLACE FUNCTION {r}.placed_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tenancy$
DECLARE
    _tenant text := to_jsonb(NEW) ->> TG_ARGV[0];
BEGIN
    IF _tenant IS DISTINCT FROM TG_TABLE_SCHEMA THEN
        PERFORM 1 FROM {r}.row_tenants
            WHERE name = _tenant AND container = TG_TABLE_SCHEMA AND NOT dropping FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tenant % has no rows in % (promoted, renamed or dropped since it was resolved)',
                _tenant, TG_TABLE_SCHEMA USING ERRCODE = '{NOT_PLACED}';
        END IF;
        IF TG_NARGS > 1 THEN
            PERFORM pg_catalog.set_config('{PLACED_SETTING}', TG_ARGV[1] || '/' || _tenant, true);
        END IF;
    END IF;
    RETURN NEW;
END
$tenancy$;
CREATE TABLE IF NOT EXISTS {r}.last_migrate_run (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    finished_at timestamptz NOT NULL,
    tenants_migrated bigint NOT NULL
);
{restore}",
        lock = literal(&format!("tenancy-registry:{}", registry.as_str())),
        row_tenants = literal(&format!("{r}.row_tenants")),
        rows_lock = literal(&rows_lock_prefix(registry)),
        say_on_citus = super::citus_rows::SAY_ROW_TENANT,
        lock_prefix = lock_prefix(registry),
        restore = session_functions(registry),
    )
}

/// A string literal, any `'` inside doubled.
pub(crate) fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s, '\'');
    out
}

/// Takes the lock of `tenant` (a validated name, rendered as a literal) until the end of the
/// transaction, for a simple-protocol statement. Keyed by registry and tenant, so runs on
/// different tenants never wait for each other.
pub fn lock_tenant_named(registry: &Tenant, tenant: &Tenant) -> String {
    lock_tenant_of(registry, &literal(tenant.as_str()))
}

fn lock_tenant_of(registry: &Tenant, name: &str) -> String {
    format!("SELECT {}", lock_expr(registry, name))
}

/// [`lock_tenant_of`] as an expression of a `SELECT` list.
fn lock_expr(registry: &Tenant, name: &str) -> String {
    format!("pg_advisory_xact_lock({})", lock_key(registry, name))
}

/// The advisory lock key of tenant `name` (an SQL expression).
fn lock_key(registry: &Tenant, name: &str) -> String {
    format!("hashtextextended({} || {name}, 0)", lock_prefix(registry))
}

/// What a tenant's name follows in its lock's key, as a literal: `'tenancy:<registry>:'`.
fn lock_prefix(registry: &Tenant) -> String {
    literal(&format!("tenancy:{}:", registry.as_str()))
}

/// `SELECT * FROM <registry>.create_in(…)`: row-level `tenant` registered in its container in
/// one call of the registry's function (names validated, rendered as literals, so that it is one
/// simple-protocol round trip, PgBouncer's way too), waiting for the locks at most the handle's
/// lock timeout. Its one row: whether the name is taken, whether the container is registered,
/// whether its schema exists; the tenant was registered if the name is free and both hold.
pub fn create_in(registry: &Tenant, tenant: &Tenant, options: &BatchOptions) -> String {
    let timeout = lock_timeout_value(options)
        .map(|t| literal(&t))
        .unwrap_or_else(|| "NULL".to_owned());
    format!(
        "SELECT * FROM {}.create_in({}, {}, {timeout})",
        q(registry),
        literal(tenant.as_str()),
        literal(tenant.container())
    )
}

/// `SELECT * FROM <registry>.create_in_many(…)`: the row-level tenants `tenants` (names
/// validated, rendered as literals: one simple-protocol round trip, as [`create_in`]) registered
/// in `container` in one call, all or none. Its one row: the first name found taken (or
/// `NULL`), whether the container is registered, whether its schema exists; the tenants were
/// registered if no name is taken and both hold.
pub fn create_in_many(
    registry: &Tenant,
    tenants: &[Tenant],
    container: &Tenant,
    options: &BatchOptions,
) -> String {
    let timeout = lock_timeout_value(options)
        .map(|t| literal(&t))
        .unwrap_or_else(|| "NULL".to_owned());
    let mut names = String::from("ARRAY[");
    for (i, tenant) in tenants.iter().enumerate() {
        if i > 0 {
            names.push_str(", ");
        }
        quote_into(&mut names, tenant.as_str(), '\'');
    }
    names.push_str("]::text[]");
    format!(
        "SELECT * FROM {}.create_in_many({names}, {}, {timeout})",
        q(registry),
        literal(container.as_str())
    )
}

/// The tenant's lifecycle lock (the same key as [`lock_tenant_named`]) taken for the session, for
/// work that cannot run inside a transaction (a Citus move by logical replication). Only for a
/// connection that is closed afterwards, never returned to a pool.
pub fn lock_tenant_session_named(registry: &Tenant, tenant: &Tenant) -> String {
    format!(
        "SELECT pg_advisory_lock({})",
        lock_key(registry, &literal(tenant.as_str()))
    )
}

/// The lifecycle locks of `tenants` (in the order given) taken before `opening` (the `BEGIN` of
/// an operation's transaction and what follows it, unsent) opens the transaction, so that its
/// first snapshot, the one a `REPEATABLE READ` transaction reads everything from, is taken once
/// it holds them: it sees what every operation that held one of them committed. One
/// simple-protocol batch, so PgBouncer in transaction mode keeps the server connection through
/// it: the locks taken for the session in a transaction of their own (waiting at most the
/// handle's lock timeout), `opening`, then the same locks taken for the operation's transaction
/// (granted at once: its session holds them) and the session's released, so that the
/// transaction's end releases them, as any operation's. After an error the session may still
/// hold some of them: the caller closes the connection.
pub fn lock_then_begin(
    registry: &Tenant,
    tenants: &[&Tenant],
    options: &BatchOptions,
    opening: &str,
) -> String {
    let each = |function: &str| {
        let calls: Vec<String> = tenants
            .iter()
            .map(|t| format!("{function}({})", lock_key(registry, &literal(t.as_str()))))
            .collect();
        calls.join(", ")
    };
    let timeout = set_lock_timeout(options);
    format!(
        "BEGIN;\n{timeout}SELECT {};\nCOMMIT;\n{opening}{timeout}SELECT {}, {};\n",
        each("pg_advisory_lock"),
        each("pg_advisory_xact_lock"),
        each("pg_advisory_unlock")
    )
}

/// Registers tenant `$1`; fails with a unique violation if it exists.
pub fn register(registry: &Tenant) -> String {
    format!("INSERT INTO {}.tenants (name) VALUES ($1)", q(registry))
}

/// Unregisters `tenant` (a validated name, rendered as a literal), for a simple-protocol
/// batch; its bookkeeping rows cascade.
pub fn unregister_named(registry: &Tenant, tenant: &Tenant) -> String {
    format!(
        "DELETE FROM {}.tenants WHERE name = {}",
        q(registry),
        literal(tenant.as_str())
    )
}

/// Renames tenant `$1` to `$2` (bookkeeping rows follow by `ON UPDATE CASCADE`).
pub fn rename(registry: &Tenant) -> String {
    format!(
        "UPDATE {}.tenants SET name = $2 WHERE name = $1 RETURNING name",
        q(registry)
    )
}

/// Whether tenant `$1` is registered.
pub fn exists(registry: &Tenant) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {}.tenants WHERE name = $1)",
        q(registry)
    )
}

/// Whether tenant `$1` is registered, and whether its schema exists.
pub fn registered_and_schema(registry: &Tenant) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {}.tenants WHERE name = $1), to_regnamespace($1) IS NOT NULL",
        q(registry)
    )
}

/// The other sessions holding a granted lock on tenant `$1`: its lifecycle lock, its schema,
/// or a relation in it. `(pid, application_name, state, query)`.
pub fn lock_holders(registry: &Tenant) -> String {
    format!(
        "SELECT DISTINCT a.pid, COALESCE(a.application_name, ''), COALESCE(a.state, ''),
    left(COALESCE(a.query, ''), 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND (
    (l.locktype = 'advisory' AND l.objsubid = 1
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended({} || $1, 0))
    OR (l.locktype = 'relation'
        AND l.relation IN (SELECT oid FROM pg_class WHERE relnamespace = to_regnamespace($1)))
    OR (l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass
        AND l.objid = to_regnamespace($1)::oid))
ORDER BY a.pid",
        literal(&format!("tenancy:{}:", registry.as_str()))
    )
}

/// Every tenant name, sorted.
pub fn list(registry: &Tenant) -> String {
    format!("SELECT name FROM {}.tenants ORDER BY name", q(registry))
}

/// `(version, checksum)` of every migration applied in tenant `$1`.
pub fn applied(registry: &Tenant) -> String {
    format!(
        "SELECT version, checksum FROM {}.migrations WHERE tenant = $1 ORDER BY version",
        q(registry)
    )
}

/// Per tenant: its name, and its applied versions and checksums (for status and dry runs).
pub fn applied_all(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT t.name,
    COALESCE(array_agg(m.version ORDER BY m.version) FILTER (WHERE m.version IS NOT NULL), '{{}}'),
    COALESCE(array_agg(m.checksum ORDER BY m.version) FILTER (WHERE m.version IS NOT NULL), '{{}}')
FROM {r}.tenants t LEFT JOIN {r}.migrations m ON m.tenant = t.name
GROUP BY t.name ORDER BY t.name"
    )
}

/// One catalog query for `migrate_all`: every tenant and whether it lacks any of the expected
/// migrations (`$1` versions, `$2` checksums, paired by position) or has one with another
/// checksum. An index probe per tenant and migration; no round trip per tenant.
pub fn behind(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT t.name, EXISTS (
    SELECT 1 FROM unnest($1::bigint[], $2::bytea[]) AS e(version, checksum)
    WHERE NOT EXISTS (
        SELECT 1 FROM {r}.migrations m
        WHERE m.tenant = t.name AND m.version = e.version AND m.checksum = e.checksum))
FROM {r}.tenants t ORDER BY t.name"
    )
}

/// Per tenant of `$1` that has any: its applied versions and their checksums, by version
/// (what `migrate_all` needs of the tenants [`behind`] found).
pub fn applied_of(registry: &Tenant) -> String {
    format!(
        "SELECT tenant, array_agg(version ORDER BY version), array_agg(checksum ORDER BY version)
FROM {}.migrations WHERE tenant = ANY($1) GROUP BY tenant",
        q(registry)
    )
}

/// Records applied migrations of tenant `$1`: `$2` versions, `$3` descriptions, `$4` checksums,
/// `$5` execution times in milliseconds.
pub fn record_applied(registry: &Tenant) -> String {
    format!(
        "INSERT INTO {}.migrations (tenant, version, description, checksum, execution_ms)
SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bigint[])",
        q(registry)
    )
}

/// Records that a run migrated `$1` tenants. Committed with the session's
/// `synchronous_commit` (normally `on`), this one commit flushes the WAL up to it, making every
/// earlier asynchronous commit of the run's [`migrate_batch`]es durable too.
pub fn record_run(registry: &Tenant) -> String {
    format!(
        "INSERT INTO {}.last_migrate_run (singleton, finished_at, tenants_migrated)
VALUES (true, now(), $1)
ON CONFLICT (singleton) DO UPDATE SET finished_at = EXCLUDED.finished_at,
    tenants_migrated = EXCLUDED.tenants_migrated",
        q(registry)
    )
}

/// When the server started, as text: a run reads it before its first migration and again after
/// its durable commit ([`record_run`]); if it differs, the server restarted in between and
/// migrations committed without waiting for the disk may have been lost.
pub const SERVER_STARTED: &str = "pg_postmaster_start_time()::text";

/// Forgets reverted migrations of tenant `$1`: `$2` versions.
pub fn forget_applied(registry: &Tenant) -> String {
    format!(
        "DELETE FROM {}.migrations WHERE tenant = $1 AND version = ANY($2)",
        q(registry)
    )
}

/// `CREATE SCHEMA "t"`.
pub fn create_schema(tenant: &Tenant) -> String {
    format!("CREATE SCHEMA {}", q(tenant))
}

/// Locks every table of `tenant`'s schema in one `LOCK TABLE … IN ACCESS EXCLUSIVE MODE`,
/// waiting for the transactions that use them to end (a `DO` block, so that a batch stays one
/// round trip). A drop and a rename take it first:
/// - `DROP SCHEMA` alone takes its locks object by object in the catalog's order, which puts a
///   `serial` column's sequence before its table: a transaction that had read the table and
///   then inserted (`nextval` locks the sequence) waited for the drop while the drop waited for
///   it, and one of the two failed with a deadlock.
/// - `ALTER SCHEMA … RENAME` alone locks no table: a transaction open across it went on naming
///   the old schema, and once a new tenant had that name its statements wrote the new tenant's
///   tables.
fn lock_tables(tenant: &Tenant) -> String {
    lock_tables_in(tenant, "ACCESS EXCLUSIVE")
}

/// Every table of `tenant`'s schema locked in `mode` (a lock mode's words), in one statement.
pub(crate) fn lock_tables_in(tenant: &Tenant, mode: &str) -> String {
    format!(
        "DO $tenancy$ DECLARE tables text; BEGIN \
         SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.oid) INTO tables \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = {name} AND c.relkind IN ('r', 'p'); \
         IF tables IS NOT NULL THEN \
         EXECUTE 'LOCK TABLE ' || tables || ' IN {mode} MODE'; \
         END IF; END $tenancy$",
        name = literal(tenant.as_str()),
    )
}

/// Every table of the schema locked first (see `lock_tables`), then `DROP SCHEMA "t" CASCADE`.
pub fn drop_schema(tenant: &Tenant) -> String {
    format!("{};\nDROP SCHEMA {} CASCADE", lock_tables(tenant), q(tenant))
}

/// Every table of `old` locked first (see `lock_tables`), then `ALTER SCHEMA "old" RENAME TO
/// "new"`.
pub fn rename_schema(old: &Tenant, new: &Tenant) -> String {
    format!(
        "{};\nALTER SCHEMA {} RENAME TO {}",
        lock_tables(old),
        q(old),
        q(new)
    )
}

/// What a lifecycle batch needs beyond the tenant and the migrations.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Schemas put after the tenant's on the migrations' `search_path` (e.g. `public`, for
    /// shared types and extension functions). None by default: then an unqualified name in a
    /// migration can only resolve in the tenant's schema (or `pg_catalog`).
    pub shared_schemas: Vec<String>,
    /// How long the batch waits for any lock before failing (`lock_timeout`); `None` waits.
    pub lock_timeout: Option<Duration>,
}

/// Points unqualified names of migration SQL at the tenant, for the current transaction only
/// (`SET LOCAL` ends with it, so the pooled connection is not left changed). The caller has
/// checked, under the tenant's lock, that the tenant's schema exists.
pub fn set_local_search_path(tenant: &Tenant, options: &BatchOptions) -> String {
    format!(
        "SET LOCAL search_path TO {}",
        search_path_of(tenant, options)
    )
}

/// `"tenant"`, then the shared schemas, each quoted.
fn search_path_of(tenant: &Tenant, options: &BatchOptions) -> String {
    let mut out = String::new();
    double_quote_into(&mut out, tenant.as_str());
    for shared in &options.shared_schemas {
        out.push_str(", ");
        double_quote_into(&mut out, shared);
    }
    out
}

/// `SELECT set_config('lock_timeout', …, true);` for the transaction, or nothing.
pub fn set_lock_timeout(options: &BatchOptions) -> String {
    match lock_timeout_expr(options) {
        Some(expr) => format!("SELECT {expr};\n"),
        None => String::new(),
    }
}

/// Session settings a migration may change with a plain (session-level) `SET`, which would
/// otherwise outlive its transaction on the pooled connection. [`save_session`] records them
/// before the migrations and [`restore_session`] puts back any that changed, inside the same
/// transaction. `role` comes first, so the others are restored with the original privileges.
pub const RESTORED_SETTINGS: &[&str] = &[
    "role",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "synchronous_commit",
    "work_mem",
    "maintenance_work_mem",
    "client_min_messages",
    "client_encoding",
    "TimeZone",
    "DateStyle",
    "IntervalStyle",
    "extra_float_digits",
    "bytea_output",
    "standard_conforming_strings",
    "check_function_bodies",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "row_security",
    "default_tablespace",
    "session_replication_role",
];

/// The values of [`RESTORED_SETTINGS`] now, joined by the unit separator (U+001F), which no
/// setting's value holds.
fn settings_now() -> String {
    let mut out = String::from("concat_ws(E'\\x1f'");
    for name in RESTORED_SETTINGS {
        let _ = write!(out, ", current_setting('{name}')");
    }
    out.push(')');
    out
}

/// Saves, for the transaction, the session settings a migration could change (see
/// [`RESTORED_SETTINGS`]), as one transaction-local setting.
pub fn save_session(registry: &Tenant) -> String {
    format!("SELECT {}", save_expr(registry))
}

/// [`save_session`] as an expression of a `SELECT` list. The values are read by the registry's
/// `session_settings()` (PL/pgSQL caches its plan for the session: as inline SQL, parsing and
/// planning two dozen `current_setting` calls doubled the cost of a batch).
fn save_expr(registry: &Tenant) -> String {
    format!(
        "set_config('tenancy.saved_session', {}.session_settings(), true)",
        q(registry)
    )
}

/// The handle's `lock_timeout` for the transaction, as an expression of a `SELECT` list.
fn lock_timeout_expr(options: &BatchOptions) -> Option<String> {
    lock_timeout_value(options).map(|t| format!("set_config('lock_timeout', '{t}', true)"))
}

/// The handle's `lock_timeout` as the setting's value (`1500ms`), if it has one.
fn lock_timeout_value(options: &BatchOptions) -> Option<String> {
    options
        .lock_timeout
        .map(|t| format!("{}ms", t.as_millis().max(1)))
}

/// The values of [`RESTORED_SETTINGS`] as one string, to compare a session before and after.
pub fn session_fingerprint() -> String {
    format!("SELECT {}", settings_now())
}

/// Puts back, at session level, what [`save_session`] saved, through the registry's
/// `restore_session(saved)`: the `search_path` (which the transaction set locally) always, and,
/// only if any of [`RESTORED_SETTINGS`] then differs from its saved value (a migration ran a
/// session-level `SET`), each one that differs. One `SELECT` expression.
pub fn restore_session(registry: &Tenant) -> String {
    format!(
        "SELECT {}.restore_session(current_setting('tenancy.saved_session'))",
        q(registry)
    )
}

/// The registry's `session_settings()` (the values of [`RESTORED_SETTINGS`] joined by U+001F)
/// and `restore_session(saved)` (puts `saved`'s `search_path` back, then, if the settings
/// differ from `saved`, each that differs; true if any did).
fn session_functions(registry: &Tenant) -> String {
    let mut names = String::new();
    for (i, name) in RESTORED_SETTINGS.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(names, "{sep}'{name}'");
    }
    let path = 1 + RESTORED_SETTINGS
        .iter()
        .position(|n| *n == "search_path")
        .expect("search_path is restored");
    format!(
        "CREATE OR REPLACE FUNCTION {r}.session_settings() RETURNS text
LANGUAGE plpgsql STABLE AS $tenancy$
BEGIN
    RETURN {now};
END
$tenancy$;
CREATE OR REPLACE FUNCTION {r}.restore_session(_saved text) RETURNS boolean
LANGUAGE plpgsql AS $tenancy$
DECLARE
    _names text[];
    _values text[] := string_to_array(_saved, E'\\x1f');
BEGIN
    PERFORM set_config('search_path', _values[{path}], false);
    IF {r}.session_settings() IS NOT DISTINCT FROM _saved THEN
        RETURN false;
    END IF;
    _names := ARRAY[{names}];
    FOR i IN 1 .. array_length(_names, 1) LOOP
        IF current_setting(_names[i]) IS DISTINCT FROM _values[i] THEN
            PERFORM set_config(_names[i], _values[i], false);
        END IF;
    END LOOP;
    RETURN true;
END
$tenancy$;",
        r = q(registry),
        now = settings_now(),
    )
}

/// Creates tenant `tenant` with `migrations` as one simple-protocol batch: one round trip and
/// one implicit transaction, so an error anywhere (the name registered meanwhile, the schema
/// already there, a failing migration) rolls all of it back. Takes the name's lock, registers
/// the name, creates the schema, checks (with a snapshot taken after the lock) that no
/// row-level tenant has the name ([`create_in`] registers one under the same lock) and raises
/// [`CHANGED_SINCE_READ`] if one has, then runs the migrations in it (see [`migrate_batch`] for
/// what surrounds them).
///
/// Names are validated, so they are rendered as literals; nothing else from outside goes in
/// but the migrations' own SQL.
pub fn create_batch(
    registry: &Tenant,
    tenant: &Tenant,
    migrations: &[&Migration],
    options: &BatchOptions,
) -> String {
    let r = q(registry);
    let n = literal(tenant.as_str());
    // One statement, evaluated in order: the session's settings are saved before this batch's
    // own lock timeout is set, and both before the lock is taken.
    let timeout = lock_timeout_expr(options)
        .map(|t| format!("{t}, "))
        .unwrap_or_default();
    let mut out = format!(
        "SELECT {}, {timeout}{};\n",
        save_expr(registry),
        lock_expr(registry, &n)
    );
    let _ = write!(
        out,
        "INSERT INTO {r}.tenants (name) VALUES ({n});
{create};
SELECT set_config('search_path', {path}, true), {STARTED},
    {r}.check_batch({n}, CASE WHEN to_regnamespace({n}) IS NULL THEN '{WRONG_SCHEMA}'
        WHEN EXISTS (SELECT 1 FROM {r}.row_tenants WHERE name = {n}) THEN '{CHANGED_SINCE_READ}' END);
",
        create = create_schema(tenant),
        path = literal(&search_path_of(tenant, options)),
    );
    push_migrations(&mut out, registry, tenant, migrations);
    out.push_str(";\n");
    out
}

/// Applies `pending` to tenant `tenant` as one simple-protocol batch (one round trip, one
/// implicit transaction, rolled back as a whole on any error) under the tenant's lock.
///
/// Under the lock it checks that the tenant is still registered with exactly the `applied`
/// versions the caller read (ascending); otherwise (another process migrated or rolled it back
/// meanwhile, or it was dropped) it raises [`CHANGED_SINCE_READ`] and changes nothing. It also
/// raises [`WRONG_SCHEMA`] if the tenant's schema is missing, so nothing can run against
/// whatever else is on the `search_path`. It then saves the session's `search_path`, sets the
/// tenant's for the transaction, and runs each migration, timed on the server, followed by its
/// bookkeeping row; last, it puts the session's `search_path` back, so a migration that ran a
/// session-level `SET search_path` leaves no trace on the pooled connection.
///
/// Its commit is asynchronous (`synchronous_commit = off` for the transaction, no wait for the
/// WAL flush): the caller makes a run's batches durable with one synchronous commit after the
/// last of them ([`record_run`]). Until then a server crash can lose a tenant's whole migration
/// (its DDL and bookkeeping row together), which the next run finds pending again; never half
/// of one.
pub fn migrate_batch(
    registry: &Tenant,
    tenant: &Tenant,
    applied: &[i64],
    pending: &[&Migration],
    options: &BatchOptions,
) -> String {
    let r = q(registry);
    let n = literal(tenant.as_str());
    let mut versions = String::new();
    for (i, v) in applied.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(versions, "{sep}{v}");
    }
    // One statement, evaluated in order: the session's settings are saved before this
    // batch's own lock timeout is set, and both before the lock is taken.
    let timeout = lock_timeout_expr(options)
        .map(|t| format!("{t}, "))
        .unwrap_or_default();
    let mut out = format!("SELECT {}, {timeout}", save_expr(registry));
    let _ = write!(
        out,
        "{lock};
SELECT set_config('search_path', {path}, true),
    {STARTED}, {r}.check_batch({n}, CASE
        WHEN NOT EXISTS (SELECT 1 FROM {r}.tenants WHERE name = {n})
            OR (SELECT COALESCE(array_agg(version ORDER BY version), '{{}}') FROM {r}.migrations
                WHERE tenant = {n}) IS DISTINCT FROM ARRAY[{versions}]::bigint[]
            THEN '{CHANGED_SINCE_READ}'
        WHEN to_regnamespace({n}) IS NULL THEN '{WRONG_SCHEMA}' END);
",
        lock = lock_expr(registry, &n),
        path = literal(&search_path_of(tenant, options)),
    );
    push_migrations(&mut out, registry, tenant, pending);
    // After the restore (same statement), which would otherwise undo it: this transaction's
    // commit does not wait for the WAL flush.
    out.push_str(", set_config('synchronous_commit', 'off', true);\n");
    out
}

/// Starts the clock of a batch's first migration (transaction-local).
const STARTED: &str = "set_config('tenancy.started', clock_timestamp()::text, true)";

/// Appends each migration, timed on the server (the caller starts the first one's clock),
/// with its bookkeeping row; then the statement that puts back the session settings the
/// migrations changed, without its terminating `;` (the caller may add to it).
fn push_migrations(
    out: &mut String,
    registry: &Tenant,
    tenant: &Tenant,
    migrations: &[&Migration],
) {
    let r = q(registry);
    let n = literal(tenant.as_str());
    for (i, m) in migrations.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "SELECT {STARTED};");
        }
        let _ = write!(
            out,
            "{sql}
;
INSERT INTO {r}.migrations (tenant, version, description, checksum, execution_ms) VALUES ({n}, {version}, convert_from(decode('{description}', 'hex'), 'UTF8'), decode('{checksum}', 'hex'), (1000 * extract(epoch FROM clock_timestamp() - current_setting('tenancy.started')::timestamptz))::bigint);
",
            sql = m.sql.as_str(),
            version = m.version,
            description = hex(m.description.as_bytes()),
            checksum = hex(&m.checksum),
        );
    }
    out.push_str(&restore_session(registry));
}

/// `s` as a text expression that no server setting or quoting can misread (no quote,
/// backslash or dollar in it): `pg_catalog.convert_from(pg_catalog.decode('<hex>', 'hex'), 'UTF8')`.
pub(crate) fn text_of(s: &str) -> String {
    format!("pg_catalog.convert_from(pg_catalog.decode('{}', 'hex'), 'UTF8')", hex(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
