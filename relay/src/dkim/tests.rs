//! Signer behaviour; the signatures themselves are checked by an independent
//! verifier (dkimpy) in tests/py/test_dkim.py, and here against ring's
//! Ed25519 verification over the canonical data.

use std::sync::atomic::Ordering;

use ring::signature::{ED25519, UnparsedPublicKey};

use super::*;

const MSG: &[u8] = b"From: =?utf-8?q?Ana_N=C3=BA=C3=B1ez?= <ana@Example.COM>\r\n\
To: bob@example.org,\r\n  carl@example.org\r\n\
Subject: hola\r\n\
Date: Sat, 05 Dec 2026 00:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
\r\n\
body  line \r\n\r\n";

fn fixed() -> u64 {
    1_796_428_800
}

fn keydir(algorithms: &[(&str, Algorithm)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (selector, a) in algorithms {
        let pem = key::generate(*a, 2048).unwrap();
        key::write_key_file(&key_path(dir.path(), "example.com", selector), &pem, false).unwrap();
    }
    dir
}

fn tag<'a>(field: &'a str, name: &str) -> Option<&'a str> {
    let unfolded: String = field.replace("\r\n\t", "");
    let leaked: &'a str = Box::leak(unfolded.into_boxed_str());
    leaked
        .split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
}

fn signed(signer: &Signer, msg: &[u8]) -> (Vec<u8>, Vec<String>) {
    match signer.sign(msg).unwrap() {
        Signed::Yes {
            message, selectors, ..
        } => (message, selectors),
        Signed::No(why) => panic!("unsigned: {why:?}"),
    }
}

#[test]
fn a_domain_without_a_key_goes_unsigned_and_is_counted() {
    let dir = keydir(&[]);
    let signer = Signer::with_dir(dir.path());
    assert!(matches!(
        signer.sign(MSG).unwrap(),
        Signed::No(Unsigned::NoKey { ref domain }) if domain == "example.com"
    ));
    assert_eq!(signer.apply(MSG, "m").unwrap(), None);
    assert_eq!(signer.stats().unsigned.load(Ordering::Relaxed), 1);
    assert!(matches!(
        signer.sign(b"To: x@y\r\n\r\nhi").unwrap(),
        Signed::No(Unsigned::NoFromDomain)
    ));
}

#[test]
fn an_ed25519_signature_verifies_over_the_relaxed_canonical_data() {
    let dir = keydir(&[("ed", Algorithm::Ed25519)]);
    let signer = Signer::with_dir(dir.path()).with_clock(fixed);
    let (out, selectors) = signed(&signer, MSG);
    assert_eq!(selectors, ["ed"]);
    assert!(out.ends_with(MSG));
    let field = std::str::from_utf8(&out[..out.len() - MSG.len()]).unwrap();
    assert!(field.lines().all(|l| l.len() <= 78), "{field}");
    assert_eq!(tag(field, "d"), Some("example.com"));
    assert_eq!(tag(field, "c"), Some("relaxed/relaxed"));
    assert_eq!(tag(field, "t"), Some("1796428800"));
    assert_eq!(tag(field, "l"), None);
    assert_eq!(
        tag(field, "h"),
        Some("from:from:subject:subject:to:to:date:date:message-id")
    );
    // Rebuild what was signed, as a verifier does, and check with ring.
    let key = SigningKey::load(&key_path(dir.path(), "example.com", "ed")).unwrap();
    let public = base64::engine::general_purpose::STANDARD
        .decode(key.public_key_base64())
        .unwrap();
    let b = tag(field, "b").unwrap().to_string();
    let b_at = field
        .find("; b=")
        .or_else(|| field.find(";\r\n\tb="))
        .unwrap();
    let without_b = &field[..field[b_at..].find("b=").unwrap() + b_at + 2];
    let (fields, _) = canon::split(MSG);
    let mut data = Vec::new();
    for name in ["from", "subject", "to", "date", "message-id"] {
        let f = fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .unwrap();
        canon::header(Canonicalization::Relaxed, f.raw, true, &mut data);
    }
    canon::header(
        Canonicalization::Relaxed,
        without_b.as_bytes(),
        false,
        &mut data,
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    let sig = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    UnparsedPublicKey::new(&ED25519, public)
        .verify(digest.as_ref(), &sig)
        .expect("the signature verifies");
}

#[test]
fn every_key_of_the_domain_signs_and_rotation_needs_no_restart() {
    let dir = keydir(&[("a", Algorithm::Ed25519), ("b", Algorithm::Rsa)]);
    let signer = Signer::with_dir(dir.path());
    let (out, selectors) = signed(&signer, MSG);
    assert_eq!(selectors, ["a", "b"]);
    assert_eq!(
        out.windows(15).filter(|w| w == b"DKIM-Signature:").count(),
        2
    );
    std::fs::remove_file(key_path(dir.path(), "example.com", "a")).unwrap();
    let pem = key::generate(Algorithm::Ed25519, 0).unwrap();
    key::write_key_file(&key_path(dir.path(), "example.com", "c"), &pem, false).unwrap();
    assert_eq!(signed(&signer, MSG).1, ["b", "c"]);
}

#[test]
fn body_length_and_simple_canonicalization_are_options() {
    let dir = keydir(&[("ed", Algorithm::Ed25519)]);
    let config = DkimConfig {
        body_length: true,
        canonicalization: "simple/simple".into(),
        ..DkimConfig::default()
    };
    let signer = Signer::new(&config, Some(dir.path().into())).unwrap();
    let (out, _) = signed(&signer, MSG);
    let field = std::str::from_utf8(&out[..out.len() - MSG.len()]).unwrap();
    assert_eq!(tag(field, "c"), Some("simple/simple"));
    // "body  line \r\n", trailing empty line dropped.
    assert_eq!(tag(field, "l"), Some("13"));
    let bad = DkimConfig {
        canonicalization: "loose".into(),
        ..DkimConfig::default()
    };
    assert!(matches!(
        Signer::new(&bad, None),
        Err(DkimError::InvalidCanonicalization(_))
    ));
    let no_from = DkimConfig {
        oversign: vec!["subject".into()],
        ..DkimConfig::default()
    };
    assert!(matches!(
        Signer::new(&no_from, None),
        Err(DkimError::NoFromInHeaderList)
    ));
}

#[test]
fn a_broken_key_is_an_error_that_names_the_file_and_counts_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(dir.path(), "example.com", "s");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let signer = Signer::with_dir(dir.path());
    let e = signer.apply(MSG, "m").unwrap_err();
    assert!(matches!(e, DkimError::KeyFormat { .. }), "{e}");
    assert!(
        e.to_string().contains("s.key") && !e.to_string().contains("c2VjcmV0"),
        "{e}"
    );
    assert_eq!(signer.stats().failed.load(Ordering::Relaxed), 1);
}

#[test]
fn debug_output_never_shows_key_material() {
    let dir = keydir(&[("ed", Algorithm::Ed25519)]);
    let signer = Signer::with_dir(dir.path());
    signed(&signer, MSG);
    let pem = std::fs::read_to_string(key_path(dir.path(), "example.com", "ed")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let debug = format!("{signer:?}");
    assert!(debug.contains("SigningKey(ed25519)"), "{debug}");
    assert!(!debug.contains(&body[..20]), "{debug}");
}

#[test]
fn from_domains_are_found_in_the_usual_shapes_and_made_ascii() {
    let d = |v: &str| {
        let m = format!("From: {v}\r\n\r\n");
        let (fields, _) = canon::split(m.as_bytes());
        from_domain(&fields)
    };
    assert_eq!(d("ana@Example.com").as_deref(), Some("example.com"));
    assert_eq!(d("\"A, B\" <a@x.org>").as_deref(), Some("x.org"));
    assert_eq!(d("a@x.org (Ana)").as_deref(), Some("x.org"));
    assert_eq!(
        d("Ana <ana@bücher.example>").as_deref(),
        Some("xn--bcher-kva.example")
    );
    assert_eq!(d("undisclosed"), None);
}

#[test]
fn a_header_present_twice_is_named_three_times_when_oversigned() {
    let dir = keydir(&[("ed", Algorithm::Ed25519)]);
    let signer = Signer::with_dir(dir.path());
    let msg = b"From: a@example.com\r\nTo: b@x.org\r\nTo: c@x.org\r\nCc: d@x.org\r\n\r\nhi\r\n";
    let (out, _) = signed(&signer, msg);
    let field = std::str::from_utf8(&out[..out.len() - msg.len()]).unwrap();
    assert_eq!(
        tag(field, "h"),
        Some("from:from:subject:to:to:to:date:cc"),
        "absent Subject and Date are still named once, so none can be added"
    );
}
