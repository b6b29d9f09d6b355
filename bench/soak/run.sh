#!/usr/bin/env bash
# Soak benchmark of the relay (figures in docs/perf.md, section "Soak"; plot in
# docs/soak.svg). Not a test: scripts/test.sh does not run it.
#
#   bash bench/soak/run.sh                 # COUNT=100000 DURATION=600 CONNECTIONS=8
#   COUNT=20000 DURATION=120 bash bench/soak/run.sh     # a shorter one
#
# One relay (release build, as bench/relay/run.sh builds it) takes COUNT
# messages over CONNECTIONS WebSockets from bench/soak/load.mjs, paced along an
# hour of traffic compressed into DURATION seconds, with a mix of sizes (MIX,
# default 90 % 5-20 KB, 9.5 % 100 KB-1 MB, 0.5 % ~5 MB) and of recipients:
# most accepted, some deferred by the SMTP server (451 one to three times,
# then 250), some refused (550). The SMTP server is bench/soak/sink.mjs (on
# 127.0.0.1; the relay delivers to it over 8 connections, no TLS). The relay
# retries after RETRY_INITIAL (2s), doubling up to RETRY_MAX (10s): the
# deferrals of the hour resolve within it.
#
# bench/soak/sample.py samples the relay every INTERVAL (2) seconds from its
# start: RSS, open files, the data directory's size on disk and the spool's
# queue; BASELINE (10) seconds idle before the load, TAIL (90) seconds idle
# after every recipient is final. Then bench/soak/plot.py draws the samples
# (OUT_SVG, default docs/soak.svg) and the figures are printed as JSON.
# OUT_DIR (default bench/soak/results) keeps samples.csv, summary.json and the
# load generator's progress lines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/soak"
export COUNT="${COUNT:-100000}"
export DURATION="${DURATION:-600}"
export CONNECTIONS="${CONNECTIONS:-8}"
INTERVAL="${INTERVAL:-2}"
BASELINE="${BASELINE:-10}"
TAIL="${TAIL:-90}"
RETRY_INITIAL="${RETRY_INITIAL:-2s}"
RETRY_MAX="${RETRY_MAX:-10s}"
OUT_SVG="${OUT_SVG:-$ROOT/docs/soak.svg}"
OUT_DIR="${OUT_DIR:-$HERE/results}"

[ -f "$ROOT/tests/e2e/node_modules/ws/package.json" ] || { echo "no ws package: run scripts/setup.sh first" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -q -p postwire-relay --bin postwire)
  BIN="$ROOT/target/release/postwire"
fi

# On the repository's disk, not a tmpfs: fsync must be real.
mkdir -p "$ROOT/target" "$OUT_DIR"
WORK="$(mktemp -d -p "$ROOT/target" bench-soak.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the SMTP server --------------------------------------------------------
node "$HERE/sink.mjs" "$WORK/sink.port" "$WORK/sink.json" &
SINK=$!
PIDS+=("$SINK")
for _ in $(seq 100); do [ -s "$WORK/sink.port" ] && break; sleep 0.05; done
[ -s "$WORK/sink.port" ] || { echo "the SMTP sink did not start" >&2; exit 1; }
SINK_PORT="$(cat "$WORK/sink.port")"

# ---- the relay --------------------------------------------------------------
DATA="$WORK/data"
TOKEN="$("$BIN" token add soak --data-dir "$DATA" --allow-from @example.com --rate 10000000 2>/dev/null)"
POSTWIRE_LOG="${POSTWIRE_LOG:-warn}" "$BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" \
  --retry-initial "$RETRY_INITIAL" --retry-max "$RETRY_MAX" \
  --smtp "smtp://127.0.0.1:$SINK_PORT?security=none&connections=8" 2>"$WORK/relay.log" &
RELAY=$!
PIDS+=("$RELAY")
PORT=""
for _ in $(seq 200); do
  PORT="$(sed -n 's/^postwire relay listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$WORK/relay.log" 2>/dev/null)"
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || { cat "$WORK/relay.log" >&2; exit 1; }

# ---- the sampler ------------------------------------------------------------
python3 "$HERE/sample.py" "$RELAY" "$DATA" "http://127.0.0.1:$PORT/metrics" \
  "$WORK/samples.csv" "$INTERVAL" "$WORK/stop" &
SAMPLER=$!
PIDS+=("$SAMPLER")
T0=$(date +%s.%N)
since() { python3 -c "import sys; print(round($(date +%s.%N) - $T0, 1))"; }

echo "soak: $COUNT messages, schedule ${DURATION}s, $CONNECTIONS connections; $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
sleep "$BASELINE"
LOAD_AT=$(since)
rm -f "$OUT_DIR/progress.jsonl"
STATUS=0
PROGRESS_FILE="$OUT_DIR/progress.jsonl" node "$HERE/load.mjs" "ws://127.0.0.1:$PORT/v1/submit" "$TOKEN" \
  >"$WORK/load.json" || STATUS=$?
FINAL_AT=$(since)
echo "soak: load done at ${FINAL_AT}s ($(cat "$WORK/load.json")); idle for ${TAIL}s" >&2
sleep "$TAIL"
touch "$WORK/stop"
wait "$SAMPLER" || true
END_AT=$(since)

kill -TERM "$RELAY"
wait "$RELAY" || STATUS=$?
kill -TERM "$SINK"
wait "$SINK" || true

cp "$WORK/samples.csv" "$OUT_DIR/samples.csv"
FIGURES="$(python3 "$HERE/plot.py" "$WORK/samples.csv" "$OUT_SVG" "load=$LOAD_AT" "all final=$FINAL_AT" \
  --title "postwire relay soak: $COUNT messages, an hour compressed into ${DURATION}s, $(nproc) cores")"
python3 - "$WORK/load.json" "$WORK/sink.json" "$FIGURES" "$LOAD_AT" "$FINAL_AT" "$END_AT" "$WORK/relay.log" <<'PY' | tee "$OUT_DIR/summary.json"
import json, sys
load = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else {}
sink = json.load(open(sys.argv[2]))
figures = json.loads(sys.argv[3])
load_at, final_at, end_at = map(float, sys.argv[4:7])
log = open(sys.argv[7]).read().splitlines()
print(json.dumps({
    "load": load,
    "sink": sink,
    "resources": figures,
    "load_started_s": load_at,
    "all_final_s": final_at,
    "sampling_ended_s": end_at,
    "relay_log_lines": len(log),
    "relay_log_errors": sum(1 for l in log if "ERROR" in l),
    "relay_log_warnings": sum(1 for l in log if "WARN" in l),
}, indent=1))
PY
# Anything the relay logged besides its start line (warnings, errors).
if [ "$(wc -l <"$WORK/relay.log")" -gt 1 ]; then
  echo "soak: the relay logged:" >&2
  tail -n 20 "$WORK/relay.log" >&2
fi
echo "soak: load average after: $(cut -d' ' -f1-3 /proc/loadavg); samples in $OUT_DIR/samples.csv, plot in $OUT_SVG" >&2
[ -z "${KEEP:-}" ] || echo "soak: work directory kept: $WORK" >&2
exit "$STATUS"
