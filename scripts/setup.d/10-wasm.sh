# shellcheck shell=bash
# Setup step of the npm package `postwire` (wasm/), sourced by scripts/setup.sh:
# - Chromium from Debian for the browser tests (never a downloaded browser);
# - the package's dev dependencies (vite, playwright-core, typescript,
#   nodemailer and postal-mime for the benchmark) from package-lock.json;
# - the wasm toolchain and the package build (scripts/build-wasm.sh), so that
#   wasm/test/*.test.mjs find wasm/pkg/ ready.
apt_install chromium
if [ ! -d "$ROOT/wasm/node_modules" ] || [ "$ROOT/wasm/package-lock.json" -nt "$ROOT/wasm/node_modules/.package-lock.json" ]; then
  log "npm ci (wasm/)"
  (cd "$ROOT/wasm" && npm ci --no-audit --no-fund --loglevel=error)
  setup_record npm wasm/node_modules
fi
bash "$ROOT/scripts/build-wasm.sh"
