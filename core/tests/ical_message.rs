//! Meeting-request email (RFC 6047): a spec with `calendar` builds the
//! multipart/alternative + text/calendar structure and parses back to the
//! same spec; replies, cancellations, an Outlook-shaped message, and the
//! errors a bad appointment gets at build time.

use std::path::Path;

use postwire_core::ical::{Method, PartStat, itip, mime};
use postwire_core::parse::parse_with_warnings;
use postwire_core::{BuildError, BuildOptions, MessageSpec, build, parse, spec::from_json};

const OPTS: BuildOptions = BuildOptions {
    now: 1_795_000_000,
    seed: 7,
};

fn request_json() -> &'static str {
    r#"{
      "from": "Ana Núñez <ana@example.com>",
      "to": ["Bob <bob@example.com>", "carl@example.org"],
      "subject": "Reunión semanal",
      "date": "2026-11-20T09:00:00+01:00",
      "messageId": "<req-1@example.com>",
      "calendar": {
        "method": "REQUEST", "uid": "weekly-1@example.com", "sequence": 0,
        "dtstamp": "2026-11-20T08:00:00Z",
        "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00",
        "timeZone": "Europe/Madrid", "allDay": false,
        "summary": "Reunión semanal", "description": "Orden del día:\n1. Cifras",
        "location": "Sala Goya",
        "organizer": "Ana Núñez <ana@example.com>",
        "attendees": [
          { "email": "bob@example.com", "name": "Bob", "role": "REQ-PARTICIPANT", "partstat": "NEEDS-ACTION", "rsvp": true },
          { "email": "carl@example.org", "name": null, "role": "OPT-PARTICIPANT", "partstat": "NEEDS-ACTION", "rsvp": true }
        ],
        "rrule": "FREQ=WEEKLY;COUNT=4", "alarms": [{ "trigger": "-PT15M" }]
      }
    }"#
}

fn request() -> MessageSpec {
    from_json(request_json()).unwrap_or_else(|e| panic!("{e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn request_has_the_rfc6047_structure_and_round_trips() {
    let spec = request();
    let bytes = build(&spec, &OPTS).expect("build");
    let eml = text(&bytes);
    let mixed = eml.find("Content-Type: multipart/mixed").expect("mixed");
    let alt = eml
        .find("Content-Type: multipart/alternative")
        .expect("alternative");
    let plain = eml.find("Content-Type: text/plain").expect("text/plain");
    let html = eml.find("Content-Type: text/html").expect("text/html");
    let cal = eml
        .find("Content-Type: text/calendar; method=\"REQUEST\"; charset=")
        .expect("text/calendar; method=REQUEST");
    let ics = eml
        .find("Content-Type: application/ics")
        .expect("invite.ics");
    assert!(
        mixed < alt && alt < plain && plain < html && html < cal && cal < ics,
        "{eml}"
    );
    assert!(eml.contains("invite.ics"));
    assert!(eml.contains("\r\nContent-Class: urn:content-classes:calendarmessage\r\n"));
    let back = parse(&bytes).expect("parse");
    assert_eq!(back, spec.normalized(), "{eml}");
}

#[test]
fn given_bodies_are_kept_and_generated_ones_are_readable() {
    let mut spec = request();
    let generated = mime::expand(&spec, OPTS.now).expect("expand");
    let summary = generated.text.clone().unwrap_or_default();
    assert!(
        summary.starts_with("Invitation: Reunión semanal\n"),
        "{summary}"
    );
    assert!(
        summary.contains("When: 2026-12-01 10:00 – 11:00 (Europe/Madrid)"),
        "{summary}"
    );
    assert!(summary.contains("Repeats: FREQ=WEEKLY;COUNT=4"));
    assert!(
        generated
            .html
            .as_deref()
            .is_some_and(|h| h.contains("<b>Invitation: Reunión semanal</b>"))
    );
    spec.text = Some("Hola, te invito.\n".into());
    spec.html = Some("<p>Hola</p>\n".into());
    let back = parse(&build(&spec, &OPTS).expect("build")).expect("parse");
    assert_eq!(back, spec.normalized());
}

#[test]
fn method_and_dtstamp_are_filled_in_when_absent() {
    let mut spec = request();
    if let Some(c) = spec.calendar.as_mut() {
        c.method = None;
        c.dtstamp = None;
    }
    let back = parse(&build(&spec, &OPTS).expect("build")).expect("parse");
    let cal = back.calendar.expect("calendar");
    assert_eq!(cal.method, Some(Method::Request));
    assert_eq!(cal.dtstamp.as_deref(), Some("2026-11-18T11:06:40Z"));
}

#[test]
fn cancel_is_sent_with_method_cancel() {
    let mut spec = request();
    spec.calendar = spec.calendar.as_ref().map(itip::cancel);
    let bytes = build(&spec, &OPTS).expect("build");
    let eml = text(&bytes);
    assert!(eml.contains("text/calendar; method=\"CANCEL\""), "{eml}");
    let cal = parse(&bytes).expect("parse").calendar.expect("calendar");
    assert_eq!((cal.method, cal.sequence), (Some(Method::Cancel), 1));
    assert!(
        eml.contains("Cancelled: Reunión semanal") || eml.contains("Cancelled: Reuni=C3=B3n"),
        "{eml}"
    );
}

#[test]
fn a_cancel_given_as_a_spec_carries_status_cancelled() {
    // RFC 5546 3.2.5: a spec that only says method CANCEL (not made by
    // itip::cancel) still cancels the whole event: STATUS:CANCELLED is written.
    let mut spec = request();
    if let Some(c) = spec.calendar.as_mut() {
        c.method = Some(Method::Cancel);
        c.status = None;
        c.sequence = 1;
    }
    let bytes = build(&spec, &OPTS).expect("build");
    let eml = text(&bytes);
    assert!(eml.contains("STATUS:CANCELLED"), "{eml}");
    let back = parse(&bytes).expect("parse");
    let cal = back.calendar.as_ref().expect("calendar");
    assert_eq!(cal.status, Some(postwire_core::ical::Status::Cancelled));
    assert_eq!(
        back.calendar,
        spec.normalized().calendar.map(|mut c| {
            c.dtstamp = cal.dtstamp.clone();
            c
        })
    );
    // A request is not touched.
    let eml = text(&build(&request(), &OPTS).expect("build"));
    assert!(!eml.contains("STATUS:CANCELLED"), "{eml}");
}

#[test]
fn reply_message_answers_the_organizer_in_thread() {
    let received = parse(&build(&request(), &OPTS).expect("build")).expect("parse");
    let reply =
        mime::reply_message(&received, "BOB@example.com", PartStat::Accepted).expect("reply");
    assert_eq!(
        reply.from.as_ref().map(ToString::to_string).as_deref(),
        Some("Bob <bob@example.com>")
    );
    assert_eq!(
        reply.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["Ana Núñez <ana@example.com>"]
    );
    assert_eq!(reply.subject.as_deref(), Some("Accepted: Reunión semanal"));
    assert_eq!(reply.in_reply_to.as_deref(), Some("<req-1@example.com>"));
    assert_eq!(reply.references, ["<req-1@example.com>"]);
    let bytes = build(&reply, &OPTS).expect("build reply");
    let eml = text(&bytes);
    assert!(eml.contains("text/calendar; method=\"REPLY\""), "{eml}");
    assert!(
        !eml.contains("invite.ics"),
        "a REPLY carries no .ics attachment"
    );
    let back = parse(&bytes).expect("parse reply");
    let cal = back.calendar.as_ref().expect("calendar");
    assert_eq!(cal.method, Some(Method::Reply));
    assert_eq!(cal.attendees.len(), 1);
    assert_eq!(cal.attendees[0].partstat, PartStat::Accepted);
    assert_eq!(cal.uid, "weekly-1@example.com");
    let mut expected = reply.clone();
    if let (Some(c), Some(b)) = (expected.calendar.as_mut(), back.calendar.as_ref()) {
        c.dtstamp.clone_from(&b.dtstamp);
    }
    expected.date = back.date;
    expected.message_id.clone_from(&back.message_id);
    assert_eq!(back, expected.normalized());

    let stranger = mime::reply_message(&received, "eve@example.com", PartStat::Accepted);
    assert!(
        stranger
            .err()
            .is_some_and(|e| e.to_string().contains("eve@example.com is not an attendee"))
    );
    let plain = parse(b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n").expect("parse");
    assert!(mime::reply_message(&plain, "a@example.com", PartStat::Accepted).is_err());
}

#[test]
fn bad_appointments_fail_the_build_naming_the_field() {
    for (patch, want) in [
        (r#""start": "2026-13-01T10:00:00""#, "calendar.start"),
        (
            r#""timeZone": "Mars/Olympus""#,
            "calendar.timeZone: unknown time zone",
        ),
        (
            r#""attendees": []"#,
            "iTIP REQUEST: calendar.attendees must list at least one attendee",
        ),
        (r#""rrule": "FREQ=FORTNIGHTLY""#, "calendar.rrule"),
    ] {
        let json = request_json();
        let key = patch.split(':').next().unwrap_or_default();
        let start = json.find(key).unwrap_or_else(|| panic!("{key}"));
        let end = start + json[start..].find(['\n', ',']).unwrap_or(0);
        let end = if json[start..end].contains('[') {
            start + json[start..].find("],").map_or(0, |i| i + 1)
        } else {
            end
        };
        let patched = format!("{}{patch}{}", &json[..start], &json[end..]);
        let spec = from_json(&patched).unwrap_or_else(|e| panic!("{e}\n{patched}"));
        let err = build(&spec, &OPTS).expect_err(want);
        assert!(matches!(err, BuildError::Calendar(_)), "{err}");
        assert_eq!(err.path(), "calendar");
        assert!(err.to_string().contains(want), "want {want:?}, got {err}");
    }
    let typo = from_json(
        r#"{"from": "a@b.co", "calendar": {"uid": "u", "start": "2026-12-01", "timezone": "x"}}"#,
    );
    assert!(
        typo.err()
            .is_some_and(|e| e.path.starts_with("calendar") && e.message.contains("timezone"))
    );
}

#[test]
fn an_outlook_meeting_request_is_read_into_calendar() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical/outlook-request.eml");
    let bytes = std::fs::read(path).expect("read eml");
    let parsed = parse_with_warnings(&bytes).expect("parse");
    assert_eq!(parsed.warnings, Vec::<String>::new());
    let spec = parsed.spec;
    assert!(spec.alternates.is_empty(), "{:?}", spec.alternates);
    assert!(spec.attachments.is_empty());
    assert_eq!(
        spec.text.as_deref(),
        Some("Orden del día: revisión del trimestre.\n")
    );
    let cal = spec.calendar.expect("calendar");
    assert_eq!(cal.method, Some(Method::Request));
    assert_eq!(cal.time_zone.as_deref(), Some("W. Europe Standard Time"));
    assert_eq!(cal.attendees.len(), 3);
    assert!(
        cal.description
            .as_deref()
            .is_some_and(|d| d.contains("cifras de ventas en € y ¥"))
    );
}

#[test]
fn a_broken_calendar_view_stays_an_alternate_with_a_warning() {
    let spec = from_json(
        r#"{"from": "a@example.com", "text": "t",
            "alternates": [{"contentType": "text/calendar; method=REQUEST", "content": "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\n"}]}"#,
    )
    .expect("spec");
    let parsed = parse_with_warnings(&build(&spec, &OPTS).expect("build")).expect("parse");
    assert_eq!(parsed.spec.calendar, None);
    assert_eq!(parsed.spec.alternates.len(), 1);
    assert_eq!(
        parsed.warnings,
        [
            "text/calendar view: line 2: BEGIN:VEVENT is never closed by END:VEVENT; kept as an alternate"
        ]
    );
}
