#!/usr/bin/env bash
# Installs everything postwire's build and tests need on a fresh Debian
# bookworm machine, and nothing twice: every step checks first.
#   scripts/setup.sh            # all of it
# Steps per area live in scripts/setup.d/NN-area.sh and are sourced in order,
# with these variables set: ROOT, POSTWIRE_VENV, and the helpers below.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export POSTWIRE_VENV="${POSTWIRE_VENV:-$ROOT/.venv}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# apt_install PKG...: installs the Debian packages that are missing.
APT_UPDATED=""
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pip_install PKG...: installs Python packages into the project's venv.
pip_install() {
  "$POSTWIRE_VENV/bin/python" - "$@" 2>/dev/null <<'PY' || { log "pip install $*"; "$POSTWIRE_VENV/bin/pip" install -q "$@"; }
import sys, importlib.metadata as m, re
for spec in sys.argv[1:]:
    name = re.split(r"[<>=!~\[]", spec)[0]
    m.version(name)
PY
}

export -f log apt_install pip_install

if [ ! -x "$POSTWIRE_VENV/bin/python" ]; then
  log "creating Python venv at $POSTWIRE_VENV"
  python3 -m venv "$POSTWIRE_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$POSTWIRE_VENV"; }
fi
pip_install pytest

for step in "$ROOT"/scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  log "$(basename "$step")"
  # shellcheck disable=SC1090
  source "$step"
done
log "done"
