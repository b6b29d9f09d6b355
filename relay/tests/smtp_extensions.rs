//! SMTP extensions against a real server (aiosmtpd, started here): DSN
//! (RFC 3461), SIZE (RFC 1870), SMTPUTF8 (RFC 6531/6532) and REQUIRETLS
//! (RFC 8689). The server (smtpd.py `--extensions`) announces them, checks
//! the parameters it gets (syntax, xtext) and records them exactly as
//! received; a second server without the extensions shows what happens when
//! they are missing.

mod smtp_support;

use postwire_core::envelope::{Dsn, DsnRecipient, Notify, Ret};
use postwire_relay::smtp::{
    Envelope, Secret, Security, SmtpError, SmtpPool, SmtpSettings, Warning,
};
use serde_json::json;
use smtp_support::{PASSWORD, Pki, Server, USER, pki};

fn secure_settings(server: &Server, pki: &Pki) -> SmtpSettings {
    let mut s = SmtpSettings::from_url(&format!(
        "smtp://{}@localhost:{}?security=starttls&timeout=10",
        USER.replace('@', "%40"),
        server.port
    ))
    .expect("url");
    s.password = Some(Secret::new(PASSWORD));
    s.ca_file = Some(pki.ca.clone());
    s
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        mail_from: "ana@example.com".into(),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
        ..Envelope::default()
    }
}

/// A 7-bit message of `size` bytes.
fn ascii_message(size: usize) -> Vec<u8> {
    let mut m = b"From: ana@example.com\r\nTo: bob@example.org\r\nSubject: x\r\n\r\n".to_vec();
    while m.len() + 2 < size {
        m.push(b'a');
    }
    m.extend_from_slice(b"\r\n");
    m
}

fn dsn() -> Dsn {
    Dsn {
        notify: vec![Notify::Failure, Notify::Delay],
        ret: Some(Ret::Hdrs),
        envid: Some("x".into()),
        recipients: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_parameters_reach_the_server_exactly_and_in_xtext() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");

    let mut env = envelope(&["bob@example.org"]);
    env.dsn = Some(dsn());
    let report = pool.send(&env, ascii_message(300)).await.expect("send");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let mut d = dsn();
    d.ret = Some(Ret::Full);
    d.envid = Some("id+1=2 é".chars().filter(char::is_ascii).collect());
    d.recipients = vec![DsnRecipient {
        address: "carl+x@example.org".into(),
        notify: vec![Notify::Never],
        orcpt: Some("carl+x@example.org".into()),
    }];
    let mut env = envelope(&["bob@example.org", "carl+x@example.org"]);
    env.dsn = Some(d);
    pool.send(&env, ascii_message(300)).await.expect("send 2");
    pool.close().await;

    let got = server.messages();
    assert_eq!(got[0].0["mailParams"], json!(["RET=HDRS", "ENVID=x"]));
    assert_eq!(got[0].0["rcptParams"], json!([["NOTIFY=FAILURE,DELAY"]]));
    assert_eq!(got[0].0["decoded"]["envid"], "x");
    assert_eq!(
        got[1].0["mailParams"],
        json!(["RET=FULL", "ENVID=id+2B1+3D2+20"])
    );
    assert_eq!(got[1].0["decoded"]["envid"], "id+1=2 ");
    assert_eq!(
        got[1].0["rcptParams"],
        json!([
            ["NOTIFY=FAILURE,DELAY"],
            ["NOTIFY=NEVER", "ORCPT=rfc822;carl+2Bx@example.org"]
        ])
    );
    assert_eq!(
        got[1].0["decoded"]["orcpt"],
        json!([null, "rfc822;carl+x@example.org"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_request_to_a_server_without_dsn_goes_without_it_and_the_report_says_so() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let mut env = envelope(&["bob@example.org"]);
    env.dsn = Some(dsn());
    let report = pool.send(&env, ascii_message(300)).await.expect("send");
    assert_eq!(report.warnings, [Warning::DsnNotOffered]);
    assert!(report.is_complete());
    pool.close().await;
    let got = server.messages();
    assert_eq!(got[0].0["mailParams"], json!([]));
    assert_eq!(got[0].0["rcptParams"], json!([[]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_is_declared_and_a_message_over_the_limit_is_refused_before_data() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions", "--size", "5000"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let err = pool
        .send(&envelope(&["bob@example.org"]), ascii_message(20_000))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            SmtpError::TooLarge {
                size: 20_000,
                limit: 5000
            }
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(err.to_string().contains("5000"), "{err}");
    // The session is untouched: the next message goes on it, with its SIZE.
    pool.send(&envelope(&["bob@example.org"]), ascii_message(1000))
        .await
        .expect("small one");
    pool.close().await;
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["mailParams"], json!(["SIZE=1000"]));
    assert_eq!(server.sessions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiretls_goes_only_over_tls_to_a_server_that_offers_it() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let mut env = envelope(&["bob@example.org"]);
    env.require_tls = true;
    pool.send(&env, ascii_message(300))
        .await
        .expect("REQUIRETLS over STARTTLS");
    pool.close().await;
    assert_eq!(server.messages()[0].0["mailParams"], json!(["REQUIRETLS"]));

    // A TLS server without REQUIRETLS: refused, nothing sent.
    let bare = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&bare, &pki))
        .await
        .expect("connect");
    let err = pool
        .send(&env, ascii_message(300))
        .await
        .expect_err("no REQUIRETLS");
    assert!(
        matches!(
            err,
            SmtpError::ExtensionMissing {
                extension: "REQUIRETLS",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());
    pool.close().await;
    assert!(bare.messages().is_empty());

    // A plain connection: refused, whatever the server offers.
    let plain = Server::start_with("clear-auth", None, &["--extensions", "--no-auth"]);
    let mut s = SmtpSettings::new("127.0.0.1");
    s.port = plain.port;
    s.security = Security::None;
    let pool = SmtpPool::connect(s).await.expect("connect");
    let err = pool
        .send(&env, ascii_message(300))
        .await
        .expect_err("plain");
    assert!(matches!(err, SmtpError::NotEncrypted { .. }), "{err:?}");
    pool.close().await;
    assert!(plain.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_with_dsn_and_requiretls_sends_them() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let spec = postwire_core::spec::from_json(
        r#"{"from": "ana@example.com", "to": ["bob@example.org"], "subject": "dsn",
            "text": "hi\n", "requireTls": true,
            "dsn": {"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"}}"#,
    )
    .expect("spec");
    let options = postwire_core::build::BuildOptions {
        now: 1_800_000_000,
        seed: 1,
    };
    pool.send_spec(&spec, &options).await.expect("send_spec");
    pool.close().await;
    let got = server.messages();
    assert_eq!(
        got[0].0["mailParams"],
        json!(["REQUIRETLS", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(got[0].0["rcptParams"], json!([["NOTIFY=FAILURE,DELAY"]]));
    // Envelope only: nothing of it in the bytes.
    let text = String::from_utf8_lossy(&got[0].1);
    assert!(!text.to_ascii_lowercase().contains("envid"), "{text}");
}

/// The issue's acceptance case: a spec with a DSN request and a recipient
/// with a UTF-8 local part reaches the server with exactly those parameters,
/// and Python's `email` (policy SMTPUTF8) reads the UTF-8 headers back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utf8_recipient_goes_with_smtputf8_and_its_headers_stay_utf8() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let spec = postwire_core::spec::from_json(
        r#"{"from": "Ana Núñez <ana@example.com>", "to": ["José Pérez <José@ejemplo.es>"],
            "subject": "Reunión", "text": "hola\n",
            "dsn": {"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"}}"#,
    )
    .expect("spec");
    let options = postwire_core::build::BuildOptions {
        now: 1_800_000_000,
        seed: 3,
    };
    let report = pool.send_spec(&spec, &options).await.expect("send_spec");
    assert!(report.is_complete() && report.warnings.is_empty());
    pool.close().await;

    let got = server.messages();
    let (env, bytes) = &got[0];
    assert_eq!(env["rcptTo"], json!(["José@ejemplo.es"]));
    assert_eq!(env["smtpUtf8"], true);
    assert_eq!(
        env["mailParams"],
        json!(["BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(env["rcptParams"], json!([["NOTIFY=FAILURE,DELAY"]]));
    assert_eq!(env["headers"]["to"], json!(["José@ejemplo.es"]), "{env}");
    assert_eq!(env["headers"]["toNames"], json!(["José Pérez"]));
    assert_eq!(env["headers"]["from"], json!(["ana@example.com"]));
    assert_eq!(env["headers"]["subject"], "Reunión");
    assert_eq!(env["headers"]["defects"], json!([]), "{env}");
    // The address itself is UTF-8 in the header (RFC 6532), not encoded.
    assert!(
        bytes
            .windows("José@ejemplo.es".len())
            .any(|w| w == "José@ejemplo.es".as_bytes())
    );
    // And core's parse keeps it.
    let parsed = postwire_core::parse::parse(bytes).expect("parse");
    assert_eq!(parsed.to[0].email, "José@ejemplo.es");
    assert_eq!(parsed.to[0].name.as_deref(), Some("José Pérez"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utf8_address_to_a_server_without_smtputf8_is_refused_permanently() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--no-smtputf8"]);
    let pool = SmtpPool::connect(secure_settings(&server, &pki))
        .await
        .expect("connect");
    let env = envelope(&["José@ejemplo.es"]);
    let err = pool
        .send(&env, ascii_message(200))
        .await
        .expect_err("no SMTPUTF8");
    assert!(
        matches!(
            err,
            SmtpError::ExtensionMissing {
                extension: "SMTPUTF8",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(err.to_string().contains("SMTPUTF8"), "{err}");
    // The session is still good for ASCII mail.
    pool.send(&envelope(&["bob@example.org"]), ascii_message(200))
        .await
        .expect("ascii");
    pool.close().await;
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_client_certificate_gets_it_over_starttls_and_implicit_tls() {
    let pki = pki();
    let ca = pki.ca.to_str().expect("utf-8 path");
    for mode in ["secure", "smtps"] {
        let server = Server::start_with(mode, Some(&pki), &["--client-ca", ca]);
        let mut s = if mode == "smtps" {
            let mut s =
                SmtpSettings::from_url(&format!("smtps://localhost:{}?timeout=10", server.port))
                    .expect("url");
            s.username = Some(USER.into());
            s.password = Some(Secret::new(PASSWORD));
            s.ca_file = Some(pki.ca.clone());
            s
        } else {
            secure_settings(&server, &pki)
        };
        // Without a certificate the server ends the session.
        let err = SmtpPool::connect(s.clone())
            .await
            .expect_err("no client certificate");
        assert!(err.is_transient() || err.is_permanent(), "{err}");
        assert!(server.messages().is_empty());

        s.client_cert = Some(pki.client_cert.clone());
        s.client_key = Some(pki.client_key.clone());
        let pool = SmtpPool::connect(s)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        pool.send(&envelope(&["bob@example.org"]), ascii_message(300))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        pool.close().await;
        let got = server.messages();
        assert_eq!(got.len(), 1, "{mode}");
        assert_eq!(got[0].0["clientCert"], "postwire test client", "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_mismatched_client_key_is_a_settings_error() {
    let pki = pki();
    let mut s = SmtpSettings::new("localhost");
    s.client_cert = Some(pki.client_cert.clone());
    let err = SmtpPool::new(s.clone()).expect_err("no key");
    assert!(err.to_string().contains("client_key"), "{err}");
    s.client_key = Some(pki.ca.clone());
    let err = SmtpPool::new(s).expect_err("not a key");
    assert!(matches!(err, SmtpError::Settings(_)), "{err:?}");
    assert!(err.to_string().contains("private key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_tls_version_capabilities_and_a_wrong_password() {
    use postwire_relay::smtp::{AuthCheck, CheckStep, check};
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let report = check(secure_settings(&server, &pki)).await.expect("check");
    let tls = report.tls.expect("TLS");
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert_eq!(tls.certificate_sha256.len(), 32 * 3 - 1);
    assert!(report.capabilities.dsn && report.capabilities.requiretls);
    assert_eq!(report.capabilities.auth, ["LOGIN", "PLAIN", "XOAUTH2"]);
    assert!(matches!(report.auth, AuthCheck::Accepted { .. }));
    assert_eq!((report.noop.code, report.quit.code), (250, 221));

    let mut wrong = secure_settings(&server, &pki);
    wrong.password = Some(Secret::new("nope"));
    let err = check(wrong).await.expect_err("wrong password");
    assert_eq!(err.step, CheckStep::Auth);
    assert_eq!(err.step.exit_code(), 13);
    assert!(matches!(err.error, SmtpError::AuthFailed { .. }), "{err:?}");
    assert!(err.tls.is_some() && err.capabilities.is_some());
}

/// The relay's side: a spooled message (a lease, as the spool hands it to
/// its deliverer) with a DSN request and a UTF-8 recipient goes to the SMTP
/// upstream with those parameters; an upstream without SMTPUTF8 fails the
/// recipient permanently, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_deliverer_passes_the_spooled_dsn_request_upstream() {
    use postwire_relay::spool::{
        self, Key, Lease, Outcome,
        deliver::{Deliver, TransportDeliver},
    };
    let pki = pki();
    let lease = |port: u16| Lease {
        key: Key {
            token: "app".into(),
            id: format!("m{port}"),
        },
        envelope: spool::Envelope {
            mail_from: "ana@example.com".into(),
            rcpt_to: vec!["José@ejemplo.es".into()],
            dsn: Some(dsn()),
            require_tls: false,
        },
        bytes: ascii_message(400),
        attempts: 0,
        received_ms: 0,
        fence: 0,
    };

    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let pool = SmtpPool::new(secure_settings(&server, &pki)).expect("pool");
    let deliver = TransportDeliver::new(pool, 1, "upstream");
    let outcomes = deliver.deliver(&lease(server.port)).await;
    assert!(
        matches!(&outcomes[..], [(r, Outcome::Delivered(_))] if r == "José@ejemplo.es"),
        "{outcomes:?}"
    );
    let got = server.messages();
    assert_eq!(
        got[0].0["mailParams"],
        json!(["SMTPUTF8", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(got[0].0["rcptParams"], json!([["NOTIFY=FAILURE,DELAY"]]));

    let bare = Server::start_with("secure", Some(&pki), &["--no-smtputf8"]);
    let pool = SmtpPool::new(secure_settings(&bare, &pki)).expect("pool");
    let deliver = TransportDeliver::new(pool, 1, "upstream");
    let outcomes = deliver.deliver(&lease(bare.port)).await;
    match &outcomes[..] {
        [(_, Outcome::Permanent(reason))] => assert!(reason.contains("SMTPUTF8"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(bare.messages().is_empty());
}

/// With PIPELINING, MAIL, every RCPT and DATA go in one write: the same
/// parameters, in order, and every recipient's own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_carry_the_same_parameters() {
    let server = Server::start("pipelining", None);
    let mut s = SmtpSettings::new("127.0.0.1");
    s.port = server.port;
    s.security = Security::None;
    let pool = SmtpPool::connect(s).await.expect("connect");
    let mut d = dsn();
    d.recipients = vec![DsnRecipient {
        address: "José@ejemplo.es".into(),
        notify: vec![Notify::Success],
        orcpt: Some("José@ejemplo.es".into()),
    }];
    let mut env = envelope(&["José@ejemplo.es", "reject@example.org", "bob@example.org"]);
    env.dsn = Some(d);
    let report = pool.send(&env, ascii_message(500)).await.expect("send");
    let codes: Vec<u16> = report.recipients.iter().map(|r| r.reply.code).collect();
    assert_eq!(codes, [250, 550, 250]);
    assert_eq!(
        report.recipients[1]
            .reply
            .enhanced
            .map(|e| e.to_string())
            .as_deref(),
        Some("5.1.1")
    );
    pool.close().await;
    let got = server.messages();
    assert_eq!(
        got[0].0["rcptTo"],
        json!(["José@ejemplo.es", "bob@example.org"])
    );
    assert_eq!(
        got[0].0["mailParams"],
        json!(["SIZE=500", "SMTPUTF8", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(
        got[0].0["rcptParams"],
        json!([
            ["NOTIFY=SUCCESS", "ORCPT=utf-8;Jos\\x{E9}@ejemplo.es"],
            ["NOTIFY=FAILURE,DELAY"]
        ])
    );
}
