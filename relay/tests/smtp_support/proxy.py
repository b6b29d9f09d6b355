"""A small SOCKS5 (RFC 1928, user/password RFC 1929) and HTTP CONNECT proxy
for relay/tests/smtp*.rs, started by the tests themselves. Written here
because no well-kept packaged proxy does both with authentication in a few
lines; it only has to be correct, not fast.

Usage: proxy.py socks5|http OUT_DIR [--user U --password P]

Prints "PORT <n>" once it listens on 127.0.0.1. Every tunnel it opens is
appended to OUT_DIR/tunnels as "host:port" (one line each); refused
authentication is appended to OUT_DIR/refused.
"""

import asyncio
import base64
import os
import sys


def arg(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


MODE, OUT = sys.argv[1], sys.argv[2]
USER, PASSWORD = arg("--user"), arg("--password")


def note(name, line):
    with open(os.path.join(OUT, name), "a") as f:
        f.write(line + "\n")


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def tunnel(reader, writer, host, port):
    up_reader, up_writer = await asyncio.open_connection(host, port)
    note("tunnels", "%s:%d" % (host, port))
    return up_reader, up_writer


async def socks5(reader, writer):
    ver, n = await reader.readexactly(2)
    methods = await reader.readexactly(n)
    want = 2 if USER else 0
    if ver != 5 or want not in methods:
        writer.write(b"\x05\xff")
        return None
    writer.write(bytes([5, want]))
    if want == 2:
        _, ulen = await reader.readexactly(2)
        user = (await reader.readexactly(ulen)).decode()
        (plen,) = await reader.readexactly(1)
        password = (await reader.readexactly(plen)).decode()
        if (user, password) != (USER, PASSWORD):
            note("refused", user)
            writer.write(b"\x01\x01")
            return None
        writer.write(b"\x01\x00")
    ver, cmd, _, atyp = await reader.readexactly(4)
    if atyp == 3:
        (ln,) = await reader.readexactly(1)
        host = (await reader.readexactly(ln)).decode()
    elif atyp == 1:
        host = ".".join(str(b) for b in await reader.readexactly(4))
    else:
        writer.write(b"\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00")
        return None
    port = int.from_bytes(await reader.readexactly(2), "big")
    if cmd != 1:
        writer.write(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")
        return None
    try:
        up = await tunnel(reader, writer, host, port)
    except OSError:
        writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
        return None
    writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
    return up


async def http_connect(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:] if l)
    )
    if USER:
        expected = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if headers.get("proxy-authorization") != expected:
            note("refused", headers.get("proxy-authorization", "-"))
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"test\"\r\n\r\n")
            return None
    if method != "CONNECT":
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
        return None
    host, _, port = target.rpartition(":")
    try:
        up = await tunnel(reader, writer, host.strip("[]"), int(port))
    except OSError:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
        return None
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    return up


async def handle(reader, writer):
    try:
        up = await (socks5(reader, writer) if MODE == "socks5" else http_connect(reader, writer))
        await writer.drain()
        if up is None:
            writer.close()
            return
        up_reader, up_writer = up
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        writer.close()


async def main():
    os.makedirs(OUT, exist_ok=True)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
