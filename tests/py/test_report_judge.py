"""Independent judge of `postwire report parse`: Python's standard `email`
package reads the same report files (core/tests/data/reports/*.eml).

Python splits a message/delivery-status part into sub-messages, one per
field group (the first is the per-message group), and a
message/feedback-report part into one sub-message: the CLI must agree with
it on every recipient (Final-Recipient, Action, Status, Diagnostic-Code,
Remote-MTA) and the Reporting-MTA, on the abuse
report's fields, and on the original message's Message-ID (message/rfc822,
or text/rfc822-headers read by Python's HeaderParser). The non-standard
bounces, which Python has no reader for, are held to their expected JSON and
to `--strict` failing on them. Also: `-` reads stdin, and only input that is
not a message at all exits non-zero.

Needs POSTWIRE_BIN (set by scripts/test.sh): the tests fail, not skip,
without it.
"""

import json
import os
import pathlib
import subprocess
from email import policy
from email.parser import BytesParser, HeaderParser

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORTS = ROOT / "core" / "tests" / "data" / "reports"
CASES = sorted(REPORTS.glob("*.eml"))


@pytest.fixture(scope="module")
def postwire():
    """Path of the postwire binary; a clear failure when it is not there."""
    path = os.environ.get("POSTWIRE_BIN")
    if not path:
        pytest.fail("POSTWIRE_BIN is not set: run scripts/test.sh, or export POSTWIRE_BIN=target/debug/postwire")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"POSTWIRE_BIN={path} is not an executable file: build it with cargo build -p postwire-relay --bin postwire")
    return path


def report(postwire, path, *extra, stdin=None):
    proc = subprocess.run([postwire, "report", "parse", *extra, str(path)], input=stdin, capture_output=True, timeout=60)
    return proc


def read(postwire, path):
    proc = report(postwire, path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


def untyped(value):
    """`rfc822; <a@b>` -> `a@b`, as postwire reads typed fields."""
    value = " ".join(str(value).split())
    kind, sep, rest = value.partition(";")
    if sep and kind.strip() and all(c.isalnum() or c in "-." for c in kind.strip()):
        value = rest.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value


def python_report(path):
    msg = BytesParser(policy=policy.compat32).parsebytes(path.read_bytes())
    found = {"recipients": None, "feedback": None, "messageId": None, "reportingMta": None}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status" and found["recipients"] is None:
            groups = part.get_payload()
            found["recipients"] = [
                {
                    "finalRecipient": untyped(g["Final-Recipient"]),
                    "action": str(g["Action"]).split()[0].lower(),
                    "status": str(g["Status"]).split()[0],
                    "diagnosticCode": g["Diagnostic-Code"] and untyped(g["Diagnostic-Code"]),
                    "remoteMta": g["Remote-MTA"] and untyped(g["Remote-MTA"]),
                }
                for g in groups
                if g["Final-Recipient"] is not None
            ]
            first = groups[0] if groups else None
            if first is not None and first["Final-Recipient"] is None:
                found["reportingMta"] = first["Reporting-MTA"] and untyped(first["Reporting-MTA"])
        elif ctype == "message/feedback-report" and found["feedback"] is None:
            fields = part.get_payload(0)
            found["feedback"] = {
                "feedbackType": fields["Feedback-Type"],
                "userAgent": fields["User-Agent"],
                "version": fields["Version"],
                "originalRcptTo": [untyped(v) for v in fields.get_all("Original-Rcpt-To", [])],
                "sourceIp": fields["Source-IP"],
                "reportedDomain": fields.get_all("Reported-Domain", []),
            }
        elif ctype == "message/rfc822" and found["messageId"] is None:
            found["messageId"] = part.get_payload(0)["Message-ID"]
        elif ctype == "text/rfc822-headers" and found["messageId"] is None:
            found["messageId"] = HeaderParser().parsestr(part.get_payload(decode=True).decode())["Message-ID"]
    return found


def test_the_corpus_is_there():
    assert len(CASES) >= 10, f"only {len(CASES)} report case(s) under {REPORTS}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_cli_agrees_with_python_email(postwire, path):
    got = read(postwire, path)
    want = python_report(path)
    if want["recipients"] is not None:
        assert got["kind"] == "delivery"
        assert not got["heuristic"]
        fields = ("finalRecipient", "action", "status", "diagnosticCode", "remoteMta")
        squeeze = lambda v: v if v is None else " ".join(v.split())
        assert [{k: squeeze(r[k]) for k in fields} for r in got["recipients"]] == want["recipients"]
        assert got["reportingMta"] == want["reportingMta"]
    if want["feedback"] is not None:
        assert got["kind"] == "feedback"
        fb = got["feedback"]
        assert {k: fb[k] for k in want["feedback"]} == want["feedback"]
    if want["messageId"] is not None:
        assert got["originalMessageId"] == want["messageId"].strip()
    if want["recipients"] is None and want["feedback"] is None:
        # Python has no reader for these: the expected JSON is the judge.
        expected = json.loads(path.with_suffix(".json").read_text())
        assert got == expected
        if got["heuristic"]:
            assert got["kind"] == "delivery"
            assert any("heuristic" in w for w in got["warnings"])


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_strict_fails_exactly_when_something_was_guessed_or_warned(postwire, path):
    got = read(postwire, path)
    proc = report(postwire, path, "--strict")
    if got["heuristic"] or got["warnings"]:
        assert proc.returncode != 0
        assert b"strict" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def test_stdin_reads_the_same_report(postwire):
    path = REPORTS / "002-rfc3464-multi-recipient.eml"
    proc = report(postwire, "-", stdin=path.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert json.loads(proc.stdout) == read(postwire, path)


def test_only_input_that_is_not_a_message_fails(postwire, tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\nnot a message\n")
    proc = report(postwire, junk)
    assert proc.returncode != 0
    assert b"not an RFC 5322 message" in proc.stderr
    plain = REPORTS / "030-not-a-report.eml"
    got = read(postwire, plain)
    assert got["kind"] == "unknown" and got["warnings"]
