# Setup step of the composer page (web/) and its browser tests, sourced by
# scripts/setup.sh (ROOT and apt_install are set there):
# - Debian's chromium for the real-browser tests (playwright-core drives it;
#   no browser is ever downloaded);
# - the npm dependencies of web/ (vite, typescript, playwright-core), which
#   also serve the tests in tests/js/web*.test.mjs.
apt_install chromium fonts-dejavu-core
if [ ! -x "$ROOT/web/node_modules/.bin/vite" ] || [ ! -d "$ROOT/web/node_modules/playwright-core" ] \
  || [ "$ROOT/web/package-lock.json" -nt "$ROOT/web/node_modules/.package-lock.json" ]; then
  log "npm ci in web/"
  (cd "$ROOT/web" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  setup_record npm web/node_modules
fi
# the browser tests' independent judges (tests/js/web_judge.py) of the
# iCalendar part and of winmail.dat (same versions as 40-ical.sh / 30-tnef.sh)
pip_install "icalendar>=6,<7" tnefparse
