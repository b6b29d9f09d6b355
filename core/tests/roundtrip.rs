//! parse(build(spec)) == spec.normalized(): the backbone round trip, over
//! hand-written specs that exercise every field.

use postwire_core::{BuildOptions, build, parse, spec::from_json};

fn round_trip(json: &str) {
    let spec = from_json(json).unwrap_or_else(|e| panic!("spec: {e}"));
    let bytes = build(
        &spec,
        &BuildOptions {
            now: 1_764_000_000,
            seed: 9,
        },
    )
    .unwrap_or_else(|e| panic!("build: {e}"));
    let back = parse(&bytes).unwrap_or_else(|e| panic!("parse: {e}"));
    let mut expected = spec.normalized();
    // build fills in what the spec left open; the parsed copy carries it.
    if expected.date.is_none() {
        expected.date = back.date;
    }
    if expected.message_id.is_none() {
        expected.message_id = back.message_id.clone();
    }
    assert_eq!(
        back,
        expected,
        "\n--- message ---\n{}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn every_field_survives_the_round_trip() {
    round_trip(
        r#"{
        "from": "Ana Núñez <ana@example.com>",
        "sender": "robot@example.com",
        "to": ["bob@example.com", "\"Carl, Jr.\" <carl@example.org>", "Zoë <zoe@bücher.example>"],
        "cc": ["dan@example.net"],
        "bcc": ["hidden@example.net"],
        "replyTo": ["replies@example.com"],
        "subject": "Reunión del equipo — 日本語のテスト with a rather long subject line that must be folded",
        "date": "2026-12-01T09:00:00+01:00",
        "messageId": "<abc.123@example.com>",
        "inReplyTo": "<prev@example.com>",
        "references": ["<root@example.com>", "<prev@example.com>"],
        "text": "Hola,\nline two with trailing space \nüñíçødé\n",
        "html": "<p>Hola <img src=\"cid:logo@example.com\"></p>\n",
        "alternates": [{"contentType": "text/calendar; method=REQUEST", "content": "BEGIN:VCALENDAR\nEND:VCALENDAR\n"}],
        "attachments": [
          {"filename": "logo.png", "contentType": "image/png", "content": "iVBORw0KGgo=", "inline": true, "contentId": "logo@example.com"},
          {"filename": "Jahresabschluß 2024.pdf", "contentType": "application/pdf", "content": "JVBERi0xLjQK"},
          {"filename": "notes.txt", "contentType": "text/plain; charset=iso-8859-1", "content": "Y2Fm6Qpubw=="}
        ],
        "headers": [["X-Campaign", "7"], ["X-Note", "café au lait"]],
        "priority": "low",
        "dispositionNotificationTo": ["ana@example.com"]
    }"#,
    );
}

#[test]
fn small_shapes_survive_the_round_trip() {
    round_trip(r#"{"from": "a@example.com", "to": ["b@example.com"], "text": "only text"}"#);
    round_trip(r#"{"from": "a@example.com", "to": ["b@example.com"], "html": "<b>only html</b>"}"#);
    round_trip(r#"{"from": "a@example.com", "to": ["b@example.com"], "subject": "no body"}"#);
    round_trip(
        r#"{"from": "a@example.com", "to": ["b@example.com"],
        "attachments": [{"filename": "a.bin", "contentType": "application/octet-stream", "content": "AAECAwQF"}]}"#,
    );
    round_trip(
        r#"{"from": "a@example.com", "to": ["b@example.com"], "text": "see attached",
        "attachments": [{"filename": "fwd.eml", "contentType": "message/rfc822",
        "content": "RnJvbTogeEBleGFtcGxlLmNvbQ0KU3ViamVjdDogaGkNCg0KYm9keQ0K"}]}"#,
    );
}
