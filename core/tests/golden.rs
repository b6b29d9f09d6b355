//! Golden files: fixed specs built to fixed bytes, and real-world-style
//! messages parsed to fixed specs. The cases live in `core/tests/golden/`:
//!
//! - `NNN.json` + `NNN.eml`: `build(spec)` with [`NOW`] and [`SEED`] must give
//!   the `.eml` byte for byte, also when the JSON has CRLF line ends and when
//!   the spec's bodies use CRLF instead of LF; and the round trip
//!   `parse(build(spec)) == spec.normalized()` must hold (with `date` and
//!   `messageId` taken from the message when the spec leaves them to build).
//! - `NNN-in.eml` + `NNN-in.json`: `parse(input)` must equal the expected spec,
//!   with the input as stored, with every line end turned into LF and into
//!   CRLF (unless the input declares `binary` content, where line ends are
//!   data); and `parse(build(parse(input)))` must give `parse(input).normalized()`.
//!
//! Regenerate the expected files after a deliberate change, then review the
//! diff before committing:
//!
//! ```text
//! POSTWIRE_BLESS=1 cargo test -p postwire-core --test golden
//! ```
//!
//! The test never writes when `CI` is set: blessing there is an error.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use postwire_core::{
    BuildOptions, MessageSpec, build, parse,
    spec::{from_json, to_json},
};

/// `--now` of every golden build: 2025-11-24T16:00:00Z.
const NOW: i64 = 1_764_000_000;
/// `--seed` of every golden build.
const SEED: u64 = 42;

const OPTIONS: BuildOptions = BuildOptions {
    now: NOW,
    seed: SEED,
};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// True when the expected files are to be rewritten (never in CI).
fn blessing() -> bool {
    let wanted = std::env::var("POSTWIRE_BLESS").is_ok_and(|v| v == "1");
    if wanted && std::env::var_os("CI").is_some() {
        panic!("POSTWIRE_BLESS=1 is refused when CI is set: golden files are never written in CI");
    }
    wanted
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("blessed {}", path.display());
}

/// Case names (`001`, `101-in`, ...) of the files ending in `suffix`, sorted.
fn cases(suffix: &str, want_in: bool) -> Vec<String> {
    let dir = golden_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|name| name.strip_suffix(suffix).map(str::to_string))
        .filter(|stem| stem.ends_with("-in") == want_in)
        .collect();
    names.sort();
    names
}

fn spec_from_file(path: &Path) -> MessageSpec {
    from_json(&read_text(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where two byte strings first differ, with the lines around it.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let line = expected[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(120);
        let end = (at + 120).min(bytes.len());
        String::from_utf8_lossy(bytes.get(start..end).unwrap_or_default()).into_owned()
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "first difference at byte {at} (line {line}); lengths {} expected vs {} actual\n--- expected ---\n{}\n--- actual ---\n{}",
        expected.len(),
        actual.len(),
        window(expected),
        window(actual)
    );
    out
}

/// Every body line end of the spec turned into CRLF.
fn with_crlf_bodies(spec: &MessageSpec) -> MessageSpec {
    let crlf = |s: &str| s.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = spec.clone();
    out.text = out.text.as_deref().map(crlf);
    out.html = out.html.as_deref().map(crlf);
    for alt in &mut out.alternates {
        alt.content = crlf(&alt.content);
    }
    out
}

fn to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let lf = to_lf(bytes);
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
    for &b in &lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The spec with attachment bytes in LF form: an unencoded (or
/// quoted-printable) text attachment takes the line ends of the message it is in.
fn line_ends_as_lf(spec: &MessageSpec) -> MessageSpec {
    let mut out = spec.clone();
    for a in &mut out.attachments {
        a.content = to_lf(&a.content);
    }
    out
}

/// The round trip, with what build fills in taken from the parsed copy.
fn assert_round_trip(case: &str, spec: &MessageSpec) {
    let bytes = build(spec, &OPTIONS).unwrap_or_else(|e| panic!("{case}: build: {e}"));
    let back = parse(&bytes).unwrap_or_else(|e| panic!("{case}: parse(build): {e}"));
    let mut expected = spec.normalized();
    if expected.date.is_none() {
        expected.date = back.date;
    }
    if expected.message_id.is_none() {
        expected.message_id = back.message_id.clone();
    }
    assert_eq!(
        to_json(&back),
        to_json(&expected),
        "{case}: parse(build(spec)) != spec.normalized()\n--- message ---\n{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        back, expected,
        "{case}: specs differ beyond their JSON form"
    );
}

#[test]
fn build_cases_give_the_expected_bytes() {
    let names = cases(".json", false);
    assert!(
        !names.is_empty(),
        "no build case (NNN.json) found in {}",
        golden_dir().display()
    );
    let bless = blessing();
    let mut failures = Vec::new();
    for name in &names {
        let json_path = golden_dir().join(format!("{name}.json"));
        let eml_path = golden_dir().join(format!("{name}.eml"));
        let json = read_text(&json_path);
        let spec = spec_from_file(&json_path);
        let bytes = build(&spec, &OPTIONS).unwrap_or_else(|e| panic!("{name}: build: {e}"));
        if bless {
            write(&eml_path, &bytes);
        }
        let expected = read(&eml_path);
        if bytes != expected {
            failures.push(format!(
                "{name}: build differs from {name}.eml: {}",
                first_difference(&expected, &bytes)
            ));
        }
        let crlf_json = from_json(&json.replace("\r\n", "\n").replace('\n', "\r\n"))
            .unwrap_or_else(|e| panic!("{name}: JSON with CRLF line ends: {e}"));
        assert_eq!(
            crlf_json, spec,
            "{name}: CRLF line ends change the JSON's meaning"
        );
        let crlf_bytes = build(&with_crlf_bodies(&spec), &OPTIONS)
            .unwrap_or_else(|e| panic!("{name}: build with CRLF bodies: {e}"));
        if crlf_bytes != expected {
            failures.push(format!(
                "{name}: CRLF bodies build to other bytes than LF bodies: {}",
                first_difference(&expected, &crlf_bytes)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn build_cases_are_deterministic_and_seeded() {
    for name in cases(".json", false) {
        let spec = spec_from_file(&golden_dir().join(format!("{name}.json")));
        let once = build(&spec, &OPTIONS).unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice = build(&spec, &OPTIONS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(once, twice, "{name}: same options, different bytes");
        let other = BuildOptions {
            now: NOW + 3600,
            seed: SEED + 1,
        };
        let reseeded = build(&spec, &other).unwrap_or_else(|e| panic!("{name}: {e}"));
        let needs_entropy = spec.message_id.is_none()
            || spec.date.is_none()
            || String::from_utf8_lossy(&once).contains("boundary=");
        assert_eq!(
            once != reseeded,
            needs_entropy,
            "{name}: another seed/now must change the bytes exactly when the message uses them"
        );
    }
}

#[test]
fn build_cases_round_trip() {
    for name in cases(".json", false) {
        let spec = spec_from_file(&golden_dir().join(format!("{name}.json")));
        assert_round_trip(&name, &spec);
        assert_round_trip(&format!("{name} (CRLF bodies)"), &with_crlf_bodies(&spec));
    }
}

#[test]
fn parse_cases_give_the_expected_spec() {
    let names = cases(".eml", true);
    assert!(
        !names.is_empty(),
        "no parse case (NNN-in.eml) found in {}",
        golden_dir().display()
    );
    let bless = blessing();
    for name in &names {
        let input = read(&golden_dir().join(format!("{name}.eml")));
        let json_path = golden_dir().join(format!("{name}.json"));
        let parsed = parse(&input).unwrap_or_else(|e| panic!("{name}: parse: {e}"));
        if bless {
            write(&json_path, format!("{}\n", to_json(&parsed)).as_bytes());
        }
        let expected = spec_from_file(&json_path);
        assert_eq!(
            to_json(&parsed),
            to_json(&expected),
            "{name}: parse differs from {name}.json"
        );
        assert_eq!(
            parsed, expected,
            "{name}: specs differ beyond their JSON form"
        );

        let binary = String::from_utf8_lossy(&input)
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: binary");
        if !binary {
            for (label, variant) in [("LF", to_lf(&input)), ("CRLF", to_crlf(&input))] {
                let again = parse(&variant).unwrap_or_else(|e| panic!("{name} ({label}): {e}"));
                assert_eq!(
                    to_json(&line_ends_as_lf(&again)),
                    to_json(&line_ends_as_lf(&expected)),
                    "{name}: parse of the input with {label} line ends differs"
                );
            }
        }
        assert_round_trip(&format!("{name} (rebuilt)"), &parsed);
    }
}
