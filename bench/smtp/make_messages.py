"""Writes COUNT messages of SIZE bytes (CRLF lines) into DIR as NNNNN.eml, or
one message of SIZE bytes into FILE: the inputs of bench/smtp/run.sh.
  python3 make_messages.py DIR COUNT SIZE
  python3 make_messages.py --one FILE SIZE
"""
import os
import sys


def message(n, size):
    head = (
        "From: Ana <a@example.com>\r\nTo: b@example.org\r\nSubject: bench %d\r\n"
        "Message-ID: <%d@bench.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n" % (n, n)
    ).encode()
    line = (b"%d " % n) + b"x" * 72 + b"\r\n"
    body = bytearray()
    while len(head) + len(body) + len(line) <= size - 5:
        body += line
    body += b"." * max(0, size - len(head) - len(body) - 2) + b"\r\n"
    return head + bytes(body)


if sys.argv[1] == "--one":
    path, size = sys.argv[2], int(sys.argv[3])
    with open(path, "wb") as f:
        head = message(0, 1024)
        f.write(head)
        chunk = (b"y" * 76 + b"\r\n") * 13000  # ~1 MB
        written = len(head)
        while written + len(chunk) <= size:
            f.write(chunk)
            written += len(chunk)
else:
    d, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        with open(os.path.join(d, "%05d.eml" % i), "wb") as f:
            f.write(message(i, size))
