//! Citus's row-based sharding of a container
//! ([`Tenants::distribute_rows`](crate::Tenants::distribute_rows)), its statements: the tables of a
//! container of row-level tenants distributed by the tenant column, so that one container's
//! tenants spread over every worker instead of living with their container on one.
//!
//! A tenant schema on Citus is a *distributed schema*: all of its tables on one worker. That
//! is right for a tenant of its own and wrong for a container holding thousands of row-level
//! tenants. `distribute_rows` turns such a container into a plain schema whose tables with the
//! tenant column are hash-distributed by it (colocated, so a tenant's rows of every table are
//! on one shard, and joins and foreign keys on the tenant column stay on it), and whose other
//! tables are reference tables (a copy on every node). Afterwards each migration of the
//! container distributes the tables it adds the same way, in its own transaction
//! ([`after_migration`]): a row-distributed container is recognised by Citus's catalog alone
//! (a schema that is not a distributed schema and holds a hash-distributed table), so there is
//! nothing to record and nothing to get out of step.
//!
//! Also how row-level security is told a row-level tenant on Citus ([`SAY_ROW_TENANT`]), in
//! a container of either kind: the policies run on the workers.

use crate::tenant::Tenant;

/// Sends the rest of the transaction's multi-shard statements over one connection per node.
/// Citus refuses to distribute a table, or to add a foreign key between distributed tables,
/// after a statement of the same transaction ran on many shards in parallel (an `ALTER TABLE`
/// of a distributed table), so a migration on Citus says it first. On a distributed schema's
/// tables (one shard each) it changes nothing.
pub(crate) const SEQUENTIAL: &str =
    "SELECT set_config('citus.multi_shard_modify_mode', 'sequential', true)";

/// How the registry's `enter_rows` says row-level tenant `_tenant` to the row-level security
/// policies on Citus (a PL/pgSQL fragment; it runs where Citus's settings exist). The policies
/// of a distributed table run on the workers, against its shards, and a `set_config` on the
/// coordinator does not reach them: there no tenant would be said, no row seen, no row
/// written. A `SET LOCAL` does reach them, on the connections the transaction has opened and
/// on those it opens later, when `citus.propagate_set_commands` is `local`, which it turns on
/// for the rest of the transaction (any later `SET LOCAL` of the transaction reaches the
/// workers too). The name is a validated tenant name, quoted as a literal by `format`'s `%L`.
pub(crate) const SAY_ROW_TENANT: &str =
    "        PERFORM set_config('citus.propagate_set_commands', 'local', true);
        EXECUTE format('SET LOCAL tenancy.tenant = %L', _tenant);";

/// How a container's tables are spread over the cluster after
/// [`distribute_rows`](crate::Tenants::distribute_rows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RowSharding {
    /// The tables with the tenant column, distributed by it: each tenant's rows on one shard,
    /// the shards spread over the workers. By name.
    pub by_tenant: Vec<String>,
    /// The tables without it, made reference tables: a copy on every node. By name.
    pub reference: Vec<String>,
}

/// The setting through which [`distribute_rows`](crate::Tenants::distribute_rows) gives
/// [`distribute_sql`] the tenant column, bound, for the rest of its transaction.
pub(crate) const COLUMN_SETTING: &str = "SELECT set_config('tenancy.rows_column', $1, true)";

/// A `DO` block that distributes every table of `schema` that Citus does not hold yet (tables
/// Citus only keeps as local ones count as not held): by the tenant column those with that
/// column, the others as reference tables. The foreign keys of those tables (not the copies
/// partitions inherit) are dropped first and added again last, so the order of the tables does
/// not matter (Citus refuses a foreign key between a distributed table and a local one, in
/// either direction). The local copy of a distributed table's rows is emptied (Citus leaves it
/// on disk, invisible).
///
/// The column is the transaction's [`COLUMN_SETTING`] if said (by `distribute_rows`): a
/// distributed schema is then undistributed first (its tables become local ones, then are
/// distributed as above). Otherwise (after a migration) the schema is left alone unless it is
/// a row-distributed container: no distributed schema, and a hash-distributed table, whose
/// distribution column is the one used. `schema` is named in the block (a validated name), not
/// taken from the `search_path`, which a migration may have changed.
///
/// The tables whose rows are copied (all of a distributed schema's, the not yet held ones
/// otherwise) are not `FORCE ROW LEVEL SECURITY` while they are: Citus copies rows with
/// statements the running role makes, which forced policies filter for the tables' owner (no
/// tenant said: no row), so a role that is neither a superuser nor `BYPASSRLS` would otherwise
/// lose every row in `citus_schema_undistribute` (silently) and be refused `COPY` into the
/// shards by `create_distributed_table`. They are forced again at the end of the block, which
/// reaches every shard; the transaction is not committed in between.
pub(super) fn distribute_sql(schema: &Tenant) -> String {
    let schema = format!("'{}'", schema.quoted().replace('\'', "''"));
    format!(
        r#"DO $tenancy_rows$
DECLARE
  s oid := to_regnamespace({schema});
  col text := NULLIF(current_setting('tenancy.rows_column', true), '');
  whole boolean;
  r record;
  fks text[] := '{{}}';
  forced text[] := '{{}}';
  fk text;
  t text;
  anchor regclass;
BEGIN
  IF s IS NULL THEN
    RETURN;
  END IF;
  -- The placement guard's triggers (`citus_guard`) go with the tables Citus distributes.
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
              WHERE c.relnamespace = s AND tg.tgname = 'tenancy_placed') THEN
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
  whole := EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = s);
  IF col IS NULL THEN
    IF whole THEN
      RETURN;
    END IF;
    SELECT column_to_column_name(p.logicalrelid, p.partkey) INTO col
      FROM pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
     WHERE c.relnamespace = s AND p.partmethod = 'h' ORDER BY c.oid LIMIT 1;
    IF col IS NULL THEN
      RETURN;
    END IF;
  END IF;
  FOR r IN SELECT format('%I.%I', n.nspname, c.relname) AS t
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relnamespace = s AND c.relkind IN ('r', 'p') AND c.relforcerowsecurity
              AND (whole OR NOT EXISTS (SELECT 1 FROM pg_dist_partition d
                                         WHERE d.logicalrelid = c.oid AND d.colocationid <> 0))
            ORDER BY c.oid
  LOOP
    forced := forced || r.t;
    EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', r.t);
  END LOOP;
  IF whole THEN
    PERFORM citus_schema_undistribute(s);
  END IF;
  FOR r IN SELECT k.conrelid::regclass AS t, k.conname, pg_get_constraintdef(k.oid) AS def
             FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
            WHERE c.relnamespace = s AND k.contype = 'f' AND k.conparentid = 0
              AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d
                               WHERE d.logicalrelid = c.oid AND d.colocationid <> 0)
            ORDER BY k.oid
  LOOP
    fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.t, r.conname, r.def);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS t,
                  EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) AS by_rows
             FROM pg_catalog.pg_class c
            WHERE c.relnamespace = s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d
                               WHERE d.logicalrelid = c.oid AND d.colocationid <> 0)
            ORDER BY c.oid
  LOOP
    IF r.by_rows THEN
      -- Colocated with the container's first hash-distributed table by name, not by Citus's
      -- default group, which concurrent distributions can split into two.
      SELECT p.logicalrelid INTO anchor
        FROM pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
       WHERE c.relnamespace = s AND p.partmethod = 'h' AND NOT c.relispartition
       ORDER BY c.oid LIMIT 1;
      IF anchor IS NULL THEN
        PERFORM create_distributed_table(r.t, col);
      ELSE
        PERFORM create_distributed_table(r.t, col, colocate_with => anchor::text);
      END IF;
    ELSE
      PERFORM create_reference_table(r.t);
    END IF;
    PERFORM truncate_local_data_after_distributing_table(r.t);
  END LOOP;
  FOREACH fk IN ARRAY fks LOOP
    EXECUTE fk;
  END LOOP;
  FOREACH t IN ARRAY forced LOOP
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
  END LOOP;
END $tenancy_rows$"#
    )
}

/// What a migration of `tenant` on Citus sends after its own statements, in its transaction:
/// the tables it added to a row-distributed container distributed as the container's others
/// are (see [`distribute_sql`]); nothing anywhere else.
pub(crate) fn after_migration(tenant: &Tenant) -> String {
    distribute_sql(tenant)
}

/// The container's tables that Citus holds, by name: whether each is hash-distributed.
pub(super) const SPREAD: &str = "SELECT c.relname::text, p.partmethod = 'h' \
     FROM pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
     WHERE c.relnamespace = to_regnamespace($1) ORDER BY c.relname";

/// Whether schema `$1` is a row-distributed container (see the module's docs).
pub(crate) const IS_ROW_DISTRIBUTED: &str = "SELECT NOT EXISTS (SELECT 1 FROM pg_dist_schema \
       WHERE schemaid = to_regnamespace($1)) \
     AND EXISTS (SELECT 1 FROM pg_dist_partition p \
       JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
       WHERE c.relnamespace = to_regnamespace($1) AND p.partmethod = 'h')";
