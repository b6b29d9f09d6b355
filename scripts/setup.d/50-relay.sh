# The relay (relay/src/server, relay/src/spool, wasm/js/relay-client.js): what
# its end-to-end tests and benchmark need.
# - Node's `ws` package in tests/e2e/node_modules (Node 20 has no global WebSocket).
# - openssl, to make the test CA and server certificate of the STARTTLS test server.
# - aiosmtpd (installed by 20-smtp.sh) runs relay/tests/smtp_support/smtpd.py.
# - Python's `websockets`: the independent client of tests/py/test_relay_protocol.py.
# - Python's `dkimpy` (+ `pynacl` for ed25519-sha256): the independent DKIM
#   verifier of tests/py/test_dkim.py; openssl also makes RSA keys for
#   `postwire dkim keygen --algorithm rsa`.
# Sourced by scripts/setup.sh (ROOT, POSTWIRE_VENV, log, apt_install, pip_install set).

apt_install openssl
pip_install "aiosmtpd>=1.4"
pip_install "websockets>=13"
pip_install "dkimpy>=1.1"
pip_install "pynacl>=1.5"

if [ ! -f "$ROOT/tests/e2e/node_modules/ws/package.json" ]; then
  log "npm ci (tests/e2e: ws)"
  (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --silent)
  setup_record npm tests/e2e/node_modules
fi
