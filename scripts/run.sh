#!/usr/bin/env bash
# The main job on a fresh machine: builds the npm package (wasm), the composer
# page and the `postwire` binary, creates a relay token, and runs the relay
# with its page. With no SMTP upstream configured, mail goes into
# <data dir>/pickup as .eml files; give one with POSTWIRE_SMTP_URL (and
# POSTWIRE_SMTP_PASSWORD) to deliver for real.
#
#   scripts/run.sh
#   POSTWIRE_LISTEN=0.0.0.0:8025 POSTWIRE_ALLOW_FROM=@mydomain.org scripts/run.sh
#
# Settings (environment): POSTWIRE_DATA_DIR (default ./data), POSTWIRE_LISTEN
# (default 127.0.0.1:8025), POSTWIRE_ALLOW_FROM (senders the new token may use,
# comma-separated addresses or @domains; default @example.com), and every
# POSTWIRE_* variable of `postwire serve --help`.
#
# It does not need scripts/setup.sh to have run: what the build needs and
# finds missing (Debian packages, the wasm32 target, wasm-bindgen-cli,
# binaryen, npm packages) is installed here, and each install is logged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PW_LOG_TAG=run
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

command -v cargo >/dev/null || { echo "run: cargo is missing: install Rust (rustup)" >&2; exit 1; }
command -v python3 >/dev/null || apt_install python3
command -v gzip >/dev/null || apt_install gzip
if ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi

# The binary with the page: npm package, composer page, release build.
bash scripts/build-release.sh
bin="$ROOT/target/release/postwire"
installed="$(setup_installed)"
if [ -n "$installed" ]; then
  log "installed for this run:"
  printf '%s\n' "$installed" | sed 's/^/    /' >&2
fi

data="${POSTWIRE_DATA_DIR:-$ROOT/data}"
listen="${POSTWIRE_LISTEN:-127.0.0.1:8025}"
mkdir -p "$data"
allow=()
IFS=',' read -r -a senders <<< "${POSTWIRE_ALLOW_FROM:-@example.com}"
for s in "${senders[@]}"; do allow+=(--allow-from "$s"); done
# One token for the page, replaced at every start: the previous run's secret
# stops working (token remove), so secrets do not pile up in tokens.toml.
name="composer"
if "$bin" token list --data-dir "$data" --json 2>/dev/null \
  | python3 -c 'import json,sys; sys.exit(0 if any(t["name"] == sys.argv[1] for t in json.load(sys.stdin)) else 1)' "$name"; then
  "$bin" token remove "$name" --data-dir "$data"
fi
token="$("$bin" token add "$name" --data-dir "$data" "${allow[@]}")"

cat <<MSG

  postwire relay
  page:    http://$listen/
  token:   $token
           (shown once; the relay keeps only its hash; a new one replaces it at every start)
  senders: ${POSTWIRE_ALLOW_FROM:-@example.com}
  mail:    ${POSTWIRE_SMTP_URL:-$data/pickup (no SMTP upstream configured)}

MSG
export POSTWIRE_DATA_DIR="$data" POSTWIRE_LISTEN="$listen"
# exec skips the EXIT trap: remove the set-up's state directory first.
pw_setup_cleanup 2>/dev/null || true
unset POSTWIRE_SETUP_STATE
exec "$bin" serve
