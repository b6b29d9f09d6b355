# SMTP delivery (relay/src/smtp): what its tests and benchmark need.
# - aiosmtpd in the venv: the STARTTLS + AUTH test server of relay/tests/smtp*.rs
#   (relay/tests/smtp_support/smtpd.py).
# - Postfix's smtp-sink and smtp-source, unpacked from Debian's postfix .deb into
#   $ROOT/.tools/postfix without installing the package or starting any daemon:
#   the sink and the reference load generator of bench/smtp/run.sh.
# Sourced by scripts/setup.sh (ROOT, POSTWIRE_VENV, log, apt_install, pip_install set).

pip_install "aiosmtpd>=1.4"
# /usr/bin/time measures forward_file's peak RSS in the benchmark
apt_install time

POSTFIX_DIR="$ROOT/.tools/postfix"
if [ ! -x "$POSTFIX_DIR/usr/sbin/smtp-sink" ]; then
  log "unpacking Debian's postfix .deb into $POSTFIX_DIR (smtp-sink, smtp-source)"
  # the .deb's shared libraries need these at run time
  apt_install libicu72 libssl3 libsasl2-2 libdb5.3 libnsl2 ca-certificates
  tmp="$(mktemp -d)"
  apt_update_once
  (cd "$tmp" && apt-get download postfix >/dev/null)
  mkdir -p "$POSTFIX_DIR"
  dpkg-deb -x "$tmp"/postfix_*.deb "$POSTFIX_DIR"
  rm -rf "$tmp"
  setup_record deb "postfix (unpacked into $POSTFIX_DIR)"
  out="$(LD_LIBRARY_PATH="$POSTFIX_DIR/usr/lib/postfix" "$POSTFIX_DIR/usr/sbin/smtp-sink" 2>&1 || true)"
  case "$out" in
    *usage*) ;;
    *) log "smtp-sink from $POSTFIX_DIR does not run: $out"; return 1 ;;
  esac
fi
