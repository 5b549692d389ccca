#!/usr/bin/env bash
# A row-level drop's batches on Citus, in a container distributed by the tenant column: does a
# batch get slower as the drop goes on (dead rows of the batches before it in its way)? Runs the
# statement `Place::delete_batch` sends on Citus (tenancy-core/src/postgres/place.rs: the plain
# equality the router needs, `ctid = ANY(ARRAY(SELECT ctid … LIMIT n))`) 40 times, each in a
# transaction of its own as the drop commits each, on a tenant of 400,000 rows in a table that
# also holds 50 other tenants' 200,000 rows (whether any share its shard is not checked),
# 10,000 rows a batch. Prints the worker's plan of the first and
# last batch, each batch's time on the coordinator, and the median of the first ten batches'
# times against that of the last ten.
# Usage: CITUS_URL=postgres://postgres@127.0.0.1:9700/postgres bash benches/ab/drop_batches_citus.sh
set -euo pipefail
url=${CITUS_URL:?set CITUS_URL to a Citus coordinator}
{
  cat <<'SQL'
SET citus.enable_schema_based_sharding = off;
DROP SCHEMA IF EXISTS drop_batches CASCADE;
CREATE SCHEMA drop_batches;
CREATE TABLE drop_batches.guards (tenant_id text, id bigint, name text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('drop_batches.guards', 'tenant_id');
INSERT INTO drop_batches.guards SELECT 'a', i, 'n' || i FROM generate_series(1, 400000) i;
INSERT INTO drop_batches.guards SELECT 'b' || (i % 50), i, 'n' || i FROM generate_series(1, 200000) i;
VACUUM ANALYZE drop_batches.guards;
PREPARE batch(text) AS DELETE FROM drop_batches.guards WHERE tenant_id = $1
    AND ctid = ANY(ARRAY(SELECT ctid FROM drop_batches.guards WHERE tenant_id = $1 LIMIT 10000));
SET citus.explain_all_tasks = on;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE batch('a');
\timing on
SQL
  for _ in $(seq 1 38); do echo "EXECUTE batch('a');"; done
  cat <<'SQL'
\timing off
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE batch('a');
SELECT 'rows of the tenant left: ' || count(*) FROM drop_batches.guards WHERE tenant_id = 'a';
DROP SCHEMA drop_batches CASCADE;
SQL
} | psql -qX "$url" -v ON_ERROR_STOP=1 2>&1 | grep -E "Time:|Scan|Filter|Execution|left|ERROR" |
  awk '{ print } /^Time:/ { t[++n] = $2 }
    function median(a, from, to,   k, i, j, v, x) {
      k = 0; for (i = from; i <= to; i++) v[++k] = a[i]
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
      return (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END { printf "batches 2-11: median %.3f ms; batches %d-%d: median %.3f ms (batch 1 is the first EXPLAIN ANALYZE)\n",
      median(t, 1, 10), n - 8, n + 1, median(t, n - 9, n) }'
