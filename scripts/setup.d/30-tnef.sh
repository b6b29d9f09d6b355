# TNEF (winmail.dat) judges: Debian's `tnef` and `ytnef` tools, Perl's
# Convert::TNEF (libconvert-tnef-perl), plus the
# real-world winmail.dat files of libytnef's Debian source package (its
# test-data/ folder with expected results), fetched with a private deb-src
# list so the machine's own apt sources stay untouched.
# Sourced by scripts/setup.sh (ROOT and the apt_install helper are set).
# Result: /usr/bin/{tnef,ytnef,ytnefprint} and
#   $ROOT/target/tnef-testdata/test-data/  (POSTWIRE_TNEF_TESTDATA overrides)

apt_install tnef ytnef-tools libconvert-tnef-perl dpkg-dev xz-utils

TNEF_TESTDATA="${POSTWIRE_TNEF_TESTDATA:-$ROOT/target/tnef-testdata}"
if [ ! -d "$TNEF_TESTDATA/test-data" ]; then
  log "fetching libytnef source package for its test-data/"
  tnef_apt="$(mktemp -d)"
  mkdir -p "$tnef_apt/lists/partial" "$tnef_apt/archives/partial" "$tnef_apt/src"
  echo "deb-src http://deb.debian.org/debian bookworm main" >"$tnef_apt/sources.list"
  tnef_apt_opts=(
    -o "Dir::Etc::SourceList=$tnef_apt/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$tnef_apt/lists"
    -o "Dir::Cache::Archives=$tnef_apt/archives"
    -o "APT::Sandbox::User=root"
  )
  apt-get -qq "${tnef_apt_opts[@]}" update
  (cd "$tnef_apt/src" && apt-get -qq "${tnef_apt_opts[@]}" source --download-only libytnef)
  dsc="$(ls "$tnef_apt"/src/libytnef_*.dsc | head -n1)"
  dpkg-source --no-check -x "$dsc" "$tnef_apt/src/libytnef" >/dev/null
  mkdir -p "$TNEF_TESTDATA"
  cp -r "$tnef_apt/src/libytnef/test-data" "$TNEF_TESTDATA/"
  rm -rf "$tnef_apt"
  setup_record deb-src "libytnef test-data ($TNEF_TESTDATA)"
fi
[ -d "$TNEF_TESTDATA/test-data" ] || { log "libytnef test-data missing"; return 1; }

# PyPI's tnefparse: a third, independent TNEF reader for tests/py/test_tnef_cli.py.
pip_install tnefparse

# cargo-fuzz for core/tests/tnef_fuzz.rs (a short libFuzzer run of
# fuzz/fuzz_targets/tnef_reader.rs). The test runs it on the stable toolchain
# with RUSTC_BOOTSTRAP=1, so no nightly is needed.
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo install cargo-fuzz"
  cargo install --locked -q cargo-fuzz
  setup_record cargo cargo-fuzz
fi
