#!/usr/bin/env bash
# Checks the container image of the Dockerfile on a machine that can pull no
# image from a registry (only Debian's mirror is reachable) and runs no Docker
# engine: podman (rootful, vfs storage, runc) builds the Dockerfile's runtime
# stage on a debian:bookworm-slim made locally with debootstrap, around a
# postwire binary built on the host (Debian bookworm too, so the same glibc).
#
#   scripts/container-check.sh              # as root
#
# What it checks, as the Dockerfile's header documents:
#   1. the runtime stage builds (apt-get in the image, the postwire user, the
#      binary) and the image keeps its HEALTHCHECK, USER, ENTRYPOINT and CMD;
#   2. `token add app --allow-from @example.com` on a volume prints a secret
#      (and `token list` then shows the token), as the non-root user;
#   3. the relay started with the image's defaults becomes healthy through the
#      image's own HEALTHCHECK (`podman healthcheck run`), runs as uid 10001,
#      and answers GET /healthz on a port published on 127.0.0.1;
#   4. one message sent with the README's Node.js example
#      (tests/e2e/send-example.mjs, skipped when node/npm are missing) is
#      accepted and delivered into /data/pickup on the volume, as uid 10001;
#   5. it stops cleanly on SIGTERM (exit code 0);
#   6. the HEALTHCHECK fails (unhealthy) for a relay not listening on 8025.
# About 2 minutes with an empty cache (debootstrap), 30-80 s after that.
# Not built: the `node` and `build` stages (they need node:20-bookworm-slim and
# rust:1.95-bookworm from a registry, and rustup's downloads); the binary
# comes from the host instead.
#
# The binary: $POSTWIRE_BIN if set, else target/release/postwire; when that is
# missing (or with --rebuild) scripts/build-release.sh --locked builds it.
# Cached under target/container-cache/ (git-ignored): the debootstrap base
# (a tarball, refreshed after 7 days or with POSTWIRE_CC_REFRESH=1) and
# podman's private storage holding the base image. The image, container and
# volume the check makes are removed on exit, on success or failure.
#
# Environment: POSTWIRE_BIN, POSTWIRE_CC_CACHE (cache dir), POSTWIRE_CC_MIRROR
# (Debian mirror for debootstrap, default http://deb.debian.org/debian),
# POSTWIRE_CC_REFRESH=1, POSTWIRE_CC_KEEP=1 (keep the image and volume for a
# look afterwards; the next run removes them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PW_LOG_TAG=container-check
# shellcheck source=scripts/lib/setup-helpers.sh
source "$ROOT/scripts/lib/setup-helpers.sh"

die() { log "FAILED: $*"; exit 1; }

rebuild=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman; rootless needs subuid ranges this check does not set up)"
[ "$(uname -m)" = x86_64 ] || log "note: not x86_64 ($(uname -m)); the checks should still hold"

CACHE="${POSTWIRE_CC_CACHE:-$ROOT/target/container-cache}"
MIRROR="${POSTWIRE_CC_MIRROR:-http://deb.debian.org/debian}"
BASE_TAR="$CACHE/debian-bookworm-minbase.tar"
BASE_IMAGE=localhost/debian:bookworm-slim
IMAGE=localhost/postwire-relay:check
CTR=postwire-check-relay
CTR2=postwire-check-relay-8099
VOL=postwire-check-data
RUNROOT=/run/postwire-container-check
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"   # podman's storage paths must be absolute

# One run at a time (fixed names in a shared private storage).
exec 9>"$CACHE/lock"
flock -n 9 || die "another container-check is running (lock $CACHE/lock)"

started=$SECONDS
step() { log "[$((SECONDS - started))s] $*"; }

# --- tools ------------------------------------------------------------------
step "tools: podman, runc, debootstrap (Debian packages)"
# runc, not crun: Debian's crun 1.8 refuses hosts with cgroups in hybrid mode
# ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2").
apt_install podman runc netavark aardvark-dns iptables debootstrap debian-archive-keyring \
  curl ca-certificates \
  || die "apt-get install failed (see above)"

# Podman settings for this machine, in a file of our own (nothing in /etc is
# changed). Ulimits: podman's defaults for a root container (nofile and nproc
# of about a million) are above this host's hard limits and root here lacks
# CAP_SYS_RESOURCE, so runc fails with "error setting rlimit type 7: operation
# not permitted"; the container gets the host's own hard nofile limit instead.
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nofile" -gt 1048576 ] && nofile=1048576
cat >"$CACHE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$CACHE/containers.conf"
PODMAN=(podman --root "$CACHE/storage" --runroot "$RUNROOT" --storage-driver vfs
  --runtime runc --cgroup-manager cgroupfs --events-backend file)
pm() { "${PODMAN[@]}" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && pm container exists "$CTR" 2>/dev/null; then
    log "relay log (last 30 lines):"
    pm logs --tail 30 "$CTR" 2>&1 | sed 's/^/    /' >&2
  fi
  pm rm -f -v -t 0 "$CTR" "$CTR2" >/dev/null 2>&1
  if [ "${POSTWIRE_CC_KEEP:-0}" != 1 ]; then
    pm volume rm -f "$VOL" >/dev/null 2>&1
    pm rmi -f "$IMAGE" >/dev/null 2>&1
  else
    log "kept $IMAGE and volume $VOL: podman --root $CACHE/storage --runroot $RUNROOT --storage-driver vfs ..."
  fi
  pm image prune -f >/dev/null 2>&1
  rm -rf "$CACHE/ctx" "$CACHE/rootfs.tmp" "$CACHE/base.tar.tmp"
  pw_setup_cleanup
  if [ "$rc" -eq 0 ]; then
    log "OK: container check passed in $((SECONDS - started))s"
  else
    log "container check FAILED (exit $rc) after $((SECONDS - started))s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Leftovers of a run that was killed.
pm rm -f -v -t 0 "$CTR" "$CTR2" >/dev/null 2>&1 || true
pm volume rm -f "$VOL" >/dev/null 2>&1 || true
pm rmi -f "$IMAGE" >/dev/null 2>&1 || true

# --- the binary ---------------------------------------------------------------
BIN="${POSTWIRE_BIN:-$ROOT/target/release/postwire}"
if [ -z "${POSTWIRE_BIN:-}" ] && { [ "$rebuild" = 1 ] || [ ! -x "$BIN" ]; }; then
  step "building the release binary (scripts/build-release.sh --locked)"
  bash scripts/build-release.sh --locked || die "scripts/build-release.sh failed"
fi
[ -x "$BIN" ] || die "no postwire binary at $BIN"
head -c 4 "$BIN" | grep -q 'ELF' || die "$BIN is not an ELF binary"
step "binary: $BIN ($(du -h "$BIN" | cut -f1), built $(date -u -r "$BIN" '+%F %T') UTC)"

# --- the base image: debian:bookworm-slim from debootstrap ----------------------
if [ "${POSTWIRE_CC_REFRESH:-0}" = 1 ] || [ ! -s "$BASE_TAR" ] \
   || [ -n "$(find "$BASE_TAR" -mtime +7 2>/dev/null)" ]; then
  step "debootstrap --variant=minbase bookworm ($MIRROR), about a minute"
  rm -rf "$CACHE/rootfs.tmp"
  debootstrap --variant=minbase bookworm "$CACHE/rootfs.tmp" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # Like the official image: updates and security in deb822 form, no host
  # files, no apt lists.
  rm -f "$CACHE/rootfs.tmp/etc/apt/sources.list" "$CACHE/rootfs.tmp/etc/hostname" \
    "$CACHE/rootfs.tmp/etc/resolv.conf"
  cat >"$CACHE/rootfs.tmp/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$CACHE/rootfs.tmp/var/lib/apt/lists/"* "$CACHE/rootfs.tmp/var/cache/apt/"*.bin
  tar --numeric-owner -C "$CACHE/rootfs.tmp" -cf "$CACHE/base.tar.tmp" . || die "tar of the rootfs failed"
  mv "$CACHE/base.tar.tmp" "$BASE_TAR"
  rm -rf "$CACHE/rootfs.tmp"
  pm rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi
if ! pm image exists "$BASE_IMAGE"; then
  step "podman import $BASE_TAR -> $BASE_IMAGE"
  pm import -q --change 'CMD ["bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null \
    || die "podman import of the base failed"
fi

# --- the image: the Dockerfile's runtime stage, verbatim ------------------------
# Everything from the last FROM on, after a stand-in `build` stage that holds
# the host's binary where the real one puts it (/out/postwire).
step "podman build: the Dockerfile's runtime stage (apt-get update inside, about a minute)"
runtime_stage="$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' Dockerfile)"
printf '%s' "$runtime_stage" | head -1 | grep -q '^FROM debian:bookworm-slim' \
  || die "the Dockerfile's last stage is not FROM debian:bookworm-slim: update this check"
printf '%s' "$runtime_stage" | grep -q '^COPY --from=build /out/postwire ' \
  || die "the runtime stage no longer copies /out/postwire from the build stage: update this check"
rm -rf "$CACHE/ctx" && mkdir -p "$CACHE/ctx"
cp "$BIN" "$CACHE/ctx/postwire"
{
  printf '# Made by scripts/container-check.sh: a stand-in build stage, then the\n'
  printf "# Dockerfile's runtime stage as it is.\n"
  printf 'FROM scratch AS build\nCOPY postwire /out/postwire\n\n'
  printf '%s' "$runtime_stage"
} >"$CACHE/ctx/Containerfile"
# --format docker: the OCI format has no HEALTHCHECK (podman drops it).
pm build --pull=never --format docker --layers=false -t "$IMAGE" \
  -f "$CACHE/ctx/Containerfile" "$CACHE/ctx" >"$CACHE/build.log" 2>&1 \
  || { tail -30 "$CACHE/build.log" >&2; die "podman build failed (log: $CACHE/build.log)"; }

hc="$(pm image inspect --format '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null || true)"
case "$hc" in
  *'/dev/tcp/127.0.0.1/8025'*) ;;
  *) die "the image has no HEALTHCHECK (got: ${hc:-nothing})" ;;
esac
user="$(pm image inspect --format '{{.Config.User}}' "$IMAGE")"
[ "$user" = postwire:postwire ] || die "image USER is '$user', expected postwire:postwire"
ep="$(pm image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")"
[ "$ep" = '["postwire"] ["serve"]' ] || die "image ENTRYPOINT/CMD are $ep"
step "image $IMAGE built ($(pm image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}')): HEALTHCHECK, USER, ENTRYPOINT kept"

# --- token add, as the Dockerfile's header shows --------------------------------
step "token add app --allow-from @example.com (docker run --rm -v DATA:/data IMAGE token add ...)"
pm volume create "$VOL" >/dev/null
secret="$(timeout 60 "${PODMAN[@]}" run --rm --network none --no-healthcheck -v "$VOL:/data" "$IMAGE" token add app --allow-from @example.com)" \
  || die "token add failed in the container"
printf '%s\n' "$secret" | grep -Eq '^pw_[A-Za-z0-9_-]{16,}$' \
  || die "token add printed no secret (stdout: $(printf '%s' "$secret" | head -c 80 | tr -d '\r'))"
listed="$(timeout 60 "${PODMAN[@]}" run --rm --network none --no-healthcheck -v "$VOL:/data" "$IMAGE" token list 2>/dev/null)" \
  || die "token list failed in the container"
printf '%s\n' "$listed" | grep -Eq '^app +allow-from=@example\.com' \
  || die "token list does not show the new token (got: $listed)"
step "token added (secret ${secret:0:6}..., not shown) and listed: $listed"

# --- the relay: HEALTHCHECK, /healthz, user -------------------------------------
step "podman run -d -p 127.0.0.1::8025 -v DATA:/data IMAGE (the image's defaults: serve)"
# No timer runs the health check here: podman sets one up with systemd, which
# is not init on this machine (podman logs "unable to get systemd connection
# to add healthchecks" and goes on). It is run by hand below, as a timer would.
pm run -d --name "$CTR" --health-interval disable -p 127.0.0.1::8025 -v "$VOL:/data" "$IMAGE" \
  >/dev/null 2>"$CACHE/run.err" || { cat "$CACHE/run.err" >&2; die "podman run of the relay failed"; }
hostport="$(pm port "$CTR" 8025/tcp | head -1)"
[ -n "$hostport" ] || die "no host port published for 8025"

healthy=0
for _ in $(seq 1 30); do
  state="$(pm inspect --format '{{.State.Status}}' "$CTR" 2>/dev/null || echo gone)"
  [ "$state" = running ] || die "the relay container is $state, not running"
  if pm healthcheck run "$CTR" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 1
done
[ "$healthy" = 1 ] || {
  pm healthcheck run "$CTR" || true
  die "the image's HEALTHCHECK did not pass within 30 s"
}
status="$(pm inspect --format '{{.State.Health.Status}}' "$CTR" 2>/dev/null || echo '?')"
[ "$status" = healthy ] || die "health status is '$status' after a passing check"
step "HEALTHCHECK passed (podman healthcheck run): status $status"

body="$(curl -fsS --max-time 5 "http://$hostport/healthz")" || die "GET http://$hostport/healthz failed"
printf '%s' "$body" | grep -q '"status":"ok"' || die "/healthz answered $body"
step "GET http://$hostport/healthz (published port) -> $body"

# shellcheck disable=SC2016  # expanded by the container's sh
ids="$(pm exec "$CTR" sh -c 'echo "$(id -u):$(id -g)"')" || die "podman exec failed"
[ "$ids" = 10001:10001 ] || die "the relay runs as uid:gid $ids, not 10001:10001"
pm exec "$CTR" test -f /data/tokens.toml || die "/data/tokens.toml missing in the running relay's volume"
step "relay runs as uid 10001 (postwire), tokens.toml on the volume"

# --- one message through the relay: the README's Node.js example --------------
# tests/e2e/send-example.mjs as it is (its import of the client made absolute),
# with its `ws` from tests/e2e's lockfile installed under the cache; with no
# SMTP upstream the relay delivers into /data/pickup on the volume.
if command -v node >/dev/null && command -v npm >/dev/null; then
  step "send one message: POSTWIRE_TOKEN=... node tests/e2e/send-example.mjs ws://$hostport/v1/submit"
  E2E="$CACHE/e2e"
  mkdir -p "$E2E"
  if ! cmp -s tests/e2e/package-lock.json "$E2E/package-lock.json" || [ ! -f "$E2E/node_modules/ws/package.json" ]; then
    cp tests/e2e/package.json tests/e2e/package-lock.json "$E2E/"
    (cd "$E2E" && npm ci --no-audit --no-fund --silent) || die "npm ci (ws) in $E2E failed"
  fi
  sed "s|'\.\./\.\./wasm/js/relay-client\.js'|'$ROOT/wasm/js/relay-client.js'|" \
    tests/e2e/send-example.mjs >"$E2E/send-example.mjs"
  grep -q "'$ROOT/wasm/js/relay-client.js'" "$E2E/send-example.mjs" \
    || die "tests/e2e/send-example.mjs no longer imports ../../wasm/js/relay-client.js: update this check"
  sent="$(POSTWIRE_TOKEN="$secret" timeout 60 node "$E2E/send-example.mjs" "ws://$hostport/v1/submit" 2>&1)" \
    || die "send-example.mjs failed: $sent"
  printf '%s\n' "$sent" | sed 's/^/    /' >&2
  printf '%s\n' "$sent" | grep -q '^accepted ' || die "the relay did not accept the message"
  printf '%s\n' "$sent" | grep -q '^bob@example.org: delivered' || die "the message was not delivered into the pickup directory"
  picked="$(pm exec "$CTR" sh -c 'grep -l "^Subject: Hello through the relay" /data/pickup/* 2>/dev/null | head -1')" || true
  [ -n "$picked" ] || die "no message with the example's Subject in /data/pickup"
  owner="$(pm exec "$CTR" stat -c %u "$picked")"
  [ "$owner" = 10001 ] || die "$picked is owned by uid $owner, not 10001"
  step "delivered into $picked on the volume (owner uid 10001)"
else
  step "skipped sending a message: node/npm missing (scripts/setup.sh installs them)"
fi

# --- stop ---------------------------------------------------------------------
step "podman stop (SIGTERM, the image's STOPSIGNAL)"
pm stop -t 40 "$CTR" >/dev/null 2>"$CACHE/stop.err" || { cat "$CACHE/stop.err" >&2; die "podman stop failed"; }
code="$(pm inspect --format '{{.State.ExitCode}}' "$CTR")"
[ "$code" = 0 ] || die "the relay exited with $code on SIGTERM"
step "relay stopped on SIGTERM, exit code 0"

# --- the HEALTHCHECK can fail -------------------------------------------------
# A relay that is up but not on 8025 (POSTWIRE_LISTEN moved) must be reported
# unhealthy: the check proves something only if it can fail.
step "HEALTHCHECK against a relay listening on 8099 instead: must fail"
pm run -d --name "$CTR2" --health-interval disable --network none \
  -e POSTWIRE_LISTEN=127.0.0.1:8099 "$IMAGE" >/dev/null 2>"$CACHE/run.err" \
  || { cat "$CACHE/run.err" >&2; die "podman run of the second relay failed"; }
up=0
for _ in $(seq 1 30); do
  if pm exec "$CTR2" /bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/8099' >/dev/null 2>&1; then up=1; break; fi
  sleep 1
done
[ "$up" = 1 ] || die "the second relay never listened on 127.0.0.1:8099"
if pm healthcheck run "$CTR2" >/dev/null 2>&1; then
  die "the HEALTHCHECK passed although nothing listens on 8025"
fi
status="$(pm inspect --format '{{.State.Health.Status}}' "$CTR2" 2>/dev/null || echo '?')"
step "HEALTHCHECK failed as it should (health status: $status)"
