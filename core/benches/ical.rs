//! Speed of the iCalendar engine on a typical invitation: a weekly meeting
//! in Europe/Madrid with five attendees, a description, an alarm and its
//! generated VTIMEZONE (about 2 KB of text), written and parsed; plus the
//! whole meeting-request email (build + parse with the calendar part).
//!
//!     cargo bench -p postwire-core --bench ical

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postwire_core::ical::{Alarm, Appointment, Attendee, Method, parse_ics, to_ics};
use postwire_core::{BuildOptions, Mailbox, MessageSpec, build, parse};

fn invitation() -> Appointment {
    Appointment {
        method: Some(Method::Request),
        uid: "040000008200E00074C5B7101A82E008000000005@example.com".into(),
        dtstamp: Some("2026-11-20T08:00:00Z".into()),
        start: "2026-12-01T10:00:00".into(),
        end: Some("2026-12-01T11:00:00".into()),
        time_zone: Some("Europe/Madrid".into()),
        summary: Some("Reunión semanal de planificación".into()),
        description: Some(
            "Orden del día:\n1. Revisión del trimestre\n2. Planificación 2027; presupuesto, contratación\n\nEnlace: https://meet.example.com/abc-defg-hij".into(),
        ),
        location: Some("Sala Goya (12 plazas)".into()),
        organizer: Mailbox::parse("Ana Núñez <ana@example.com>").ok(),
        attendees: ["bjorn@example.de", "carl@example.org", "dora@example.com", "eli@example.net", "fay@example.com"]
            .iter()
            .map(|e| Attendee { name: Some(format!("Person {e}")), rsvp: true, ..Attendee::new(*e) })
            .collect(),
        rrule: Some("FREQ=WEEKLY;BYDAY=TU;COUNT=10".into()),
        alarms: vec![Alarm { trigger: "-PT15M".into(), ..Alarm::default() }],
        ..Appointment::default()
    }
}

fn benches(c: &mut Criterion) {
    let appt = invitation();
    let ics = to_ics(&appt, 0).expect("write");
    let mut g = c.benchmark_group("ical");
    g.throughput(Throughput::Bytes(ics.len() as u64));
    g.bench_function("write_invitation", |b| {
        b.iter(|| to_ics(black_box(&appt), 0))
    });
    g.bench_function("parse_invitation", |b| {
        b.iter(|| parse_ics(black_box(ics.as_bytes())))
    });
    g.finish();

    let spec = MessageSpec {
        from: Mailbox::parse("Ana Núñez <ana@example.com>").ok(),
        to: appt
            .attendees
            .iter()
            .filter_map(|a| Mailbox::parse(&a.email).ok())
            .collect(),
        subject: appt.summary.clone(),
        calendar: Some(appt.clone()),
        ..MessageSpec::default()
    };
    let opts = BuildOptions {
        now: 1_795_000_000,
        seed: 1,
    };
    let eml = build(&spec, &opts).expect("build");
    let mut g = c.benchmark_group("ical_email");
    g.throughput(Throughput::Bytes(eml.len() as u64));
    g.bench_function("build_meeting_request", |b| {
        b.iter(|| build(black_box(&spec), &opts))
    });
    g.bench_function("parse_meeting_request", |b| {
        b.iter(|| parse(black_box(&eml)))
    });
    g.finish();
    eprintln!(
        "invitation: {} bytes of iCalendar, {} bytes of email",
        ics.len(),
        eml.len()
    );
}

criterion_group!(ical, benches);
criterion_main!(ical);
