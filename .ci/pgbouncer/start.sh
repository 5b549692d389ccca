#!/usr/bin/env bash
# Start the CI PgBouncer (transaction pooling) on 127.0.0.1:6432 -> 127.0.0.1:5432.
# Idempotent; works from any cwd: `bash /path/to/start.sh`.
# Env: PGBOUNCER_RUNDIR (default /tmp/pgbouncer-ci) holds the generated config, log, pid.
set -euo pipefail

CONFDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNDIR="${PGBOUNCER_RUNDIR:-/tmp/pgbouncer-ci}"
PORT=6432
INI="$RUNDIR/pgbouncer-ci.ini"   # this name is how we recognise our own instance
RUN_USER=postgres

log() { echo "pgbouncer/start.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

answers() {   # our proxy path works end to end
  PGCONNECT_TIMEOUT=3 timeout 5 psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d test \
    -c 'select 1' 2>/dev/null | grep -qx 1
}

listener_pids() {  # pids listening on 127.0.0.1:$PORT (or *:$PORT)
  ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

is_ours() {  # listener is a pgbouncer started with our generated config, and it answers
  local pid cmd
  for pid in $(listener_pids); do
    cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$cmd" in *pgbouncer*pgbouncer-ci.ini*) answers && return 0 ;; esac
  done
  return 1
}

command -v psql >/dev/null 2>&1 || die "psql not found (install postgresql-client)"
command -v ss   >/dev/null 2>&1 || die "ss not found (install iproute2)"

if is_ours; then
  log "already running (ours) on 127.0.0.1:$PORT"
  exit 0
fi

# --- install pgbouncer if missing ------------------------------------------
PGB="$(command -v pgbouncer || true)"
[ -z "$PGB" ] && [ -x /usr/sbin/pgbouncer ] && PGB=/usr/sbin/pgbouncer
if [ -z "$PGB" ]; then
  log "installing pgbouncer"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q pgbouncer >/dev/null 2>&1; then
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null || die "apt-get update failed"
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q pgbouncer >/dev/null || die "apt-get install pgbouncer failed"
  fi
  PGB="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
  [ -x "$PGB" ] || die "pgbouncer binary not found after install"
fi

# --- free the port from a foreign (e.g. the Debian service's) pgbouncer ----
pids="$(listener_pids || true)"
if [ -n "$pids" ]; then
  for pid in $pids; do
    cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$cmd" in
      *pgbouncer*pgbouncer-ci.ini*) log "stale instance of ours (pid $pid) does not answer; stopping it"
                                    $SUDO kill "$pid" || true ;;
      *pgbouncer*) log "port $PORT held by another pgbouncer (pid $pid: $cmd); stopping it"
                   $SUDO service pgbouncer stop >/dev/null 2>&1 || $SUDO systemctl stop pgbouncer >/dev/null 2>&1 || true
                   sleep 1
                   kill -0 "$pid" 2>/dev/null && { $SUDO kill "$pid" || true; } ;;
      *) die "port $PORT is held by a non-pgbouncer process (pid $pid: ${cmd:-unknown})" ;;
    esac
  done
  for _ in $(seq 1 50); do [ -z "$(listener_pids)" ] && break; sleep 0.2; done
  [ -z "$(listener_pids)" ] || die "port $PORT still in use after stopping the previous listener"
fi

# --- generate config and start ----------------------------------------------
$SUDO mkdir -p "$RUNDIR"
tmp="$(mktemp)"
sed -e "s|@RUNDIR@|$RUNDIR|g" -e "s|@CONFDIR@|$CONFDIR|g" "$CONFDIR/pgbouncer.ini" > "$tmp"
$SUDO cp "$tmp" "$INI"; rm -f "$tmp"
$SUDO rm -f "$RUNDIR/pgbouncer.pid"

if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
  # pgbouncer refuses to run as root: run as $RUN_USER
  id "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist"
  $SUDO chown -R "$RUN_USER" "$RUNDIR"
  $SUDO chmod 0755 "$RUNDIR"
  # the auth file must be readable by $RUN_USER (CONFDIR may be under /root)
  if ! $SUDO -u "$RUN_USER" test -r "$CONFDIR/userlist.txt" 2>/dev/null && \
     ! su -s /bin/sh "$RUN_USER" -c "test -r '$CONFDIR/userlist.txt'" 2>/dev/null; then
    $SUDO cp "$CONFDIR/userlist.txt" "$RUNDIR/userlist.txt"
    $SUDO chown "$RUN_USER" "$RUNDIR/userlist.txt"
    $SUDO sed -i "s|^auth_file = .*|auth_file = $RUNDIR/userlist.txt|" "$INI"
  fi
  $SUDO "$PGB" -d -u "$RUN_USER" "$INI" || die "pgbouncer failed to start; see $RUNDIR/pgbouncer.log"
else
  "$PGB" -d "$INI" || die "pgbouncer failed to start; see $RUNDIR/pgbouncer.log"
fi

deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  if answers; then
    log "running on 127.0.0.1:$PORT (pool_mode=transaction), log: $RUNDIR/pgbouncer.log"
    exit 0
  fi
  sleep 0.5
done
log "last lines of $RUNDIR/pgbouncer.log:"
tail -n 20 "$RUNDIR/pgbouncer.log" >&2 2>/dev/null || true
# do not leave a half-working instance behind
if [ -s "$RUNDIR/pgbouncer.pid" ]; then $SUDO kill "$(cat "$RUNDIR/pgbouncer.pid")" 2>/dev/null || true; fi
die "pgbouncer did not answer on 127.0.0.1:$PORT within 30 s"
