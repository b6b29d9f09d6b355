#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time (libFuzzer through
# cargo-fuzz, on the stable toolchain with RUSTC_BOOTSTRAP=1), each from a seed
# corpus of real files, and fails on any finding.
#
#   scripts/fuzz.sh                       # every target, 20 s each
#   POSTWIRE_FUZZ_SECONDS=600 scripts/fuzz.sh mime_parse ical
#
# - Seeds: the project's own test files (core/tests/...), copied into a
#   temporary corpus so that fuzz/ stays clean; plus fuzz/regressions/TARGET/,
#   every input that once crashed a target, run again each time.
# - A finding (crash, panic, timeout, out of memory) is copied into
#   fuzz/regressions/TARGET/ (commit it with the fix) and the script fails with
#   libFuzzer's report.
# - The last line is the plain summary 'fuzz: N passed, M failed'.
# Needs cargo-fuzz (scripts/setup.d/30-tnef.sh installs it).
# tnef_reader also has its own fixed-seed run in core/tests/tnef_fuzz.rs.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
seconds="${POSTWIRE_FUZZ_SECONDS:-20}"
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(awk -F'"' '/^name = / && $2 != "postwire-fuzz" { print $2 }' fuzz/Cargo.toml)
fi

# The nested cargo picks its own toolchain and target directory.
unset RUSTUP_TOOLCHAIN RUSTC RUSTC_WRAPPER RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_ENCODED_RUSTFLAGS
export RUSTC_BOOTSTRAP=1
cargo fuzz --version >/dev/null 2>&1 || { log "cargo-fuzz is missing: run scripts/setup.sh"; echo "fuzz: 0 passed, ${#targets[@]} failed"; exit 1; }

log "cargo fuzz build (${targets[*]})"
if ! (cd fuzz && cargo fuzz build 2>&1 | grep -v '^ *Compiling' >&2); then
  log "the fuzz targets do not build"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

# seeds TARGET DIR: copies the target's seed files into DIR.
seeds() {
  local t="$1" dir="$2" f
  case "$t" in
    mime_parse) cp core/tests/corpus/*.eml core/tests/golden/*.eml "$dir"/ 2>/dev/null
                find core/tests -name '*.eml' -size -256k -exec cp {} "$dir"/ \; ;;
    spec_json | tnef_writer) cp core/tests/golden/*.json "$dir"/ ;;
    ical) find core/tests -name '*.ics' -exec cp {} "$dir"/ \; ;;
    tnef_reader | tnef_rtf) cp core/tests/data/tnef/*.tnef "$dir"/ ;;
    report_parse) find core/tests/data/reports -name '*.eml' -exec cp {} "$dir"/ \; ;;
    relay_frame)
      printf '%s' '{"type":"submit","id":"m1","size":5,"envelope":{"mailFrom":"ana@example.com","rcptTo":["bob@example.org"]}}' >"$dir/submit"
      printf '{"type":"submit","id":"m2","size":40}\0From: ana@example.com\r\nTo: bob@example.org\r\n\r\nhi\r\n' >"$dir/derived"
      printf '%s' '{"type":"status","id":"m1"}' >"$dir/status" ;;
    spool_recovery) printf '\0\0\0' >"$dir/empty"; printf '\4\0\0abc\0from-fuzz' >"$dir/records" ;;
    tokens_toml) printf '[[token]]\nname = "app"\nhash = "sha256:%064d"\nallow_from = ["@example.com"]\nmax_size = 1000\nrate_per_minute = 60\n' 0 >"$dir/one" ;;
    address)
      local i=0
      for a in 'ana@example.com' 'Ana Núñez <ana@example.com>' '"Carl, Jr." <carl@example.org>' \
        'bob@xn--bcher-kva.example' '<weird."quoted"@example.net>' 'Zoë <zoe@bücher.example>'; do
        printf '%s' "$a" >"$dir/seed$((i++))"
      done ;;
  esac
  return 0
}

passed=0
failed=()
for t in "${targets[@]}"; do
  work="$(mktemp -d)"
  mkdir -p "$work/corpus" "$work/seeds" "fuzz/regressions/$t" "fuzz/artifacts/$t"
  seeds "$t" "$work/seeds"
  log "$t: ${seconds}s from $(ls "$work/seeds" | wc -l) seeds and $(ls "fuzz/regressions/$t" | wc -l) regressions"
  before="$(ls "fuzz/artifacts/$t")"
  (cd fuzz && cargo fuzz run "$t" "$work/corpus" "$work/seeds" "$ROOT/fuzz/regressions/$t" -- \
    -max_total_time="$seconds" -seed=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$work/log" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    log "$t: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | awk '{print $2}') runs)"
  else
    failed+=("$t")
    tail -n 40 "$work/log" >&2
    for f in "fuzz/artifacts/$t"/*; do
      [ -e "$f" ] || continue
      grep -qxF "$(basename "$f")" <<<"$before" && continue
      cp "$f" "fuzz/regressions/$t/"
      log "$t: FINDING kept as fuzz/regressions/$t/$(basename "$f")"
    done
  fi
  rm -rf "$work"
done
[ ${#failed[@]} -eq 0 ] || log "failed: ${failed[*]}"
echo "fuzz: $passed passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
