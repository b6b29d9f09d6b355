"""Set-up from nothing, proven without a new machine (issue 12).

scripts/setup.sh, and the build part of scripts/run.sh (scripts/build-release.sh),
run here on a copy of scripts/ with a PATH of recording stand-ins for every
installer they call: dpkg-query, apt-get, dpkg-deb, dpkg-source, python3's venv,
the venv's pip, npm, node, cargo, rustup, and the tools that installs bring
(wasm-opt, wasm-bindgen). The stand-ins form one small consistent fake machine:
dpkg-query reports a package installed only after the apt-get stand-in
installed it, the venv's python finds a distribution only after pip installed
it, and so on. So on the first run every package is missing and every install
branch of every setup.d step executes, under the scripts' own
`set -euo pipefail`; the test checks what would have been installed, that
`apt-get update` ran at most once per set-up across all child scripts, and that
a second run installs nothing.

Nothing real is installed or built: the stand-ins only write files inside the
test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The stand-ins. Each appends its command line to $FAKE/calls.log.
STUBS = {
    "dpkg-query": r"""
# dpkg-query -W -f='${Status}' PKG: installed only if apt-get (stand-in) installed it
pkg="${@: -1}"
if grep -qx "$pkg" "$FAKE/debs" 2>/dev/null; then printf 'install ok installed'; exit 0; fi
echo "dpkg-query: no packages found matching $pkg" >&2
exit 1
""",
    "apt-get": r"""
# apt-get [-o X]... (update | install PKG... | download PKG | source --download-only PKG)
args=(); private=0
while [ $# -gt 0 ]; do
  case "$1" in
    -o) case "$2" in Dir::State::Lists=*) private=1 ;; esac; shift 2 ;;
    -*) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
verb="${args[0]}"
case "$verb" in
  update) if [ "$private" = 1 ]; then echo update-private >>"$FAKE/apt.log"; else echo update >>"$FAKE/apt.log"; fi ;;
  install)
    for p in "${args[@]:1}"; do
      echo "$p" >>"$FAKE/debs"
      case "$p" in
        binaryen) printf '#!/usr/bin/env bash\necho "wasm-opt $*" >>"$FAKE/calls.log"\nif [ "$1" = --version ]; then echo "wasm-opt version 108"; exit 0; fi\nin=""; out=""\nwhile [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) in="$1"; shift;; esac; done\ncp "$in" "$out"\n' >"$FAKE/bin/wasm-opt"; chmod +x "$FAKE/bin/wasm-opt" ;;
        lld-22) mkdir -p "$(dirname "$POSTWIRE_WASM_LD")"; printf '#!/bin/sh\n' >"$POSTWIRE_WASM_LD"; chmod +x "$POSTWIRE_WASM_LD" ;;
        rust-web-src) mkdir -p "$POSTWIRE_DEBIAN_RUST_SRC" ;;
        cargo-web) ln -sf "$FAKE/bin/cargo" "$POSTWIRE_DEBIAN_CARGO" ;;
      esac
    done ;;
  download) grep -qx update "$FAKE/apt.log" 2>/dev/null || { echo "E: no package lists (apt-get update first)" >&2; exit 100; }
            : >"${args[1]}_3.7.11_amd64.deb" ;;
  source) : >"${args[-1]}_2.0-1.dsc" ;;
  *) echo "apt-get stand-in: unexpected verb '$verb'" >&2; exit 100 ;;
esac
""",
    "dpkg-deb": r"""
# dpkg-deb -x DEB DIR: the postfix .deb holds smtp-sink
mkdir -p "$3/usr/sbin"
printf '#!/bin/sh\necho "usage: smtp-sink [options] [inet:][host]:port backlog" >&2\nexit 1\n' >"$3/usr/sbin/smtp-sink"
chmod +x "$3/usr/sbin/smtp-sink"
""",
    "dpkg-source": r"""
# dpkg-source --no-check -x DSC DIR
mkdir -p "${@: -1}/test-data"
""",
    "python3": r"""
# python3 -m venv DIR works once python3-venv is installed; anything else runs the real python
if [ "${1:-}" = -m ] && [ "${2:-}" = venv ]; then
  grep -qx python3-venv "$FAKE/debs" 2>/dev/null || { echo "The virtual environment was not created successfully because ensurepip is not available." >&2; exit 1; }
  dir="${@: -1}"; mkdir -p "$dir/bin"
  cp "$FAKE/venv-python" "$dir/bin/python"; cp "$FAKE/venv-pip" "$dir/bin/pip"
  exit 0
fi
exec "$REAL_PYTHON" "$@"
""",
    "npm": r"""
# npm ci: the packages' usual layout in the current folder
[ "${1:-}" = ci ] || { echo "npm stand-in: unexpected '$*'" >&2; exit 1; }
mkdir -p node_modules/.bin node_modules/playwright-core node_modules/ws node_modules/postwire
: >node_modules/.package-lock.json; echo '{}' >node_modules/ws/package.json
printf '#!/bin/sh\necho "tsc $*" >>"$FAKE/calls.log"\n' >node_modules/.bin/tsc
printf '#!/bin/sh\necho "vite $*" >>"$FAKE/calls.log"\nout=dist\nwhile [ $# -gt 0 ]; do [ "$1" = --outDir ] && out="$2"; shift; done\nmkdir -p "$out"; echo "<!doctype html>" >"$out/index.html"\n' >node_modules/.bin/vite
chmod +x node_modules/.bin/*
""",
    "node": r"""
exit 0
""",
    "rustup": r"""
case "$*" in
  "target list --installed") [ -e "$FAKE/rustup-wasm32" ] && echo wasm32-unknown-unknown; exit 0 ;;
  "target add wasm32-unknown-unknown") : >"$FAKE/rustup-wasm32" ;;
  *) echo "rustup stand-in: unexpected '$*'" >&2; exit 1 ;;
esac
""",
    "cargo": r"""
case "${1:-}" in
  install)
    root=""; ver=""; crate=""
    shift
    while [ $# -gt 0 ]; do
      case "$1" in --root) root="$2"; shift 2 ;; --version) ver="$2"; shift 2 ;; -*) shift ;; *) crate="$1"; shift ;; esac
    done
    case "$crate" in
      wasm-bindgen-cli)
        mkdir -p "$root/bin"
        printf '#!/usr/bin/env bash\necho "wasm-bindgen $*" >>"$FAKE/calls.log"\nif [ "$1" = --version ]; then echo "wasm-bindgen %s"; exit 0; fi\nout=""; name=""; in="${@: -1}"\nwhile [ $# -gt 0 ]; do case "$1" in --out-dir) out="$2"; shift 2;; --out-name) name="$2"; shift 2;; *) shift;; esac; done\nmkdir -p "$out"; cp "$in" "$out/${name}_bg.wasm"\n' "$ver" >"$root/bin/wasm-bindgen"
        cp "$root/bin/wasm-bindgen" "$root/bin/wasm-bindgen-test-runner"
        chmod +x "$root/bin/"* ;;
      cargo-fuzz) : >"$FAKE/cargo-fuzz" ;;
      cargo-deny)
        mkdir -p "$root/bin"
        printf '#!/bin/sh\necho "cargo-deny $*" >>"$FAKE/calls.log"\n[ "$1" = --version ] && echo "cargo-deny %s"\nexit 0\n' "$ver" >"$root/bin/cargo-deny"
        chmod +x "$root/bin/cargo-deny" ;;
      *) echo "cargo stand-in: unexpected crate '$crate'" >&2; exit 1 ;;
    esac ;;
  fuzz) [ -e "$FAKE/cargo-fuzz" ] ;;
  build)
    target=""; profile=debug
    while [ $# -gt 0 ]; do
      case "$1" in --target) target="$2"; shift 2 ;; --profile) profile="$2"; shift 2 ;; --release) profile=release; shift ;; *) shift ;; esac
    done
    if [ "$target" = wasm32-unknown-unknown ]; then
      d="${CARGO_TARGET_DIR:?}/$target/$profile"; mkdir -p "$d"; printf '\0asm\1\0\0\0' >"$d/postwire_wasm.wasm"
    else
      mkdir -p target/$profile; printf '#!/bin/sh\n' >target/$profile/postwire; chmod +x target/$profile/postwire
    fi ;;
  *) echo "cargo stand-in: unexpected '$*'" >&2; exit 1 ;;
esac
""",
    "sudo": r"""
exec "$@"
""",
}

# The tools of a minimal Debian that the scripts use (coreutils, grep, sed, gawk...).
BASE_TOOLS = """bash sh env cat cp mv rm mkdir rmdir ln ls head tail grep sed awk gawk mawk find du touch stat
gzip wc mktemp dirname basename timeout id printf tr cut sort uniq chmod readlink realpath true false
sleep date xargs tee test expr seq""".split()

VENV_PYTHON = r"""#!/usr/bin/env bash
# the venv's python: `python - SPEC` (the pip_install check) finds only what pip installed
echo "venv-python $*" >>"$FAKE/calls.log"
[ "${1:-}" = - ] || exit 1
cat >/dev/null
name="$(printf '%s' "$2" | sed 's/[<>=!~\[ ;].*//')"
grep -qx "$name" "$FAKE/pips" 2>/dev/null
"""

VENV_PIP = r"""#!/usr/bin/env bash
# pip install [-q] SPEC...
echo "pip $*" >>"$FAKE/calls.log"
[ "${1:-}" = install ] || exit 1
shift
for s in "$@"; do case "$s" in -*) ;; *) printf '%s\n' "$s" | sed 's/[<>=!~\[ ;].*//' >>"$FAKE/pips" ;; esac; done
"""


def _write_exe(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + f'echo "{path.name} $*" >>"$FAKE/calls.log"\n' + body)
    path.chmod(0o755)


class FakeMachine:
    """A temporary copy of the scripts and a PATH of stand-ins."""

    def __init__(self, tmp: Path, with_rustup: bool = True) -> None:
        self.tmp = tmp
        self.root = tmp / "repo"
        self.fake = tmp / "fake"
        (self.fake / "bin").mkdir(parents=True)
        shutil.copytree(REPO / "scripts", self.root / "scripts")
        shutil.copy(REPO / "Cargo.lock", self.root / "Cargo.lock")
        for lock in ("wasm/package-lock.json", "web/package-lock.json", "tests/e2e/package-lock.json"):
            (self.root / lock).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / lock, self.root / lock)
        (self.root / "relay/src").mkdir(parents=True)
        (self.root / "relay/src/web_assets.rs").write_text("")
        # The base system: only what any Debian has, linked one by one, so
        # that nothing the real machine installed (wasm-opt, chromium...) is seen.
        (self.fake / "sys").mkdir()
        for tool in BASE_TOOLS:
            real = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
            if real:
                (self.fake / "sys" / tool).symlink_to(real)
        for name, body in STUBS.items():
            if name == "rustup" and not with_rustup:
                continue
            _write_exe(self.fake / "bin" / name, body)
        (self.fake / "venv-python").write_text(VENV_PYTHON)
        (self.fake / "venv-pip").write_text(VENV_PIP)
        for f in ("venv-python", "venv-pip"):
            (self.fake / f).chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            # stand-ins first; the system's own tools (bash, grep, awk, mktemp...) after.
            # No ~/.cargo/bin: the real cargo and rustup stay out of reach.
            "PATH": f"{self.fake / 'bin'}:{self.fake / 'sys'}",
            "HOME": str(self.tmp / "home"),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "FAKE": str(self.fake),
            "REAL_PYTHON": sys.executable,
            "POSTWIRE_WASM_LD": str(self.fake / "llvm-22/bin/wasm-ld"),
            "POSTWIRE_DEBIAN_RUST_SRC": str(self.fake / "rustlib/src/rust/library"),
            "POSTWIRE_DEBIAN_CARGO": str(self.fake / "debian-cargo"),
            "POSTWIRE_DEBIAN_RUSTC": str(self.fake / "debian-rustc"),
        }
        env.update(extra)
        return env

    def run(self, script: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        (self.tmp / "home").mkdir(exist_ok=True)
        return subprocess.run(
            [str(self.fake / "sys/bash"), str(self.root / script), *args],
            env=self.env(**extra),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    def lines(self, name: str) -> list[str]:
        p = self.fake / name
        return p.read_text().splitlines() if p.exists() else []

    def calls(self, prefix: str) -> list[str]:
        return [c for c in self.lines("calls.log") if c.startswith(prefix + " ")]

    def reset_log(self) -> None:
        for name in ("calls.log", "apt.log"):
            (self.fake / name).unlink(missing_ok=True)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# What setup.d installs on a machine that has none of it (each setup.d step names its own).
EXPECTED_DEBS = {
    "python3-venv", "chromium", "binaryen", "time", "libicu72", "libssl3", "libsasl2-2",
    "libdb5.3", "libnsl2", "ca-certificates", "tnef", "ytnef-tools", "libconvert-tnef-perl",
    "dpkg-dev", "xz-utils", "tzdata", "openssl", "fonts-dejavu-core", "postgresql",
}
EXPECTED_PIPS = {"pytest", "aiosmtpd", "tnefparse", "icalendar", "python-dateutil", "websockets"}


def test_setup_from_nothing_installs_everything_once(tmp_path: Path) -> None:
    m = FakeMachine(tmp_path)
    proc = m.run("scripts/setup.sh")
    _ok(proc)

    debs = set(m.lines("debs"))
    assert EXPECTED_DEBS <= debs, f"not installed: {EXPECTED_DEBS - debs}"
    pips = set(m.lines("pips"))
    assert EXPECTED_PIPS <= pips, f"not installed: {EXPECTED_PIPS - pips}"
    # one apt-get update for the whole set-up, across setup.sh and its child
    # scripts (build-wasm.sh -> wasm-toolchain.sh installs binaryen)
    assert m.lines("apt.log").count("update") == 1, m.lines("apt.log")
    assert "update-private" in m.lines("apt.log")  # libytnef's deb-src list, kept apart
    # the wasm toolchain and the npm packages
    assert (m.fake / "rustup-wasm32").exists()
    assert "rustup target wasm32-unknown-unknown" in proc.stderr
    assert any("wasm-bindgen-cli" in c for c in m.calls("cargo"))
    assert any("cargo-fuzz" in c for c in m.calls("cargo"))
    deny = [c for c in m.calls("cargo") if c.startswith("cargo install") and "cargo-deny" in c]
    assert deny and "--locked" in deny[0] and f"--root {m.root / '.tools'}" in deny[0], deny
    assert (m.root / ".tools/bin/cargo-deny").is_file()
    npm_dirs = {Path(p).name for p in (m.root / "wasm", m.root / "web", m.root / "tests/e2e") if (p / "node_modules").is_dir()}
    assert npm_dirs == {"wasm", "web", "e2e"}
    assert (m.root / "wasm/pkg/postwire_wasm_bg.wasm").is_file()
    assert (m.root / ".tools/postfix/usr/sbin/smtp-sink").is_file()
    assert (m.root / "target/tnef-testdata/test-data").is_dir()
    # it says what it installed, and cleans up its shared state
    assert "installed by this set-up:" in proc.stderr
    assert "apt binaryen" in proc.stderr and "cargo wasm-bindgen-cli" in proc.stderr
    assert "cargo cargo-deny" in proc.stderr
    assert "apt postgresql" in proc.stderr  # 75-postgres.sh: the spool tests' PostgreSQL
    assert not list(tmp_path.glob("postwire-setup.*")), "set-up state left behind"

    # A second set-up on the same machine installs nothing.
    m.reset_log()
    proc = m.run("scripts/setup.sh")
    _ok(proc)
    assert m.lines("apt.log") == []
    assert m.calls("pip") == [] and m.calls("npm") == [] and m.calls("rustup target add") == []
    assert not any(c.startswith("cargo install") for c in m.lines("calls.log"))
    assert "everything was already installed" in proc.stderr


def test_setup_without_rustup_takes_debians_wasm_compiler(tmp_path: Path) -> None:
    m = FakeMachine(tmp_path, with_rustup=False)
    _ok(m.run("scripts/setup.sh"))
    debs = set(m.lines("debs"))
    assert {"rustc-web", "cargo-web", "rust-web-src", "lld-22"} <= debs
    assert m.lines("apt.log").count("update") == 1
    assert (m.root / "wasm/pkg/postwire_wasm_bg.wasm").is_file()
    assert (m.root / "target-wasm/debian").is_dir()


def test_run_builds_on_a_machine_where_setup_never_ran(tmp_path: Path) -> None:
    """scripts/run.sh's build part (scripts/build-release.sh) alone, from nothing."""
    m = FakeMachine(tmp_path)
    proc = m.run("scripts/build-release.sh")
    _ok(proc)
    assert "binaryen" in m.lines("debs")
    assert m.lines("apt.log").count("update") == 1
    assert (m.root / "web/node_modules/.bin/vite").exists()
    assert (m.root / "web/dist/index.html").is_file(), "the page must be built before the binary"
    builds = [c for c in m.calls("cargo") if c.startswith("cargo build") and "--release" in c]
    assert builds, m.lines("calls.log")
    assert (m.root / "target/release/postwire").exists()
    # the page is built before the binary embeds it
    calls = m.lines("calls.log")
    vite = next(i for i, c in enumerate(calls) if c.startswith("vite "))
    release = next(i for i, c in enumerate(calls) if c.startswith("cargo build") and "--release" in c)
    assert vite < release


def test_helpers_work_sourced_in_a_child_and_standalone(tmp_path: Path) -> None:
    """apt_install behaves the same in a script of its own, under set -u, with
    and without a parent set-up; and the parent's one update covers the child."""
    m = FakeMachine(tmp_path)
    child = m.root / "child.sh"
    child.write_text(
        "set -euo pipefail\n"
        'source "$(dirname "$0")/scripts/lib/setup-helpers.sh"\n'
        'apt_install "$1"\n'
    )
    parent = m.root / "parent.sh"
    parent.write_text(
        "set -euo pipefail\n"
        'source "$(dirname "$0")/scripts/lib/setup-helpers.sh"\n'
        "apt_install pkg-a\n"
        'bash "$(dirname "$0")/child.sh" pkg-b\n'
        'bash -c \'source "$0"; set -u; apt_install pkg-c\' "$(dirname "$0")/scripts/lib/setup-helpers.sh"\n'
    )
    _ok(m.run("parent.sh"))
    assert m.lines("debs") == ["pkg-a", "pkg-b", "pkg-c"]
    assert m.lines("apt.log") == ["update"]
    # standalone: the child runs its own update
    m.reset_log()
    _ok(m.run("child.sh", "pkg-d"))
    assert m.lines("apt.log") == ["update"]
    assert "pkg-d" in m.lines("debs")


@pytest.mark.parametrize("script", ["scripts/setup.sh", "scripts/build-release.sh"])
def test_scripts_run_under_strict_bash(script: str) -> None:
    text = (REPO / script).read_text()
    assert "set -euo pipefail" in text
    assert "export -f" not in text, "helpers are sourced by each script, never inherited"
