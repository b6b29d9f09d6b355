"""`postwire submit` (the Rust relay client) checked by the independent
Python client of test_relay_protocol.py: a message submitted from the
command line is known to the relay under the id the command printed, its
`status` says delivered, and the same id from Python is a duplicate that is
not delivered again. Needs POSTWIRE_BIN and `websockets` (scripts/setup.sh)."""

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path

import websockets

from test_relay_protocol import BIN, MESSAGE, Relay, frames_until


def submit(relay, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env["POSTWIRE_TOKEN"] = relay.token
    return subprocess.run(
        [BIN, "submit", "--relay", relay.url, *args], env=env, capture_output=True, text=True, timeout=120
    )


async def status_then_resubmit(relay, msg_id):
    async with websockets.connect(relay.url, subprotocols=["postwire.v1"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": relay.token}))
        await frames_until(ws, lambda f: f["type"] == "ready")
        await ws.send(json.dumps({"type": "status", "id": msg_id}))
        [status] = await frames_until(ws, lambda f: f["type"] == "status")
        assert status["known"] is True, status
        assert [(r["rcpt"], r["state"]) for r in status["recipients"]] == [("bob@example.org", "delivered")]
        await ws.send(json.dumps({"type": "submit", "id": msg_id, "size": len(MESSAGE)}))
        await ws.send(MESSAGE)
        seen = await frames_until(ws, lambda f: f.get("id") == msg_id and f["type"] in ("accepted", "rejected"))
        assert seen[-1]["type"] == "accepted" and seen[-1]["duplicate"] is True, seen[-1]


def test_a_message_submitted_from_the_command_line_is_seen_by_the_python_client_and_not_sent_twice():
    relay = Relay()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            eml = Path(tmp) / "wire.eml"
            eml.write_bytes(MESSAGE)
            done = submit(relay, "--wait", "--json", str(eml))
            assert done.returncode == 0, done.stderr
            out = json.loads(done.stdout)
            [message] = out["messages"]
            assert message["state"] == "accepted", message
            assert message["recipients"][0]["state"] == "delivered", message
            assert out["totals"]["delivered"] == 1
            asyncio.run(status_then_resubmit(relay, message["id"]))
        emls = sorted((relay.data / "pickup").glob("*.eml"))
        assert len(emls) == 1, "delivered once; the duplicate from Python not again"
        assert emls[0].read_bytes() == MESSAGE, "byte for byte"
    finally:
        relay.close()
