# shellcheck shell=bash
# The install helpers every postwire script uses, in one place:
#
#   source "$ROOT/scripts/lib/setup-helpers.sh"
#
# Sourced by scripts/setup.sh (and so by its setup.d steps), by
# scripts/wasm-toolchain.sh, scripts/run.sh and any script that installs
# something. Each script sources it itself: nothing depends on functions or
# variables exported by a parent (`export -f` left child scripts with a
# function whose state variable they never saw, issue 12).
#
# The one piece of state shared between processes is a directory named by
# POSTWIRE_SETUP_STATE (exported, so child scripts see it): the first script
# of a set-up that finds it unset creates it and removes it on exit. It holds
# a stamp file, so that `apt-get update` runs at most once per set-up, across
# every child script, and the list of what was installed.
#
# Helpers (each safe under `set -euo pipefail`, each logging what it installs):
#   log MSG...              one line on stderr, tagged with $PW_LOG_TAG (default: setup)
#   apt_update_once         `apt-get update`, at most once per set-up
#   apt_install PKG...      installs the Debian packages that are missing
#   pip_install SPEC...     installs Python packages missing from $POSTWIRE_VENV
#   setup_installed         prints what this set-up installed so far, one per line
#
# Environment: POSTWIRE_SETUP_STATE (see above), POSTWIRE_VENV (pip_install's
# venv, default <repo>/.venv), POSTWIRE_APT_LOCK_TIMEOUT (seconds to wait for
# another apt/dpkg to finish, default 600).

# Sourcing twice is harmless: the definitions are the same.
log() { printf '\033[1m[%s]\033[0m %s\n' "${PW_LOG_TAG:-setup}" "$*" >&2; }

_pw_setup_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export POSTWIRE_VENV="${POSTWIRE_VENV:-$_pw_setup_root/.venv}"
export DEBIAN_FRONTEND=noninteractive

# The shared state directory: created once per set-up, seen by every child.
if [ -z "${POSTWIRE_SETUP_STATE:-}" ] || [ ! -d "${POSTWIRE_SETUP_STATE}" ]; then
  POSTWIRE_SETUP_STATE="$(mktemp -d "${TMPDIR:-/tmp}/postwire-setup.XXXXXX")"
  export POSTWIRE_SETUP_STATE
  # Only the process that created it removes it, when it exits. A script that
  # sets its own EXIT trap must call pw_setup_cleanup from it.
  _pw_setup_owner=$$
  pw_setup_cleanup() {
    if [ "${_pw_setup_owner:-}" = "$$" ] && [ -n "${POSTWIRE_SETUP_STATE:-}" ]; then
      rm -rf "$POSTWIRE_SETUP_STATE"
    fi
  }
  trap pw_setup_cleanup EXIT
fi

# _pw_sudo: empty for root, else "sudo".
_pw_sudo() { if [ "$(id -u)" -eq 0 ]; then :; else printf 'sudo'; fi; }

# _pw_record KIND NAME...: notes what was installed (for the closing summary).
_pw_record() {
  local kind="$1" p
  shift
  for p in "$@"; do printf '%s %s\n' "$kind" "$p" >>"$POSTWIRE_SETUP_STATE/installed"; done
}

# apt_update_once: `apt-get update`, unless this set-up ran it already (in
# this process or any other that shares POSTWIRE_SETUP_STATE).
apt_update_once() {
  [ -e "$POSTWIRE_SETUP_STATE/apt-updated" ] && return 0
  log "apt-get update"
  $(_pw_sudo) apt-get -o "DPkg::Lock::Timeout=${POSTWIRE_APT_LOCK_TIMEOUT:-600}" update -qq
  : >"$POSTWIRE_SETUP_STATE/apt-updated"
}

# apt_install PKG...: installs the Debian packages that are missing. The first
# install of a set-up runs `apt-get update` first; later ones, in this process
# or any child, do not.
apt_install() {
  local missing=() p sudo
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  sudo="$(_pw_sudo)"
  apt_update_once
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get -o "DPkg::Lock::Timeout=${POSTWIRE_APT_LOCK_TIMEOUT:-600}" \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  _pw_record apt "${missing[@]}"
}

# pip_install SPEC...: installs the Python packages (pip requirement specs)
# whose distribution is missing from the project's venv. The venv must exist
# (scripts/setup.sh creates it).
pip_install() {
  local missing=() spec
  for spec in "$@"; do
    "$POSTWIRE_VENV/bin/python" - "$spec" 2>/dev/null <<'PY' || missing+=("$spec")
import sys, importlib.metadata as m, re
m.version(re.split(r"[<>=!~\[ ;]", sys.argv[1])[0])
PY
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Python packages into ${POSTWIRE_VENV}: ${missing[*]}"
  "$POSTWIRE_VENV/bin/pip" install -q "${missing[@]}"
  _pw_record pip "${missing[@]}"
}

# setup_installed: what this set-up installed so far, as "KIND NAME" lines.
setup_installed() {
  [ -f "$POSTWIRE_SETUP_STATE/installed" ] && cat "$POSTWIRE_SETUP_STATE/installed"
  return 0
}

# setup_record KIND NAME...: for installs that do not go through the helpers
# above (npm ci, cargo install), so that the summary names them too.
setup_record() { _pw_record "$@"; }
