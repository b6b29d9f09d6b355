"""`postwire tnef decode` on damaged winmail.dat files (issue 13): lenient by
default (what can be read is printed, each fault is a warning on stderr and
under `warnings`, exit 0), `--strict` refuses them (exit non-zero). Needs
POSTWIRE_BIN (the debug `postwire`); fails, not skips, without it."""

import base64
import json
import os
import struct
import subprocess
from pathlib import Path

BIN = os.environ.get("POSTWIRE_BIN") or str(Path(__file__).resolve().parents[2] / "target/debug/postwire")
FILES = [("one.bin", b"first file"), ("two.bin", b"second file, the damaged one"), ("three.bin", b"third file")]
SPEC = {
    "from": "ana@example.com",
    "to": ["bob@example.com"],
    "subject": "three files",
    "date": "2026-12-01T09:00:00Z",
    "text": "see the files\n",
    "attachments": [
        {"filename": n, "contentType": "application/octet-stream", "content": base64.b64encode(d).decode()} for n, d in FILES
    ],
    "tnef": True,
}
ATT_ATTACH_DATA = 0x0006800F


def postwire(*args, check=True):
    assert Path(BIN).is_file(), f"postwire binary missing at {BIN}: cargo build -p postwire-relay"
    proc = subprocess.run([BIN, *args], capture_output=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def winmail(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    out = tmp_path / "winmail.dat"
    postwire("tnef", "encode", str(spec), "-o", str(out), "--seed", "5")
    return out.read_bytes()


def attributes(data):
    """(header offset, id, length) of every attribute."""
    out, at = [], 6
    while at + 11 <= len(data):
        _, attr_id, length = struct.unpack_from("<BII", data, at)
        out.append((at, attr_id, length))
        at += 11 + length
    return out


def decode(tmp_path, data, *flags):
    path = tmp_path / "damaged.dat"
    path.write_bytes(data)
    return postwire("tnef", "decode", str(path), *flags, check=False)


def names_and_sizes(doc):
    return [(a.get("longFilename") or a.get("title"), a.get("size")) for a in doc["attachments"]]


SIZES = [(n, len(d)) for n, d in FILES]


def test_stray_bytes_after_the_last_attribute_are_ignored_with_a_warning(tmp_path):
    good = winmail(tmp_path)
    proc = decode(tmp_path, good + b"\r\n\0")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert names_and_sizes(doc) == SIZES
    assert len(doc["warnings"]) == 1 and f"(offset {len(good)})" in doc["warnings"][0]
    assert b"trailing bytes" in proc.stderr
    strict = decode(tmp_path, good + b"\r\n\0", "--strict")
    assert strict.returncode != 0 and b"TNEF" in strict.stderr


def test_a_damaged_attribute_in_the_middle_keeps_the_files_before_and_after(tmp_path):
    data = bytearray(winmail(tmp_path))
    at, _, _ = [a for a in attributes(data) if a[1] == ATT_ATTACH_DATA][1]
    struct.pack_into("<I", data, at + 5, 0x7FFFFFF0)
    proc = decode(tmp_path, bytes(data))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    got = names_and_sizes(doc)
    assert got[0] == SIZES[0] and got[2] == SIZES[2], got
    assert any(f"bytes {at}.." in w for w in doc["warnings"]), doc["warnings"]
    assert decode(tmp_path, bytes(data), "--strict").returncode != 0


def test_a_sound_file_has_no_warnings_field(tmp_path):
    proc = decode(tmp_path, winmail(tmp_path))
    assert proc.returncode == 0 and "warnings" not in json.loads(proc.stdout) and proc.stderr == b""
