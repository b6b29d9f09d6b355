#!/usr/bin/env python3
"""Writes the hand-written corpus messages of core/tests/corpus/*.eml.

Each message below is written out by hand as text; this script only turns the
text into the bytes a real mailer would send (charset encoders, base64,
quoted-printable), because bytes in Shift_JIS or KOI8-R cannot be typed into a
source file. The .eml files are committed: the Rust test (corpus.rs) reads
them and never runs this script. Rerun it only to change the corpus:

    python3 core/tests/corpus/make_corpus.py

Line ends: the files are written with CRLF (as on the wire) unless a case says
otherwise; corpus.rs also parses every file with LF and CRLF line ends.
"""

import base64
import os
import quopri
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(data: bytes, width: int = 76) -> str:
    s = base64.b64encode(data).decode("ascii")
    return "\n".join(s[i : i + width] for i in range(0, len(s), width))


def qp(data: bytes) -> str:
    return quopri.encodestring(data).decode("ascii")


def ew(text: str, charset: str, kind: str = "B") -> str:
    """One RFC 2047 encoded word."""
    raw = text.encode(charset)
    if kind == "B":
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    out = []
    for byte in raw:
        c = chr(byte)
        if c == " ":
            out.append("_")
        elif c.isalnum() and byte < 128:
            out.append(c)
        else:
            out.append(f"={byte:02X}")
    return f"=?{charset}?Q?{''.join(out)}?="


def write(name: str, parts: list, crlf: bool = True) -> None:
    """parts: str (ASCII text, line ends LF) and bytes (raw, written as is)."""
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode("ascii")
            if crlf:
                p = p.replace(b"\n", b"\r\n")
        elif crlf:
            p = p.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out += p
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(out)


def headers(subject: str, frm: str, extra: str = "") -> str:
    return (
        f"From: {frm}\nTo: corpus@example.org\nSubject: {subject}\n"
        "Date: Mon, 2 Nov 2026 10:00:00 +0000\n"
        f"Message-ID: <{zlib.crc32(subject.encode()):08x}@corpus.example>\n{extra}MIME-Version: 1.0\n"
    )


# --- single-byte charsets -------------------------------------------------

t = "Café crème, déjà vu, naïve façade — no: 'Ça coûte 5 €' is not Latin-1.\nÀ bientôt!\n"
t1 = t.replace(" — no: 'Ça coûte 5 €' is not Latin-1.", ".")
write("c01-iso-8859-1-qp.eml", [
    headers(ew("Café crème à la carte", "iso-8859-1", "Q"), ew("Hélène Dupré", "iso-8859-1", "Q") + " <helene@example.fr>"),
    "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n",
    qp(t1.encode("iso-8859-1")),
])

pl = "Zażółć gęślą jaźń.\nŁódź, Kraków, Gdańsk.\n"
write("c02-iso-8859-2-8bit.eml", [
    headers(ew("Żółta łódź", "iso-8859-2", "B"), ew("Paweł", "iso-8859-2", "Q") + " <pawel@example.pl>"),
    "Content-Type: text/plain; charset=iso-8859-2\nContent-Transfer-Encoding: 8bit\n\n",
    pl.encode("iso-8859-2"),
])

eu = "Preis: 100 € (Œuvre, Šeštak, Žižek, Ÿ)\n"
write("c03-iso-8859-15-base64.eml", [
    headers(ew("Rechnung über 100 €", "iso-8859-15", "Q"), "kasse@example.de"),
    "Content-Type: text/plain; charset=\"iso-8859-15\"\nContent-Transfer-Encoding: base64\n\n",
    b64(eu.encode("iso-8859-15")) + "\n",
])

cp = "“Smart quotes” and ‘single’ – en dash — em dash… ellipsis € euro ™\n"
write("c04-windows-1252-8bit-raw-header.eml", [
    b"From: Sales <sales@example.com>\nTo: corpus@example.org\nSubject: Caf\xe9 \x93Special\x94 offer\n",
    "Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <c04@corpus.example>\nMIME-Version: 1.0\n",
    "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\n",
    cp.encode("cp1252"),
])

ru = "Здравствуйте!\nСчёт № 42 прилагается.\n"
write("c05-windows-1251-qp.eml", [
    headers(ew("Счёт на оплату", "windows-1251", "Q"), ew("Иван Петров", "windows-1251", "B") + " <ivan@example.ru>"),
    "Content-Type: text/plain; charset=\"windows-1251\"\nContent-Transfer-Encoding: quoted-printable\n\n",
    qp(ru.encode("cp1251")),
])

koi = "Привет из Москвы!\nЁлки-палки.\n"
write("c06-koi8-r-8bit.eml", [
    headers(ew("Привет", "koi8-r", "B"), ew("Ольга", "koi8-r", "Q") + " <olga@example.ru>"),
    "Content-Type: text/plain; charset=KOI8-R\nContent-Transfer-Encoding: 8bit\n\n",
    koi.encode("koi8_r"),
])

# --- multi-byte charsets --------------------------------------------------

sj = "お世話になっております。\n見積書を添付いたします。\n"
write("c07-shift_jis-base64.eml", [
    headers(ew("お見積りの件", "shift_jis", "B"), ew("山田太郎", "shift_jis", "B") + " <yamada@example.jp>"),
    "Content-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: base64\n\n",
    b64(sj.encode("shift_jis")) + "\n",
])

jis = "こんにちは、世界。\n日本語の電子メールです。\n"
write("c08-iso-2022-jp-7bit.eml", [
    headers(ew("日本語の件名", "iso-2022-jp", "B"), ew("鈴木花子", "iso-2022-jp", "B") + " <suzuki@example.jp>"),
    "Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n",
    jis.encode("iso2022_jp").decode("ascii"),
])

gb = "你好，世界！\n会议在星期三。\n"
write("c09-gb2312-base64.eml", [
    headers(ew("会议通知", "gb2312", "B"), ew("王小明", "gb2312", "B") + " <wang@example.cn>"),
    "Content-Type: text/plain; charset=\"gb2312\"\nContent-Transfer-Encoding: base64\n\n",
    b64(gb.encode("gb2312")) + "\n",
])

gbk = "欢迎使用：镕基、喆、堃（GBK 扩展字）。\n"
write("c10-gbk-html-qp.eml", [
    headers(ew("扩展字测试", "gbk", "B"), "gbk@example.cn"),
    "Content-Type: text/html; charset=GBK\nContent-Transfer-Encoding: quoted-printable\n\n",
    qp(("<p>" + gbk.strip() + "</p>\n").encode("gbk")),
])

big5 = "您好，這是繁體中文郵件。\n臺灣、香港。\n"
write("c11-big5-8bit.eml", [
    headers(ew("繁體中文", "big5", "B"), ew("陳大文", "big5", "B") + " <chan@example.tw>"),
    "Content-Type: text/plain; charset=big5\nContent-Transfer-Encoding: 8bit\n\n",
    big5.encode("big5"),
])

kr = "안녕하세요.\n회의는 목요일입니다.\n"
write("c12-euc-kr-base64.eml", [
    headers(ew("회의 안내", "euc-kr", "B"), ew("김민수", "euc-kr", "B") + " <kim@example.kr>"),
    "Content-Type: text/plain; charset=EUC-KR\nContent-Transfer-Encoding: base64\n\n",
    b64(kr.encode("euc_kr")) + "\n",
])

u7 = "Hi Mom -☺-! A≢Α. 日本語\n"
write("c13-utf-7.eml", [
    headers(ew("UTF-7 ☺ test", "utf-7", "B"), "legacy@example.com"),
    "Content-Type: text/plain; charset=UTF-7\nContent-Transfer-Encoding: 7bit\n\n",
    u7.encode("utf-7").decode("ascii"),
])

# --- RFC 2047 and RFC 2231 ------------------------------------------------

write("c14-rfc2047-mixed.eml", [
    "From: =?UTF-8?Q?Andr=C3=A9?= =?ISO-8859-1?Q?_M=FCller?= <andre@example.com>\n",
    "To: =?utf-8?b?5bGx55Sw?= <yamada@example.jp>, \"Plain, Name\" <plain@example.com>,\n"
    " =?iso-8859-1?q?J=F6rg?= <joerg@example.de>\n",
    "Cc: undisclosed-recipients:;\n",
    "Subject: =?UTF-8?B?8J+OiSBQYXJ0eQ==?= =?UTF-8?Q?_tonight_=E2=80=94?=\n"
    "   =?ISO-8859-1?Q?_=E0_bient=F4t?= (and plain text) =?utf-8?q?x=3Fy?=\n",
    "Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <c14@corpus.example>\n",
    "X-Broken-Word: =?utf-8?q?never closed\n",
    "X-Unknown-Charset: =?x-no-such-charset?q?abc?=\n",
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nbody\n",
])

pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
write("c15-rfc2231-continuations.eml", [
    headers("RFC 2231 file names", "files@example.com"),
    "Content-Type: multipart/mixed; boundary=\"b15\"\n\n",
    "--b15\nContent-Type: text/plain; charset=us-ascii\n\nThree attachments with encoded names.\n",
    "--b15\n",
    "Content-Type: application/pdf;\n name*0*=UTF-8''Sehr%20langer%20Dateiname%20mit%20%C3%9Cmlauten%20;\n name*1*=%C3%A4%C3%B6%C3%BC%20und%20mehr.pdf\n",
    "Content-Disposition: attachment;\n filename*0*=UTF-8''Sehr%20langer%20Dateiname%20mit%20%C3%9Cmlauten%20;\n filename*1*=%C3%A4%C3%B6%C3%BC%20und%20mehr.pdf\n",
    "Content-Transfer-Encoding: base64\n\n", b64(pdf) + "\n",
    "--b15\n",
    "Content-Type: text/plain; charset=us-ascii\n",
    "Content-Disposition: attachment;\n filename*0=\"a-plain-name-split-\";\n filename*1=\"over-two-lines.txt\"\n",
    "Content-Transfer-Encoding: 7bit\n\nplain continuation\n",
    "--b15\n",
    "Content-Type: application/octet-stream\n",
    "Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.bin\n",
    "Content-Transfer-Encoding: base64\n\n", b64(bytes(range(16))) + "\n",
    "--b15--\n",
])

# --- structure ------------------------------------------------------------

png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
inner = (
    "From: Inner Sender <inner@example.net>\nTo: someone@example.org\nSubject: Inner subject\n"
    "Date: Sun, 1 Nov 2026 08:00:00 +0000\nMessage-ID: <inner.c16@example.net>\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"inner-b\"\n\n"
    "--inner-b\nContent-Type: text/plain; charset=utf-8\n\nInner body text.\n"
    "--inner-b\nContent-Type: text/plain; name=\"inner.txt\"\nContent-Disposition: attachment; filename=\"inner.txt\"\n\n"
    "inner attachment\n--inner-b--\n"
)
write("c16-nested-multipart.eml", [
    headers("Nested structure", "Nest <nest@example.com>"),
    "Content-Type: multipart/mixed; boundary=\"L1\"\n\nPreamble to be ignored.\n",
    "--L1\nContent-Type: multipart/alternative; boundary=\"L2\"\n\n",
    "--L2\nContent-Type: text/plain; charset=utf-8\n\nOuter plain text.\n",
    "--L2\nContent-Type: multipart/related; boundary=\"L3\"; type=\"text/html\"\n\n",
    "--L3\nContent-Type: text/html; charset=utf-8\n\n<p>Outer <b>HTML</b> <img src=\"cid:dot@nest\"></p>\n",
    "--L3\nContent-Type: image/png\nContent-ID: <dot@nest>\nContent-Transfer-Encoding: base64\n\n", b64(png) + "\n",
    "--L3--\n\n--L2--\n",
    "--L1\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"inner.eml\"\n\n",
    inner,
    "\n--L1\nContent-Type: application/pdf; name=\"doc.pdf\"\nContent-Disposition: attachment; filename=\"doc.pdf\"\nContent-Transfer-Encoding: base64\n\n",
    b64(pdf) + "\n",
    "--L1--\nEpilogue to be ignored.\n",
])

write("c17-broken-headers.eml", [
    " leading continuation line without a header\n",
    "From: Broken Sender <broken@example.com>\n",
    "This line has no colon at all\n",
    "To: not-an-address, good@example.org, \"Unclosed <x@example.org>\n",
    "Subject: first subject\n",
    "Subject: second subject wins?\n",
    "Date: not a date at all\n",
    "Message-ID: no-brackets@example.com\n",
    "X-Empty:\n",
    "X-Folded: one\n\ttwo\n   three\n",
    "Content-Type: text/plain; charset=utf-8\n\n",
    "Body survives broken headers.\n",
])

write("c18-missing-final-boundary.eml", [
    headers("Truncated multipart", "trunc@example.com"),
    "Content-Type: multipart/mixed; boundary=\"never-closed\"\n\n",
    "--never-closed\nContent-Type: text/plain; charset=utf-8\n\nFirst part text.\n",
    "--never-closed\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"cut.bin\"\nContent-Transfer-Encoding: base64\n\n",
    "AAECAwQFBgcI\nCQoLDA0ODw==\n",
])

write("c19-no-boundary-param.eml", [
    headers("Multipart without boundary", "nob@example.com"),
    "Content-Type: multipart/mixed\n\n",
    "--whatever\nContent-Type: text/plain\n\nThis multipart declares no boundary.\n--whatever--\n",
])

write("c20-raw-utf8-headers.eml", [
    "From: ".encode() + "Ségolène Zoë 山田 <segolene@example.fr>\n".encode("utf-8"),
    b"To: corpus@example.org\n",
    "Subject: Raw UTF-8 header — RFC 6532 ✓\n".encode("utf-8"),
    "Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <c20@corpus.example>\nMIME-Version: 1.0\n",
    "X-Raw: ".encode() + "naïve\n".encode("utf-8"),
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
    "Body in UTF-8: ✓ 🎉\n".encode("utf-8"),
])

long_line = "".join(f"{i % 10}" for i in range(100_000))
write("c21-very-long-lines.eml", [
    headers("Very long lines", "long@example.com", "X-Long: " + " ".join(["word"] * 1500) + "\n"),
    "Content-Type: multipart/alternative; boundary=\"lng\"\n\n",
    "--lng\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n",
    "start\n" + long_line + "\nend\n",
    "--lng\nContent-Type: text/html; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n",
    "<p>" + ("x" * 75 + "=\n") * 2000 + "</p>\n",
    "--lng--\n",
])

write("c22-empty-parts.eml", [
    headers("Empty parts", "empty@example.com"),
    "Content-Type: multipart/mixed; boundary=\"e\"\n\n",
    "--e\nContent-Type: text/plain; charset=utf-8\n\n",
    "--e\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=\"empty.txt\"\n\n",
    "--e\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"empty.bin\"\nContent-Transfer-Encoding: base64\n\n",
    "--e\nContent-Type: multipart/alternative; boundary=\"inner-empty\"\n\n--inner-empty--\n",
    "--e--\n",
])

binary = bytes([0, 1, 2, 13, 10, 13, 0, 255, 254, 10, 10, 13]) + b"tail"
write("c23-binary-transfer-encoding.eml", [
    headers("Binary part", "bin@example.com").encode("ascii"),
    b"Content-Type: multipart/mixed; boundary=\"bin\"\r\n\r\n",
    b"--bin\r\nContent-Type: text/plain\r\n\r\nBinary attachment follows.\r\n",
    b"--bin\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"raw.bin\"\r\nContent-Transfer-Encoding: binary\r\n\r\n",
    binary,
    b"\r\n--bin--\r\n",
], crlf=False)

write("c24-bad-encodings.eml", [
    headers("Sloppy encodings", "sloppy@example.com"),
    "Content-Type: multipart/mixed; boundary=\"s\"\n\n",
    "--s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n",
    "Soft=\nbreak, bad escape =ZZ and =4 end, lower =c3=a9, trailing =\n",
    "--s\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"nopad.bin\"\nContent-Transfer-Encoding: base64\n\n",
    "AAEC AwQF\n  BgcI\nCQ\n",
    "--s\nContent-Type: text/plain; charset=x-no-such-charset\nContent-Disposition: attachment; filename=\"odd.txt\"\n\n",
    "unknown charset but ASCII text\n",
    "--s--\n",
])

write("c25-headers-only.eml", [
    "From: only@example.com\nTo: corpus@example.org\nSubject: Headers only\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n",
])

deep = 40
nest = [headers("Deeply nested", "deep@example.com")]
for i in range(deep):
    nest.append(f"Content-Type: multipart/mixed; boundary=\"d{i}\"\n\n--d{i}\n")
nest.append("Content-Type: text/plain\n\nbottom of the well\n")
for i in reversed(range(deep)):
    nest.append(f"--d{i}--\n")
write("c26-deep-nesting.eml", nest)

write("c27-8bit-no-charset-lf.eml", [
    b"From: Latin <latin@example.com>\nTo: corpus@example.org\nSubject: no charset\n",
    b"Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <c27@corpus.example>\n\n",
    "UTF-8 body without MIME headers: grüße ✓\n".encode("utf-8"),
], crlf=False)

write("c28-mixed-attachments.eml", [
    headers("Attachments of many kinds", "Files <files@example.com>"),
    "Content-Type: multipart/mixed; boundary=\"m\"\n\n",
    "--m\nContent-Type: text/html; charset=utf-8\n\n<p>see attachments</p>\n",
    "--m\nContent-Type: image/png; name=\"image.png\"\nContent-Transfer-Encoding: base64\n\n", b64(png) + "\n",
    "--m\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n\n",
    b64(b"\x78\x9f\x3e\x22" + bytes(60)) + "\n",
    "--m\nContent-Type: text/calendar; method=REQUEST; charset=utf-8; name=\"invite.ics\"\nContent-Disposition: attachment; filename=\"invite.ics\"\nContent-Transfer-Encoding: 7bit\n\n",
    "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n",
    "--m\nContent-Type: text/plain; charset=iso-8859-1; name=\"latin1.txt\"\nContent-Disposition: attachment; filename=\"latin1.txt\"\nContent-Transfer-Encoding: quoted-printable\n\n",
    "caf=E9\n",
    "--m--\n",
])
