"""Webhooks judged from Python: a real relay (`postwire serve`), an endpoint
registered with `postwire webhook add` while it runs, an HTTP server here
(http.server) that records what arrives, a message submitted with
`postwire submit --wait`. Each request's `Postwire-Signature` is checked
with Python's hmac from the format in docs/webhooks.md, both by this file's
own code and by the Python snippet of docs/webhooks.md itself. Needs
POSTWIRE_BIN (scripts/test.sh) and `websockets` (via test_relay_protocol)."""

import hashlib
import hmac
import json
import os
import queue
import re
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from test_relay_protocol import BIN, MESSAGE, Relay

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def doc_verifier():
    """The `verify_postwire` function of docs/webhooks.md's Python block."""
    text = DOC.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope = {}
    exec(block, scope)  # noqa: S102 - our own documentation
    return scope["verify_postwire"]


def own_check(secret, header, body):
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = fields["t"]
    assert abs(time.time() - int(t)) < 600, header
    mac = hmac.new(secret.encode("utf-8"), t.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, fields["v1"])


class Endpoint:
    def __init__(self):
        self.hits = queue.Queue()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hits.put((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def postwire(*args, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env.update(kw.pop("env", {}))
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def test_accepted_and_delivered_arrive_with_signatures_python_verifies():
    verify_doc = doc_verifier()
    relay = Relay()
    endpoint = Endpoint()
    try:
        added = postwire(
            "webhook", "add", "py", "--url", f"http://127.0.0.1:{endpoint.port}/hook",
            "--token", "app", "--allow-http", "--allow-private", "--data-dir", str(relay.data),
        )
        assert added.returncode == 0, added.stderr
        secret = added.stdout.strip()
        assert secret.startswith("whsec_")
        with tempfile.TemporaryDirectory() as tmp:
            eml = Path(tmp) / "hook.eml"
            eml.write_bytes(MESSAGE)
            done = postwire("submit", "--relay", relay.url, "--wait", "--json", str(eml),
                            env={"POSTWIRE_TOKEN": relay.token})
            assert done.returncode == 0, done.stderr
            msg_id = json.loads(done.stdout)["messages"][0]["id"]
        seen = {}
        while set(seen) != {"accepted", "delivered"}:
            headers, body = endpoint.hits.get(timeout=60)
            header = headers["Postwire-Signature"]
            assert own_check(secret, header, body), header
            assert verify_doc(secret, header, body), "the documented snippet agrees"
            assert not verify_doc(secret + "x", header, body)
            assert not own_check(secret, header, body + b" ")
            event = json.loads(body)
            assert headers["Postwire-Event"] == event["type"]
            assert event["message"] == {"token": "app", "id": msg_id}, event
            seen[event["type"]] = event
        assert seen["accepted"]["recipients"] == ["bob@example.org"]
        assert seen["delivered"]["recipient"] == "bob@example.org"
        assert seen["delivered"]["final"] is True
        listed = postwire("webhook", "list", "--json", "--data-dir", str(relay.data))
        assert secret not in listed.stdout and json.loads(listed.stdout)[0]["name"] == "py"
    finally:
        endpoint.close()
        relay.close()
