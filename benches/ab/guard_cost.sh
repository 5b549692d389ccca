#!/usr/bin/env bash
# Server time of the placement guard (PostgreSQL): inserts into a shared table without it, with
# the guard's row trigger as a promote made it before (no WHEN), and as it is made now (a WHEN
# that skips the function for a tenant the transaction checked already). Prints the server's
# own timings: 5,000 single-row INSERT statements of 1,000 tenants in one DO block, and one
# INSERT … SELECT of 50,000 rows of one tenant (EXPLAIN ANALYZE). The function and the trigger
# are copies of the registry's `placed_guard` (tenancy-core/src/postgres/sql.rs) and of the
# trigger `guard` makes (tenancy-core/src/postgres/tier.rs), in a scratch schema.
# Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bash benches/ab/guard_cost.sh
set -euo pipefail
url=${DATABASE_URL:?set DATABASE_URL}
q() { psql -qAtX "$url" -v ON_ERROR_STOP=1 "$@"; }
q <<'SQL'
DROP SCHEMA IF EXISTS guard_cost CASCADE;
CREATE SCHEMA guard_cost;
CREATE TABLE guard_cost.row_tenants (name text PRIMARY KEY, container text NOT NULL);
INSERT INTO guard_cost.row_tenants SELECT 't' || i, 'guard_cost' FROM generate_series(1, 1000) i;
CREATE TABLE guard_cost.guards (id bigserial PRIMARY KEY, tenant_id text NOT NULL,
    name text NOT NULL, position text NOT NULL, age int);
CREATE FUNCTION guard_cost.placed_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    _tenant text := to_jsonb(NEW) ->> TG_ARGV[0];
BEGIN
    IF _tenant IS DISTINCT FROM TG_TABLE_SCHEMA THEN
        PERFORM 1 FROM guard_cost.row_tenants
            WHERE name = _tenant AND container = TG_TABLE_SCHEMA FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tenant % has no rows in %', _tenant, TG_TABLE_SCHEMA;
        END IF;
        IF TG_NARGS > 1 THEN
            PERFORM pg_catalog.set_config('tenancy.placed', TG_ARGV[1] || '/' || _tenant, true);
        END IF;
    END IF;
    RETURN NEW;
END
$f$;
SQL
oid=$(q -c "SELECT 'guard_cost'::regnamespace::oid")
single="DO \$\$ BEGIN FOR i IN 1..5000 LOOP INSERT INTO guard_cost.guards (tenant_id, name, position, age) VALUES ('t' || (1 + i % 1000), 'Abu', 'Guard', 30); END LOOP; END \$\$"
bulk="EXPLAIN (ANALYZE, TIMING OFF) INSERT INTO guard_cost.guards (tenant_id, name, position, age) SELECT 't7', 'Abu', 'Guard', 30 FROM generate_series(1, 50000)"
for round in 1 2 3; do
    for kind in none row when; do
        q -c "DROP TRIGGER IF EXISTS tenancy_placed ON guard_cost.guards"
        case $kind in
            row) q -c "CREATE TRIGGER tenancy_placed BEFORE INSERT OR UPDATE OF tenant_id ON guard_cost.guards FOR EACH ROW EXECUTE FUNCTION guard_cost.placed_guard('tenant_id')" ;;
            when) q -c "CREATE TRIGGER tenancy_placed BEFORE INSERT OR UPDATE OF tenant_id ON guard_cost.guards FOR EACH ROW WHEN ('$oid/' || NEW.tenant_id::text IS DISTINCT FROM COALESCE(pg_catalog.current_setting('tenancy.placed', true), '')) EXECUTE FUNCTION guard_cost.placed_guard('tenant_id', '$oid')" ;;
        esac
        s=$(q -c '\timing on' -c BEGIN -c "$single" -c ROLLBACK | grep '^Time' | sed -n 2p)
        b=$(q -c BEGIN -c "$bulk" -c ROLLBACK | grep 'Execution Time')
        echo "round $round, $kind: 5,000 single-row inserts: ${s#Time: }; 50,000 rows in one insert: ${b#Execution Time: }"
    done
done
q -c "DROP SCHEMA guard_cost CASCADE"
