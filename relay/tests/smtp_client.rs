//! The SMTP pool against a real SMTP server (aiosmtpd, started here) with
//! STARTTLS and AUTH required, plus misbehaving servers for the failure cases.

mod smtp_support;

use std::{sync::Arc, time::Duration};

use postwire_relay::smtp::{
    AuthMechanism, BlockingSmtpPool, Content, Envelope, Outgoing, Secret, Security, SmtpError,
    SmtpPool, SmtpSettings, Stage,
};
use smtp_support::{PASSWORD, Pki, Server, USER, message, pki};

fn secure_settings(server: &Server, pki: &Pki, connections: usize) -> SmtpSettings {
    let mut s = SmtpSettings::from_url(&format!(
        "smtp://{}@localhost:{}?security=starttls&connections={connections}&timeout=10",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_received_equal_the_bytes_sent_over_starttls_with_auth() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki, 2))
        .await
        .expect("connect");
    let small = message(1, 2_000);
    let big = message(2, 700_000);
    let mut no_final_crlf = message(3, 500);
    no_final_crlf.truncate(no_final_crlf.len() - 2);

    let r1 = pool
        .send(
            &envelope(&["bob@example.org", "carl@example.org"]),
            small.clone(),
        )
        .await
        .expect("send small");
    assert!(r1.is_complete());
    assert_eq!(r1.recipients.len(), 2);
    assert_eq!(r1.reply.code, 250);
    assert_eq!(
        r1.reply.enhanced.map(|e| e.to_string()).as_deref(),
        Some("2.0.0")
    );
    pool.send(&envelope(&["bob@example.org"]), big.clone())
        .await
        .expect("send big");
    pool.send(&envelope(&["bob@example.org"]), no_final_crlf.clone())
        .await
        .expect("send without final CRLF");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fwd.eml");
    std::fs::write(&file, &big).unwrap();
    let r4 = pool
        .forward_file(&file, "fwd@example.com", &["Dora <dora@example.net>"])
        .await
        .expect("forward_file");
    assert_eq!(r4.bytes, big.len() as u64);
    pool.forward("fwd@example.com", &["eve@example.net"], small.clone())
        .await
        .expect("forward");
    pool.close().await;

    let got = server.messages();
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[0].0["rcptTo"],
        serde_json::json!(["bob@example.org", "carl@example.org"])
    );
    assert_eq!(got[0].1, small, "small message changed in transit");
    assert_eq!(got[1].1, big, "big message changed in transit");
    // SMTP cannot end a message without a line end: exactly CRLF is added.
    let mut expected = no_final_crlf.clone();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(got[2].1, expected);
    assert_eq!(got[3].0["mailFrom"], "fwd@example.com");
    assert_eq!(got[3].0["rcptTo"], serde_json::json!(["dora@example.net"]));
    assert_eq!(got[3].1, big, "forward_file changed the message");
    assert_eq!(got[4].1, small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_xoauth2_and_login_work() {
    let pki = pki();
    let server = Server::start("smtps", Some(&pki));
    for mech in [
        AuthMechanism::Xoauth2,
        AuthMechanism::Login,
        AuthMechanism::Plain,
    ] {
        let mut s =
            SmtpSettings::from_url(&format!("smtps://127.0.0.1:{}?timeout=10", server.port))
                .unwrap();
        s.username = Some(USER.into());
        s.password = Some(Secret::new(PASSWORD));
        s.ca_file = Some(pki.ca.clone());
        s.mechanisms = vec![mech];
        let pool = SmtpPool::connect(s)
            .await
            .unwrap_or_else(|e| panic!("{mech:?}: {e}"));
        pool.send(&envelope(&["bob@example.org"]), message(7, 300))
            .await
            .unwrap_or_else(|e| panic!("{mech:?}: {e}"));
        pool.close().await;
    }
    assert_eq!(server.messages().len(), 3);
    assert_eq!(server.auth_attempts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_gives_a_clear_error() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let mut s = secure_settings(&server, &pki, 1);
    s.password = Some(Secret::new("wrong-password-123"));
    let err = SmtpPool::connect(s).await.expect_err("must fail");
    let text = err.to_string();
    assert!(matches!(err, SmtpError::AuthFailed { .. }), "{err:?}");
    assert!(
        text.contains("authentication as \"ana@example.com\" failed"),
        "{text}"
    );
    assert!(text.contains("535"), "{text}");
    assert!(
        !text.contains("wrong-password-123"),
        "password leaked: {text}"
    );
    assert!(err.is_permanent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let mut s = secure_settings(&server, &pki, 1);
    s.ca_file = None;
    let err = SmtpPool::connect(s).await.expect_err("must fail");
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(server.auth_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_refuses_to_authenticate_in_clear_when_no_starttls_is_offered() {
    let server = Server::start("clear-auth", None);
    let mut s = SmtpSettings::new("127.0.0.1");
    s.port = server.port;
    s.security = Security::Auto;
    s.username = Some(USER.into());
    s.password = Some(Secret::new(PASSWORD));
    s.timeout = Duration::from_secs(10);
    let err = SmtpPool::connect(s.clone()).await.expect_err("must refuse");
    assert!(
        matches!(err, SmtpError::PlaintextAuthRefused { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("unencrypted"), "{err}");
    assert_eq!(server.auth_attempts(), 0, "the password went to the server");

    // security=starttls against the same server: a clear error, no AUTH either.
    s.security = Security::StartTls;
    let err = SmtpPool::connect(s.clone()).await.expect_err("must refuse");
    assert!(
        matches!(err, SmtpError::StartTlsUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(server.auth_attempts(), 0);

    // Explicitly allowed, the same server takes the credentials: the refusal was ours.
    s.security = Security::Auto;
    s.allow_plaintext_auth = true;
    let pool = SmtpPool::connect(s).await.expect("allowed in clear");
    pool.send(&envelope(&["bob@example.org"]), message(1, 100))
        .await
        .expect("send");
    pool.close().await;
    assert_eq!(server.auth_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_connections_are_really_used() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki, 8))
        .await
        .expect("connect");
    let items: Vec<Outgoing> = (0..400)
        .map(|i| Outgoing {
            envelope: envelope(&["bob@example.org"]),
            content: Content::Bytes(Arc::from(message(i, 4_000))),
        })
        .collect();
    let mut calls = 0;
    let results = pool.send_bulk(items, |_| calls += 1).await;
    pool.close().await;
    assert_eq!(calls, 400);
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(server.messages().len(), 400);
    assert_eq!(server.peak_sessions(), 8, "sessions open at once");
    assert_eq!(server.sessions(), 8, "each worker keeps its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_reported_per_recipient_and_4xx_is_transient() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki, 1))
        .await
        .expect("connect");

    let report = pool
        .send(
            &envelope(&[
                "ok@example.org",
                "tempfail@example.org",
                "reject@example.org",
            ]),
            message(1, 500),
        )
        .await
        .expect("partly accepted");
    assert!(!report.is_complete());
    let [ok, temp, rej] = &report.recipients[..] else {
        panic!("{report:?}")
    };
    assert!(ok.is_accepted());
    assert_eq!((temp.reply.code, temp.reply.is_transient()), (451, true));
    assert_eq!(
        temp.reply.enhanced.map(|e| e.to_string()).as_deref(),
        Some("4.3.0")
    );
    assert!(temp.reply.text.contains("try again later"));
    assert_eq!((rej.reply.code, rej.reply.is_permanent()), (550, true));
    assert_eq!(
        rej.reply.enhanced.map(|e| e.to_string()).as_deref(),
        Some("5.1.1")
    );
    assert_eq!(
        server.messages()[0].0["rcptTo"],
        serde_json::json!(["ok@example.org"])
    );

    let err = pool
        .send(&envelope(&["tempfail@example.org"]), message(2, 500))
        .await
        .expect_err("nobody accepted");
    assert!(err.is_transient() && !err.is_permanent(), "{err}");
    assert_eq!(err.status(), Some(451));

    let err = pool
        .send(&envelope(&["reject@example.org"]), message(3, 500))
        .await
        .expect_err("nobody accepted");
    assert!(err.is_permanent(), "{err}");

    let mut env = envelope(&["bob@example.org"]);
    env.mail_from = "tempdata@example.com".into();
    let err = pool.send(&env, message(4, 500)).await.expect_err("452");
    assert!(
        matches!(
            err,
            SmtpError::Rejected {
                stage: Stage::EndOfData,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.status(), Some(452));

    // The session is still usable after the refusals.
    pool.send(&envelope(&["bob@example.org"]), message(5, 500))
        .await
        .expect("send after refusals");
    pool.close().await;
    assert_eq!(server.messages().len(), 2);
    assert_eq!(server.sessions(), 1);
}

fn raw_settings(server: &Server, timeout: Duration) -> SmtpSettings {
    let mut s = SmtpSettings::new("127.0.0.1");
    s.port = server.port;
    s.security = Security::None;
    s.timeout = timeout;
    s
}

/// Runs `fut`, failing the test if it hangs far beyond the configured timeout.
async fn no_hang<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("the client hung instead of timing out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_the_connection_mid_data_gives_a_transient_error() {
    let server = Server::start("drop-data", None);
    let pool = SmtpPool::new(raw_settings(&server, Duration::from_secs(3))).unwrap();
    let err = no_hang(pool.send(&envelope(&["bob@example.org"]), message(1, 3_000_000)))
        .await
        .expect_err("dropped");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        matches!(err.stage(), Some(Stage::Content | Stage::EndOfData)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_the_end_of_data_times_out() {
    let server = Server::start("hang-reply", None);
    let pool = SmtpPool::new(raw_settings(&server, Duration::from_secs(2))).unwrap();
    let err = no_hang(pool.send(&envelope(&["bob@example.org"]), message(1, 5_000)))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                stage: Stage::EndOfData,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_times_out_while_streaming_a_file() {
    let server = Server::start("stall-read", None);
    let pool = SmtpPool::new(raw_settings(&server, Duration::from_secs(2))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.eml");
    std::fs::write(&file, message(1, 40_000_000)).unwrap();
    let err = no_hang(pool.forward_file(&file, "a@example.com", &["bob@example.org"]))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                stage: Stage::Content,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_greets_times_out() {
    let server = Server::start("silent", None);
    let err = no_hang(SmtpPool::connect(raw_settings(
        &server,
        Duration::from_secs(1),
    )))
    .await
    .expect_err("timeout");
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                stage: Stage::Greeting,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_file_is_never_delivered_truncated() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki, 1))
        .await
        .expect("connect");
    let dir = tempfile::tempdir().unwrap();
    // A directory opens but fails on the first read: the abort switch must
    // keep the end-of-data marker from going out.
    let err = pool
        .forward_file(dir.path(), "a@example.com", &["bob@example.org"])
        .await
        .expect_err("read error");
    assert!(matches!(err, SmtpError::MessageFile { .. }), "{err:?}");
    let err = pool
        .forward_file(
            dir.path().join("missing.eml"),
            "a@example.com",
            &["bob@example.org"],
        )
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("missing.eml"), "{err}");
    // The pool recovers with a new connection.
    pool.send(&envelope(&["bob@example.org"]), message(1, 100))
        .await
        .expect("send after abort");
    pool.close().await;
    assert_eq!(
        server.messages().len(),
        1,
        "a truncated message was delivered"
    );
}

#[test]
fn the_blocking_pool_sends_too() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = BlockingSmtpPool::connect(secure_settings(&server, &pki, 2)).expect("connect");
    let msg = message(9, 1_000);
    let report = pool
        .send(&envelope(&["bob@example.org"]), msg.clone())
        .expect("send");
    assert!(report.is_complete());
    pool.close();
    assert_eq!(server.messages()[0].1, msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_spec_is_built_and_sent_to_its_envelope() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let pool = SmtpPool::connect(secure_settings(&server, &pki, 1))
        .await
        .expect("connect");
    let spec = postwire_core::spec::from_json(
        r#"{"from": "Ana <ana@example.com>", "to": ["bob@example.org"], "cc": ["carl@example.org"],
            "bcc": ["dora@example.net"], "subject": "spec", "text": "hello\n"}"#,
    )
    .expect("spec");
    let options = postwire_core::build::BuildOptions {
        now: 1_800_000_000,
        seed: 7,
    };
    let report = pool.send_spec(&spec, &options).await.expect("send_spec");
    assert_eq!(report.accepted().count(), 3);
    pool.close().await;
    let got = server.messages();
    assert_eq!(
        got[0].0["rcptTo"],
        serde_json::json!(["bob@example.org", "carl@example.org", "dora@example.net"])
    );
    let built = postwire_core::build::build(&spec, &options).expect("build");
    assert_eq!(got[0].1, built);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_server_gets_the_same_bytes_and_per_recipient_replies() {
    let server = Server::start("pipelining", None);
    let pool = SmtpPool::connect(raw_settings(&server, Duration::from_secs(10)))
        .await
        .expect("connect");
    let m = message(1, 200_000);
    let report = pool
        .send(
            &envelope(&[
                "ok@example.org",
                "tempfail@example.org",
                "reject@example.org",
                "ok2@example.org",
            ]),
            m.clone(),
        )
        .await
        .expect("partly accepted");
    let codes: Vec<u16> = report.recipients.iter().map(|r| r.reply.code).collect();
    assert_eq!(codes, [250, 451, 550, 250]);
    assert_eq!(report.reply.code, 250);

    let err = pool
        .send(
            &envelope(&["tempfail@example.org", "reject@example.org"]),
            message(2, 100),
        )
        .await
        .expect_err("nobody accepted");
    assert!(
        matches!(err, SmtpError::AllRecipientsRejected { .. }),
        "{err:?}"
    );
    assert!(err.is_transient());

    let mut env = envelope(&["ok@example.org"]);
    env.mail_from = "rejectfrom@example.com".into();
    let err = pool
        .send(&env, message(3, 100))
        .await
        .expect_err("sender refused");
    assert!(
        matches!(
            err,
            SmtpError::Rejected {
                stage: Stage::MailFrom,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());

    // Still in step: the next message goes through on the same session.
    let last = message(4, 3_000);
    pool.send(&envelope(&["ok@example.org"]), last.clone())
        .await
        .expect("send after refusals");
    pool.close().await;
    let got = server.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].0["rcptTo"],
        serde_json::json!(["ok@example.org", "ok2@example.org"])
    );
    assert_eq!(got[0].1, m);
    assert_eq!(got[1].1, last);
    assert_eq!(server.sessions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_losing_the_message() {
    let server = Server::start("one-per-session", None);
    let pool = SmtpPool::connect(raw_settings(&server, Duration::from_secs(10)))
        .await
        .expect("connect");
    let messages: Vec<Vec<u8>> = (0..3).map(|i| message(i, 1_000)).collect();
    for m in &messages {
        // Give the server's close time to arrive, as after an idle period.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let report = pool
            .send(&envelope(&["bob@example.org"]), m.clone())
            .await
            .expect("sent despite the closed connection");
        assert!(report.is_complete());
    }
    pool.close().await;
    let got: Vec<Vec<u8>> = server.messages().into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, messages, "each message exactly once");
    assert_eq!(server.sessions(), 3);
}
