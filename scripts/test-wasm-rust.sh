#!/usr/bin/env bash
# Runs postwire-wasm's Rust tests inside WebAssembly (wasm/tests/web.rs, with
# wasm-bindgen-test; Node.js runs them through wasm-bindgen-test-runner, which
# comes with the wasm-bindgen-cli that scripts/wasm-toolchain.sh installs).
#
#   scripts/test-wasm-rust.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/wasm-toolchain.sh
source "$ROOT/scripts/wasm-toolchain.sh"
runner="$(dirname "$WASM_BINDGEN")/wasm-bindgen-test-runner"
[ -x "$runner" ] || { echo "missing $runner (reinstall wasm-bindgen-cli)" >&2; exit 1; }
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner" \
  wasm_cargo test --locked -p postwire-wasm --no-default-features --tests
