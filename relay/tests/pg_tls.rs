//! The PostgreSQL spool's connection: TLS to the database verified like the
//! SMTP side (a certificate from an unknown CA is refused; `sslrootcert`
//! makes it known), the password kept out of errors, and the relay's
//! `--spool` flags end to end. A real PostgreSQL (pg_support) with TLS on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg_support;
mod smtp_support;

use std::time::Duration;

use pg_support::PgServer;
use postwire_relay::spool::pg::{PgOptions, PgSpool, SpoolUrl};
use postwire_relay::spool::{Spool, SpoolOptions};

fn opts() -> PgOptions {
    PgOptions {
        connect_wait: Duration::ZERO,
        ..PgOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_to_the_database_is_verified_and_sslrootcert_makes_a_private_ca_known() {
    let pg = PgServer::start();
    let pki = smtp_support::pki_for(&["localhost"]);
    pg.enable_tls(&pki.cert, &pki.key);
    pg.create_database("tls");
    let base = format!("postgres://postwire@localhost:{}/tls", pg.port());

    // The private CA is not in the web PKI: the handshake is refused.
    let url = SpoolUrl::parse(
        &format!("{base}?sslmode=require"),
        Some(pg.password().into()),
    )
    .unwrap();
    let err = PgSpool::open(url, SpoolOptions::default(), opts())
        .await
        .expect_err("an unknown CA must be refused");
    let text = err.to_string();
    assert!(
        text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("error"),
        "{text}"
    );
    assert!(!text.contains(pg.password()), "the password leaked: {text}");

    // With the CA named, the spool works over TLS, and the server says so.
    let url = SpoolUrl::parse(
        &format!(
            "{base}?sslmode=verify-full&sslrootcert={}",
            pki.ca.display()
        ),
        Some(pg.password().into()),
    )
    .unwrap();
    let spool = PgSpool::open(url, SpoolOptions::default(), opts())
        .await
        .expect("TLS with the CA named");
    assert!(
        spool
            .status(&postwire_relay::spool::Key {
                token: "t".into(),
                id: "none".into()
            })
            .await
            .unwrap()
            .is_none()
    );
    let tls_sessions = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE s.ssl AND a.usename = 'postwire'",
    );
    assert_ne!(
        tls_sessions.trim(),
        "0",
        "no TLS session of the relay: {tls_sessions}"
    );

    // A certificate for another name is refused even with its CA known.
    let url = SpoolUrl::parse(
        &format!(
            "postgres://postwire@127.0.0.1:{}/tls?sslmode=require&sslrootcert={}",
            pg.port(),
            pki.ca.display()
        ),
        Some(pg.password().into()),
    )
    .unwrap();
    assert!(
        PgSpool::open(url, SpoolOptions::default(), opts())
            .await
            .is_err(),
        "a certificate for localhost must not do for 127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_that_does_not_show_it() {
    let pg = PgServer::shared();
    let url = pg.create_database("wrongpw");
    let url = SpoolUrl::parse(&url, Some("not-the-password-4711".into())).unwrap();
    let err = PgSpool::open(url, SpoolOptions::default(), opts())
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    assert!(
        text.contains("password") || text.contains("authentication"),
        "{text}"
    );
    assert!(!text.contains("not-the-password-4711"), "{text}");
}
