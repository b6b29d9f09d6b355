"""The relay's wire protocol (docs/protocol.md, `postwire.v1`) spoken by an
independent client: Python's `websockets` package, written from the document
alone, against the real `postwire serve` delivering into its pickup directory.
Nothing of postwire's own client code is used. Needs POSTWIRE_BIN (the debug
`postwire`) and `websockets`, both installed by scripts/setup.sh; a missing
one fails the test."""

import asyncio
import email
import email.policy
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import websockets

BIN = os.environ.get("POSTWIRE_BIN") or str(Path(__file__).resolve().parents[2] / "target/debug/postwire")
MESSAGE = (
    b"From: Ana <ana@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: wire test\r\n"
    b"Message-ID: <wire-1@example.com>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\nHello over the wire.\r\n"
)


class Relay:
    """`postwire serve` on a free loopback port with one token."""

    def __init__(self):
        assert Path(BIN).is_file(), f"postwire binary missing at {BIN}: cargo build -p postwire-relay"
        self.tmp = tempfile.TemporaryDirectory(prefix="postwire-wire-")
        self.data = Path(self.tmp.name) / "data"
        added = subprocess.run(
            [BIN, "token", "add", "app", "--data-dir", str(self.data), "--allow-from", "@example.com"],
            check=True, capture_output=True, text=True,
        )
        self.token = added.stdout.strip()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data)],
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
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


async def frames_until(ws, predicate, timeout=20):
    """Reads JSON text frames until one satisfies `predicate`; returns all read."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, str), f"the relay sends JSON text frames, got {raw!r}"
            frame = json.loads(raw)
            seen.append(frame)
            if predicate(frame):
                return seen


async def submit_and_follow(relay):
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"]) as ws:
        assert ws.subprotocol == "postwire.v1"
        await ws.send(json.dumps({"type": "auth", "token": relay.token}))
        [ready] = await frames_until(ws, lambda f: True)
        assert ready["type"] == "ready", ready
        assert ready["protocol"] == "postwire.v1" and ready["token"] == "app"
        assert ready["window"] >= 1 and ready["maxSize"] > len(MESSAGE)
        await ws.send(json.dumps({"type": "submit", "id": "wire-1", "size": len(MESSAGE)}))
        await ws.send(MESSAGE)
        seen = await frames_until(ws, lambda f: f["type"] == "delivered")
        accepted = next(f for f in seen if f["type"] == "accepted")
        assert accepted == {"type": "accepted", "id": "wire-1", "duplicate": False, "rcptTo": ["bob@example.org"]}
        delivered = seen[-1]
        assert delivered["id"] == "wire-1" and delivered["rcpt"] == "bob@example.org"
        assert delivered["response"].startswith("250"), delivered
        # the reply's codes as fields (docs/protocol.md); no server path in the text
        assert delivered["smtpCode"] == 250 and delivered["enhancedCode"] == "2.0.0", delivered
        assert "/" not in delivered["response"], delivered

    # A new connection, Bearer at the upgrade this time: status, then the same id again.
    headers = {"Authorization": f"Bearer {relay.token}"}
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"], additional_headers=headers) as ws:
        [ready] = await frames_until(ws, lambda f: True)
        assert ready["type"] == "ready"
        await ws.send(json.dumps({"type": "status", "id": "wire-1"}))
        [status] = await frames_until(ws, lambda f: f["type"] == "status")
        assert status["known"] is True
        assert status["recipients"][0]["rcpt"] == "bob@example.org"
        assert status["recipients"][0]["state"] == "delivered"
        await ws.send(json.dumps({"type": "submit", "id": "wire-1", "size": len(MESSAGE)}))
        await ws.send(MESSAGE)
        seen = await frames_until(ws, lambda f: f["type"] == "accepted")
        assert seen[-1]["duplicate"] is True, "a resubmitted id is never stored or sent twice"


async def refusals(relay):
    # A wrong token in the auth frame: an error frame `unauthorized`, then close 4401.
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "pw_wrong"}))
        [err] = await frames_until(ws, lambda f: True)
        assert err["type"] == "error" and err["code"] == "unauthorized", err
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("the connection stays open after an error frame")
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4401, closed

    # A wrong Bearer secret: refused before the upgrade with 401.
    try:
        async with websockets.connect(
            relay.url, subprotocols=["postwire.v1"], additional_headers={"Authorization": "Bearer pw_wrong"}
        ):
            raise AssertionError("upgraded with a wrong bearer token")
    except websockets.InvalidStatus as e:
        assert e.response.status_code == 401

    # A foreign Origin: refused before the upgrade with 403.
    try:
        async with websockets.connect(relay.url, subprotocols=["postwire.v1"], origin="https://evil.example"):
            raise AssertionError("upgraded from a foreign origin")
    except websockets.InvalidStatus as e:
        assert e.response.status_code == 403

    # A sender the token may not use, and a CR/LF in the envelope: rejected per message, nothing stored.
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": relay.token}))
        await frames_until(ws, lambda f: f["type"] == "ready")
        for msg_id, envelope, code in [
            ("bad-sender", {"mailFrom": "eve@elsewhere.example", "rcptTo": ["bob@example.org"]}, "sender_not_allowed"),
            ("bad-crlf", {"mailFrom": "ana@example.com", "rcptTo": ["bob@example.org\r\nRCPT TO:<x@y.z>"]}, "bad_envelope"),
            ("bad-address", {"mailFrom": "ana@example.com", "rcptTo": ["not-an-address"]}, "invalid_address"),
        ]:
            await ws.send(json.dumps({"type": "submit", "id": msg_id, "size": len(MESSAGE), "envelope": envelope}))
            await ws.send(MESSAGE)
            [rejected] = await frames_until(ws, lambda f: f.get("id") == msg_id)
            assert rejected["type"] == "rejected", rejected
            assert rejected["code"] == code, rejected
            assert rejected["message"], "every refusal says what was wrong"


def test_a_python_client_written_from_the_protocol_document_submits_and_follows_a_message():
    relay = Relay()
    try:
        asyncio.run(submit_and_follow(relay))
        pickup = relay.data / "pickup"
        emls = sorted(pickup.glob("*.eml"))
        assert len(emls) == 1, "delivered once, the duplicate not again"
        assert emls[0].read_bytes() == MESSAGE, "byte for byte"
        parsed = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
        assert parsed["Subject"] == "wire test"
    finally:
        relay.close()


def test_refusals_follow_the_documented_codes_and_nothing_is_delivered():
    relay = Relay()
    try:
        asyncio.run(refusals(relay))
        assert not list((relay.data / "pickup").glob("*.eml")), "nothing refused was delivered"
    finally:
        relay.close()
