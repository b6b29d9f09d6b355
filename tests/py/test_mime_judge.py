"""Independent judge of postwire's MIME engine: Python's standard `email`
package (policy.default) reads what `postwire build` writes and must find
every field of the spec in it, and `postwire parse` must agree with Python
on the same bytes.

Build side, for every golden spec core/tests/golden/NNN.json:
  - `postwire build --seed 42 --now 1764000000` gives exactly NNN.eml;
  - Python parses the bytes without defects and finds From/Sender/To/Cc/
    Reply-To (display names and addresses), Subject, Date, Message-ID,
    In-Reply-To, References, priority, Disposition-Notification-To, every
    custom header, and no Bcc;
  - the decoded text and HTML bodies (get_body), the alternate views;
  - the multipart structure (mixed > alternative > related) the spec implies;
  - every attachment: file name (RFC 2231 included), content type and
    parameters, disposition, Content-ID and its exact bytes.
Parse side, for the golden inputs (NNN-in.eml), the golden outputs and the
well-formed corpus messages: `postwire parse` and Python agree on the
addresses, subject, date, ids, bodies, attachments and other headers.

Needs POSTWIRE_BIN (set by scripts/test.sh): the tests fail, not skip,
without it.
"""

import base64
import datetime
import json
import os
import pathlib
import re
import subprocess
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "core" / "tests" / "golden"
CORPUS = ROOT / "core" / "tests" / "corpus"
NOW = 1_764_000_000
SEED = 42

BUILD_CASES = sorted(p for p in GOLDEN.glob("*.json") if re.fullmatch(r"\d{3}\.json", p.name))
PARSE_INPUTS = sorted(GOLDEN.glob("*-in.eml"))
# Well-formed corpus messages (charsets, RFC 2047/2231, nesting) where both
# parsers should read the same thing; the broken ones are judged in corpus.rs.
CORPUS_AGREEMENT = [
    CORPUS / n
    for n in (
        "c01-iso-8859-1-qp.eml",
        "c02-iso-8859-2-8bit.eml",
        "c03-iso-8859-15-base64.eml",
        "c05-windows-1251-qp.eml",
        "c06-koi8-r-8bit.eml",
        "c07-shift_jis-base64.eml",
        "c08-iso-2022-jp-7bit.eml",
        "c09-gb2312-base64.eml",
        "c10-gbk-html-qp.eml",
        "c11-big5-8bit.eml",
        "c12-euc-kr-base64.eml",
        "c14-rfc2047-mixed.eml",
        "c15-rfc2231-continuations.eml",
        "c16-nested-multipart.eml",
        "c28-mixed-attachments.eml",
    )
]


@pytest.fixture(scope="session")
def postwire():
    """Path of the postwire binary; a clear failure when it is not there."""
    path = os.environ.get("POSTWIRE_BIN")
    if not path:
        pytest.fail("POSTWIRE_BIN is not set: run scripts/test.sh, or export POSTWIRE_BIN=target/debug/postwire")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"POSTWIRE_BIN={path} is not an executable file: build it with cargo build -p postwire-relay --bin postwire")
    return path


def run(postwire, *args, stdin=None):
    proc = subprocess.run([postwire, *args], input=stdin, capture_output=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(f"postwire {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def build(postwire, spec_path):
    return run(postwire, "build", str(spec_path), "--seed", str(SEED), "--now", str(NOW))


def parse_with_python(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)


def nl(s: str) -> str:
    """Line ends as LF (the spec's normal form)."""
    return s.replace("\r\n", "\n").replace("\r", "\n")


def ws(s: str) -> str:
    """White space runs as one space (header unfolding differs in detail)."""
    return " ".join(str(s).split())


def norm_addr(addr: str) -> str:
    """local@domain with the domain as lower-case A-labels."""
    local, _, domain = addr.rpartition("@")
    if not domain.startswith("["):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain.lower()}"


def spec_mailboxes(values):
    """(display name, address) pairs of the spec's mailbox strings, read by Python."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        pairs = getaddresses([v])
        assert len(pairs) == 1 and pairs[0][1], f"Python cannot read the spec mailbox {v!r}: {pairs}"
        name, addr = pairs[0]
        out.append((name, norm_addr(addr)))
    return out


def header_mailboxes(msg, name):
    """(display name, address) pairs Python finds in a header (all occurrences)."""
    out = []
    for key, raw in msg.raw_items():
        if key.lower() != name.lower():
            continue
        # Read as an address header whatever its name (Python registers
        # Disposition-Notification-To as unstructured).
        unfolded = re.sub(r"\r?\n(?=[ \t])", "", raw)
        for a in policy.default.header_factory("To", unfolded).addresses:
            out.append((a.display_name, norm_addr(a.addr_spec)))
    return out


def essence_and_params(content_type: str):
    """'text/calendar; method=REQUEST' -> ('text/calendar', {'method': 'REQUEST'}), read by Python."""
    m = EmailMessage()
    m["Content-Type"] = content_type
    params = {k.lower(): v for k, v in m.get_params()[1:]}
    return m.get_content_type(), params


def bracket(mid: str) -> str:
    return "<" + mid.strip().strip("<>") + ">"


def leaves_in_order(part):
    """The MIME tree as nested (type, [children]) and the leaf parts in order."""
    ctype = part.get_content_type()
    if ctype.startswith("multipart/"):
        children = list(part.iter_parts())
        subtrees, leaves = [], []
        for c in children:
            t, l = leaves_in_order(c)
            subtrees.append(t)
            leaves.extend(l)
        return (ctype, subtrees), leaves
    return ctype, [part]


def expected_tree(spec):
    """The structure the spec implies, with each leaf's role: ('text',), ('html',), ('alt', i), ('att', i)."""
    atts = spec.get("attachments", [])
    html = "html" in spec
    related = [i for i, a in enumerate(atts) if html and a.get("inline") and a.get("contentId")]
    mixed = [i for i in range(len(atts)) if i not in related]
    att_type = lambda i: essence_and_params(atts[i].get("contentType", "application/octet-stream"))[0]
    views = []
    if "text" in spec:
        views.append(("text/plain", ("text",)))
    if html:
        if related:
            views.append((("multipart/related", [("text/html", ("html",))] + [(att_type(i), ("att", i)) for i in related]), None))
        else:
            views.append(("text/html", ("html",)))
    for i, alt in enumerate(spec.get("alternates", [])):
        views.append((essence_and_params(alt["contentType"])[0], ("alt", i)))
    if not views:
        body = None
    elif len(views) == 1:
        body = views[0]
    else:
        body = (("multipart/alternative", views), None)
    if not mixed:
        return body or ("text/plain", ("empty",))
    parts = ([body] if body else []) + [(att_type(i), ("att", i)) for i in mixed]
    return (("multipart/mixed", parts), None)


def flatten(node):
    """(type tree without roles, [roles of the leaves in order])."""
    head, role = node
    if isinstance(head, tuple):
        ctype, children = head
        trees, roles = [], []
        for c in children:
            t, r = flatten(c)
            trees.append(t)
            roles.extend(r)
        return (ctype, trees), roles
    return head, [role]


def all_defects(msg):
    return [(p.get_content_type(), d) for p in msg.walk() for d in p.defects]


# ---------------------------------------------------------------- build side


def test_the_golden_cases_exist():
    assert len(BUILD_CASES) >= 10, f"too few golden build cases in {GOLDEN}"
    assert len(PARSE_INPUTS) >= 3, f"too few golden parse inputs in {GOLDEN}"


@pytest.mark.parametrize("spec_path", BUILD_CASES, ids=lambda p: p.stem)
def test_build_gives_the_golden_bytes(postwire, spec_path):
    out = build(postwire, spec_path)
    expected = spec_path.with_suffix(".eml").read_bytes()
    assert out == expected, f"postwire build {spec_path.name} differs from {spec_path.stem}.eml"
    assert b"\r\n" in out and re.search(rb"(?<!\r)\n", out) is None, "bare LF in the output"
    assert max(len(l) for l in out.split(b"\r\n")) <= 998, "a line over 998 octets"


@pytest.mark.parametrize("spec_path", BUILD_CASES, ids=lambda p: p.stem)
def test_python_reads_the_headers(postwire, spec_path):
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    raw = build(postwire, spec_path)
    msg = parse_with_python(raw)
    assert all_defects(msg) == [], f"Python found defects: {all_defects(msg)}"

    assert header_mailboxes(msg, "From") == spec_mailboxes(spec["from"])
    assert header_mailboxes(msg, "Sender") == spec_mailboxes(spec.get("sender"))
    assert header_mailboxes(msg, "To") == spec_mailboxes(spec.get("to"))
    assert header_mailboxes(msg, "Cc") == spec_mailboxes(spec.get("cc"))
    assert header_mailboxes(msg, "Reply-To") == spec_mailboxes(spec.get("replyTo"))
    assert header_mailboxes(msg, "Disposition-Notification-To") == spec_mailboxes(spec.get("dispositionNotificationTo"))

    # Bcc never goes out, neither as a header nor as an address anywhere.
    assert "Bcc" not in msg
    for _, addr in spec_mailboxes(spec.get("bcc")):
        assert addr.encode() not in raw, f"Bcc address {addr} leaked into the bytes"

    if spec.get("subject"):
        assert str(msg["Subject"]) == spec["subject"]
    else:
        assert "Subject" not in msg

    date = msg["Date"].datetime
    if "date" in spec:
        want = datetime.datetime.fromisoformat(spec["date"])
        assert date == want and date.utcoffset() == want.utcoffset(), f"{msg['Date']} vs {spec['date']}"
    else:
        assert date == datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc)

    mid = str(msg["Message-ID"])
    if "messageId" in spec:
        assert mid == bracket(spec["messageId"])
    else:
        from_domain = spec_mailboxes(spec["from"])[0][1].rpartition("@")[2]
        assert re.fullmatch(rf"<[^<>@\s]+@{re.escape(from_domain)}>", mid), mid
    if "inReplyTo" in spec:
        assert str(msg["In-Reply-To"]) == bracket(spec["inReplyTo"])
    else:
        assert "In-Reply-To" not in msg
    if spec.get("references"):
        assert ws(msg["References"]).split(" ") == [bracket(r) for r in spec["references"]]
    else:
        assert "References" not in msg

    priority = spec.get("priority", "normal")
    if priority == "normal":
        assert "X-Priority" not in msg and "Importance" not in msg
    else:
        assert str(msg["X-Priority"]).startswith("1" if priority == "high" else "5")
        assert str(msg["Importance"]).lower() == priority

    for name, value in spec.get("headers", []):
        assert [ws(v) for v in msg.get_all(name) or []] == [ws(value)], f"header {name}"


@pytest.mark.parametrize("spec_path", BUILD_CASES, ids=lambda p: p.stem)
def test_python_reads_the_structure_bodies_and_attachments(postwire, spec_path):
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    msg = parse_with_python(build(postwire, spec_path))

    want_tree, roles = flatten(expected_tree(spec))
    got_tree, leaves = leaves_in_order(msg)
    assert got_tree == want_tree, "multipart structure"
    assert len(leaves) == len(roles)

    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    if "text" in spec:
        assert plain is not None and nl(plain.get_content()) == nl(spec["text"])
    else:
        assert plain is None or plain.get_content_type() != "text/plain" or plain.get_content() == ""
    if "html" in spec:
        assert html is not None and nl(html.get_content()) == nl(spec["html"])
    else:
        assert html is None or html.get_content_type() != "text/html"

    atts = spec.get("attachments", [])
    alts = spec.get("alternates", [])
    seen = set()
    for part, role in zip(leaves, roles):
        kind = role[0]
        if kind == "text":
            assert part is plain
        elif kind == "html":
            assert part is html
        elif kind == "empty":
            assert part.get_content() == ""
        elif kind == "alt":
            alt = alts[role[1]]
            essence, params = essence_and_params(alt["contentType"])
            assert part.get_content_type() == essence
            for k, v in params.items():
                assert part.get_param(k) == v, f"alternate {essence}: parameter {k}"
            assert part.get_content_disposition() is None
            assert nl(part.get_content()) == nl(alt["content"])
        else:
            i = role[1]
            seen.add(i)
            a = atts[i]
            essence, params = essence_and_params(a.get("contentType", "application/octet-stream"))
            assert part.get_content_type() == essence, f"attachments[{i}]"
            for k, v in params.items():
                assert str(part.get_param(k)).lower() == v.lower(), f"attachments[{i}]: parameter {k}"
            assert part.get_filename() == a.get("filename"), f"attachments[{i}]: file name"
            assert part.get_content_disposition() == ("inline" if a.get("inline") else "attachment")
            if a.get("contentId"):
                assert str(part["Content-ID"]) == bracket(a["contentId"])
            else:
                assert "Content-ID" not in part
            want = base64.b64decode(a["content"])
            if essence == "message/rfc822":
                inner = part.get_payload(0)
                original = parse_with_python(want)
                for h in ("From", "To", "Subject", "Date", "Message-ID"):
                    assert str(inner[h]) == str(original[h]), f"attachments[{i}]: inner {h}"
                assert nl(inner.get_content()) == nl(original.get_content())
            else:
                assert part.get_payload(decode=True) == want, f"attachments[{i}]: bytes"
    assert seen == set(range(len(atts))), "every attachment is in the message once"


def test_cli_streams_and_output_file(postwire, tmp_path):
    spec_path = GOLDEN / "005.json"
    expected = (GOLDEN / "005.eml").read_bytes()
    stdin_out = run(postwire, "build", "-", "--seed", str(SEED), "--now", str(NOW), stdin=spec_path.read_bytes())
    assert stdin_out == expected
    out = tmp_path / "out.eml"
    assert run(postwire, "build", str(spec_path), "-o", str(out), "--seed", str(SEED), "--now", str(NOW)) == b""
    assert out.read_bytes() == expected
    assert run(postwire, "parse", "-", stdin=expected) == run(postwire, "parse", str(GOLDEN / "005.eml"))


def test_seed_and_now_change_only_what_they_own(postwire):
    spec_path = GOLDEN / "010.json"  # no date, no message id
    a = build(postwire, spec_path)
    b = run(postwire, "build", str(spec_path), "--seed", str(SEED + 1), "--now", str(NOW + 86400))
    ma, mb = parse_with_python(a), parse_with_python(b)
    assert ma["Message-ID"] != mb["Message-ID"]
    assert mb["Date"].datetime - ma["Date"].datetime == datetime.timedelta(days=1)
    assert ma.get_content() == mb.get_content()


# ---------------------------------------------------------------- parse side


def parts_of_this_message(part):
    """Every leaf part, not descending into attached messages."""
    if part.get_content_type().startswith("multipart/"):
        for child in part.iter_parts():
            yield from parts_of_this_message(child)
    else:
        yield part


def python_view(data: bytes):
    """The fields of a message as Python reads them, in the spec's terms."""
    msg = parse_with_python(data)
    view = {
        "from": header_mailboxes(msg, "From")[:1],
        "to": header_mailboxes(msg, "To"),
        "cc": header_mailboxes(msg, "Cc"),
        "replyTo": header_mailboxes(msg, "Reply-To"),
        "subject": str(msg["Subject"]) if msg["Subject"] is not None and str(msg["Subject"]) else None,
        "messageId": bracket(str(msg["Message-ID"])) if msg["Message-ID"] else None,
        "inReplyTo": bracket(str(msg["In-Reply-To"])) if msg["In-Reply-To"] else None,
        "references": ws(msg["References"]).split(" ") if msg["References"] else [],
    }
    date = msg["Date"]
    view["date"] = date.datetime if date is not None and date.datetime else None
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    view["text"] = nl(plain.get_content()) if plain is not None and plain.get_content_type() == "text/plain" else None
    view["html"] = nl(html.get_content()) if html is not None and html.get_content_type() == "text/html" else None
    files = {}
    for part in parts_of_this_message(msg):
        name = part.get_filename()
        if name is None:
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload(0)
            files[name] = ("message", str(inner["Subject"]), str(inner["Message-ID"]))
        else:
            files[name] = ("bytes", part.get_payload(decode=True))
    view["files"] = files
    return msg, view


def ours_view(spec):
    view = {
        "from": spec_mailboxes(spec.get("from"))[:1],
        "to": spec_mailboxes(spec.get("to")),
        "cc": spec_mailboxes(spec.get("cc")),
        "replyTo": spec_mailboxes(spec.get("replyTo")),
        "subject": spec.get("subject"),
        "messageId": spec.get("messageId"),
        "inReplyTo": spec.get("inReplyTo"),
        "references": spec.get("references", []),
        "date": datetime.datetime.fromisoformat(spec["date"]) if "date" in spec else None,
        "text": spec.get("text"),
        "html": spec.get("html"),
    }
    files = {}
    for a in spec.get("attachments", []):
        if a.get("filename") is None:
            continue
        content = base64.b64decode(a["content"])
        if a.get("contentType", "").startswith("message/rfc822"):
            inner = parse_with_python(content)
            files[a["filename"]] = ("message", str(inner["Subject"]), str(inner["Message-ID"]))
        else:
            files[a["filename"]] = ("bytes", content)
    view["files"] = files
    return view


AGREEMENT_INPUTS = PARSE_INPUTS + [p.with_suffix(".eml") for p in BUILD_CASES] + CORPUS_AGREEMENT


@pytest.mark.parametrize("eml", AGREEMENT_INPUTS, ids=lambda p: p.name)
def test_postwire_parse_agrees_with_python(postwire, eml):
    data = eml.read_bytes()
    spec = json.loads(run(postwire, "parse", str(eml)))
    msg, theirs = python_view(data)
    ours = ours_view(spec)
    # White space inside display names is compared as single spaces: Python
    # keeps the space between adjacent encoded words that RFC 2047 6.2 drops.
    for view in (ours, theirs):
        for field in ("from", "to", "cc", "replyTo"):
            view[field] = [(ws(n), a) for n, a in view[field]]
    for field in ("from", "to", "cc", "replyTo", "subject", "messageId", "inReplyTo", "references", "text", "html", "files"):
        assert ours[field] == theirs[field], f"{eml.name}: {field}"
    if theirs["date"] is not None or ours["date"] is not None:
        assert ours["date"] == theirs["date"] and ours["date"].utcoffset() == theirs["date"].utcoffset(), f"{eml.name}: date"
    # Every other header we keep has the value Python reads (in order per name).
    kept = {}
    for name, value in spec.get("headers", []):
        kept.setdefault(name.lower(), []).append(ws(value))
    for name, values in kept.items():
        assert [ws(v) for v in msg.get_all(name)] == values, f"{eml.name}: header {name}"
