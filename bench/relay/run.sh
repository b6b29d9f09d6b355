#!/usr/bin/env bash
# Relay benchmark (figures in docs/perf.md, sections "Relay" and "PostgreSQL spool").
#   bash bench/relay/run.sh              # COUNT=10000 SIZE=10240 CONNECTIONS=8 ROUNDS=3
#   SPOOLS="file pg pg2"                  # which postwire spools to measure (default: all three)
#   STALL_MS=60000                        # load.mjs gives up after this long without progress
#   HOLD_ON_FAIL=1                        # a failed PostgreSQL round keeps its relays and database up
#   WEBHOOK=1                             # PostgreSQL rounds with one webhook endpoint (a Node.js HTTP
#                                         # server answering 204) hearing every event; prints when the
#                                         # shared outbox was empty again and how many POSTs arrived
# Side by side in one run, into the same Postfix smtp-sink (security none, no AUTH):
#  1. postwire relay, file spool (SPOOLS has `file`): bench/relay/load.mjs opens CONNECTIONS WebSockets, each
#     keeping a window of submissions unanswered: the relay's full window (64),
#     4, and 1 (one message in flight per connection, as smtp-source -s 8 has
#     against Postfix); every message is fsynced (group commit) before its
#     `accepted`; the relay delivers over 8 SMTP connections. Accept latency is
#     measured by the client (submit written -> accepted read); end to end is
#     first submit -> last `delivered` event (the sink's 250).
#  1b. postwire relay on the PostgreSQL spool (SPOOLS has `pg`: one relay; `pg2`:
#     two relays on one database, load.mjs spreading its connections over both
#     relays' endpoints round-robin, each relay delivering over 8 SMTP
#     connections): a private PostgreSQL started by this script from Debian's
#     binaries (/usr/lib/postgresql/<version>/bin, or $POSTWIRE_PG_BIN), its data
#     directory on the repository's disk, fsync=on and synchronous_commit=on
#     (every `accepted` waits for the WAL flush), a fresh database per round,
#     stopped at the end. Windows: the relay's full window and 1 per connection.
#     pg_stat_statements is loaded; PG_STATS=1 prints each round's top statements.
#  2. Postfix relaying: smtp-source -s CONNECTIONS -> postfix smtpd (queue on the
#     same disk) -> smtp -> smtp-sink; end to end is smtp-source's start -> the
#     queue empty again.
# Postfix comes from Debian's .deb unpacked into .tools/postfix by scripts/setup.sh
# (no package installed, no system daemon started): this script writes a private
# main.cf/master.cf and runs `master` in the foreground for the duration of the run.
# Needs root (Postfix's master), and creates the postfix user and postdrop group if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/relay"
COUNT="${COUNT:-10000}"
SIZE="${SIZE:-10240}"
CONNECTIONS="${CONNECTIONS:-8}"
ROUNDS="${ROUNDS:-3}"
POSTFIX="$ROOT/.tools/postfix"
PFLIB="$POSTFIX/usr/lib/postfix"

[ -x "$POSTFIX/usr/sbin/smtp-sink" ] || { echo "no smtp-sink: run scripts/setup.sh first" >&2; exit 1; }
[ -f "$ROOT/tests/e2e/node_modules/ws/package.json" ] || { echo "no ws package: run scripts/setup.sh first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "Postfix's master needs root" >&2; exit 1; }
ONLY="${ONLY:-}"   # postwire or postfix: run one side only (to debug the setup)
SPOOLS="${SPOOLS:-file pg pg2}"
[ "$ONLY" = postfix ] && SPOOLS=""
has_spool() { case " $SPOOLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
PGBIN=""
if has_spool pg || has_spool pg2; then
  PGBIN="${POSTWIRE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
  [ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL in /usr/lib/postgresql/<version>/bin: run scripts/setup.sh (or SPOOLS=file)" >&2; exit 1; }
  id postgres >/dev/null 2>&1 || { echo "no postgres user: run scripts/setup.sh" >&2; exit 1; }
fi
# POSTWIRE_BIN=path: measure that binary instead of building target/release/postwire.
[ "$ONLY" = postfix ] || [ -n "${POSTWIRE_BIN:-}" ] || (cd "$ROOT" && cargo build --release -q -p postwire-relay --bin postwire)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${POSTWIRE_BIN:-$TARGET/release/postwire}"

# The work directory is on the repository's disk, not a tmpfs: fsync must be real.
mkdir -p "$TARGET"
WORK="$(mktemp -d -p "$TARGET" bench-relay.XXXXXX)"
chmod 755 "$WORK"   # Postfix's daemons run as the postfix user and must reach the queue
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "${PG_STARTED:-}" ] || runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -w -m fast stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

SINK_PORT="$(free_port)"
LD_LIBRARY_PATH="$PFLIB" "$POSTFIX/usr/sbin/smtp-sink" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
PIDS+=($!)
sleep 0.3

# WEBHOOK=1: an endpoint that answers 204 to every POST and counts them (GET
# answers the count since the last GET).
if [ -n "${WEBHOOK:-}" ]; then
  HOOK_PORT="$(free_port)"
  node -e '
    const http = require("http"); let n = 0;
    http.createServer((q, r) => {
      if (q.method === "GET") { r.end(String(n)); n = 0; return; }
      q.resume(); q.on("end", () => { n++; r.statusCode = 204; r.end(); });
    }).listen(Number(process.argv[1]), "127.0.0.1");' "$HOOK_PORT" &
  PIDS+=($!)
  sleep 0.3
fi
hook_count() { curl -s "http://127.0.0.1:$HOOK_PORT/" || echo 0; }

# ---- postwire relay ----------------------------------------------------------
# Starts a relay (data dir $1, log $2, extra serve arguments after); sets
# RELAY_PID and RELAY_PORT.
start_relay() {
  local data="$1" log="$2"
  shift 2
  POSTWIRE_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$data" \
    --smtp "smtp://127.0.0.1:$SINK_PORT?security=none&connections=8" "$@" 2>"$log" &
  RELAY_PID=$!
  RELAY_PORT=""
  for _ in $(seq 200); do
    RELAY_PORT="$(sed -n 's/^postwire relay listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$log" 2>/dev/null)"
    [ -n "$RELAY_PORT" ] && break
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$RELAY_PORT" ] || { cat "$log" >&2; exit 1; }
}

relay_round() {
  local data="$WORK/relay-$1"
  local token
  token="$("$BIN" token add bench --data-dir "$data" --allow-from @example.com 2>/dev/null)"
  start_relay "$data" "$WORK/relay-$1.log"
  local pid=$RELAY_PID
  WINDOW="${2:-}" node "$HERE/load.mjs" "ws://127.0.0.1:$RELAY_PORT/v1/submit" "$token" "$COUNT" "$SIZE" "$CONNECTIONS"
  kill -TERM "$pid"
  wait "$pid"
}

# ---- PostgreSQL spool --------------------------------------------------------
PG_PASSWORD="bench-$RANDOM$RANDOM"
pg_owner() { runuser -u postgres -- "$@"; }
psql_su() { pg_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/pg" -p "$PG_PORT" -U postgres "$@"; }

pg_start() {
  mkdir -p "$WORK/pg"
  chown postgres:postgres "$WORK/pg"
  chmod 700 "$WORK/pg"
  PG_PORT="$(free_port)"
  pg_owner "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C >"$WORK/pg/initdb.log" 2>&1 || { cat "$WORK/pg/initdb.log" >&2; exit 1; }
  cat >>"$WORK/pg/data/postgresql.conf" <<EOF
# bench/relay/run.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 256MB
max_connections = 200
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
EOF
  pg_owner "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/pg.log" -w start >/dev/null
  PG_STARTED=1
  psql_su -d postgres -c "CREATE ROLE postwire LOGIN PASSWORD '$PG_PASSWORD'"
}

# CPU time in clock ticks: of processes $@ (utime + stime), and of the
# PostgreSQL server (the postmaster, its live children, and the children it
# has reaped: backends exit when the relays disconnect).
ticks_of() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
pg_ticks() {
  local pm t
  pm="$(head -n 1 "$WORK/pg/data/postmaster.pid")"
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
  echo $((t + $(ticks_of $(ps -o pid= --ppid "$pm"))))
}

# One round on a fresh database: $1 round name, $2 relays (1 or 2), $3 window.
pg_round() {
  local db="spool_${1//[^a-z0-9]/_}" relays="$2"
  psql_su -d postgres -c "CREATE DATABASE $db OWNER postwire"
  psql_su -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  local url="postgres://postwire@127.0.0.1:$PG_PORT/$db?sslmode=disable"
  local token="" urls="" pids=() n
  for n in $(seq "$relays"); do
    local data="$WORK/pg-$1-$n"
    mkdir -p "$data"
    if [ -z "$token" ]; then
      # Tokens live in the spool's database: added once, read by every relay.
      token="$(POSTWIRE_SPOOL_PASSWORD="$PG_PASSWORD" "$BIN" token add bench --spool "$url" --allow-from @example.com 2>/dev/null)"
      if [ -n "${WEBHOOK:-}" ]; then
        POSTWIRE_SPOOL_PASSWORD="$PG_PASSWORD" "$BIN" webhook add bench --url "http://127.0.0.1:$HOOK_PORT/" \
          --allow-http --allow-private --spool "$url" >/dev/null 2>&1
      fi
    fi
    POSTWIRE_SPOOL_PASSWORD="$PG_PASSWORD" start_relay "$data" "$WORK/pg-$1-$n.log" --spool "$url"
    pids+=("$RELAY_PID")
    urls="${urls:+$urls,}ws://127.0.0.1:$RELAY_PORT/v1/submit"
  done
  psql_su -d "$db" -c "SELECT pg_stat_statements_reset()" >/dev/null
  psql_su -d postgres -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
  local relay_t0 pg_t0 relay_t1
  relay_t0="$(ticks_of "${pids[@]}")"
  pg_t0="$(pg_ticks)"
  if ! WINDOW="${3:-}" node "$HERE/load.mjs" "$urls" "$token" "$COUNT" "$SIZE" "$CONNECTIONS"; then
    echo "load failed on database $db (PostgreSQL on port $PG_PORT, socket directory $WORK/pg)" >&2
    # HOLD_ON_FAIL=1: keep the relays and the database up for a look.
    if [ -n "${HOLD_ON_FAIL:-}" ]; then echo "holding (HOLD_ON_FAIL): kill $$ to end" >&2; sleep 3600; fi
    exit 1
  fi
  if [ -n "${PG_STATS:-}" ]; then
    psql_su -d "$db" -c "SELECT calls, round(total_exec_time::numeric, 0) AS total_ms,
        round(mean_exec_time::numeric, 3) AS mean_ms, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$db')
      ORDER BY total_exec_time DESC LIMIT 15" >&2
    psql_su -d "$db" -At -c "SELECT 'wal: ' || wal_records || ' records, ' || pg_size_pretty(wal_bytes) || ', ' || wal_write || ' writes, ' || wal_sync || ' syncs' FROM pg_stat_wal" >&2 || true
  fi
  if [ -n "${WEBHOOK:-}" ]; then
    # The load ended at the last `delivered`; the webhooks may still be
    # catching up.
    local w0 w1 left
    w0="$(now)"
    for _ in $(seq 1200); do
      left="$(psql_su -d "$db" -At -c "SELECT count(*) FROM postwire_webhook_outbox")"
      [ "$left" = 0 ] && break
      sleep 0.05
    done
    w1="$(now)"
    echo "webhooks: outbox empty $(python3 -c "print(round($w1 - $w0, 2))") s after the last delivery (left: $left), $(hook_count) POSTs" >&2
  fi
  relay_t1="$(ticks_of "${pids[@]}")"
  for n in "${pids[@]}"; do kill -TERM "$n"; done
  for n in "${pids[@]}"; do wait "$n" || true; done
  sleep 0.5   # the backends of the relays' connections exit and are reaped
  # CPU per message (includes the statistics queries above, a few ms).
  local hz; hz="$(getconf CLK_TCK)"
  echo "cpu per message: relays $(( (relay_t1 - relay_t0) * 1000000 / hz / COUNT )) us, postgres $(( ($(pg_ticks) - pg_t0) * 1000000 / hz / COUNT )) us"
  psql_su -d postgres -c "DROP DATABASE $db" >/dev/null || true
}

# The price of one commit on this disk: pg_test_fsync (8 kB writes, each
# method for 1 s) in the database's own directory.
pg_fsync_probe() {
  pg_owner "$PGBIN/pg_test_fsync" -s 1 -f "$WORK/pg/fsync-probe" 2>&1 |
    awk '/one 8kB write/{on=1} /two 8kB writes/{on=0} on && /ops\/sec/ {gsub(/  +/, " "); print " " $0}'
}

# ---- Postfix -----------------------------------------------------------------
getent group postdrop >/dev/null || groupadd --system postdrop
id postfix >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postfix

postfix_setup() {
  local pf="$WORK/postfix" port="$1"
  mkdir -p "$pf/etc" "$pf/data"
  cp "$POSTFIX/usr/share/postfix/dynamicmaps.cf" "$POSTFIX/etc/postfix/postfix-files" "$pf/etc/"
  cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
daemon_directory = $PFLIB/sbin
command_directory = $POSTFIX/usr/sbin
shlib_directory = $PFLIB
meta_directory = $pf/etc
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH=$PFLIB
myhostname = bench.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_destination_concurrency_limit = $CONNECTIONS
default_process_limit = 100
biff = no
EOF
  cat >"$pf/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
EOF
  local d
  for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    mkdir -p "$pf/spool/$d"; chown postfix "$pf/spool/$d"; chmod 700 "$pf/spool/$d"
  done
  mkdir -p "$pf/spool/maildrop" "$pf/spool/public" "$pf/spool/pid"
  chown postfix:postdrop "$pf/spool/maildrop" "$pf/spool/public"
  chmod 730 "$pf/spool/maildrop"; chmod 710 "$pf/spool/public"
  chown postfix "$pf/data"
}

queue_files() { find "$WORK/postfix/spool/incoming" "$WORK/postfix/spool/active" "$WORK/postfix/spool/deferred" -type f | wc -l; }

postfix_round() {
  local port
  port="$(free_port)"
  rm -rf "$WORK/postfix"
  postfix_setup "$port"
  MAIL_CONFIG="$WORK/postfix/etc" LD_LIBRARY_PATH="$PFLIB" "$PFLIB/sbin/master" -c "$WORK/postfix/etc" -d &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  local t0 t1 t2
  t0=$(now)
  LD_LIBRARY_PATH="$PFLIB" "$POSTFIX/usr/sbin/smtp-source" -s "$CONNECTIONS" -m "$COUNT" -l "$SIZE" \
    -f a@example.com -t b@example.org 127.0.0.1:"$port"
  t1=$(now)
  local waited=0
  while [ "$(queue_files)" -gt 0 ]; do
    sleep 0.02
    waited=$((waited + 1))
    [ "$waited" -lt 30000 ] || { echo "postfix did not empty its queue in 10 minutes" >&2; exit 1; }
  done
  t2=$(now)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  python3 -c "import json,sys; c=$COUNT; print(json.dumps({'accepted_per_s': round(c/($t1-$t0)), 'end_to_end_per_s': round(c/($t2-$t0))}))"
}

echo "$COUNT messages of $SIZE bytes over $CONNECTIONS connections, $ROUNDS rounds; $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The disk's own price of one durable append of 10 KB (what every group commit
# pays once: write + fdatasync to a segment), measured in the same directory.
fsync_probe() {
  python3 - "$WORK" <<'PY'
import os, sys, time
d = os.path.join(sys.argv[1], "probe"); os.makedirs(d, exist_ok=True)
fd = os.open(f"{d}/segment", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
lat = []
for i in range(200):
    t = time.perf_counter()
    os.write(fd, b"x" * 10240); os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(f"{d}/segment")
lat.sort()
print('{"append_fdatasync_ms_p50": %.2f, "p99": %.2f}' % (lat[100], lat[197]))
PY
}

echo "disk: $(fsync_probe)"
if [ -n "$PGBIN" ]; then
  pg_start
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync=on, synchronous_commit=on, shared_buffers=256MB, $(psql_su -d postgres -At -c 'SHOW wal_sync_method') as wal_sync_method); pg_test_fsync, one 8 kB write:"
  pg_fsync_probe
fi
for r in $(seq "$ROUNDS"); do
  if has_spool file; then
    echo "postwire round $r (window: the relay's 64 per connection): $(relay_round "$r-full")"
    echo "postwire round $r (window: 4 per connection): $(relay_round "$r-w4" 4)"
    echo "postwire round $r (window: 1 per connection): $(relay_round "$r-w1" 1)"
  fi
  if has_spool pg; then
    echo "postwire pg, one relay, round $r (window: the relay's 64 per connection): $(pg_round "$r-full" 1)"
    echo "postwire pg, one relay, round $r (window: 1 per connection): $(pg_round "$r-w1" 1 1)"
  fi
  if has_spool pg2; then
    echo "postwire pg, two relays, round $r (window: the relay's 64 per connection): $(pg_round "$r-2full" 2)"
    echo "postwire pg, two relays, round $r (window: 1 per connection): $(pg_round "$r-2w1" 2 1)"
  fi
  [ "$ONLY" = postwire ] || echo "postfix  round $r: $(postfix_round)"
done
echo "disk: $(fsync_probe); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
