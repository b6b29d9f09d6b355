#!/usr/bin/env bash
# CI check: postwire-core alone compiles for wasm32-unknown-unknown (with and
# without its default `full-encoding` feature), so nothing in core reaches for
# the clock, the filesystem or OS randomness in a way that breaks the browser.
# Installs the wasm toolchain when missing (scripts/wasm-toolchain.sh).
#
#   scripts/check-core-wasm.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/wasm-toolchain.sh
source "$ROOT/scripts/wasm-toolchain.sh"

echo "[check-core-wasm] postwire-core, default features ($WASM_MODE)" >&2
wasm_cargo build --locked -p postwire-core --lib
echo "[check-core-wasm] postwire-core, --no-default-features ($WASM_MODE)" >&2
wasm_cargo build --locked -p postwire-core --lib --no-default-features
echo "[check-core-wasm] ok: postwire-core builds for wasm32-unknown-unknown" >&2
