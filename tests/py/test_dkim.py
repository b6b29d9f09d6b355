"""DKIM signatures of `postwire send --dkim-dir` and of the relay (`postwire
serve` delivering into its pickup directory), judged by an independent
verifier: PyPI's dkimpy (with pynacl for ed25519-sha256), whose DNS lookups
are answered by a stand-in serving the records `postwire dkim keygen` printed.
Messages: attachments, folded and non-ASCII headers, a TNEF part, a calendar
part, and a signed message forwarded byte for byte. Needs POSTWIRE_BIN (the
debug `postwire`), dkimpy, pynacl, websockets and openssl, all installed by
scripts/setup.sh; a missing one fails the test."""

import asyncio
import base64
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import dkim
import nacl.signing  # noqa: F401  (dkimpy needs it for ed25519; fail loudly here if missing)
import websockets

BIN = os.environ.get("POSTWIRE_BIN") or str(Path(__file__).resolve().parents[2] / "target/debug/postwire")
DOMAIN = "example.com"
SELECTORS = {"rsa2026": "rsa", "ed2026": "ed25519"}


def postwire(*args, **kw):
    assert Path(BIN).is_file(), f"postwire binary missing at {BIN}: cargo build -p postwire-relay"
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True, **kw)


def keygen(keys, selectors=SELECTORS, domain=DOMAIN):
    """Generates the keys; returns the DNS stand-in's records."""
    records = {}
    for selector, algorithm in selectors.items():
        out = postwire("dkim", "keygen", domain, "--selector", selector, "--algorithm", algorithm, "--dkim-dir", str(keys)).stdout
        name, _, rest = out.partition(" IN TXT ")
        assert name == f"{selector}._domainkey.{domain}.", out
        records[name] = "".join(re.findall(r'"([^"]*)"', rest)).encode()
        key = keys / domain / f"{selector}.key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert key.read_text().split("\n")[1][:20] not in out, "the key is never printed"
    return records


def verify_all(message, records):
    """Verifies every DKIM-Signature of `message`; returns the selectors."""
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return records.get(name)

    d = dkim.DKIM(message)
    count = sum(1 for line in message.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
    assert count >= 1, "not signed"
    selectors = []
    for i in range(count):
        assert d.verify(idx=i, dnsfunc=dnsfunc), f"signature {i} does not verify"
        selectors.append(d.selector.decode())
    return selectors


PDF = bytes((i * 31 + 7) % 256 for i in range(40_000))
SPEC_ATTACHMENTS = {
    "from": "Ana Núñez <ana@example.com>",
    "to": ["Bob <bob@example.org>", "\"Carl, Jr.\" <carl@example.org>"],
    "cc": ["dora@example.net"],
    "subject": "Informe trimestral — resultados, previsión y próximos pasos del equipo de ventas en América Latina",
    "date": "2026-12-01T09:00:00Z",
    "messageId": "<dkim-1@example.com>",
    "text": "Hola Bob,\n\nadjunto el informe.   Con espacios  \n\n\n",
    "html": "<p>Hola <b>Bob</b></p>",
    "attachments": [
        {"filename": "informe año.pdf", "contentType": "application/pdf", "content": base64.b64encode(PDF).decode()},
        {"filename": "notas.txt", "contentType": "text/plain", "content": base64.b64encode("línea\n".encode()).decode()},
    ],
    "headers": [["X-Campaign", "7"]],
}
SPEC_TNEF = {**SPEC_ATTACHMENTS, "messageId": "<dkim-2@example.com>", "subject": "TNEF", "tnef": True}
SPEC_CALENDAR = {
    "from": "Ana <ana@example.com>",
    "to": ["bob@example.org"],
    "subject": "Reunión",
    "date": "2026-12-01T09:00:00Z",
    "messageId": "<dkim-3@example.com>",
    "text": "Invitación",
    "calendar": {
        "method": "REQUEST", "uid": "dkim-3@example.com", "sequence": 0,
        "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "timeZone": "Europe/Madrid",
        "summary": "Reunión", "location": "Sala 1", "organizer": "Ana <ana@example.com>",
        "attendees": [{"email": "bob@example.org", "name": "Bob", "role": "REQ-PARTICIPANT", "partstat": "NEEDS-ACTION", "rsvp": True}],
    },
}
# Hand-written: folded headers, raw UTF-8 in a header, odd spacing, several To fields' worth of folding.
RAW_EML = (
    "From: =?utf-8?q?Ana_N=C3=BA=C3=B1ez?= <ana@example.com>\r\n"
    "To: bob@example.org,\r\n"
    "\tcarl@example.org,  \r\n"
    "  dora@example.net\r\n"
    "Subject:   Grüße   aus\r\n   Köln  \r\n"
    "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
    "Message-ID: <dkim-4@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Línea con  espacios \t \r\n"
    "\r\n"
    "fin\r\n"
    "\r\n\r\n"
).encode()


def send_signed(tmp, records_keys, files):
    out = tmp / "pickup"
    postwire("send", *map(str, files), "--pickup-dir", str(out), "--dkim-dir", str(records_keys))
    return sorted(out.glob("*.eml"))


def test_dkimpy_verifies_what_send_signs_rsa_and_ed25519(tmp_path):
    keys = tmp_path / "keys"
    records = keygen(keys)
    files = []
    for name, spec in [("a.json", SPEC_ATTACHMENTS), ("b.json", SPEC_TNEF), ("c.json", SPEC_CALENDAR)]:
        p = tmp_path / name
        p.write_text(json.dumps(spec), encoding="utf-8")
        files.append(p)
    raw = tmp_path / "d.eml"
    raw.write_bytes(RAW_EML)
    files.append(raw)
    sent = send_signed(tmp_path, keys, files)
    assert len(sent) == 4
    kinds = set()
    for path in sent:
        message = path.read_bytes()
        assert sorted(verify_all(message, records)) == ["ed2026", "rsa2026"], path
        # The signed message is the original with the signature fields on top.
        if b"dkim-4@" in message:
            assert message.endswith(RAW_EML) and message.startswith(b"DKIM-Signature:")
        for kind in (b"winmail.dat", b"text/calendar", b"application/pdf"):
            if kind in message:
                kinds.add(kind)
        h = re.search(rb"h=([^;]*);", message.replace(b"\r\n\t", b"")).group(1).split(b":")
        for name in (b"from", b"subject", b"to", b"date"):
            assert h.count(name) == 2, ("oversigned: once more than present", name, h)
    assert kinds == {b"winmail.dat", b"text/calendar", b"application/pdf"}


def test_a_tampered_or_appended_message_fails_and_a_second_from_breaks_the_oversigned_signature(tmp_path):
    keys = tmp_path / "keys"
    records = keygen(keys, {"ed2026": "ed25519"})
    raw = tmp_path / "d.eml"
    raw.write_bytes(RAW_EML)
    [signed] = send_signed(tmp_path, keys, [raw])
    message = signed.read_bytes()
    assert verify_all(message, records) == ["ed2026"]

    def fails(m):
        try:
            return not dkim.DKIM(m).verify(dnsfunc=lambda name, timeout=5: records.get(name.decode()))
        except dkim.ValidationError:
            return True

    assert not fails(message)
    assert fails(message.replace(b"fin", b"FIN"))
    assert fails(message + b"P.S. appended\r\n"), "no l=: appending breaks it"
    sep = message.index(b"\r\n\r\n")
    assert fails(message[:sep] + b"\r\nFrom: eve@example.com" + message[sep:]), "From is oversigned"
    assert fails(message[:sep] + b"\r\nSubject: new" + message[sep:]), "Subject is oversigned"


def test_a_signed_message_forwarded_byte_for_byte_still_verifies(tmp_path):
    keys = tmp_path / "keys"
    records = keygen(keys)
    spec = tmp_path / "a.json"
    spec.write_text(json.dumps(SPEC_ATTACHMENTS), encoding="utf-8")
    [signed] = send_signed(tmp_path, keys, [spec])
    fwd = tmp_path / "forwarded"
    postwire("forward", str(signed), "--from", "ana@example.com", "--to", "zoe@example.org", "--pickup-dir", str(fwd))
    [forwarded] = fwd.glob("*.eml")
    assert forwarded.read_bytes() == signed.read_bytes()
    assert sorted(verify_all(forwarded.read_bytes(), records)) == ["ed2026", "rsa2026"]


def test_a_domain_without_a_key_goes_out_unsigned_and_send_says_so(tmp_path):
    keys = tmp_path / "keys"
    keygen(keys, {"ed2026": "ed25519"}, domain="other.example")
    raw = tmp_path / "d.eml"
    raw.write_bytes(RAW_EML)
    out = tmp_path / "pickup"
    r = postwire("send", str(raw), "--pickup-dir", str(out), "--dkim-dir", str(keys))
    assert "unsigned" in r.stderr
    [sent] = out.glob("*.eml")
    assert sent.read_bytes() == RAW_EML


class Relay:
    """`postwire serve` on a free loopback port with one token and DKIM keys in DATA_DIR/dkim."""

    def __init__(self, config=None):
        assert Path(BIN).is_file(), f"postwire binary missing at {BIN}: cargo build -p postwire-relay"
        self.tmp = tempfile.TemporaryDirectory(prefix="postwire-dkim-")
        self.data = Path(self.tmp.name) / "data"
        self.token = postwire(
            "token", "add", "app", "--data-dir", str(self.data), "--allow-from", "@example.com", "--allow-from", "@nokey.example",
        ).stdout.strip()
        self.records = keygen(self.data / "dkim")
        extra = []
        if config is not None:
            toml = Path(self.tmp.name) / "relay.toml"
            toml.write_text(config(self), encoding="utf-8")
            extra = ["--config", str(toml)]
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data), *extra],
            stderr=subprocess.PIPE, text=True,
        )
        for line in self.proc.stderr:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise AssertionError(f"relay exited: {self.proc.wait()}")
        self.url = f"ws://127.0.0.1:{self.port}/v1/submit"

    def close(self):
        """Stops the relay; returns the rest of its log."""
        self.proc.terminate()
        log = self.proc.stderr.read()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()
        return log


async def submit(relay, messages):
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": relay.token}))
        assert json.loads(await ws.recv())["type"] == "ready"
        for i, m in enumerate(messages):
            await ws.send(json.dumps({"type": "submit", "id": f"m{i}", "size": len(m)}))
            await ws.send(m)
        delivered = set()
        async with asyncio.timeout(60):
            while len(delivered) < len(messages):
                f = json.loads(await ws.recv())
                assert f["type"] not in ("rejected", "failed", "error"), f
                if f["type"] == "delivered":
                    delivered.add(f["id"])


def test_dkimpy_verifies_every_message_the_relay_delivers_for_a_domain_with_a_key(tmp_path):
    built = []
    for spec in (SPEC_ATTACHMENTS, SPEC_TNEF, SPEC_CALENDAR):
        p = tmp_path / "s.json"
        p.write_text(json.dumps(spec), encoding="utf-8")
        built.append(subprocess.run([BIN, "build", str(p)], check=True, capture_output=True).stdout)
    no_key = RAW_EML.replace(b"<ana@example.com>", b"<ana@nokey.example>").replace(b"dkim-4@", b"dkim-5@")
    messages = [*built, RAW_EML]
    relay = Relay()
    log = ""
    try:
        asyncio.run(submit(relay, [*messages, no_key]))
        sent = sorted((relay.data / "pickup").glob("*.eml"))
        assert len(sent) == len(messages) + 1
        for path in sent:
            message = path.read_bytes()
            if b"dkim-5@" in message:
                assert message == no_key, "a domain without a key goes out unsigned, unchanged"
                continue
            assert sorted(verify_all(message, relay.records)) == ["ed2026", "rsa2026"], path
        metrics = subprocess.run(
            ["python3", "-c", f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{relay.port}/metrics').read().decode())"],
            check=True, capture_output=True, text=True,
        ).stdout
        assert f"postwire_dkim_signed_total {len(messages)}" in metrics, metrics
        assert "postwire_dkim_unsigned_total 1" in metrics, metrics
        assert "postwire_dkim_failed_total 0" in metrics, metrics
        key_lines = [k.read_text().split("\n")[1] for k in (relay.data / "dkim").rglob("*.key")]
        assert len(key_lines) == 2
    finally:
        log = relay.close()
    assert "no DKIM key for the sender domain" in log and "nokey.example" in log, log
    assert all(line not in log for line in key_lines), "no key material in the log"


def test_keys_made_by_openssl_sign_and_dkim_record_prints_their_records(tmp_path):
    """PKCS#1 RSA (`openssl genrsa -traditional`), a 3072-bit RSA key and
    openssl's PKCS#8 v1 Ed25519 keys, dropped into the key directory by hand."""
    keys = tmp_path / "keys"
    (keys / DOMAIN).mkdir(parents=True)
    for selector, cmd in [
        ("pkcs1", ["openssl", "genrsa", "-traditional", "2048"]),
        ("big", ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
        ("osed", ["openssl", "genpkey", "-algorithm", "ed25519"]),
    ]:
        pem = subprocess.run(cmd, check=True, capture_output=True).stdout
        (keys / DOMAIN / f"{selector}.key").write_bytes(pem)
    assert b"BEGIN RSA PRIVATE KEY" in (keys / DOMAIN / "pkcs1.key").read_bytes()
    records = {}
    for selector in ("pkcs1", "big", "osed"):
        out = postwire("dkim", "record", DOMAIN, "--selector", selector, "--dkim-dir", str(keys)).stdout
        name, _, rest = out.partition(" IN TXT ")
        records[name] = "".join(re.findall(r'"([^"]*)"', rest)).encode()
    raw = tmp_path / "d.eml"
    raw.write_bytes(RAW_EML)
    [signed] = send_signed(tmp_path, keys, [raw])
    assert sorted(verify_all(signed.read_bytes(), records)) == ["big", "osed", "pkcs1"]


def test_a_short_rsa_key_is_refused_with_a_message_naming_the_file(tmp_path):
    keys = tmp_path / "keys"
    (keys / DOMAIN).mkdir(parents=True)
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], check=True, capture_output=True).stdout
    (keys / DOMAIN / "weak.key").write_bytes(pem)
    raw = tmp_path / "d.eml"
    raw.write_bytes(RAW_EML)
    r = subprocess.run([BIN, "send", str(raw), "--pickup-dir", str(tmp_path / "out"), "--dkim-dir", str(keys)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "weak.key" in r.stderr and "2048" in r.stderr, r.stderr
    assert pem.decode().split("\n")[1] not in r.stderr
    assert not list((tmp_path / "out").glob("*.eml")), "nothing goes out unsigned when the domain's key is broken"


def test_the_relays_toml_sets_simple_canonicalization_l_and_a_key_by_path(tmp_path):
    def config(relay):
        outside = Path(relay.tmp.name) / "elsewhere.pem"
        (relay.data / "dkim" / DOMAIN / "ed2026.key").rename(outside)
        return (
            "[dkim]\ncanonicalization = \"simple/simple\"\nbody_length = true\n"
            f"[[dkim.key]]\ndomain = \"{DOMAIN}\"\nselector = \"ed2026\"\npath = \"{outside}\"\n"
        )

    relay = Relay(config)
    try:
        asyncio.run(submit(relay, [RAW_EML]))
        [sent] = (relay.data / "pickup").glob("*.eml")
        message = sent.read_bytes()
        unfolded = message.replace(b"\r\n\t", b"")
        assert b"c=simple/simple;" in unfolded and re.search(rb"; l=\d+;", unfolded)
        # Only the key given by path signs: it replaces the directory's keys for the domain.
        assert verify_all(message, relay.records) == ["ed2026"]
    finally:
        relay.close()


def test_send_bulk_signs_every_message_of_the_folder(tmp_path):
    keys = tmp_path / "keys"
    records = keygen(keys, {"ed2026": "ed25519"})
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for i, spec in enumerate([SPEC_ATTACHMENTS, SPEC_TNEF, SPEC_CALENDAR]):
        (outbox / f"{i}.json").write_text(json.dumps(spec), encoding="utf-8")
    (outbox / "3.eml").write_bytes(RAW_EML)
    out = tmp_path / "pickup"
    postwire("send", "--bulk", str(outbox), "--quiet", "--pickup-dir", str(out), "--dkim-dir", str(keys))
    sent = sorted(out.glob("*.eml"))
    assert len(sent) == 4
    for path in sent:
        assert verify_all(path.read_bytes(), records) == ["ed2026"], path
