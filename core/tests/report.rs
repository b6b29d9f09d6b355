//! The report corpus: every `NNN-name.eml` under `tests/data/reports/` is
//! read by `parse_report`, with LF and with CRLF line ends, and must give
//! its `NNN-name.json` exactly (kind, recipients, feedback fields, original
//! Message-ID and headers, warnings). A corpus with no case fails.
//! `POSTWIRE_BLESS=1 cargo test -p postwire-core --test report` writes the
//! `.json` files from the current output (refused when CI is set); review
//! the diff before committing it.

use std::path::{Path, PathBuf};

use postwire_core::report::{Action, ReportError, ReportKind, parse_report};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reports");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "report corpus found only {} case(s)",
        files.len()
    );
    files
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        if b == b'\n' && out.last() != Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn every_report_in_the_corpus_reads_as_its_expected_json() {
    let bless = std::env::var("POSTWIRE_BLESS").is_ok_and(|v| v == "1");
    assert!(
        !(bless && std::env::var_os("CI").is_some()),
        "POSTWIRE_BLESS=1 is refused when CI is set"
    );
    let mut failures = Vec::new();
    for eml in corpus() {
        let bytes = std::fs::read(&eml).expect("read eml");
        let report = parse_report(&bytes).unwrap_or_else(|e| panic!("{}: {e}", eml.display()));
        let got = serde_json::to_value(&report).expect("serialise");
        let expected_path = eml.with_extension("json");
        if bless {
            let mut text = serde_json::to_string_pretty(&got).expect("pretty");
            text.push('\n');
            std::fs::write(&expected_path, text).expect("write json");
            continue;
        }
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .expect("expected json");
        if got != expected {
            failures.push(format!(
                "{} (LF):\n got {}\nwant {}",
                eml.display(),
                serde_json::to_string_pretty(&got).unwrap_or_default(),
                serde_json::to_string_pretty(&expected).unwrap_or_default()
            ));
        }
        let with_crlf = parse_report(&crlf(&bytes)).expect("crlf parse");
        let got_crlf = serde_json::to_value(&with_crlf).expect("serialise");
        if got_crlf != expected {
            failures.push(format!(
                "{} (CRLF) differs from its LF reading",
                eml.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn input_that_is_not_a_message_is_an_error() {
    assert_eq!(parse_report(b""), Err(ReportError::Empty));
    assert_eq!(parse_report(b" \r\n\t"), Err(ReportError::Empty));
    assert_eq!(
        parse_report(b"\r\njust text, no header\r\n"),
        Err(ReportError::NotAMessage)
    );
}

#[test]
fn a_standard_report_needs_no_heuristic() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reports/002-rfc3464-multi-recipient.eml"),
    )
    .expect("read");
    let report = parse_report(&bytes).expect("report");
    assert_eq!(report.kind, ReportKind::Delivery);
    assert!(!report.heuristic);
    let actions: Vec<_> = report.recipients.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            Some(Action::Failed),
            Some(Action::Delayed),
            Some(Action::Failed)
        ]
    );
    assert!(report.recipients[0].is_permanent());
    assert!(report.recipients[1].is_transient());
}

#[test]
fn truncated_and_garbled_reports_never_panic() {
    for eml in corpus() {
        let bytes = std::fs::read(&eml).expect("read");
        for cut in (0..bytes.len()).step_by(7) {
            let _ = parse_report(&bytes[..cut]);
        }
        // Flip bytes throughout, including in boundaries and field names.
        let mut garbled = bytes.clone();
        for i in (0..garbled.len()).step_by(13) {
            garbled[i] ^= 0x5a;
        }
        let _ = parse_report(&garbled);
    }
}

#[test]
fn a_huge_declared_count_or_length_sizes_nothing() {
    // Nothing in a report declares a length; a field with a huge number in
    // it is text, and a very long line is read in place.
    let mut msg = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\nContent-Length: 18446744073709551615\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; ".to_vec();
    msg.extend(std::iter::repeat_n(b'x', 200_000));
    msg.extend_from_slice(b"\r\n--b--\r\n");
    let report = parse_report(&msg).expect("report");
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(
        report.recipients[0]
            .diagnostic_code
            .as_deref()
            .map(str::len),
        Some(200_000)
    );
}

#[test]
fn a_long_list_of_failed_recipients_reads_in_linear_time() {
    // 50,000 addresses in X-Failed-Recipients and as many Postfix lines,
    // each address twice: merged once each. (Quadratic merging would take
    // minutes here; no timing is asserted, the test only has to finish.)
    let n = 50_000;
    let mut msg = b"From: MAILER-DAEMON@mx.example\r\nX-Failed-Recipients: ".to_vec();
    for i in 0..n {
        msg.extend_from_slice(format!("u{i}@example.org, ").as_bytes());
    }
    msg.extend_from_slice(b"\r\n\r\n");
    for i in 0..n {
        msg.extend_from_slice(format!("<u{i}@example.org>: 550 5.1.1 no\r\n").as_bytes());
    }
    let report = parse_report(&msg).expect("report");
    assert_eq!(report.recipients.len(), n);
    assert!(report.heuristic);
    assert_eq!(report.recipients[7].status.as_deref(), Some("5.1.1"));
}
