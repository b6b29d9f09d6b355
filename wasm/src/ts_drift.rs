//! Keeps the hand-written TypeScript interfaces honest: every serde field of
//! core's spec types must appear in the matching interface and vice versa.
//! The serde field list comes from the derive itself ([`crate::fields`]), so
//! adding a field to core without adding it here fails this test.

use postwire_core::{
    Alternate, Attachment, Envelope, MessageSpec,
    ical::{Alarm, Appointment, Attendee, Calendar},
};

use crate::{envelope::TS_ENVELOPE, errors, fields, options, report::TS_REPORT, spec::TS_SPEC};

fn serde_fields<'de, T: serde::Deserialize<'de>>() -> Vec<&'static str> {
    let mut names = fields::of::<T>().to_vec();
    names.sort_unstable();
    names
}

/// The member names of `export interface NAME { ... }` in `ts`.
fn ts_fields(ts: &str, name: &str) -> Vec<String> {
    // `export interface Name {` or a generic `export interface Name<C = string> {`.
    let start = ts
        .find(&format!("export interface {name} "))
        .or_else(|| ts.find(&format!("export interface {name}<")))
        .unwrap_or_else(|| panic!("interface {name} not found"));
    let body = &ts[start..];
    let body = &body[body.find('{').unwrap_or_else(|| panic!("no body"))..];
    let body = &body[..body.find("\n}").unwrap_or_else(|| panic!("unclosed"))];
    let mut names: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("/*") && !l.starts_with('*') && l.contains(':'))
        .filter_map(|l| l.split([':', '?']).next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn message_spec_interface_lists_every_serde_field() {
    let serde = serde_fields::<MessageSpec>();
    assert!(serde.len() >= 18, "introspection found too few: {serde:?}");
    assert_eq!(ts_fields(TS_SPEC, "MessageSpec"), serde);
}

#[test]
fn attachment_and_alternate_interfaces_list_every_serde_field() {
    assert_eq!(
        ts_fields(TS_SPEC, "Attachment"),
        serde_fields::<Attachment>()
    );
    assert_eq!(ts_fields(TS_SPEC, "Alternate"), serde_fields::<Alternate>());
}

#[test]
fn envelope_interface_lists_every_serde_field() {
    assert_eq!(
        ts_fields(TS_ENVELOPE, "Envelope"),
        serde_fields::<Envelope>()
    );
}

#[test]
fn build_options_interface_lists_the_keys_the_binding_reads() {
    let mut keys: Vec<&str> = options::OPTION_KEYS.to_vec();
    keys.sort_unstable();
    assert_eq!(ts_fields(options::TS_OPTIONS, "BuildOptions"), keys);
}

#[test]
fn parse_options_interface_lists_the_keys_the_binding_reads() {
    let mut keys: Vec<&str> = options::PARSE_OPTION_KEYS.to_vec();
    keys.sort_unstable();
    assert_eq!(ts_fields(options::TS_PARSE_OPTIONS, "ParseOptions"), keys);
}

#[test]
fn error_code_type_lists_every_code() {
    for code in errors::CODES {
        assert!(
            errors::TS_ERRORS.contains(&format!("\"{code}\"")),
            "{code} missing from ErrorCode"
        );
    }
    let listed = errors::TS_ERRORS.matches("  | \"").count();
    assert_eq!(listed, errors::CODES.len());
}

#[test]
fn calendar_interfaces_list_every_serde_field() {
    assert_eq!(
        ts_fields(TS_SPEC, "Appointment"),
        serde_fields::<Appointment>()
    );
    assert_eq!(ts_fields(TS_SPEC, "Attendee"), serde_fields::<Attendee>());
    assert_eq!(ts_fields(TS_SPEC, "Alarm"), serde_fields::<Alarm>());
    assert_eq!(ts_fields(TS_SPEC, "Calendar"), serde_fields::<Calendar>());
}

#[test]
fn report_interfaces_list_every_serde_field() {
    use postwire_core::report::{Feedback, RecipientStatus, Report};
    assert_eq!(ts_fields(TS_REPORT, "Report"), serde_fields::<Report>());
    assert_eq!(
        ts_fields(TS_REPORT, "ReportRecipient"),
        serde_fields::<RecipientStatus>()
    );
    assert_eq!(ts_fields(TS_REPORT, "Feedback"), serde_fields::<Feedback>());
}
