//! Keeps the hand-written TypeScript interfaces honest: every serde field of
//! core's spec types must appear in the matching interface and vice versa.
//! The serde field list comes from the derive itself (a deserializer that
//! records the `fields` that `deserialize_struct` is called with), so adding a
//! field to core without adding it here fails this test.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use postwire_core::{Alternate, Attachment, Envelope, MessageSpec};

use crate::{envelope::TS_ENVELOPE, errors, options, spec::TS_SPEC};

/// Records the field names serde asks for, then stops with an error.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stop")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.extend_from_slice(fields);
        Err(Stop)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn serde_fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    names.sort_unstable();
    names
}

/// The member names of `export interface NAME { ... }` in `ts`.
fn ts_fields(ts: &str, name: &str) -> Vec<String> {
    let start = ts
        .find(&format!("export interface {name} "))
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
