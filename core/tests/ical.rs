//! iCalendar: golden files from Outlook-, Google- and Apple-style exports,
//! round trips through our writer, the model's JSON contract, and bad input
//! that must give a clear error with a line number (never a panic).
//!
//! Golden files: every `tests/data/ical/NAME.ics` has `NAME.json`, the
//! expected `parse_calendar` result. `UPDATE_GOLDEN=1 cargo test -p
//! postwire-core --test ical` rewrites them (review the diff!).

use std::fs;
use std::path::{Path, PathBuf};

use postwire_core::Mailbox;
use postwire_core::ical::{
    Alarm, Appointment, Attendee, CuType, IcalError, Method, PartStat, Role, Status, Transparency,
    calendar_to_ics, itip, parse_calendar, parse_ics, to_ics,
};

fn mb(s: &str) -> Mailbox {
    Mailbox::parse(s).expect("mailbox")
}

const NOW: i64 = 1_795_000_000; // 2026-11-18T11:06:40Z

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical")
}

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("tests/data/ical exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ics"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the Outlook, Google and Apple samples, found {files:?}"
    );
    files
}

fn to_lf(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .into_bytes()
}

fn to_crlf(b: &[u8]) -> Vec<u8> {
    let lf = to_lf(b);
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
    for &c in &lf {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

#[test]
fn golden_samples_parse_to_their_expected_json_with_lf_and_crlf() {
    for path in samples() {
        let bytes = fs::read(&path).expect("read sample");
        let cal = parse_calendar(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = serde_json::to_string_pretty(&cal).expect("json");
        let golden = path.with_extension("json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            fs::write(&golden, format!("{got}\n")).expect("write golden");
        }
        let want = fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        assert_eq!(got.trim_end(), want.trim_end(), "{}", path.display());
        // Line ends do not matter (a fold inside UTF-8 survives the LF conversion
        // because it is done on bytes).
        let lf_name = path.display().to_string();
        if std::str::from_utf8(&bytes).is_ok() {
            assert_eq!(
                parse_calendar(&to_lf(&bytes)).as_ref(),
                Ok(&cal),
                "{lf_name} as LF"
            );
            assert_eq!(
                parse_calendar(&to_crlf(&bytes)).as_ref(),
                Ok(&cal),
                "{lf_name} as CRLF"
            );
        }
    }
}

#[test]
fn golden_samples_survive_our_writer() {
    for path in samples() {
        let cal = parse_calendar(&fs::read(&path).expect("read")).expect("parse");
        let ics = calendar_to_ics(&cal, NOW).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = parse_calendar(ics.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}\n{ics}", path.display()));
        assert_eq!(again.events, cal.events, "{}\n{ics}", path.display());
        assert_eq!(again.method, cal.method);
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
    }
}

#[test]
fn outlook_request_keeps_windows_zone_with_a_derived_rule() {
    let appt =
        parse_ics(&fs::read(data_dir().join("outlook-request.ics")).expect("read")).expect("parse");
    assert_eq!(appt.method, Some(Method::Request));
    assert_eq!(appt.time_zone.as_deref(), Some("W. Europe Standard Time"));
    assert_eq!(
        appt.time_zone_rule.as_deref(),
        Some("STD-1DST,M3.5.0,M10.5.0/3")
    );
    assert_eq!(appt.start, "2026-12-01T10:00:00");
    assert_eq!(
        appt.summary.as_deref(),
        Some("Reunión semanal de planificación")
    );
    assert!(appt.description.as_deref().is_some_and(|d| {
        d.contains("cifras de ventas en € y ¥\n2. Planificación 2027; presupuesto, contratación")
    }));
    assert_eq!(
        appt.organizer.as_ref().map(ToString::to_string).as_deref(),
        Some("Ana Núñez <ana.nunez@example.com>")
    );
    assert_eq!(appt.attendees.len(), 3);
    assert_eq!(appt.attendees[1].name.as_deref(), Some("Lee, Min-jun"));
    assert_eq!(appt.attendees[1].role, Role::OptParticipant);
    assert_eq!(appt.attendees[2].cutype, Some(CuType::Resource));
    assert_eq!(
        appt.rrule.as_deref(),
        Some("FREQ=WEEKLY;UNTIL=20270126T090000Z;INTERVAL=1;BYDAY=TU;WKST=MO")
    );
    assert_eq!(
        appt.alarms,
        vec![Alarm {
            trigger: "-PT15M".into(),
            description: Some("REMINDER".into()),
            ..Alarm::default()
        }]
    );
    assert!(
        appt.extra
            .iter()
            .any(|l| l == "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE")
    );
    assert!(
        appt.extra
            .iter()
            .any(|l| l.starts_with("X-MICROSOFT-LOCATIONS:[{\"DisplayName\""))
    );
}

#[test]
fn google_export_folds_overrides_and_converts_foreign_exdates() {
    let cal = parse_calendar(&fs::read(data_dir().join("google-export.ics")).expect("read"))
        .expect("parse");
    assert_eq!(cal.method, Some(Method::Publish));
    assert_eq!(cal.events.len(), 2);
    let standup = &cal.events[0];
    assert_eq!(standup.time_zone.as_deref(), Some("Europe/Madrid"));
    assert_eq!(standup.time_zone_rule, None);
    // 17:30 in Tokyo is 08:30 UTC.
    assert_eq!(
        standup.exdates,
        [
            "2026-12-23T09:30:00",
            "2026-12-30T09:30:00",
            "2027-01-06T08:30:00Z"
        ]
    );
    assert_eq!(standup.overrides.len(), 1);
    assert_eq!(
        standup.overrides[0].recurrence_id.as_deref(),
        Some("2026-12-09T09:30:00")
    );
    assert_eq!(standup.overrides[0].start, "2026-12-09T11:00:00");
    assert_eq!(standup.attendees[1].name.as_deref(), Some("田中 太郎"));
    assert_eq!(standup.attendees[1].partstat, PartStat::Tentative);
    assert_eq!(standup.summary.as_deref(), Some("Stand-up 🚀 diario"));
    let holiday = &cal.events[1];
    assert!(holiday.all_day);
    assert_eq!(
        (holiday.start.as_str(), holiday.end.as_deref()),
        ("2026-12-24", Some("2026-12-26"))
    );
    assert_eq!(holiday.categories, ["Festivo", "Oficina, Madrid"]);
    assert_eq!(holiday.transparency, Some(Transparency::Transparent));
    assert_eq!(holiday.description.as_deref(), Some(""));
}

#[test]
fn apple_export_keeps_alarms_and_lists_the_todo_it_skipped() {
    let cal = parse_calendar(&fs::read(data_dir().join("apple-export.ics")).expect("read"))
        .expect("parse");
    assert_eq!(cal.method, None);
    assert_eq!(cal.skipped, ["VTODO (line 73)"]);
    let e = &cal.events[0];
    assert_eq!(e.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(
        e.rrule.as_deref(),
        Some("FREQ=MONTHLY;INTERVAL=3;BYDAY=3MO;COUNT=4")
    );
    assert_eq!(e.url.as_deref(), Some("https://example.com/agenda/q1"));
    assert_eq!(
        e.organizer.as_ref().map(ToString::to_string).as_deref(),
        Some("Zoë O'Brien <zoe@example.net>")
    );
    assert_eq!(e.attendees[0].role, Role::Chair);
    assert_eq!(e.alarms.len(), 2);
    assert_eq!(e.alarms[0].action.as_deref(), Some("AUDIO"));
    assert_eq!(e.alarms[1].trigger, "1976-04-01T00:55:45Z");
    assert!(
        e.alarms[0]
            .extra
            .iter()
            .any(|l| l == "ATTACH;VALUE=URI:Chord")
    );
    assert_eq!(
        e.location.as_deref(),
        Some("Café Grumpy\nChelsea, 224 W 20th St, New York, NY 10011")
    );
}

fn full_appointment() -> Appointment {
    Appointment {
        method: Some(Method::Request),
        uid: "20261201-standup@example.com".into(),
        sequence: 3,
        dtstamp: Some("2026-11-20T08:00:00Z".into()),
        start: "2026-12-01T10:00:00".into(),
        end: Some("2026-12-01T11:00:00".into()),
        time_zone: Some("Europe/Madrid".into()),
        summary: Some("Reunión; semanal, de \"planificación\" \\ 会議 – a long title that certainly needs folding at seventy-five octets".into()),
        description: Some("Línea 1\nLínea 2, con coma; y punto y coma\n\n😀".into()),
        location: Some("Sala Goya".into()),
        organizer: Some(mb("Ana Núñez <ana@example.com>")),
        attendees: vec![
            Attendee { name: Some("Björn, \"the\" Müller".into()), rsvp: true, ..Attendee::new("bjorn@example.de") },
            Attendee { role: Role::OptParticipant, partstat: PartStat::Tentative, cutype: Some(CuType::Individual), ..Attendee::new("min@example.kr") },
            Attendee { role: Role::NonParticipant, cutype: Some(CuType::Room), name: Some("Sala Goya".into()), ..Attendee::new("goya@example.com") },
        ],
        status: Some(Status::Confirmed),
        transparency: Some(Transparency::Opaque),
        priority: Some(5),
        rrule: Some("FREQ=WEEKLY;BYDAY=TU;UNTIL=20270126T090000Z".into()),
        exdates: vec!["2026-12-22T10:00:00".into(), "2026-12-29T10:00:00".into()],
        rdates: vec!["2027-02-04T10:00:00".into()],
        alarms: vec![
            Alarm { trigger: "-PT15M".into(), ..Alarm::default() },
            Alarm { trigger: "PT0S".into(), related_end: true, description: Some("Se acabó".into()), ..Alarm::default() },
            Alarm { trigger: "2026-12-01T08:00:00Z".into(), action: Some("AUDIO".into()), ..Alarm::default() },
        ],
        categories: vec!["Trabajo".into(), "Planificación, Q1".into()],
        url: Some("https://example.com/m/1?a=1;b=2".into()),
        overrides: vec![Appointment {
            method: Some(Method::Request),
            uid: "20261201-standup@example.com".into(),
            sequence: 3,
            dtstamp: Some("2026-11-20T08:00:00Z".into()),
            start: "2026-12-15T12:00:00".into(),
            end: Some("2026-12-15T13:00:00".into()),
            time_zone: Some("Europe/Madrid".into()),
            recurrence_id: Some("2026-12-15T10:00:00".into()),
            summary: Some("Movida".into()),
            organizer: Some(mb("Ana Núñez <ana@example.com>")),
            ..Appointment::default()
        }],
        extra: vec!["X-MICROSOFT-CDO-BUSYSTATUS:BUSY".into(), "CLASS:PUBLIC".into()],
        ..Appointment::default()
    }
}

#[test]
fn every_field_round_trips_through_text() {
    let appt = full_appointment();
    let ics = to_ics(&appt, NOW).expect("write");
    assert_eq!(parse_ics(ics.as_bytes()), Ok(appt), "{ics}");
    assert!(ics.contains("\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Madrid\r\n"));
    assert!(ics.contains("\r\nDTSTART;TZID=Europe/Madrid:20261201T100000\r\n"));
    assert!(ics.contains("\r\nEXDATE;TZID=Europe/Madrid:20261222T100000,20261229T100000\r\n"));
    assert!(
        ics.replace("\r\n ", "")
            .contains("CN=\"Björn, ^'the^' Müller\""),
        "{ics}"
    );
    assert!(!ics.replace("\r\n", "").contains('\n'));
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
}

#[test]
fn all_day_utc_floating_and_duration_forms_round_trip() {
    let base = Appointment {
        method: Some(Method::Publish),
        uid: "x@y".into(),
        dtstamp: Some("2026-01-01T00:00:00Z".into()),
        organizer: Some(mb("o@example.com")),
        ..Appointment::default()
    };
    for appt in [
        Appointment {
            start: "2026-12-24".into(),
            end: Some("2026-12-26".into()),
            all_day: true,
            rrule: Some("FREQ=YEARLY;UNTIL=20301224".into()),
            exdates: vec!["2027-12-24".into()],
            ..base.clone()
        },
        Appointment {
            start: "2026-12-01T09:00:00Z".into(),
            duration: Some("PT1H30M".into()),
            rrule: Some("FREQ=DAILY;COUNT=3".into()),
            ..base.clone()
        },
        Appointment {
            start: "2026-12-01T09:00:00".into(),
            end: Some("2026-12-01T09:30:00".into()),
            ..base.clone()
        },
        Appointment {
            start: "2026-12-01T09:00:00".into(),
            time_zone: Some("Asia/Kolkata".into()),
            ..base.clone()
        },
    ] {
        let ics = to_ics(&appt, NOW).expect("write");
        assert_eq!(parse_ics(ics.as_bytes()).as_ref(), Ok(&appt), "{ics}");
    }
}

#[test]
fn dtstamp_comes_from_the_injected_time() {
    let appt = Appointment {
        dtstamp: None,
        ..full_appointment()
    };
    let ics = to_ics(&appt, 1_796_000_000).expect("write");
    assert!(ics.contains("\r\nDTSTAMP:20261130T005320Z\r\n"), "{ics}");
    let back = parse_ics(ics.as_bytes()).expect("parse");
    // 1_796_000_000 = 2026-11-30T00:53:20Z
    assert_eq!(back.dtstamp.as_deref(), Some("2026-11-30T00:53:20Z"));
}

#[test]
fn contract_json_names_are_kept() {
    let json = r#"{ "method": "REQUEST", "uid": "u@x", "sequence": 0,
        "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00",
        "timeZone": "Europe/Madrid", "allDay": false,
        "summary": "s", "description": "d", "location": "l",
        "organizer": "Ana <ana@example.com>",
        "attendees": [{ "email": "bob@example.com", "name": "Bob", "role": "REQ-PARTICIPANT",
                        "partstat": "NEEDS-ACTION", "rsvp": true }],
        "rrule": "FREQ=WEEKLY;COUNT=4", "alarms": [{ "trigger": "-PT15M" }] }"#;
    let appt: Appointment = serde_json::from_str(json).expect("contract JSON");
    let back = serde_json::to_value(&appt).expect("json");
    let want: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(back, want);
    appt.validate("calendar").expect("valid");
    let typo =
        serde_json::from_str::<Appointment>(r#"{"uid":"u","start":"2026-12-01","timezone":"x"}"#);
    assert!(
        typo.err()
            .is_some_and(|e| e.to_string().contains("timezone"))
    );
}

#[test]
fn bad_models_name_the_field() {
    let good = full_appointment();
    let cases: Vec<(Appointment, &str)> = vec![
        (
            Appointment {
                uid: " ".into(),
                ..good.clone()
            },
            "calendar.uid",
        ),
        (
            Appointment {
                start: "2026-02-30T10:00:00".into(),
                ..good.clone()
            },
            "calendar.start: \"2026-02-30T10:00:00\": day 30 does not exist",
        ),
        (
            Appointment {
                start: "2026-12-01".into(),
                ..good.clone()
            },
            "calendar.start: is a date but allDay is false",
        ),
        (
            Appointment {
                end: Some("2026-12-01T09:00:00".into()),
                ..good.clone()
            },
            "calendar.end: must be at or after start",
        ),
        (
            Appointment {
                duration: Some("PT1H".into()),
                ..good.clone()
            },
            "calendar.duration: give end or duration",
        ),
        (
            Appointment {
                time_zone: Some("Europe/Atlantis".into()),
                ..good.clone()
            },
            "calendar.timeZone: unknown time zone \"Europe/Atlantis\"",
        ),
        (
            Appointment {
                attendees: vec![Attendee::new("ana.example.com")],
                ..good.clone()
            },
            "calendar.attendees[0].email: missing '@'",
        ),
        (
            Appointment {
                attendees: vec![Attendee::new("Bob <bob@x.org>")],
                ..good.clone()
            },
            "calendar.attendees[0].email",
        ),
        (
            Appointment {
                rrule: Some("FREQ=WEEKLY;UNTIL=20270126T090000".into()),
                ..good.clone()
            },
            "calendar.rrule: \"FREQ=WEEKLY;UNTIL=20270126T090000\": UNTIL must be in UTC",
        ),
        (
            Appointment {
                rrule: Some("COUNT=3".into()),
                ..good.clone()
            },
            "FREQ is missing",
        ),
        (
            Appointment {
                exdates: vec!["2026-12-22".into()],
                ..good.clone()
            },
            "calendar.exdates[0]: must be a date-time",
        ),
        (
            Appointment {
                alarms: vec![Alarm {
                    trigger: "15 minutes before".into(),
                    ..Alarm::default()
                }],
                ..good.clone()
            },
            "calendar.alarms[0].trigger",
        ),
        (
            Appointment {
                priority: Some(10),
                ..good.clone()
            },
            "calendar.priority",
        ),
        (
            Appointment {
                extra: vec!["SUMMARY:twice".into()],
                ..good.clone()
            },
            "calendar.extra[0]: SUMMARY has its own field",
        ),
        (
            Appointment {
                extra: vec!["X-A:1\r\nATTENDEE:mailto:evil@x".into()],
                ..good.clone()
            },
            "calendar.extra[0]: must be one unfolded",
        ),
        (
            Appointment {
                summary: Some("a\u{0}b".into()),
                ..good.clone()
            },
            "calendar.summary: control characters",
        ),
        (
            Appointment {
                all_day: true,
                start: "2026-12-01".into(),
                end: Some("2026-12-02".into()),
                exdates: vec![],
                rdates: vec![],
                rrule: None,
                overrides: vec![],
                ..good.clone()
            },
            "calendar.timeZone: must be null for an all-day",
        ),
        (
            Appointment {
                overrides: vec![Appointment {
                    uid: "other".into(),
                    ..good.overrides[0].clone()
                }],
                ..good.clone()
            },
            "calendar.overrides[0].uid",
        ),
    ];
    for (appt, want) in cases {
        let err = to_ics(&appt, NOW).expect_err(want).to_string();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

/// Replaces line `n` (1-based) of the full-appointment text.
fn broken(f: impl Fn(&str) -> String) -> Vec<u8> {
    let ics = to_ics(&full_appointment(), NOW).expect("write");
    f(&ics).into_bytes()
}

fn line_of(ics: &[u8], needle: &str) -> usize {
    let text = String::from_utf8_lossy(ics);
    1 + text
        .split('\n')
        .position(|l| l.starts_with(needle))
        .unwrap_or_else(|| panic!("{needle} not in text"))
}

#[test]
fn bad_text_gives_a_clear_error_with_its_line() {
    let unterminated = broken(|s| s.replace("END:VEVENT\r\nBEGIN:VEVENT", "BEGIN:VEVENT"));
    let err = parse_ics(&unterminated).expect_err("unterminated");
    assert!(
        matches!(
            err,
            IcalError::MismatchedEnd { .. } | IcalError::Unterminated { .. }
        ),
        "{err}"
    );
    let cut = broken(|s| s.replace("END:VCALENDAR\r\n", ""));
    let err = parse_ics(&cut).expect_err("no END:VCALENDAR");
    assert_eq!(
        err,
        IcalError::Unterminated {
            component: "VCALENDAR".into(),
            line: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "line 1: BEGIN:VCALENDAR is never closed by END:VCALENDAR"
    );

    let bad_date = broken(|s| {
        s.replace(
            "DTSTART;TZID=Europe/Madrid:20261201T100000",
            "DTSTART;TZID=Europe/Madrid:20261341T100000",
        )
    });
    let err = parse_ics(&bad_date).expect_err("bad date");
    assert_eq!(
        err.line(),
        Some(line_of(&bad_date, "DTSTART;TZID=Europe/Madrid:20261341"))
    );
    assert!(
        err.to_string()
            .contains("bad DTSTART value \"20261341T100000\": month 13 does not exist"),
        "{err}"
    );

    let no_uid = broken(|s| s.replacen("UID:20261201-standup@example.com\r\n", "", 1));
    let err = parse_ics(&no_uid).expect_err("missing UID");
    assert_eq!(
        err.to_string(),
        format!(
            "line {}: VEVENT has no UID",
            line_of(&no_uid, "BEGIN:VEVENT")
        )
    );

    for (text, want) in [
        (&b""[..], "line 1: expected BEGIN:VCALENDAR, found \"empty text\""),
        (b"BEGIN:VEVENT\r\nEND:VEVENT\r\n", "line 1: expected BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "the calendar holds no VEVENT"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "line 3: END:VTODO does not close BEGIN:VEVENT (line 2)"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\nX:1\r\n", "line 7: content after END:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY\r\n", "line 4: expected ':' or ';' after SUMMARY"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 2: VEVENT has no DTSTART"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261201T100000Z\r\nATTENDEE:mailto:nobody\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 5: bad ATTENDEE value"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261201T100000Z\r\nSEQUENCE:-1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 5: bad SEQUENCE value \"-1\": not a number"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261201T100000Z\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 5: VALARM has no TRIGGER"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART;TZID=Nowhere/Land:20261201T100000\r\nEXDATE;TZID=Other/Land:20261201T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 5: bad EXDATE value \"20261201T100000\": TZID \"Other/Land\" has no VTIMEZONE"),
        (b"BEGIN:VCALENDAR\r\nSUMMARY:\xff\xfe\r\n", "line 2: the text is not valid UTF-8"),
    ] {
        let err = parse_calendar(text).and_then(|c| c.events.into_iter().next().ok_or(IcalError::NoEvent));
        let msg = err.expect_err(want).to_string();
        assert!(msg.starts_with(want), "want {want:?}, got {msg:?}");
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut text = String::from("BEGIN:VCALENDAR\r\n");
    for _ in 0..100 {
        text.push_str("BEGIN:X\r\n");
    }
    assert!(matches!(
        parse_calendar(text.as_bytes()),
        Err(IcalError::TooDeep { line: 9, .. })
    ));
}

#[test]
fn every_prefix_and_byte_flip_of_the_samples_errs_or_parses_without_panic() {
    let mut inputs: Vec<Vec<u8>> = samples()
        .iter()
        .map(|p| fs::read(p).expect("read"))
        .collect();
    inputs.push(
        to_ics(&full_appointment(), NOW)
            .expect("write")
            .into_bytes(),
    );
    let mut outcomes = (0, 0);
    for bytes in &inputs {
        for cut in 0..bytes.len() {
            let prefix = bytes.get(..cut).unwrap_or_default();
            match parse_calendar(prefix) {
                Ok(_) => outcomes.0 += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    outcomes.1 += 1;
                }
            }
        }
        for (i, flip) in [b':', b';', b'"', b'\n', b' ', b'=', b',', 0xC3]
            .iter()
            .cycle()
            .take(bytes.len())
            .enumerate()
            .step_by(3)
        {
            let mut mutated = bytes.clone();
            if let Some(b) = mutated.get_mut(i) {
                *b = *flip;
            }
            let _ = parse_calendar(&mutated).map(|c| calendar_to_ics(&c, NOW));
        }
    }
    // Prefixes that end right after END:VCALENDAR parse; almost all others fail.
    assert!(outcomes.1 > 1000 && outcomes.0 >= 4, "{outcomes:?}");
}

#[test]
fn itip_reply_and_cancel_write_valid_objects() {
    let req = full_appointment();
    let reply = itip::reply(&req, "BJORN@example.de", PartStat::Declined).expect("reply");
    itip::check(&reply).expect("reply rules");
    let ics = to_ics(&reply, NOW).expect("write reply");
    assert!(ics.contains("\r\nMETHOD:REPLY\r\n"));
    assert!(ics.contains("PARTSTAT=DECLINED"));
    assert_eq!(ics.matches("ATTENDEE").count(), 1);
    assert_eq!(
        parse_ics(ics.as_bytes()).map(|a| a.attendees[0].email.clone()),
        Ok("bjorn@example.de".into())
    );
    let cancel = itip::cancel(&req);
    let ics = to_ics(&cancel, NOW).expect("write cancel");
    assert!(
        ics.contains("\r\nMETHOD:CANCEL\r\n")
            && ics.contains("\r\nSTATUS:CANCELLED\r\n")
            && ics.contains("\r\nSEQUENCE:4\r\n")
    );
}
