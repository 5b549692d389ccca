#!/usr/bin/env bash
# Cost of the placement guard on Citus: inserts into a table distributed by the tenant column
# without it and with it (copies of the function `guard_function_sql` makes and of the trigger `guard` makes on Citus, in
# tenancy-core/src/postgres/citus_guard.rs and tier.rs: each row whose tenant the transaction has
# not checked yet in that container reads the node's placement of the reference table
# `row_gone`; here 100 tombstones of other names). Prints, alternating 3 rounds: pgbench's
# average latency of 5,000 single-row INSERT statements into one shard on its worker
# (autocommit, one client, 1,000 tenants at random), the worker's time of 5,000 such inserts in
# one transaction (each row of another tenant than the last, so each is checked), and the
# coordinator's time of one INSERT … SELECT of 50,000 rows of one tenant (rolled back).
# Usage: CITUS_URL=postgres://postgres@127.0.0.1:9700/postgres bash benches/ab/guard_cost_citus.sh
set -euo pipefail
url=${CITUS_URL:?set CITUS_URL to a Citus coordinator}
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n1)
q() { psql -qAtX "$url" -v ON_ERROR_STOP=1 "$@"; }
q <<'SQL'
DROP SCHEMA IF EXISTS guard_cost CASCADE;
SET citus.enable_schema_based_sharding = off;
CREATE SCHEMA guard_cost;
CREATE TABLE guard_cost.row_gone (container text NOT NULL, name text NOT NULL,
    PRIMARY KEY (container, name));
SELECT create_reference_table('guard_cost.row_gone');
INSERT INTO guard_cost.row_gone SELECT 'guard_cost', 'gone' || i FROM generate_series(1, 100) i;
CREATE TABLE guard_cost.guards (id bigserial, tenant_id text NOT NULL,
    name text NOT NULL, position text NOT NULL, age int, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('guard_cost.guards', 'tenant_id');
SQL
shard=$(q -c "SELECT shard_name('guard_cost.row_gone'::regclass, shardid) FROM pg_dist_shard WHERE logicalrelid = 'guard_cost.row_gone'::regclass")
q <<SQL
CREATE FUNCTION guard_cost.gone_guard_tenant_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS \$f\$
BEGIN
    IF NEW.tenant_id::text IS NULL OR EXISTS (SELECT 1 FROM $shard
            WHERE container = TG_TABLE_SCHEMA AND name = NEW.tenant_id::text) THEN
        RAISE EXCEPTION 'tenant % has no rows in %', NEW.tenant_id::text, TG_TABLE_SCHEMA;
    END IF;
    PERFORM pg_catalog.set_config('tenancy.placed', TG_ARGV[1] || '/' || NEW.tenant_id::text, true);
    RETURN NEW;
END
\$f\$;
SQL
# A shard of the table and the worker holding it: the statements below run there, against the
# shard, so that the server's time is not lost in the coordinator's round trip (which varies
# by more than the guard costs on a shared machine).
read -r shard_of worker <<<"$(q -F ' ' -c "SELECT shard_name('guard_cost.guards'::regclass, s.shardid), n.nodename || ':' || n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = 'guard_cost.guards'::regclass ORDER BY s.shardid LIMIT 1")"
rest=${url#*://}
creds=${rest%%@*}
[[ $creds == "$rest" ]] && creds= || creds="$creds@"
path=${rest#*/}
[[ $path == "$rest" ]] && path=
worker_url="${url%%://*}://$creds$worker/$path"
script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat > "$script" <<SQL
\\set t random(1, 1000)
\\set i random(1, 2000000000)
INSERT INTO $shard_of (id, tenant_id, name, position, age) VALUES (:i, 't' || :t, 'Abu', 'Guard', 30);
SQL
loop="DO \$\$ BEGIN FOR i IN 1..5000 LOOP INSERT INTO $shard_of (id, tenant_id, name, position, age) VALUES (-i, 't' || (1 + i % 1000), 'Abu', 'Guard', 30); END LOOP; END \$\$"
bulk="INSERT INTO guard_cost.guards (tenant_id, name, position, age) SELECT 't7', 'Abu', 'Guard', 30 FROM generate_series(1, 50000)"
for round in 1 2 3; do
    for kind in none guard; do
        q -c "SET citus.enable_unsafe_triggers = on" -c "DROP TRIGGER IF EXISTS tenancy_placed ON guard_cost.guards"
        if [[ $kind == guard ]]; then
            q -c "SET citus.enable_unsafe_triggers = on" -c "CREATE TRIGGER tenancy_placed BEFORE INSERT OR UPDATE OF tenant_id ON guard_cost.guards FOR EACH ROW WHEN ('guard_cost/' || NEW.tenant_id::text IS DISTINCT FROM COALESCE(pg_catalog.current_setting('tenancy.placed', true), '')) EXECUTE FUNCTION guard_cost.gone_guard_tenant_id('tenant_id', 'guard_cost')"
        fi
        s=$("$pgbench" -n -c 1 -t 5000 -f "$script" "$worker_url" 2>/dev/null | grep 'latency average' | sed 's/.*= //')
        l=$(psql -qAtX "$worker_url" -c '\timing on' -c BEGIN -c "$loop" -c ROLLBACK | grep '^Time' | sed -n 2p)
        b=$(q -c '\timing on' -c BEGIN -c "$bulk" -c ROLLBACK | grep '^Time' | sed -n 2p)
        echo "round $round, $kind: single-row insert on the worker: $s; 5,000 of 1,000 tenants in one transaction: ${l#Time: }; 50,000 rows of one tenant through the coordinator: ${b#Time: }"
    done
done
q -c "DROP SCHEMA guard_cost CASCADE"
