//! The placement guard's PL/pgSQL, written once: the trigger a drop, rename or promote of a
//! row-level tenant puts on its container's tables ([`guard_tables`], a `DO` block), and the
//! registry function `guard_added` a migration calls to put the same trigger on the tables it
//! adds ([`guard_added_function`], made with the registry; [`guard_added`]).

use super::sql::{literal, text_of, PLACED_SETTING, PLACED_TRIGGER};
use crate::tenant::Tenant;

/// `CREATE OR REPLACE FUNCTION <registry>.guard_added(_container text, _citus boolean)`: sent
/// with [`super::sql::ensure_registry`], in its transaction.
pub(crate) fn guard_added_function(registry: &Tenant) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {}.guard_added(_container text, _citus boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $tenancy$
{}
$tenancy$",
        registry.quoted(),
        guard_added_block(registry, "")
    )
}

fn guard_key_prefix(registry: &Tenant) -> String {
    format!("tenancy-guard:{}:", registry.as_str())
}

/// What a migration of `container` sends after its own statements, in its transaction
/// (`function`: whether the registry has `guard_added`, which [`guard_added_function`] makes;
/// else the same as a `DO` block, compiled each time): where the container has the placement
/// guard (a drop, rename or promote of a row-level tenant put it on a table of its), the same
/// guard on each table that has the guarded column and lacks it, such as a table the
/// migration added or made again. Without it, a write through a `Tenant` resolved before
/// that drop or rename would land in such a table, under a name a tenant made later may take.
pub(crate) fn guard_added(registry: &Tenant, container: &Tenant, citus: bool, function: bool) -> String {
    match function {
        true => format!("SELECT {}.guard_added({}, {citus})", registry.quoted(), literal(container.as_str())),
        false => {
            let declared = format!(
                "_container text := {}; _citus boolean := {citus};",
                literal(container.as_str())
            );
            format!("DO $tenancy$\n{}\n$tenancy$", guard_added_block(registry, &declared))
        }
    }
}

/// The placement guard's first install in `container` (a `DO` block, sent by the drop, rename
/// or promote that needs it once it has found a table lacking it): the guard ([`guard_block`])
/// on each of `tables` (each with the tenant column `column`) that lacks it, with `registry`'s
/// trigger function `function` (`placed_guard`, or on Citus the column's own: `citus`).
pub(crate) fn guard_tables(
    registry: &Tenant,
    container: &Tenant,
    (tables, column): (&[&str], &str),
    function: &str,
    citus: bool,
) -> String {
    // Names as hex: a name from the catalog may hold `$tenancy$` or a backslash (read as an
    // escape once a migration has turned `standard_conforming_strings` off).
    let tables: Vec<String> = tables.iter().map(|t| text_of(t)).collect();
    format!(
        "DO $tenancy$\nDECLARE\n    _container text := {container}; _column text := {column}; \
         _function text := {function}; _tables text[] := ARRAY[{tables}]::text[]; \
         _citus boolean := {citus};\n    s oid := pg_catalog.to_regnamespace(_container);\n    \
         t text;\nBEGIN\n{guard}\nEND\n$tenancy$",
        container = text_of(container.as_str()),
        column = text_of(column),
        function = text_of(function),
        tables = tables.join(", "),
        guard = guard_block(registry),
    )
}

/// The body of `guard_added` (`_container`, `_citus`; `declared` declares them in a `DO`
/// block): the function and the column are those of a guard the container has (one of
/// `registry`'s functions: `placed_guard`, or Citus's per column), then [`guard_block`] on
/// every table with that column. Where the container has no guard (a tenant's own schema, a
/// container never guarded) it is one catalog read by index, of the schema's own objects. The
/// function runs with a search path of its own (every name in it is qualified): a migration
/// sets the tenant's, and a plan PL/pgSQL cached under another search path is made again (some
/// 2 ms a call, measured on benchmark row 5, before it had one).
fn guard_added_block(registry: &Tenant, declared: &str) -> String {
    format!(
        r#"DECLARE
    {declared}
    s oid := pg_catalog.to_regnamespace(_container);
    g record;
    _column text;
    _function text;
    _tables text[];
    t text;
BEGIN
    -- The schema's tables through pg_depend's index of what depends on the schema (pg_class
    -- has no index by schema), each one's guard through pg_trigger's (table, name) index.
    SELECT p.proname AS fname, tr.tgargs INTO g
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_trigger tr ON tr.tgrelid = d.objid AND tr.tgname = {trigger}
      JOIN pg_catalog.pg_proc p ON p.oid = tr.tgfoid
      JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
     WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = s
       AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND pn.nspname = {registry}
       AND (p.proname = 'placed_guard' OR pg_catalog.starts_with(p.proname, 'gone_guard_'))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    _column := pg_catalog.convert_from(
        pg_catalog.substr(g.tgargs, 1, position(pg_catalog.decode('00', 'hex') IN g.tgargs) - 1), 'UTF8');
    _function := g.fname;
{guard}
END"#,
        registry = literal(registry.as_str()),
        trigger = literal(PLACED_TRIGGER),
        guard = guard_block(registry),
    )
}

/// PL/pgSQL statements, the one rendering of the placement guard's trigger: on each plain
/// table of schema `_container` (oid `s`) that has the column `_column`, lacks the guard and,
/// unless `_tables` is `NULL`, is one of `_tables`, in table-name order under an advisory lock
/// of the container's guard (two installs in one container take turns; taken only when a
/// table lacks it), the trigger [`PLACED_TRIGGER`] calling `registry`'s `_function` (on Citus,
/// `_citus`, with `citus.enable_unsafe_triggers` on in the transaction, as Citus asks for a
/// trigger on a distributed table). Its `CREATE TRIGGER` waits for the table's writes in flight
/// and holds the table's writes (every tenant's) to the commit. The `WHEN` (evaluated without
/// calling the function) lets through the rows of a tenant the transaction has checked already
/// in this container: the function leaves [`PLACED_SETTING`] = `<schema oid>/<tenant>` (the
/// oid, not the name: a rename of the container keeps it; on Citus the coordinator's oid, a
/// literal of the trigger's text, which Citus gives every shard as it is). A `NULL` tenant
/// column never matches, and is checked (refused). No backslash in it: a migration may have
/// turned `standard_conforming_strings` off.
fn guard_block(registry: &Tenant) -> String {
    let trigger = literal(PLACED_TRIGGER);
    let unguarded = format!(
        "FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_class c ON c.oid = d.objid
      WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = s
        AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.relkind = 'r'
        AND (_tables IS NULL OR c.relname = ANY (_tables))
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid
                    AND a.attname = _column AND a.attnum > 0 AND NOT a.attisdropped)
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger x
                        WHERE x.tgrelid = c.oid AND x.tgname = {trigger})"
    );
    format!(
        r#"    IF NOT EXISTS (SELECT 1 {unguarded}) THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({key} || _container, 0));
    IF _citus THEN
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    FOR t IN SELECT c.relname {unguarded}
      ORDER BY c.relname COLLATE "C"
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %I.%I FOR EACH ROW '
            'WHEN (%L || NEW.%I::text IS DISTINCT FROM '
            'COALESCE(pg_catalog.current_setting(%L, true), %L)) '
            'EXECUTE FUNCTION %I.%I(%L, %L)',
            {trigger}, _column, _container, t, s::text || '/', _column, {setting}, '',
            {registry}, _function, _column, s::text);
    END LOOP;"#,
        registry = literal(registry.as_str()),
        key = literal(&guard_key_prefix(registry)),
        setting = literal(PLACED_SETTING),
    )
}

#[cfg(test)]
mod tests {
    use super::guard_tables;
    use crate::tenant::Tenant;

    /// Names from the catalog reach the `DO` block as hex: one holding the block's own dollar
    /// quote or a backslash neither ends the block nor reads as an escape.
    #[test]
    fn the_first_install_block_carries_names_as_hex() {
        let (registry, container) = (Tenant::new("_tenancy").unwrap(), Tenant::new("acme").unwrap());
        let odd = "x$tenancy$; DROP TABLE y; --\\";
        let block = guard_tables(&registry, &container, (&[odd, "guards"], "tenant\\id"), "placed_guard", false);
        assert_eq!(block.matches("$tenancy$").count(), 2, "{block}");
        assert!(block.starts_with("DO $tenancy$") && block.ends_with("$tenancy$"));
        assert!(!block.contains('\\') && !block.contains("DROP TABLE"), "{block}");
        let hex: String = odd.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(block.contains(&format!("pg_catalog.decode('{hex}', 'hex')")), "{block}");
    }
}
