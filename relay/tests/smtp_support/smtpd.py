"""Test SMTP server for relay/tests/smtp*.rs, started by the tests themselves.

Usage: smtpd.py MODE OUT_DIR [--cert PEM --key PEM] [--user U --password P]

Prints "PORT <n>" on stdout once it listens on 127.0.0.1 (ephemeral port).
Every accepted message is written to OUT_DIR as NNNNNN.eml (the bytes as
received, dot-unstuffed) and NNNNNN.json (mailFrom, rcptTo). OUT_DIR/peak holds
the highest number of simultaneous sessions seen, OUT_DIR/sessions the total,
OUT_DIR/auth_attempts the number of AUTH exchanges.

Modes:
  secure      aiosmtpd, STARTTLS required, AUTH (PLAIN, LOGIN, XOAUTH2) required,
              AUTH only after STARTTLS.
  clear-auth  aiosmtpd without STARTTLS that still offers AUTH in clear.
  smtps       aiosmtpd behind implicit TLS, AUTH required.
  drop-data   raw: answers up to DATA with 354, reads 100 bytes, closes.
  hang-reply  raw: reads the whole message, never answers the end of data.
  stall-read  raw: after 354 stops reading the socket.
  silent      raw: accepts and never sends a greeting.
  pipelining  raw: a small server that offers PIPELINING (aiosmtpd does not) and
              stores messages like the others; no TLS, no AUTH.
  one-per-session  like pipelining, but closes the connection (without a word)
              after each accepted message, as a server ending an idle session.

Recipients starting with "tempfail" get 451 4.3.0, with "reject" 550 5.1.1;
a sender starting with "tempdata" gets 452 4.3.1 at the end of data.
"""

import asyncio
import base64
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Stats:
    def __init__(self, out):
        self.out = out
        self.active = 0
        self.peak = 0
        self.sessions = 0
        self.auth_attempts = 0
        self.seq = 0

    def _write(self, name, value):
        tmp = os.path.join(self.out, "." + name)
        with open(tmp, "w") as f:
            f.write(str(value))
        os.replace(tmp, os.path.join(self.out, name))

    def opened(self):
        self.active += 1
        self.sessions += 1
        self._write("sessions", self.sessions)
        if self.active > self.peak:
            self.peak = self.active
            self._write("peak", self.peak)

    def closed(self):
        self.active -= 1

    def auth(self):
        self.auth_attempts += 1
        self._write("auth_attempts", self.auth_attempts)

    def save(self, mail_from, rcpts, content):
        self.seq += 1
        stem = os.path.join(self.out, "%06d" % self.seq)
        with open(stem + ".json.tmp", "w") as f:
            json.dump({"mailFrom": mail_from, "rcptTo": rcpts}, f)
        with open(stem + ".eml.tmp", "wb") as f:
            f.write(content)
        os.replace(stem + ".json.tmp", stem + ".json")
        os.replace(stem + ".eml.tmp", stem + ".eml")
        return self.seq


class Handler:
    def __init__(self, stats, user, password):
        self.stats = stats
        self.user = user
        self.password = password

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later" % address
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.mail_from.startswith("tempdata"):
            return "452 4.3.1 insufficient system storage"
        n = self.stats.save(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        return "250 2.0.0 OK queued as %06d" % n

    async def auth_XOAUTH2(self, server, args):
        # AUTH XOAUTH2 <base64("user=U\x01auth=Bearer T\x01\x01")>
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            raw = base64.b64decode(args[1]).decode()
            fields = dict(p.split("=", 1) for p in raw.split("\x01") if p)
        except Exception:
            return AuthResult(success=False, handled=False)
        self.stats.auth()
        ok = fields.get("user") == self.user and fields.get("auth") == "Bearer " + self.password
        return AuthResult(success=ok, handled=False, auth_data=fields.get("user"))


class CountingSMTP(SMTP):
    stats = None

    def connection_made(self, transport):
        if not getattr(self, "_counted", False):
            self._counted = True
            self.stats.opened()
        super().connection_made(transport)

    def connection_lost(self, exc):
        if getattr(self, "_counted", False) and not getattr(self, "_closed", False):
            self._closed = True
            self.stats.closed()
        super().connection_lost(exc)


class Raw(asyncio.Protocol):
    """A misbehaving server for the failure modes, or a small pipelining one."""

    def __init__(self, mode, stats):
        self.mode = mode
        self.stats = stats
        self.buf = b""
        self.in_data = False
        self.data = bytearray()
        self.data_bytes = 0
        self.mail_from = None
        self.rcpts = []

    def connection_made(self, transport):
        self.t = transport
        self.stats.opened()
        if self.mode != "silent":
            transport.write(b"220 raw.test ESMTP\r\n")

    def connection_lost(self, exc):
        self.stats.closed()

    def end_of_data(self):
        # self.data ends with CRLF "." CRLF; the message is what comes before the "."
        body = bytes(self.data[:-3])
        if body.startswith(b".\r\n"):
            body = body[3:]
        lines = body.split(b"\r\n")
        body = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)
        n = self.stats.save(self.mail_from, self.rcpts, body)
        self.t.write(b"250 2.0.0 OK queued as %06d\r\n" % n)
        if self.mode == "one-per-session":
            self.t.close()
        self.in_data = False
        self.data = bytearray()
        self.mail_from, self.rcpts = None, []

    def data_received(self, data):
        if self.in_data:
            self.data_bytes += len(data)
            if self.mode == "drop-data" and self.data_bytes >= 100:
                self.t.close()
                return
            if self.mode not in ("pipelining", "one-per-session"):
                return
            self.data += data
            if self.data.endswith(b"\r\n.\r\n") or self.data == b".\r\n":
                rest = b""
                self.end_of_data()
                data = rest
            else:
                return
        self.buf += data
        while b"\r\n" in self.buf and not self.in_data:
            line, self.buf = self.buf.split(b"\r\n", 1)
            verb = line[:4].upper()
            arg = line.split(b":", 1)[1].strip().strip(b"<>").decode() if b":" in line else ""
            if verb in (b"EHLO", b"HELO"):
                extra = b"250-PIPELINING\r\n" if self.mode in ("pipelining", "one-per-session") else b""
                self.t.write(b"250-raw.test\r\n" + extra + b"250-8BITMIME\r\n250 SIZE 1000000000\r\n")
            elif verb == b"MAIL" and self.mode in ("pipelining", "one-per-session"):
                if arg.startswith("rejectfrom"):
                    self.t.write(b"550 5.7.1 sender refused\r\n")
                else:
                    self.mail_from = arg
                    self.t.write(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT" and self.mode in ("pipelining", "one-per-session"):
                if self.mail_from is None:
                    self.t.write(b"503 5.5.1 need MAIL first\r\n")
                elif arg.startswith("tempfail"):
                    self.t.write(b"451 4.3.0 <%s>: try again later\r\n" % arg.encode())
                elif arg.startswith("reject"):
                    self.t.write(b"550 5.1.1 <%s>: no such user\r\n" % arg.encode())
                else:
                    self.rcpts.append(arg)
                    self.t.write(b"250 2.1.5 OK\r\n")
            elif verb == b"RSET":
                self.mail_from, self.rcpts = None, []
                self.t.write(b"250 2.0.0 OK\r\n")
            elif verb in (b"MAIL", b"RCPT", b"NOOP"):
                self.t.write(b"250 2.0.0 OK\r\n")
            elif verb == b"DATA":
                if self.mode in ("pipelining", "one-per-session") and not self.rcpts:
                    self.t.write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                self.t.write(b"354 go ahead\r\n")
                self.in_data = True
                if self.mode == "stall-read":
                    self.t.pause_reading()
                rest, self.buf = self.buf, b""
                if rest:
                    self.data_received(rest)
            elif verb == b"QUIT":
                self.t.write(b"221 bye\r\n")
                self.t.close()
            else:
                self.t.write(b"502 5.5.1 not implemented\r\n")


def arg(name, default=None):
    if name in sys.argv:
        i = sys.argv.index(name)
        return sys.argv[i + 1]
    return default


async def main():
    mode, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    stats = Stats(out)
    user, password = arg("--user", "user"), arg("--password", "secret")
    loop = asyncio.get_running_loop()
    if mode in ("secure", "clear-auth", "smtps"):
        handler = Handler(stats, user, password)

        def authenticator(server, session, envelope, mechanism, auth_data):
            stats.auth()
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        CountingSMTP.stats = stats
        kwargs = dict(
            hostname="smtp.test",
            auth_required=True,
            authenticator=authenticator,
            enable_SMTPUTF8=True,
            data_size_limit=None,
        )
        if mode == "secure":
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(arg("--cert"), arg("--key"))
            kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
        else:
            kwargs.update(auth_require_tls=False)
        tls = None
        if mode == "smtps":
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(arg("--cert"), arg("--key"))
        server = await loop.create_server(
            lambda: CountingSMTP(handler, **kwargs), "127.0.0.1", 0, ssl=tls
        )
    elif mode in ("drop-data", "hang-reply", "stall-read", "silent", "pipelining", "one-per-session"):
        server = await loop.create_server(lambda: Raw(mode, stats), "127.0.0.1", 0)
    else:
        sys.exit("unknown mode " + mode)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
