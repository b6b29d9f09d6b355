#!/usr/bin/env bash
# Checks the dependency graphs of Cargo.lock and fuzz/Cargo.lock with
# cargo-deny against deny.toml: licences, bans (duplicate versions are
# warnings), sources (crates.io and this repository's path crates only) and,
# where the RustSec advisory database can be had, advisories.
#
#   scripts/deny.sh              # install cargo-deny if missing, then check
#   scripts/deny.sh --install    # only install it (scripts/setup.d/70-deny.sh)
#
# cargo-deny is built from crates.io, at the version pinned below, into the
# project's tools directory (POSTWIRE_TOOLS, default <repo>/.tools) with
# `cargo install --locked --root`, as scripts/wasm-toolchain.sh installs
# wasm-bindgen-cli; about 4 minutes of build on the 2-core machine, once.
#
# Advisories: the database is a git repository on GitHub, which this
# project's machines and CI cannot reach (crates.io, PyPI, npm and Debian
# only; none of them carries a copy). So the advisories check runs only with
# POSTWIRE_DENY_ADVISORIES=1 (a machine that reaches GitHub: cargo-deny
# fetches the database into $CARGO_HOME/advisory-dbs; or one where a copy was
# put there, with POSTWIRE_DENY_ADVISORIES=offline to use it without
# fetching). Otherwise the script says that it was skipped and why.
#
# The last line is the plain summary 'cargo deny: N passed, M failed'.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PW_LOG_TAG=deny
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

CARGO_DENY_VERSION="${POSTWIRE_CARGO_DENY_VERSION:-0.20.2}"
TOOLS="${POSTWIRE_TOOLS:-$ROOT/.tools}"
DENY="$TOOLS/bin/cargo-deny"

install_cargo_deny() {
  local have=""
  [ -x "$DENY" ] && have="$("$DENY" --version 2>/dev/null | awk '{print $2}')"
  if [ "$have" != "$CARGO_DENY_VERSION" ]; then
    log "cargo install cargo-deny --version $CARGO_DENY_VERSION --root $TOOLS"
    cargo install --locked -q cargo-deny --version "$CARGO_DENY_VERSION" --root "$TOOLS"
    setup_record cargo "cargo-deny $CARGO_DENY_VERSION"
  fi
}

install_cargo_deny
[ "${1:-}" = --install ] && exit 0

checks=(bans licenses sources)
fetch=()
case "${POSTWIRE_DENY_ADVISORIES:-}" in
  1) checks+=(advisories) ;;
  offline) checks+=(advisories); fetch=(--offline) ;;
  *) log "advisories not checked: the RustSec database lives on GitHub, out of this machine's reach (set POSTWIRE_DENY_ADVISORIES=1 where it is reachable; docs/dependencies.md)" ;;
esac

passed=0
failed=0
for manifest in Cargo.toml fuzz/Cargo.toml; do
  [ -f "$ROOT/$manifest" ] || continue
  # Cargo.lock must be as committed (--locked). fuzz/Cargo.lock follows the
  # workspace's path crates: cargo brings it up to date when their
  # dependencies change (scripts/fuzz.sh's `cargo fuzz build` does, before
  # this step), so it is checked as cargo resolves it.
  locked=()
  [ "$manifest" = Cargo.toml ] && locked=(--locked)
  log "cargo deny check ${checks[*]} ($manifest)"
  if (cd "$ROOT" && "$DENY" "${locked[@]}" "${fetch[@]}" --manifest-path "$manifest" --config deny.toml \
    check --hide-inclusion-graph "${checks[@]}"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "cargo deny: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
