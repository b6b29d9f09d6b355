#!/usr/bin/env bash
# Builds the composer page (web/) into web/dist, which the relay serves
# (embedded at compile time, or from a directory with --web-dir):
#
#   scripts/build-web.sh            # then: cargo build -p postwire-relay
#   POSTWIRE_WEB_OUT=/tmp/x scripts/build-web.sh   # build into another folder
#                                                  # (the browser tests do)
#
# 1. builds the npm package `postwire` (wasm/) when it is not built yet
#    (scripts/build-wasm.sh installs the wasm toolchain when missing);
# 2. installs web/'s npm dependencies when missing (npm ci; no browser download);
# 3. type-checks and runs `vite build` twice: the composer page (index.html),
#    then the operator view (admin.html, `--mode admin`) into the same folder;
# 4. touches relay/src/web_assets.rs so that the next cargo build embeds the
#    new files (cargo does not watch the folder itself).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"
log() { printf '\033[1m[build-web]\033[0m %s\n' "$*" >&2; }

command -v npm >/dev/null || { echo "build-web: npm is missing (apt-get install npm, or Node.js 20 with npm)" >&2; exit 1; }

if [ ! -f wasm/pkg/postwire_wasm_bg.wasm ] || [ -n "${POSTWIRE_REBUILD_WASM:-}" ]; then
  log "building the postwire npm package first (scripts/build-wasm.sh)"
  bash scripts/build-wasm.sh
fi

cd web
if [ ! -x node_modules/.bin/vite ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ ! -e node_modules/postwire ]; then
  log "npm ci in web/"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  setup_record npm web/node_modules
fi
log "tsc --noEmit"
node_modules/.bin/tsc --noEmit -p .
out="${POSTWIRE_WEB_OUT:-$ROOT/web/dist}"
log "vite build -> $out"
node_modules/.bin/vite build --logLevel warn --outDir "$out" --emptyOutDir
node_modules/.bin/vite build --logLevel warn --outDir "$out" --mode admin
cd "$ROOT"
# The embedded copy changes only when web/dist does.
[ -n "${POSTWIRE_WEB_OUT:-}" ] || touch relay/src/web_assets.rs
log "built: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
