#!/usr/bin/env bash
# Installs everything postwire's build and tests need on a fresh Debian
# bookworm machine, and nothing twice: every step checks first.
#   scripts/setup.sh            # all of it
# Steps per area live in scripts/setup.d/NN-area.sh and are sourced in order,
# with ROOT and POSTWIRE_VENV set and the helpers of scripts/lib/setup-helpers.sh
# (log, apt_install, pip_install, setup_record) defined. Child scripts that a
# step runs source the helpers themselves; `apt-get update` runs at most once
# per set-up across all of them (POSTWIRE_SETUP_STATE).
# At the end it prints what it installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
PW_LOG_TAG=setup
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

if [ ! -x "$POSTWIRE_VENV/bin/python" ]; then
  log "creating Python venv at $POSTWIRE_VENV"
  if ! python3 -m venv "$POSTWIRE_VENV" 2>/dev/null; then
    rm -rf "$POSTWIRE_VENV"
    apt_install python3-venv
    python3 -m venv "$POSTWIRE_VENV"
  fi
  setup_record venv "$POSTWIRE_VENV"
fi
pip_install pytest

for step in "$ROOT"/scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  log "$(basename "$step")"
  # shellcheck disable=SC1090
  source "$step"
done
installed="$(setup_installed)"
if [ -n "$installed" ]; then
  log "installed by this set-up:"
  printf '%s\n' "$installed" | sed 's/^/    /' >&2
else
  log "everything was already installed"
fi
log "done"
