#!/usr/bin/env bash
# A/B of the benchmark program (benches/tenancy) between an old commit's library and this
# checkout's: the same bench source, the same vendored sqlx-core, only the library differs.
#
#   benches/ab/ab.sh [options] [WORKLOAD ...]
#
#   --old COMMIT     the old side (default 6273d45)
#   --runs N         alternating runs per side: old, new, old, new, … (default 3)
#   --dir DIR        work folder: the old worktree, the two bench binaries, the logs and the
#                    table (default ${TMPDIR:-/tmp}/tenancy-ab-<old>); kept for reruns
#   --max-load L     before each run, wait while the 1-minute load is above L (default 1.5) …
#   --wait SECS      … for at most SECS (default 240), then run anyway (the table says so)
#   --rows "N …"     the rows of the table, by workload number (default "1 3 5 9 14")
#   --stub "M …"     bench modules replaced by a stub in the old tree because they use API the
#                    old library lacks (default "clone port rowlevel tiers test_attr")
#   --no-build       reuse DIR's bench-old and bench-new
#   --report-only    only print the table of DIR's logs
#   --prepare-only   only lay out the old worktree (to look at it or build it by hand)
#   WORKLOAD …       passed to the bench (default: crud create pending mysql-crud sqlite-crud)
#
# Example (both sides against the same servers, as BENCHMARKS.md's A/B):
#   DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
#   MYSQL_URL=mysql://root@127.0.0.1:3306/test benches/ab/ab.sh --runs 3
#
# The old side: a git worktree of COMMIT in DIR/old, overlaid with this checkout's
# benches/tenancy, tenancy-testdb, vendor/ and [patch.crates-io] sqlx-core, its dev-dependencies
# extended to what the bench needs, and benches/ab/compat.rs as benches/tenancy/compat.rs (the
# bench's `tenancy::internals` / `tenancy::postgres` / `tenancy::Model` paths are rewritten to
# it, so both sides' hand-written statements are the library's own text). Both are release
# builds (`cargo bench --bench tenancy --no-run`), the new one in this checkout's target dir,
# the old one in DIR/target (not shared: cargo names a workspace's path crates by their path
# inside it, so the old tree's tenancy-derive would take the new one's place); each binary is
# copied to DIR right after its build.
# The new side is this checkout as it is, uncommitted changes included (the table says so).
set -euo pipefail

old=6273d45
runs=3
dir=
max_load=1.5
wait_max=240
rows="1 3 5 9 14"
stubs="clone port rowlevel tiers test_attr"
build=1
report_only=0
prepare_only=0
workloads=()
while [ $# -gt 0 ]; do
    case "$1" in
        --old) old=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --max-load) max_load=$2; shift 2 ;;
        --wait) wait_max=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --stub) stubs=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --report-only) report_only=1; shift ;;
        --prepare-only) prepare_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) workloads+=("$1"); shift ;;
    esac
done
[ ${#workloads[@]} -gt 0 ] || workloads=(crud create pending mysql-crud sqlite-crud)

repo=$(cd "$(dirname "$0")/../.." && pwd)
old_rev=$(git -C "$repo" rev-parse --verify "$old^{commit}")
old_short=$(git -C "$repo" rev-parse --short "$old_rev")
new_desc=$(git -C "$repo" describe --always --dirty --abbrev=7)
dir=${dir:-${TMPDIR:-/tmp}/tenancy-ab-$old_short}
mkdir -p "$dir/logs"
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

for w in "${workloads[@]}"; do
    m=${w//-/_}
    [ "$w" = export ] && m=port
    case " $stubs " in
        *" $m "*) echo "workload $w is stubbed in the old tree (--stub): it cannot be compared" >&2; exit 2 ;;
    esac
done

# The old worktree, overlaid as described at the top.
prepare_old() {
    local tree=$dir/old
    if [ -e "$tree/.git" ]; then
        git -C "$tree" reset -q --hard
        git -C "$tree" clean -q -fd
        git -C "$tree" checkout -q --detach "$old_rev"
    else
        rm -rf "$tree"
        git -C "$repo" worktree add -q --detach "$tree" "$old_rev"
    fi
    rm -rf "$tree/benches/tenancy" "$tree/tenancy-testdb" "$tree/vendor"
    cp -r "$repo/benches/tenancy" "$tree/benches/tenancy"
    cp -r "$repo/tenancy-testdb" "$tree/tenancy-testdb"
    cp -r "$repo/vendor" "$tree/vendor"
    cp "$repo/benches/ab/compat.rs" "$tree/benches/tenancy/compat.rs"
    local b=$tree/benches/tenancy m
    for m in $stubs; do
        [ -f "$b/$m.rs" ] || continue
        cat > "$b/$m.rs" <<'EOF'
//! Stub written by benches/ab/ab.sh: this workload uses API the old library lacks.
use crate::common::{BoxResult, Ctx};

pub async fn run(_ctx: &mut Ctx) -> BoxResult<()> {
    Err("not built in the A/B's old tree (benches/ab/ab.sh --stub)".into())
}
EOF
    done
    sed -i -e 's/\btenancy::internals\b/crate::compat::internals/g' \
        -e 's/\btenancy::postgres::/crate::compat::postgres::/g' \
        -e 's/\btenancy::Model\b/crate::compat::Model/g' "$b"/*.rs
    local f
    for f in "$b"/*.rs; do
        case "$(basename "$f")" in main.rs|compat.rs) continue ;; esac
        sed -i '0,/^use /s//#[allow(unused_imports)]\nuse crate::compat::ext::*;\nuse /' "$f"
    done
    sed -i '0,/^mod /s//mod compat;\nmod /' "$b/main.rs"
    # The patch first: without it the registry may hold no sqlx-core to resolve against.
    grep -q '^\[patch\.crates-io\]' "$tree/Cargo.toml" ||
        printf '\n[patch.crates-io]\nsqlx-core = { path = "vendor/sqlx-core" }\n' >> "$tree/Cargo.toml"
    (
        cd "$tree"
        cargo add -q --offline --dev libc@0.2
        cargo add -q --offline --dev tokio --features fs,process
        cargo add -q --offline --dev --path tenancy-testdb tenancy-testdb --features postgres,mysql
    ) > "$dir/logs/cargo-add.log" 2>&1 || { cat "$dir/logs/cargo-add.log" >&2; exit 1; }
}

# Builds the bench of the tree $1 in release in the target dir $2 and copies the binary to $3.
build_bench() {
    local tree=$1 target=$2 out=$3 log=$dir/logs/build-$(basename "$3").log exe
    echo "building $tree (log $log)"
    if ! (cd "$tree" && CARGO_TARGET_DIR=$target cargo bench --bench tenancy --no-run) > "$log" 2>&1; then
        tail -40 "$log" >&2
        exit 1
    fi
    exe=$(sed -n 's/.*Executable benches\/tenancy\/main.rs (\(.*\))$/\1/p' "$log" | tail -1)
    case "$exe" in /*) ;; *) exe=$tree/$exe ;; esac
    [ -x "$exe" ] || exe=$target/${exe#*target/}
    [ -x "$exe" ] || { echo "no bench binary found in $log" >&2; exit 1; }
    cp "$exe" "$out"
}

load1() { cut -d' ' -f1 /proc/loadavg; }
above() { python3 -c "import sys; sys.exit(0 if float('$1') > float('$2') else 1)"; }

if [ "$prepare_only" = 1 ]; then
    prepare_old
    echo "old worktree laid out in $dir/old"
    exit 0
fi

if [ "$report_only" = 0 ]; then
    if [ "$build" = 1 ]; then
        prepare_old
        build_bench "$repo" "$target" "$dir/bench-new"
        build_bench "$dir/old" "$dir/target" "$dir/bench-old"
        echo "$new_desc" > "$dir/new.commit"
    fi
    [ -x "$dir/bench-old" ] && [ -x "$dir/bench-new" ] || { echo "no binaries in $dir" >&2; exit 1; }
    echo "DATABASE_URL=${DATABASE_URL:-(unset: a private cluster per run)} MYSQL_URL=${MYSQL_URL:-(unset)}" |
        tee "$dir/logs/env.txt"
    rm -f "$dir/logs"/run*.log "$dir/loads.tsv"
    for i in $(seq 1 "$runs"); do
        for side in old new; do
            waited=0
            while above "$(load1)" "$max_load" && [ "$waited" -lt "$wait_max" ]; do
                [ "$waited" = 0 ] && echo "load $(load1) > $max_load: waiting (at most ${wait_max} s)"
                sleep 10
                waited=$((waited + 10))
            done
            before=$(cut -d' ' -f1-3 /proc/loadavg)
            echo "run $i $side: load $before (waited ${waited} s): ${workloads[*]}"
            rc=0
            "$dir/bench-$side" --bench "${workloads[@]}" > "$dir/logs/run$i-$side.log" 2>&1 || rc=$?
            after=$(cut -d' ' -f1-3 /proc/loadavg)
            [ "$rc" = 0 ] || echo "  run $i $side exited $rc (log $dir/logs/run$i-$side.log)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$side" "$waited" "$before" "$after" "$rc" >> "$dir/loads.tsv"
        done
    done
fi

new_commit=$(cat "$dir/new.commit" 2>/dev/null || echo "$new_desc")
python3 - "$dir" "$old_short" "$new_commit" "$rows" "${workloads[*]}" <<'PY' | tee "$dir/table.md"
import glob, os, re, statistics, sys

folder, old, new, wanted, workloads = sys.argv[1:6]
wanted = set(wanted.split())
# side -> run -> label -> (ratio, target, A/A)
runs = {"old": {}, "new": {}}
order = []
for path in sorted(glob.glob(os.path.join(folder, "logs", "run*.log"))):
    m = re.match(r"run(\d+)-(old|new)\.log$", os.path.basename(path))
    if not m:
        continue
    run, side = int(m.group(1)), m.group(2)
    rows = runs[side].setdefault(run, {})
    results = False
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("== Results"):
            results = True
        if not results or not line.startswith("| "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or "`" in cells[0]:
            continue  # the summary (its rows name the workload in backticks) or another table
        number = re.match(r"(\d+)[a-z]?\s", cells[0])
        ratio = re.match(r"(\d+\.\d+)", cells[3])
        if not number or not ratio or number.group(1) not in wanted:
            continue
        label = cells[0]
        aa = re.match(r"(\d+\.\d+)", cells[4])
        rows[label] = (float(ratio.group(1)), cells[5], float(aa.group(1)) if aa else None)
        if label not in order:
            order.append(label)

def key(label):
    n = re.match(r"(\d+)([a-z]?)", label)
    return (int(n.group(1)), n.group(2))

order.sort(key=key)  # stable: a workload's rows keep the program's order
print(f"A/B: new {new} vs old {old}; workloads: {workloads}")
print()
print("| row | target | old runs | new runs | old median | new median | new vs old | A/A old; new |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for label in order:
    cells, medians, target, aas = [], {}, "-", []
    for side in ("old", "new"):
        values = [runs[side][r][label][0] for r in sorted(runs[side]) if label in runs[side][r]]
        aa = [runs[side][r][label][2] for r in sorted(runs[side]) if label in runs[side][r]]
        aa = [a for a in aa if a is not None]
        aas.append(f"{min(aa):.3f}-{max(aa):.3f}" if aa else "-")
        target = next((runs[side][r][label][1] for r in runs[side] if label in runs[side][r]), target)
        cells.append(" ".join(f"{v:.3f}" for v in values) or "-")
        medians[side] = statistics.median(values) if values else None
    o, n = medians["old"], medians["new"]
    if o is None or n is None:
        verdict = "-"
    elif target == "-":
        verdict = f"{n - o:+.3f} (no target: a reference row)"
    else:
        # Rows with ">=" are throughput (higher is better), "<=" time or memory (lower is).
        lower_better = target.startswith("<=")
        better = n < o if lower_better else n > o
        verdict = f"{n - o:+.3f} ({'better' if better else 'worse' if n != o else 'same'})"
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    print(f"| {label} | {target} | {cells[0]} | {cells[1]} | {fmt(o)} | {fmt(n)} | {verdict} | {'; '.join(aas)} |")
print()
print("| run | side | waited | load before (1/5/15 min) | load after | exit |")
print("| --- | --- | --- | --- | --- | --- |")
loads = os.path.join(folder, "loads.tsv")
if os.path.exists(loads):
    for line in open(loads):
        run, side, waited, before, after, rc = line.rstrip("\n").split("\t")
        print(f"| {run} | {side} | {waited} s | {before} | {after} | {rc} |")
print()
print("Ratios as BENCHMARKS.md's: >= rows are baseline/library throughput (higher is better),")
print("<= rows library/baseline time (lower is better); medians over the runs of each side.")
print("A/A: the lowest and highest of the runs' A/A controls; outside 1.00 +- 0.02 a run's row")
print("could not see 2 % (the bench calls it unresolved).")
PY
