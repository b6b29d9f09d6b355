#!/usr/bin/env bash
# Installs (when missing) and describes the toolchain that builds postwire for
# wasm32-unknown-unknown: the Rust target, wasm-bindgen-cli and binaryen's wasm-opt.
#
#   scripts/wasm-toolchain.sh            # install what is missing, print the choice
#   source scripts/wasm-toolchain.sh     # same (in a child bash), then use the helpers below
#
# Two ways to get the Rust target, tried in this order:
#   1. rustup: `rustup target add wasm32-unknown-unknown` (an ordinary developer
#      machine with internet access);
#   2. Debian: the packages rustc-web cargo-web rust-web-src lld-22 (rustc 1.96
#      with the std sources) and a build-std build, for machines where rustup
#      cannot download (this project's CI):
#        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
#        RUSTFLAGS="-C linker=/usr/lib/llvm-22/bin/wasm-ld" \
#        /usr/bin/cargo build --target wasm32-unknown-unknown -Z build-std=std,panic_abort
#      into a separate target dir (target-wasm/), so the host build is untouched.
#
# After sourcing, these are set:
#   WASM_MODE         rustup | debian
#   WASM_TARGET_DIR   cargo target dir of wasm builds (<repo>/target-wasm)
#   WASM_BINDGEN      path of the wasm-bindgen binary matching Cargo.lock
#   WASM_OPT          path of wasm-opt
# and the function `wasm_cargo ARGS...` runs cargo for wasm32-unknown-unknown
# with the right compiler, flags and target dir (ARGS are cargo's: build -p ...).
#
# Environment: POSTWIRE_WASM_MODE=rustup|debian forces a mode;
# POSTWIRE_TOOLS (default <repo>/.tools) is where wasm-bindgen-cli is installed.

_pw_wasm_toolchain() {
  set -euo pipefail
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  WASM_ROOT="$root"
  local tools="${POSTWIRE_TOOLS:-$root/.tools}"

  _pw_log() { printf '\033[1m[wasm-toolchain]\033[0m %s\n' "$*" >&2; }

  # The shared install helpers (apt_install, log); sourced here, not inherited.
  PW_LOG_TAG=wasm-toolchain
  # shellcheck source=scripts/lib/setup-helpers.sh
  source "$root/scripts/lib/setup-helpers.sh"
  # Debian's compiler, cargo and linker (mode debian); overridable for tests.
  DEB_RUSTC="${POSTWIRE_DEBIAN_RUSTC:-/usr/bin/rustc}"
  DEB_CARGO="${POSTWIRE_DEBIAN_CARGO:-/usr/bin/cargo}"
  WASM_LD="${POSTWIRE_WASM_LD:-/usr/lib/llvm-22/bin/wasm-ld}"
  local rust_src="${POSTWIRE_DEBIAN_RUST_SRC:-/usr/lib/rustlib/src/rust/library}"

  # --- 1. the Rust target ---------------------------------------------------
  local mode="${POSTWIRE_WASM_MODE:-}"
  if [ -z "$mode" ]; then
    if command -v rustup >/dev/null 2>&1 &&
      { rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
        { _pw_log "rustup target add wasm32-unknown-unknown"
          timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 &&
            setup_record rustup "target wasm32-unknown-unknown"; }; }; then
      mode=rustup
    else
      _pw_log "rustup cannot provide wasm32-unknown-unknown; using Debian's rustc-web with build-std"
      mode=debian
    fi
  fi
  case "$mode" in
    rustup)
      rustup target list --installed | grep -qx wasm32-unknown-unknown ||
        { rustup target add wasm32-unknown-unknown && setup_record rustup "target wasm32-unknown-unknown"; }
      ;;
    debian)
      apt_install rustc-web cargo-web rust-web-src lld-22
      [ -x "$WASM_LD" ] || { _pw_log "wasm-ld missing after installing lld-22 ($WASM_LD)"; return 1; }
      [ -d "$rust_src" ] || { _pw_log "std sources missing (rust-web-src: $rust_src)"; return 1; }
      ;;
    *)
      _pw_log "POSTWIRE_WASM_MODE must be rustup or debian, not '$mode'"
      return 1
      ;;
  esac
  WASM_MODE="$mode"
  # One dir per mode: the two compilers would otherwise evict each other's builds.
  WASM_TARGET_DIR="${WASM_TARGET_DIR:-$root/target-wasm/$mode}"

  # --- 2. wasm-opt (binaryen) -----------------------------------------------
  if ! command -v wasm-opt >/dev/null 2>&1; then
    apt_install binaryen
  fi
  WASM_OPT="$(command -v wasm-opt)"

  # --- 3. wasm-bindgen-cli, exactly the version of the wasm-bindgen crate -----
  local want
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
  if [ -z "$want" ]; then
    _pw_log "wasm-bindgen is not in Cargo.lock; run 'cargo generate-lockfile' or 'cargo check -p postwire-wasm' first"
    return 1
  fi
  WASM_BINDGEN="$tools/bin/wasm-bindgen"
  local have=""
  [ -x "$WASM_BINDGEN" ] && have="$("$WASM_BINDGEN" --version | awk '{print $2}')"
  if [ "$have" != "$want" ]; then
    _pw_log "cargo install wasm-bindgen-cli --version $want --root $tools"
    # The host toolchain builds the CLI (it runs on this machine, not in wasm).
    cargo install -q wasm-bindgen-cli --version "$want" --root "$tools"
    setup_record cargo "wasm-bindgen-cli $want"
  fi
  export WASM_MODE WASM_TARGET_DIR WASM_BINDGEN WASM_OPT WASM_ROOT DEB_RUSTC DEB_CARGO WASM_LD
}

# wasm_cargo ARGS...: cargo for wasm32-unknown-unknown in the chosen mode.
# Extra RUSTFLAGS may be passed in WASM_RUSTFLAGS.
wasm_cargo() {
  local sub="$1"
  shift
  case "$WASM_MODE" in
    rustup)
      CARGO_TARGET_DIR="$WASM_TARGET_DIR" RUSTFLAGS="${WASM_RUSTFLAGS:-}" \
        cargo "$sub" --target wasm32-unknown-unknown "$@"
      ;;
    debian)
      RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
        RUSTFLAGS="-C linker=$WASM_LD ${WASM_RUSTFLAGS:-}" \
        "$DEB_CARGO" "$sub" --target wasm32-unknown-unknown -Z build-std=std,panic_abort "$@"
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  _pw_wasm_toolchain
  if [ "${1:-}" = "--env" ]; then
    # Machine-readable, for `source`: KEY='value' lines.
    for v in WASM_MODE WASM_TARGET_DIR WASM_BINDGEN WASM_OPT WASM_ROOT DEB_RUSTC DEB_CARGO WASM_LD; do
      printf "%s=%q\n" "$v" "${!v}"
    done
  else
    printf 'mode=%s\nwasm-bindgen=%s (%s)\nwasm-opt=%s (%s)\ntarget-dir=%s\n' \
      "$WASM_MODE" "$WASM_BINDGEN" "$("$WASM_BINDGEN" --version)" \
      "$WASM_OPT" "$("$WASM_OPT" --version)" "$WASM_TARGET_DIR"
  fi
else
  # Sourced: install in a child bash (with errexit), then import its choices.
  _pw_env="$(bash "${BASH_SOURCE[0]}" --env)" || return $?
  eval "$_pw_env"
  unset _pw_env
  export WASM_MODE WASM_TARGET_DIR WASM_BINDGEN WASM_OPT WASM_ROOT DEB_RUSTC DEB_CARGO WASM_LD
fi
