#!/usr/bin/env bash
# SMTP delivery benchmark (figures in docs/perf.md, section "SMTP delivery").
#   bash bench/smtp/run.sh            # COUNT=10000 SIZE=10240 BIG_MB=200 by default
# Into Postfix's smtp-sink (security none, no AUTH: smtp-sink has no TLS), side
# by side in one run: smtp-source -d (Postfix's own load generator, reusing its
# connections), `postwire send --bulk` at 1/4/8/16 connections and Nodemailer's
# pooled transport at 8; then `postwire forward` of a BIG_MB .eml (streamed by
# forward_file) with its peak RSS from /usr/bin/time.
# Needs scripts/setup.sh (unpacks the postfix .deb into .tools/postfix); installs
# nodemailer into bench/smtp/node_modules; builds postwire with --release.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/smtp"
COUNT="${COUNT:-10000}"
SIZE="${SIZE:-10240}"
BIG_MB="${BIG_MB:-200}"
POSTFIX="$ROOT/.tools/postfix"
export LD_LIBRARY_PATH="$POSTFIX/usr/lib/postfix"

[ -x "$POSTFIX/usr/sbin/smtp-sink" ] || { echo "no smtp-sink: run scripts/setup.sh first" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ -d "$HERE/node_modules/nodemailer" ] || (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null)
(cd "$ROOT" && cargo build --release -q -p postwire-relay --bin postwire)
BIN="$ROOT/target/release/postwire"

WORK="$(mktemp -d)"
SINK=""
cleanup() { [ -n "$SINK" ] && kill "$SINK" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$POSTFIX/usr/sbin/smtp-sink" -u nobody 127.0.0.1:"$PORT" 1024 &
SINK=$!
sleep 0.5

python3 "$HERE/make_messages.py" "$WORK/msgs" "$COUNT" "$SIZE"

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{$COUNT/($2-$1):.0f}')" "$1" "$2"; }
# median LIST: the median and the range of a space-separated list of numbers
median() { python3 -c "import sys, statistics as s; v=sorted(map(float, sys.argv[1:])); print(f'{s.median(v):.0f} ({v[0]:.0f}-{v[-1]:.0f})')" $1; }
ROUNDS="${ROUNDS:-3}"

echo "$COUNT messages of $SIZE bytes, median of $ROUNDS rounds (range); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| sender | connections | messages/s, wall clock | messages/s, sender's own clock |"
echo "| --- | --- | --- | --- |"
for n in 1 4 8 16; do
  walls=""
  for _ in $(seq "$ROUNDS"); do
    t0=$(now)
    "$POSTFIX/usr/sbin/smtp-source" -d -s "$n" -m "$COUNT" -l "$SIZE" \
      -f a@example.com -t b@example.org 127.0.0.1:"$PORT"
    t1=$(now)
    walls="$walls $(rate "$t0" "$t1")"
  done
  echo "| smtp-source -d | $n | $(median "$walls") | |"
done
for n in 1 4 8 16; do
  walls=""; inners=""
  for _ in $(seq "$ROUNDS"); do
    t0=$(now)
    summary="$("$BIN" send -q --bulk "$WORK/msgs" --from a@example.com --to b@example.org \
      --smtp "smtp://127.0.0.1:$PORT?security=none&connections=$n")"
    t1=$(now)
    walls="$walls $(rate "$t0" "$t1")"
    inners="$inners $(sed -n 's/.*(\([0-9]*\) messages\/s.*/\1/p' <<<"$summary")"
  done
  echo "| postwire send --bulk | $n | $(median "$walls") | $(median "$inners") (first message to last reply) |"
done
walls=""; inners=""
for _ in $(seq "$ROUNDS"); do
  t0=$(now)
  out="$(node "$HERE/nodemailer.mjs" "$PORT" "$WORK/msgs" 8)"
  t1=$(now)
  walls="$walls $(rate "$t0" "$t1")"
  inners="$inners $(sed -n 's/.*(\([0-9]*\) messages\/s.*/\1/p' <<<"$out")"
done
echo "| nodemailer pool | 8 | $(median "$walls") | $(median "$inners") (after reading the files) |"

python3 "$HERE/make_messages.py" --one "$WORK/big.eml" "$((BIG_MB * 1024 * 1024))"
rm -rf "$WORK/msgs"
size=$(stat -c %s "$WORK/big.eml")
t0=$(now)
/usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" forward "$WORK/big.eml" --from a@example.com \
  --to b@example.org --smtp "smtp://127.0.0.1:$PORT?security=none" >/dev/null
t1=$(now)
echo
echo "forward_file of a $((size / 1024 / 1024)) MB .eml: peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB, \
$(python3 -c "print(f'{$size/1048576/($t1-$t0):.0f}')") MB/s"
