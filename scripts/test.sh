#!/usr/bin/env bash
# Runs every test of postwire on a fresh machine: installs what is missing
# (scripts/setup.sh), then the Rust tests, the Python judges and the Node tests.
# Each runner prints its own summary; the script fails when any runner fails.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export POSTWIRE_VENV="${POSTWIRE_VENV:-$ROOT/.venv}"

bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }

failed=()
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "cargo build (postwire binary)"
cargo build --locked -p postwire-relay --bin postwire || failed+=("cargo build")
export POSTWIRE_BIN="$ROOT/target/debug/postwire"

if [ -x scripts/check-core-wasm.sh ]; then
  step "postwire-core for wasm32-unknown-unknown"
  bash scripts/check-core-wasm.sh || failed+=("core wasm32 build")
fi

step "cargo test --workspace"
cargo test --locked --workspace --exclude postwire-wasm || failed+=("cargo test")

if compgen -G "tests/py/test_*.py" >/dev/null; then
  step "pytest tests/py"
  "$POSTWIRE_VENV/bin/python" -m pytest -q tests/py || failed+=("pytest")
fi

js_tests=$(ls tests/js/*.test.mjs wasm/test/*.test.mjs 2>/dev/null || true)
if [ -n "$js_tests" ]; then
  step "node --test"
  # shellcheck disable=SC2086
  node --test $js_tests || failed+=("node --test")
fi

step "fuzz: every target of fuzz/ for a bounded time (scripts/fuzz.sh)"
bash scripts/fuzz.sh || failed+=("fuzz")

step "cargo deny: licences, bans, sources of Cargo.lock and fuzz/Cargo.lock (scripts/deny.sh)"
bash scripts/deny.sh || failed+=("cargo deny")

if [ "$(id -u)" -eq 0 ]; then
  step "container image: runtime stage built and run with podman (scripts/container-check.sh)"
  POSTWIRE_BIN="$POSTWIRE_BIN" bash scripts/container-check.sh || failed+=("container check")
else
  echo "container check skipped: it needs root (rootful podman)"
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\nall test suites passed\n'
