"""Independent judge of messages the composer page sent (tests/js/web-browser.test.mjs).

Reads one .eml with Python's own email package (the iCalendar part with the
`icalendar` package, a winmail.dat with `tnefparse`) and prints what the test
checks, as JSON:
  python web_judge.py FILE.eml [WINMAIL_OUT]
With WINMAIL_OUT, the first application/ms-tnef part is also written there.
Nothing of postwire is used here.
"""

import datetime
import json
import sys
from email import policy
from email.parser import BytesParser

import icalendar
from tnefparse import TNEF


def attendees_of(ev):
    a = ev.get("ATTENDEE")
    if a is None:
        return []
    return a if isinstance(a, list) else [a]


def main(path, winmail_out=None):
    with open(path, "rb") as f:
        raw = f.read()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    parts = []
    for part in msg.walk():
        entry = {
            "type": part.get_content_type(),
            "disposition": part.get_content_disposition(),
            "filename": part.get_filename(),
            "cid": part.get("Content-ID"),
        }
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            entry["size"] = len(payload)
            entry["hex"] = payload[:64].hex()
            if part.get_content_maintype() == "text":
                entry["text"] = payload.decode(part.get_content_charset() or "utf-8", "replace")
        if part.get_content_type() == "text/calendar":
            entry["method_param"] = part.get_param("method")
            cal = icalendar.Calendar.from_ical(entry["text"])
            def utc(prop):
                if prop is None or not isinstance(prop.dt, datetime.datetime) or prop.dt.tzinfo is None:
                    return None
                return prop.dt.astimezone(datetime.timezone.utc).isoformat()

            events = []
            for ev in cal.walk("VEVENT"):
                start = ev.get("DTSTART")
                end = ev.get("DTEND")
                events.append({
                    "summary": str(ev.get("SUMMARY")),
                    "location": str(ev.get("LOCATION") or ""),
                    "start": start.dt.isoformat() if start else None,
                    "start_tzid": start.params.get("TZID") if start else None,
                    "end": end.dt.isoformat() if end else None,
                    "start_utc": utc(start),
                    "end_utc": utc(end),
                    "organizer": str(ev.get("ORGANIZER") or ""),
                    "attendees": [str(a) for a in attendees_of(ev)],
                    "attendee_roles": {str(a).lower().replace("mailto:", ""): str(a.params.get("ROLE", "REQ-PARTICIPANT")) for a in attendees_of(ev)},
                    "tzid": start.params.get("TZID") if start else None,
                })
            entry["calendar"] = {"method": str(cal.get("METHOD") or ""), "events": events}
        if part.get_content_type() == "application/ms-tnef":
            raw_tnef = part.get_payload(decode=True)
            t = TNEF(raw_tnef)
            entry["tnef"] = {
                "attachments": sorted(a.long_filename() or a.name for a in t.attachments),
                "subject": str(getattr(t, "subject", "") or ""),
            }
            if winmail_out:
                with open(winmail_out, "wb") as f:
                    f.write(raw_tnef)
                winmail_out = None
        parts.append(entry)
    out = {
        "from": str(msg["From"] or ""),
        "to": str(msg["To"] or ""),
        "cc": str(msg["Cc"] or ""),
        "bcc_header": msg["Bcc"] is not None,
        "subject": str(msg["Subject"] or ""),
        "message_id": str(msg["Message-ID"] or ""),
        "in_reply_to": str(msg["In-Reply-To"] or ""),
        "defects": [type(d).__name__ for p in msg.walk() for d in p.defects],
        "structure": [p.get_content_type() for p in msg.walk()],
        "parts": parts,
        "size": len(raw),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
