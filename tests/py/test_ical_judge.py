"""Python's `icalendar` judges postwire's iCalendar output and input.

Needs POSTWIRE_BIN (the debug `postwire` binary) and the `icalendar` package
(scripts/setup.d/40-ical.sh); a missing one FAILS the suite, it never skips.

    POSTWIRE_BIN=target/debug/postwire .venv/bin/python -m pytest -q tests/py/test_ical_judge.py
"""

import datetime as dt
import email
import email.policy
import json
import os
import pathlib
import subprocess
import zoneinfo

import icalendar  # the judge: an ImportError here fails the run
from dateutil.rrule import rrulestr

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "core" / "tests" / "data" / "ical"
MADRID = zoneinfo.ZoneInfo("Europe/Madrid")
UTC = dt.timezone.utc


def postwire(*args, stdin=None, ok=True):
    binary = os.environ.get("POSTWIRE_BIN")
    assert binary, "POSTWIRE_BIN must point at the postwire binary (cargo build -p postwire-relay)"
    assert os.access(binary, os.X_OK), f"POSTWIRE_BIN={binary} is not executable"
    run = subprocess.run([binary, *map(str, args)], input=stdin, capture_output=True)
    if ok:
        assert run.returncode == 0, run.stderr.decode()
    return run


def calendar_parts(eml: bytes):
    msg = email.message_from_bytes(eml, policy=email.policy.default)
    parts = {}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("text/calendar", "application/ics"):
            parts.setdefault(ctype, []).append(part)
    return msg, parts


def judged(ics: bytes):
    """Parses with icalendar and asserts that no component filed an error."""
    cal = icalendar.Calendar.from_ical(ics)
    for comp in cal.walk():
        assert comp.errors == [], f"{comp.name}: {comp.errors}"
    for line in ics.split(b"\r\n"):
        assert len(line) <= 75, line
    line_ends = ics.count(b"\n")
    assert ics.count(b"\r\n") == line_ends, "every line must end in CRLF"
    return cal


WEEKLY_MADRID = {
    "from": "Ana Núñez <ana@example.com>",
    "to": ["Björn Müller <bjorn@example.de>", "carl@example.org"],
    "subject": "Reunión semanal",
    "messageId": "<weekly-madrid@example.com>",
    "calendar": {
        "method": "REQUEST",
        "uid": "weekly-madrid-1@example.com",
        "sequence": 0,
        "start": "2026-12-01T10:00:00",
        "end": "2026-12-01T11:30:00",
        "timeZone": "Europe/Madrid",
        "allDay": False,
        "summary": "Reunión semanal; planificación, «Q1»",
        "description": "Orden del día:\n1. Cifras\n2. Presupuesto 2027",
        "location": "Sala Goya, planta 3",
        "organizer": "Ana Núñez <ana@example.com>",
        "attendees": [
            {"email": "bjorn@example.de", "name": "Björn Müller", "role": "REQ-PARTICIPANT",
             "partstat": "NEEDS-ACTION", "rsvp": True},
            {"email": "carl@example.org", "name": "Carl, Jr.", "role": "OPT-PARTICIPANT",
             "partstat": "NEEDS-ACTION", "rsvp": True},
        ],
        "rrule": "FREQ=WEEKLY;BYDAY=TU;COUNT=4",
        "exdates": ["2026-12-22T10:00:00"],
        "alarms": [{"trigger": "-PT15M"}],
    },
}


def build(spec, tmp_path, name="request.eml"):
    spec_path = tmp_path / f"{name}.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / name
    postwire("build", spec_path, "-o", out, "--now", 1795000000, "--seed", 11)
    return out


def test_weekly_madrid_request_is_read_back_with_the_right_times_attendees_and_rule(tmp_path):
    eml_path = build(WEEKLY_MADRID, tmp_path)
    msg, parts = calendar_parts(eml_path.read_bytes())
    assert msg.get_content_type() == "multipart/mixed"
    alternative = msg.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain", "text/html", "text/calendar"]
    [view] = parts["text/calendar"]
    assert view.get_param("method") == "REQUEST"
    assert view.get_content_charset().lower() == "utf-8"
    ics = view.get_payload(decode=True)
    [attached] = parts["application/ics"]
    assert attached.get_filename() == "invite.ics"
    assert attached.get_payload(decode=True) == ics

    cal = judged(ics)
    assert str(cal["METHOD"]) == "REQUEST"
    [ev] = cal.walk("VEVENT")
    start, end = ev.decoded("DTSTART"), ev.decoded("DTEND")
    assert start == dt.datetime(2026, 12, 1, 10, 0, tzinfo=MADRID)
    assert start.astimezone(UTC) == dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert end - start == dt.timedelta(minutes=90)
    assert ev["DTSTART"].params["TZID"] == "Europe/Madrid"
    assert str(ev["UID"]) == "weekly-madrid-1@example.com"
    assert str(ev["SUMMARY"]) == "Reunión semanal; planificación, «Q1»"
    assert str(ev["DESCRIPTION"]) == "Orden del día:\n1. Cifras\n2. Presupuesto 2027"
    assert str(ev["LOCATION"]) == "Sala Goya, planta 3"
    assert str(ev["ORGANIZER"]) == "mailto:ana@example.com"
    assert ev["ORGANIZER"].params["CN"] == "Ana Núñez"
    attendees = ev["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:bjorn@example.de", "mailto:carl@example.org"]
    assert [a.params["CN"] for a in attendees] == ["Björn Müller", "Carl, Jr."]
    assert [a.params["ROLE"] for a in attendees] == ["REQ-PARTICIPANT", "OPT-PARTICIPANT"]
    assert [a.params["PARTSTAT"] for a in attendees] == ["NEEDS-ACTION"] * 2
    assert [a.params["RSVP"] for a in attendees] == ["TRUE"] * 2
    rule = ev["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["TU"] and rule["COUNT"] == [4]
    # The occurrences, expanded by dateutil from what icalendar read: every
    # Tuesday 10:00 Madrid time, the 22nd excluded.
    occurrences = list(rrulestr(rule.to_ical().decode(), dtstart=start))
    excluded = {d.dt for x in [ev["EXDATE"]] for d in x.dts}
    assert [o for o in occurrences if o not in excluded] == [
        dt.datetime(2026, 12, d, 10, 0, tzinfo=MADRID) for d in (1, 8, 15)]
    [alarm] = ev.walk("VALARM")
    assert alarm.decoded("TRIGGER") == dt.timedelta(minutes=-15)
    # The VTIMEZONE we generated agrees with the IANA zone, winter and summer.
    [vtz] = cal.walk("VTIMEZONE")
    tz = vtz.to_tz(lookup_tzid=False)  # judge our VTIMEZONE, not zoneinfo
    for when in (dt.datetime(2026, 12, 1, 10), dt.datetime(2027, 7, 1, 10)):
        assert tz.utcoffset(when) == MADRID.utcoffset(when), when


def test_reply_built_from_the_request_is_a_valid_itip_reply(tmp_path):
    request = build(WEEKLY_MADRID, tmp_path)
    reply_path = tmp_path / "reply.eml"
    postwire("reply", request, "--accept", "--as", "BJORN@example.de", "-o", reply_path,
             "--now", 1795000600, "--seed", 12)
    msg, parts = calendar_parts(reply_path.read_bytes())
    assert msg["From"].addresses[0].addr_spec == "bjorn@example.de"
    assert msg["From"].addresses[0].display_name == "Björn Müller"
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana@example.com"]
    assert str(msg["Subject"]) == "Accepted: Reunión semanal; planificación, «Q1»"
    assert msg["In-Reply-To"] == "<weekly-madrid@example.com>"
    assert "application/ics" not in parts
    [view] = parts["text/calendar"]
    assert view.get_param("method") == "REPLY"
    cal = judged(view.get_payload(decode=True))
    assert str(cal["METHOD"]) == "REPLY"
    [ev] = cal.walk("VEVENT")
    # RFC 5546 section 3.2.3: a REPLY carries ATTENDEE, DTSTAMP, ORGANIZER,
    # UID (and SEQUENCE, the request's); exactly one attendee, the answering one.
    for prop in ("ATTENDEE", "DTSTAMP", "ORGANIZER", "UID", "SEQUENCE"):
        assert prop in ev, prop
    assert str(ev["UID"]) == "weekly-madrid-1@example.com"
    assert int(ev["SEQUENCE"]) == 0
    assert str(ev["ORGANIZER"]) == "mailto:ana@example.com"
    attendee = ev["ATTENDEE"]
    assert not isinstance(attendee, list), "a REPLY names only the answering attendee"
    assert str(attendee) == "mailto:bjorn@example.de"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert "RSVP" not in attendee.params
    assert ev.decoded("DTSTAMP") == dt.datetime(2026, 11, 18, 11, 16, 40, tzinfo=UTC)
    assert ev.decoded("DTSTART") == dt.datetime(2026, 12, 1, 10, 0, tzinfo=MADRID)
    assert ev["RRULE"]["FREQ"] == ["WEEKLY"]
    assert not ev.walk("VALARM")


def test_decline_and_tentative_and_a_stranger(tmp_path):
    request = build(WEEKLY_MADRID, tmp_path)
    for flag, partstat, prefix in (("--decline", "DECLINED", "Declined"),
                                   ("--tentative", "TENTATIVE", "Tentative")):
        run = postwire("reply", request, flag, "--as", "carl@example.org", "--now", 1795000600)
        msg, parts = calendar_parts(run.stdout)
        assert str(msg["Subject"]).startswith(prefix + ": ")
        ev = judged(parts["text/calendar"][0].get_payload(decode=True)).walk("VEVENT")[0]
        assert ev["ATTENDEE"].params["PARTSTAT"] == partstat
    run = postwire("reply", request, "--accept", "--as", "eve@example.com", ok=False)
    assert run.returncode != 0
    assert b"eve@example.com is not an attendee" in run.stderr


def test_cancel_carries_status_and_raised_sequence(tmp_path):
    spec = json.loads(json.dumps(WEEKLY_MADRID))
    spec["calendar"].update(method="CANCEL", status="CANCELLED", sequence=1)
    msg, parts = calendar_parts(build(spec, tmp_path, "cancel.eml").read_bytes())
    [view] = parts["text/calendar"]
    assert view.get_param("method") == "CANCEL"
    ev = judged(view.get_payload(decode=True)).walk("VEVENT")[0]
    assert str(ev["STATUS"]) == "CANCELLED" and int(ev["SEQUENCE"]) == 1


def test_a_cancel_without_a_status_still_says_cancelled(tmp_path):
    # RFC 5546 3.2.5: cancelling the whole event sets STATUS:CANCELLED, which
    # Outlook and Google read; postwire writes it when the spec leaves it out.
    spec = json.loads(json.dumps(WEEKLY_MADRID))
    spec["calendar"].update(method="CANCEL", sequence=1)
    spec["calendar"].pop("status", None)
    msg, parts = calendar_parts(build(spec, tmp_path, "cancel.eml").read_bytes())
    [view] = parts["text/calendar"]
    ev = judged(view.get_payload(decode=True)).walk("VEVENT")[0]
    assert str(ev["STATUS"]) == "CANCELLED"


ZONES = ["Europe/Madrid", "Europe/London", "Europe/Dublin", "America/New_York",
         "America/Sao_Paulo", "America/Santiago", "America/St_Johns", "Australia/Sydney",
         "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Jerusalem", "Africa/Cairo",
         "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Auckland", "America/Asuncion", "UTC"]


def test_generated_vtimezones_agree_with_the_iana_zones(tmp_path):
    """Our VTIMEZONE (from a POSIX rule) read by icalendar gives the offsets of zoneinfo."""
    instants = [dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=h)
                for h in range(0, 3 * 365 * 24, 37)]
    for zone in ZONES:
        appt = {"uid": f"tz-{zone}@example.com", "start": "2026-06-01T10:00:00",
                "end": "2026-06-01T11:00:00", "timeZone": zone, "summary": zone,
                "dtstamp": "2026-01-01T00:00:00Z"}
        ics = postwire("ics", "-", stdin=json.dumps(appt).encode()).stdout
        cal = judged(ics)
        [vtz] = cal.walk("VTIMEZONE")
        assert str(vtz["TZID"]) == zone
        ours, iana = vtz.to_tz(lookup_tzid=False), zoneinfo.ZoneInfo(zone)
        wrong = [(t, t.astimezone(ours).utcoffset(), t.astimezone(iana).utcoffset())
                 for t in instants if t.astimezone(ours).utcoffset() != t.astimezone(iana).utcoffset()]
        assert not wrong, f"{zone}: {len(wrong)} instants differ, first {wrong[:3]}"


def our_events(path):
    run = postwire("ics", "parse", "--all", path)
    return json.loads(run.stdout)


def test_sample_exports_read_the_same_by_icalendar_and_by_postwire():
    files = sorted(SAMPLES.glob("*.ics"))
    assert len(files) >= 3, files
    for path in files:
        theirs = icalendar.Calendar.from_ical(path.read_bytes())
        ours = our_events(path)
        flat = []
        for e in ours["events"]:
            flat.append(e)
            flat.extend(e.get("overrides", []))
        events = theirs.walk("VEVENT")
        assert len(flat) == len(events), path.name
        for e, ev in zip(sorted(flat, key=lambda e: (e["uid"], e.get("recurrenceId") or "")),
                         sorted(events, key=lambda v: (str(v["UID"]), str(v.get("RECURRENCE-ID").to_ical().decode() if "RECURRENCE-ID" in v else "")))):
            assert e["uid"] == str(ev["UID"])
            assert e.get("summary") == (str(ev["SUMMARY"]) if "SUMMARY" in ev else None)
            assert e.get("description") == (str(ev["DESCRIPTION"]) if "DESCRIPTION" in ev else None), path.name
            start = ev.decoded("DTSTART")
            if isinstance(start, dt.datetime):
                assert e["start"] == start.replace(tzinfo=None).isoformat()
                assert not e["allDay"]
            else:
                assert e["start"] == start.isoformat() and e["allDay"]
            if "TZID" in ev["DTSTART"].params:
                tzid = ev["DTSTART"].params["TZID"]
                assert e["timeZone"] == tzid
                if e.get("timeZoneRule") is None:
                    assert start.utcoffset() == zoneinfo.ZoneInfo(tzid).utcoffset(start.replace(tzinfo=None))
            attendees = ev.get("ATTENDEE", [])
            attendees = attendees if isinstance(attendees, list) else [attendees]
            assert [a["email"] for a in e["attendees"]] == [str(a)[len("mailto:"):] for a in attendees]
            assert [a["partstat"] for a in e["attendees"]] == [a.params.get("PARTSTAT", "NEEDS-ACTION") for a in attendees]
            if "RRULE" in ev:
                assert icalendar.vRecur.from_ical(e["rrule"]) == ev["RRULE"]
            assert len(e["alarms"]) == len(ev.walk("VALARM"))


def test_outlook_windows_zone_converts_like_its_vtimezone():
    """The rule we derive for 'W. Europe Standard Time' gives the instants icalendar computes."""
    path = SAMPLES / "outlook-request.ics"
    ours = our_events(path)["events"][0]
    assert ours["timeZone"] == "W. Europe Standard Time"
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    [vtz] = cal.walk("VTIMEZONE")
    tz = vtz.to_tz(lookup_tzid=False)  # judge our VTIMEZONE, not zoneinfo
    ev = cal.walk("VEVENT")[0]
    start = ev.decoded("DTSTART")
    assert start.astimezone(UTC) == dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    # Written back by postwire with the derived rule, icalendar still finds 09:00Z
    # in winter and 08:00Z in summer.
    for local, utc_hour in (("2026-12-01T10:00:00", 9), ("2027-06-01T10:00:00", 8)):
        appt = {k: ours[k] for k in ("uid", "timeZone", "timeZoneRule", "summary", "dtstamp")}
        appt["start"] = local
        ics = postwire("ics", "-", stdin=json.dumps(appt).encode()).stdout
        back = judged(ics)
        got = back.walk("VEVENT")[0].decoded("DTSTART").astimezone(UTC)
        assert got.hour == utc_hour, (local, got)
    assert tz.utcoffset(dt.datetime(2027, 6, 1, 10)) == dt.timedelta(hours=2)


def test_bad_ics_input_gives_a_line_numbered_error_not_a_crash(tmp_path):
    cases = {
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261201T100000Z\r\n": b"line 2: BEGIN:VEVENT is never closed",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261341T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n": b"line 4: bad DTSTART value",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n": b"line 2: VEVENT has no UID",
    }
    for text, want in cases.items():
        run = postwire("ics", "parse", "-", stdin=text, ok=False)
        assert run.returncode == 1, run
        assert want in run.stderr, run.stderr
        assert b"panicked" not in run.stderr
