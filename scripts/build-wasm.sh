#!/usr/bin/env bash
# Builds the npm package `postwire` (wasm/) on a fresh machine, in one command:
#
#   scripts/build-wasm.sh
#
# 1. installs the wasm toolchain when missing (scripts/wasm-toolchain.sh:
#    wasm32 target, wasm-bindgen-cli matching Cargo.lock, binaryen's wasm-opt);
# 2. builds postwire-wasm for wasm32-unknown-unknown with the cargo profile `wasm`
#    (root Cargo.toml: opt-level z, 3 for the hot crates, s for postwire-core; fat LTO,
#    one codegen unit, panic=abort) into target-wasm/;
# 3. runs wasm-bindgen --target web into wasm/pkg/ (one .wasm shared by the Node
#    entry, which instantiates it synchronously from the file, and the browser
#    entry, which fetches it);
# 4. shrinks the .wasm with wasm-opt -Oz (plus scripts/wasm-opt-fixup.mjs for a
#    binaryen 108 bug) and prints its size, raw and gzipped.
#
# Environment:
#   POSTWIRE_WASM_FEATURES  cargo features of postwire-wasm (default: none, i.e. no
#                           encoding_rs: "full-encoding" adds ~127 KB gzipped, see docs/perf.md)
#   POSTWIRE_WASM_OPT_LEVEL base opt-level of the profile `wasm` (default: the profile's z;
#                           the per-crate levels of [profile.wasm.package.*] still apply)
#   POSTWIRE_WASM_OPT_FLAGS wasm-opt's optimisation flags (default: -Oz)
#   POSTWIRE_WASM_DEBUG=1   debug build, no wasm-opt (faster, much bigger)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

# shellcheck source=scripts/wasm-toolchain.sh
source "$ROOT/scripts/wasm-toolchain.sh"

features="${POSTWIRE_WASM_FEATURES-}"
out="$ROOT/wasm/pkg"
log() { printf '\033[1m[build-wasm]\033[0m %s\n' "$*" >&2; }

profile=release
if [ "${POSTWIRE_WASM_DEBUG:-}" = 1 ]; then
  profile=debug
  log "cargo build (debug, features: '${features}', mode: $WASM_MODE)"
  wasm_cargo build --locked -p postwire-wasm --lib --no-default-features --features "$features"
else
  profile=wasm
  log "cargo build --profile wasm (${POSTWIRE_WASM_OPT_LEVEL:+opt-level $POSTWIRE_WASM_OPT_LEVEL, }features: '${features}', mode: $WASM_MODE)"
  # The profile `wasm` of the root Cargo.toml (opt-level z, with opt-level 3 for
  # the crates on the hot path and s for postwire-core; fat LTO, one codegen unit, panic=abort) leaves the
  # server's release profile alone. POSTWIRE_WASM_OPT_LEVEL overrides the base level.
  if [ -n "${POSTWIRE_WASM_OPT_LEVEL:-}" ]; then export CARGO_PROFILE_WASM_OPT_LEVEL="$POSTWIRE_WASM_OPT_LEVEL"; fi
  wasm_cargo build --locked -p postwire-wasm --lib --profile wasm --no-default-features --features "$features"
fi

wasm_in="$WASM_TARGET_DIR/wasm32-unknown-unknown/$profile/postwire_wasm.wasm"
rm -rf "$out"
mkdir -p "$out"
log "wasm-bindgen --target web -> ${out#"$ROOT"/}"
"$WASM_BINDGEN" --target web --out-dir "$out" --out-name postwire_wasm "$wasm_in"

wasm="$out/postwire_wasm_bg.wasm"
if [ "$profile" = wasm ]; then
  # shellcheck disable=SC2206 # word splitting wanted: a list of flags
  opt_flags=(${POSTWIRE_WASM_OPT_FLAGS:--Oz})
  log "wasm-opt ${opt_flags[*]}"
  # Rust enables these wasm features by default; binaryen must be told.
  "$WASM_OPT" "${opt_flags[@]}" --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
  # binaryen 108 (Debian bookworm) exports the wrong table; repair and validate.
  node "$ROOT/scripts/wasm-opt-fixup.mjs" "$wasm"
fi

raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
log "$(printf '%s: %d bytes, %d bytes gzipped (-9)' "${wasm#"$ROOT"/}" "$raw" "$gz")"
