#!/usr/bin/env bash
# Builds the release `postwire` binary with the real composer page in it, on a
# fresh machine, in one command (the README's build command):
#
#   scripts/build-release.sh        # -> target/release/postwire
#
# 1. scripts/build-web.sh: the npm package (wasm; installs the wasm toolchain
#    when missing) and the composer page (web/dist; npm ci when missing);
# 2. cargo build --release -p postwire-relay --bin postwire, which embeds
#    web/dist. A plain `cargo build` without step 1 still works, but its binary
#    serves a page that says the composer was not built (and cargo warns).
# Extra arguments go to cargo build (e.g. --locked).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PW_LOG_TAG=build-release
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

command -v cargo >/dev/null || { echo "build-release: cargo is missing: install Rust (rustup)" >&2; exit 1; }
log "building the npm package and the composer page (scripts/build-web.sh)"
bash scripts/build-web.sh
log "cargo build --release -p postwire-relay --bin postwire"
cargo build --release -p postwire-relay --bin postwire "$@"
[ -f web/dist/index.html ] || { log "web/dist/index.html missing after build-web.sh"; exit 1; }
log "built target/release/postwire (composer page embedded from web/dist)"
