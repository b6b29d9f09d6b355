# Setup step of the dependency check (scripts/deny.sh, a step of
# scripts/test.sh), sourced by scripts/setup.sh: cargo-deny, built from
# crates.io at the version scripts/deny.sh pins, into .tools/bin.
bash "$ROOT/scripts/deny.sh" --install
