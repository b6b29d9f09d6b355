"""Test SMTP server for relay/tests/smtp*.rs, started by the tests themselves.

Usage: smtpd.py MODE OUT_DIR [--cert PEM --key PEM] [--user U --password P]
                 [--extensions] [--size N] [--no-smtputf8] [--no-auth]

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
  pipelining  raw: a small server that offers PIPELINING (aiosmtpd does not),
              DSN and SMTPUTF8, and stores messages like the others with the
              MAIL/RCPT parameters as received (not checked); no TLS, no AUTH.
  one-per-session  like pipelining, but closes the connection (without a word)
              after each accepted message, as a server ending an idle session.

Fault modes (relay/tests/faults_upstream.rs): a "faulty" session misbehaves,
the others behave like pipelining. Faulty are the first N sessions with
--faulty N, every session while the file exists with --faulty-file PATH, and
every session without either option. With --cert/--key the raw modes offer
STARTTLS (a wrong certificate makes the certificate-mismatch case).
  drop-after-mail  closes the connection on MAIL, without a reply.
  drop-after-rcpt  answers MAIL, closes on RCPT.
  drop-mid-data    closes after 100 bytes of message data.
  drop-after-dot   stores the whole message, closes before the final reply
                   (the one case where the client may send it again).
  storm-421   greets with 421 and closes.
  storm-451   answers MAIL with 451 (faulty counts MAIL commands, not sessions).
  stall-reply sends the first line of the EHLO reply, then nothing.
  tls-alert   answers STARTTLS with 220, then a fatal TLS alert
              (handshake_failure) instead of a handshake.
The legacy modes drop-data, hang-reply, stall-read and silent also take
--faulty / --faulty-file. OUT_DIR/active holds the sessions open now; a raw
mode's NNNNNN.json says whether the message came over TLS ("tls") and the
client's EHLO name ("helo").

Holding the end of data (pipelining and the fault modes' good sessions):
with --hold-file PATH, while PATH exists every message is stored at its end
of data, and the reply to it (250) is held until PATH is removed: a client
that dies meanwhile has a message at the server that it never heard about
(tests/js/relay_scaleout.test.mjs). The message's JSON then says "held": true;
OUT_DIR/held holds the replies held now by EHLO name, as JSON.

Options of the aiosmtpd modes:
  --extensions  also announce DSN (RFC 3461) and, over TLS only, REQUIRETLS
                (RFC 8689), and check their parameters: RET, ENVID, NOTIFY,
                ORCPT syntax and xtext, NOTIFY=NEVER alone, REQUIRETLS only over
                TLS, a UTF-8 address only with SMTPUTF8 (RFC 6531). Without it
                such parameters get aiosmtpd's own 555.
  --size N      announce SIZE N and refuse larger declared sizes (552).
  --no-smtputf8 do not announce SMTPUTF8 (and refuse UTF-8 commands).
  --no-auth     do not require AUTH.
  --client-ca PEM  require a TLS client certificate signed by this CA
                (STARTTLS and smtps); the message's JSON names its CN (clientCert).
Each message's NNNNNN.json then also holds mailParams / rcptParams (the
parameters exactly as received, one list per recipient), smtpUtf8, and
"headers": From / To as Python's email package (policy SMTPUTF8) reads them,
with "defects" listing what it found wrong.

Recipients starting with "tempfail" get 451 4.3.0, with "reject" 550 5.1.1;
a sender starting with "tempdata" gets 452 4.3.1 at the end of data.
"""

import asyncio
import base64
import email
import email.errors
import email.policy
import json
import os
import re
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
        self.mails = 0
        self.held = {}

    def _write(self, name, value):
        tmp = os.path.join(self.out, "." + name)
        with open(tmp, "w") as f:
            f.write(str(value))
        os.replace(tmp, os.path.join(self.out, name))

    def opened(self):
        self.active += 1
        self.sessions += 1
        self._write("active", self.active)
        self._write("sessions", self.sessions)
        if self.active > self.peak:
            self.peak = self.active
            self._write("peak", self.peak)

    def closed(self):
        self.active -= 1
        self._write("active", self.active)

    def auth(self):
        self.auth_attempts += 1
        self._write("auth_attempts", self.auth_attempts)

    def hold(self, helo, delta):
        self.held[helo] = self.held.get(helo, 0) + delta
        self._write("held", json.dumps(self.held))

    def save(self, mail_from, rcpts, content, extra=None):
        self.seq += 1
        stem = os.path.join(self.out, "%06d" % self.seq)
        record = {"mailFrom": mail_from, "rcptTo": rcpts}
        record.update(extra or {})
        with open(stem + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        with open(stem + ".eml.tmp", "wb") as f:
            f.write(content)
        os.replace(stem + ".json.tmp", stem + ".json")
        os.replace(stem + ".eml.tmp", stem + ".eml")
        return self.seq


XTEXT = re.compile(r"^(?:[!-*,-<>-~]|\+[0-9A-F]{2})+$")


def xtext_decode(value):
    """RFC 3461 section 4; None when the value is not valid xtext."""
    if not XTEXT.match(value):
        return None
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def utf8_addr_decode(value):
    """RFC 6533 utf-8-addr-xtext / unitext: \\x{HEX} escapes."""
    return re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: chr(int(m.group(1), 16)), value)


def is_tls(server, session):
    return bool(getattr(server, "_tls_protocol", None) or getattr(session, "ssl", None))


class Handler:
    def __init__(self, stats, user, password, extensions=False):
        self.stats = stats
        self.user = user
        self.password = password
        self.extensions = extensions

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.extensions:
            extra = ["250-DSN", "250-ENHANCEDSTATUSCODES"]
            if is_tls(server, session):
                extra.append("250-REQUIRETLS")
            responses = responses[:-1] + extra + responses[-1:]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        raw = getattr(server, "raw_params", "").split()
        smtputf8 = any(p.upper() == "SMTPUTF8" for p in raw)
        if not address.isascii() and not smtputf8:
            return "553 5.6.7 non-ASCII address without SMTPUTF8"
        for p in raw:
            key, _, value = p.partition("=")
            key = key.upper()
            if key == "RET" and value.upper() not in ("FULL", "HDRS"):
                return "501 5.5.4 bad RET value %s" % value
            if key == "ENVID" and xtext_decode(value) is None:
                return "501 5.5.4 ENVID is not xtext"
            if key == "REQUIRETLS" and (value or not is_tls(server, session)):
                return "530 5.7.10 REQUIRETLS needs TLS"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.mail_params = raw
        envelope.rcpt_params = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        raw = getattr(server, "raw_params", "").split()
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 non-ASCII recipient without SMTPUTF8"
        for p in raw:
            key, _, value = p.partition("=")
            key = key.upper()
            if key == "NOTIFY":
                words = value.upper().split(",")
                if not set(words) <= {"NEVER", "SUCCESS", "FAILURE", "DELAY"} or (
                    "NEVER" in words and len(words) > 1
                ):
                    return "501 5.5.4 bad NOTIFY value %s" % value
            if key == "ORCPT":
                kind, _, addr = value.partition(";")
                if not kind or not addr or xtext_decode(addr) is None:
                    return "501 5.5.4 ORCPT is not type;xtext"
        if address.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later" % address
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: no such user" % address
        envelope.rcpt_tos.append(address)
        if hasattr(envelope, "rcpt_params"):
            envelope.rcpt_params.append(raw)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.mail_from.startswith("tempdata"):
            return "452 4.3.1 insufficient system storage"
        extra = {"smtpUtf8": bool(envelope.smtp_utf8)}
        peercert = server.transport.get_extra_info("peercert") if server.transport else None
        if peercert:
            subject = dict(x[0] for x in peercert.get("subject", ()))
            extra["clientCert"] = subject.get("commonName")
        if hasattr(envelope, "mail_params"):
            extra["mailParams"] = envelope.mail_params
            extra["rcptParams"] = envelope.rcpt_params
            decoded = {}
            for p in envelope.mail_params:
                key, _, value = p.partition("=")
                if key.upper() == "ENVID":
                    decoded["envid"] = xtext_decode(value)
            orcpts = []
            for params in envelope.rcpt_params:
                o = None
                for p in params:
                    key, _, value = p.partition("=")
                    if key.upper() == "ORCPT":
                        kind, _, addr = value.partition(";")
                        addr = xtext_decode(addr)
                        o = kind + ";" + (utf8_addr_decode(addr) if kind.lower() == "utf-8" else addr)
                orcpts.append(o)
            decoded["orcpt"] = orcpts
            extra["decoded"] = decoded
        try:
            # RFC 6532 headers are UTF-8: read the message as text (the
            # bytes parser would take every non-ASCII byte for an error).
            text = envelope.original_content.decode("utf-8")
            msg = email.message_from_string(text, policy=email.policy.SMTPUTF8)
            headers = {}
            # Python notes a UTF-8 local part as NonASCIILocalPartDefect under
            # every policy, though RFC 6532 (policy SMTPUTF8, utf8=True)
            # allows it: not a defect here. Everything else is reported.
            allowed = (email.errors.NonASCIILocalPartDefect,)
            defects = [str(d) for d in msg.defects if not isinstance(d, allowed)]
            for name in ("from", "to", "cc"):
                h = msg[name]
                if h is not None:
                    headers[name] = [a.addr_spec for a in h.addresses]
                    headers[name + "Names"] = [a.display_name for a in h.addresses]
                    defects += [str(d) for d in h.defects if not isinstance(d, allowed)]
            headers["subject"] = msg["subject"]
            headers["defects"] = defects
            extra["headers"] = headers
        except Exception as e:  # recorded, so that a test sees it
            extra["headers"] = {"error": repr(e)}
        n = self.stats.save(envelope.mail_from, envelope.rcpt_tos, envelope.original_content, extra)
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
    extensions = False

    def _getaddr(self, arg):
        # Keep the parameters exactly as sent (aiosmtpd upper-cases its copy).
        address, params = super()._getaddr(arg)
        self.raw_params = params or ""
        return address, params

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None and self.extensions:
            # Checked by the handler; aiosmtpd itself would answer 555.
            for key in ("RET", "ENVID", "NOTIFY", "ORCPT", "REQUIRETLS"):
                result.pop(key, None)
        return result

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


# The fault modes: each misbehaves in the sessions that are "faulty" (the
# first N sessions with --faulty N, or while the file of --faulty-file exists;
# every session without either) and behaves like "pipelining" in the others,
# so that a test sees the fault and then the recovery.
FAULT_MODES = (
    "drop-after-mail", "drop-after-rcpt", "drop-mid-data", "drop-after-dot",
    "storm-421", "storm-451", "stall-reply", "tls-alert",
)
LEGACY_MODES = ("drop-data", "hang-reply", "stall-read", "silent")
# A fatal TLS alert record: handshake_failure (40).
TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"


def faulty(n):
    """Whether the n-th session (or, for storm-451, the n-th MAIL) misbehaves."""
    path = arg("--faulty-file")
    if path:
        return os.path.exists(path)
    limit = arg("--faulty")
    return limit is None or n <= int(limit)


class Raw(asyncio.Protocol):
    """A misbehaving server for the failure modes, or a small pipelining one.
    With --cert/--key it offers STARTTLS."""

    tls_context = None

    def __init__(self, mode, stats):
        self.mode = mode
        self.stats = stats
        self.buf = b""
        self.in_data = False
        self.data = bytearray()
        self.data_bytes = 0
        self.mail_from = None
        self.rcpts = []
        self.mail_params, self.rcpt_params = [], []
        self.tls = False
        self.stalled = False
        self.helo = None
        # While the reply to an end of data is held: what the client sent since.
        self.holding = None

    def connection_made(self, transport):
        self.t = transport
        self.stats.opened()
        if self.mode in FAULT_MODES + LEGACY_MODES and self.mode != "storm-451":
            if not faulty(self.stats.sessions):
                self.mode = "pipelining"
        # Whether MAIL, RCPT and DATA are really handled (the legacy failure
        # modes answer 250 to anything until DATA).
        self.real = self.mode in ("pipelining", "one-per-session") + FAULT_MODES
        if self.mode == "silent":
            return
        if self.mode == "storm-421":
            transport.write(b"421 4.3.2 too busy, try again later\r\n")
            transport.close()
            return
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
        hold = arg("--hold-file")
        held = bool(hold) and os.path.exists(hold) and self.mode != "drop-after-dot"
        n = self.stats.save(self.mail_from, self.rcpts, body,
                            {"mailParams": self.mail_params, "rcptParams": self.rcpt_params,
                             "tls": self.tls, "helo": self.helo, "held": held})
        if held:
            self.in_data = False
            self.data = bytearray()
            self.mail_from, self.rcpts = None, []
            self.holding = bytearray()
            self.stats.hold(self.helo, 1)
            asyncio.ensure_future(self.release(hold, n))
            return
        if self.mode == "drop-after-dot":
            # Stored, but the client never learns it: the one fault that may
            # make a message arrive twice.
            self.t.close()
            return
        self.t.write(b"250 2.0.0 OK queued as %06d\r\n" % n)
        if self.mode == "one-per-session":
            self.t.close()
        self.in_data = False
        self.data = bytearray()
        self.mail_from, self.rcpts = None, []

    async def release(self, hold, n):
        """Sends the held reply once `hold` is gone, then goes on with what
        the client sent meanwhile."""
        while os.path.exists(hold):
            await asyncio.sleep(0.02)
        self.stats.hold(self.helo, -1)
        pending, self.holding = bytes(self.holding), None
        if self.t.is_closing():
            return
        self.t.write(b"250 2.0.0 OK queued as %06d\r\n" % n)
        if self.mode == "one-per-session":
            self.t.close()
            return
        self.data_received(pending)

    async def upgrade(self):
        loop = asyncio.get_running_loop()
        try:
            self.t = await loop.start_tls(self.t, self, Raw.tls_context, server_side=True)
            self.tls = True
        except Exception:  # the client gave up on the certificate: fine
            self.t.close()

    def data_received(self, data):
        if self.stalled:
            return
        if self.holding is not None:
            self.holding += data
            return
        if self.in_data:
            self.data_bytes += len(data)
            if self.mode in ("drop-data", "drop-mid-data") and self.data_bytes >= 100:
                self.t.close()
                return
            if not self.real:
                return
            self.data += data
            if self.data.endswith(b"\r\n.\r\n") or self.data == b".\r\n":
                rest = b""
                self.end_of_data()
                data = rest
            else:
                return
        self.buf += data
        while b"\r\n" in self.buf and not self.in_data and self.holding is None:
            if self.t.is_closing():
                return
            line, self.buf = self.buf.split(b"\r\n", 1)
            verb = line[:4].upper()
            # The address between < and >; parameters after it are ignored.
            arg = line.split(b":", 1)[1].strip() if b":" in line else b""
            arg, _, params = arg.partition(b">")
            arg = arg.lstrip(b"<").decode("utf-8", "replace")
            params = params.decode("utf-8", "replace").split()
            if verb in (b"EHLO", b"HELO"):
                self.helo = line[5:].strip().decode("utf-8", "replace")
                if self.mode == "stall-reply":
                    # The first line of a multi-line reply, then nothing.
                    self.t.write(b"250-raw.test\r\n")
                    self.stalled = True
                    return
                extra = b"250-PIPELINING\r\n250-DSN\r\n250-SMTPUTF8\r\n" if self.real else b""
                if Raw.tls_context is not None and not self.tls:
                    extra += b"250-STARTTLS\r\n"
                self.t.write(b"250-raw.test\r\n" + extra + b"250-8BITMIME\r\n250 SIZE 1000000000\r\n")
            elif verb == b"STAR" and Raw.tls_context is not None and not self.tls:
                self.t.pause_reading()
                self.t.write(b"220 2.0.0 ready to start TLS\r\n")
                self.buf = b""
                if self.mode == "tls-alert":
                    self.t.write(TLS_ALERT)
                    self.t.close()
                    return
                asyncio.ensure_future(self.upgrade())
                return
            elif verb == b"MAIL" and self.mode == "drop-after-mail":
                self.t.close()
                return
            elif verb == b"MAIL" and self.real:
                if self.mode == "storm-451":
                    self.stats.mails += 1
                    if faulty(self.stats.mails):
                        self.t.write(b"451 4.3.2 system busy, try again later\r\n")
                        continue
                if arg.startswith("rejectfrom"):
                    self.t.write(b"550 5.7.1 sender refused\r\n")
                else:
                    self.mail_from = arg
                    self.mail_params = params
                    self.t.write(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT" and self.real:
                if self.mail_from is None:
                    self.t.write(b"503 5.5.1 need MAIL first\r\n")
                elif self.mode == "drop-after-rcpt":
                    self.t.close()
                    return
                elif arg.startswith("tempfail"):
                    self.t.write(b"451 4.3.0 <%s>: try again later\r\n" % arg.encode())
                elif arg.startswith("reject"):
                    self.t.write(b"550 5.1.1 <%s>: no such user\r\n" % arg.encode())
                else:
                    self.rcpts.append(arg)
                    self.rcpt_params.append(params)
                    self.t.write(b"250 2.1.5 OK\r\n")
            elif verb == b"RSET":
                self.mail_from, self.rcpts = None, []
                self.mail_params, self.rcpt_params = [], []
                self.t.write(b"250 2.0.0 OK\r\n")
            elif verb in (b"MAIL", b"RCPT", b"NOOP"):
                self.t.write(b"250 2.0.0 OK\r\n")
            elif verb == b"DATA":
                if self.real and not self.rcpts:
                    self.t.write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                self.t.write(b"354 go ahead\r\n")
                self.in_data = True
                self.data_bytes = 0
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
        extensions = "--extensions" in sys.argv
        handler = Handler(stats, user, password, extensions)

        def authenticator(server, session, envelope, mechanism, auth_data):
            stats.auth()
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        CountingSMTP.stats = stats
        CountingSMTP.extensions = extensions
        size = arg("--size")
        kwargs = dict(
            hostname="smtp.test",
            auth_required="--no-auth" not in sys.argv,
            authenticator=authenticator,
            enable_SMTPUTF8="--no-smtputf8" not in sys.argv,
            data_size_limit=int(size) if size else None,
        )
        def require_client_cert(ctx):
            if arg("--client-ca"):
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(arg("--client-ca"))

        if mode == "secure":
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(arg("--cert"), arg("--key"))
            require_client_cert(ctx)
            kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
        else:
            kwargs.update(auth_require_tls=False)
        tls = None
        if mode == "smtps":
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(arg("--cert"), arg("--key"))
            require_client_cert(tls)
        server = await loop.create_server(
            lambda: CountingSMTP(handler, **kwargs), "127.0.0.1", 0, ssl=tls
        )
    elif mode in ("pipelining", "one-per-session") + FAULT_MODES + LEGACY_MODES:
        if arg("--cert"):
            Raw.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            Raw.tls_context.load_cert_chain(arg("--cert"), arg("--key"))
        server = await loop.create_server(lambda: Raw(mode, stats), "127.0.0.1", 0)
    else:
        sys.exit("unknown mode " + mode)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
