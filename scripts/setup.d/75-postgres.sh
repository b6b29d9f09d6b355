# The PostgreSQL spool's tests (issue 14): a real PostgreSQL that each test
# binary starts for itself (relay/tests/pg_support, tests/js/support/pg.mjs):
# initdb, pg_ctl, postgres and psql from Debian's `postgresql` package, found
# in /usr/lib/postgresql/<version>/bin (nothing relies on /usr/local/bin or
# PATH). The package's own cluster (port 5432) is not used by any test.
# The tests run initdb/pg_ctl as the package's `postgres` system user (via
# runuser, util-linux) when they run as root: PostgreSQL refuses root.
# Sourced by scripts/setup.sh (ROOT, POSTWIRE_VENV, log, apt_install, pip_install set).

apt_install postgresql
