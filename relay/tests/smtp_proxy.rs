//! Delivery through a SOCKS5 proxy and an HTTP CONNECT proxy (proxy.py,
//! started here, with user name and password) to the STARTTLS and the
//! implicit-TLS test servers; TLS stays end to end and verified.

mod smtp_support;

use postwire_relay::smtp::{Envelope, ProxyError, Secret, SmtpError, SmtpPool, SmtpSettings};
use smtp_support::{PASSWORD, Proxy, Server, USER, message, pki};

fn envelope() -> Envelope {
    Envelope::new("ana@example.com", &["bob@example.org"]).expect("envelope")
}

fn settings(url: &str, ca: &std::path::Path, proxy: &str) -> SmtpSettings {
    let mut s = SmtpSettings::from_url(url).expect("url");
    s.username = Some(USER.into());
    s.password = Some(Secret::new(PASSWORD));
    s.ca_file = Some(ca.to_owned());
    s.proxy = Some(proxy.parse().expect("proxy url"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_through_a_socks5_proxy_with_authentication() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let proxy = Proxy::start("socks5", Some(("proxyuser", "proxy pass")));
    let url = format!(
        "smtp://localhost:{}?security=starttls&timeout=10",
        server.port
    );
    let good = format!("socks5://proxyuser:proxy%20pass@127.0.0.1:{}", proxy.port);
    let pool = SmtpPool::connect(settings(&url, &pki.ca, &good))
        .await
        .expect("connect through the proxy");
    let m = message(1, 50_000);
    pool.send(&envelope(), m.clone()).await.expect("send");
    pool.close().await;
    assert_eq!(server.messages()[0].1, m);
    assert_eq!(proxy.tunnels(), [format!("localhost:{}", server.port)]);

    let bad = format!("socks5://proxyuser:wrong@127.0.0.1:{}", proxy.port);
    let err = SmtpPool::connect(settings(&url, &pki.ca, &bad))
        .await
        .expect_err("wrong proxy password");
    assert!(
        matches!(err, SmtpError::Proxy(ProxyError::AuthFailed { .. })),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!err.to_string().contains("wrong"), "{err}");
    assert_eq!(proxy.refused(), 1);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_through_an_http_connect_proxy_to_implicit_tls() {
    let pki = pki();
    let server = Server::start("smtps", Some(&pki));
    let proxy = Proxy::start("http", Some(("proxyuser", "s3cret")));
    let url = format!("smtps://localhost:{}?timeout=10", server.port);
    let good = format!("http://proxyuser:s3cret@127.0.0.1:{}", proxy.port);
    let pool = SmtpPool::connect(settings(&url, &pki.ca, &good))
        .await
        .expect("connect through the proxy");
    let m = message(2, 3_000);
    pool.send(&envelope(), m.clone()).await.expect("send");
    pool.close().await;
    assert_eq!(server.messages()[0].1, m);
    assert_eq!(proxy.tunnels(), [format!("localhost:{}", server.port)]);

    // No credentials for a proxy that wants them: 407, said as such.
    let anonymous = format!("http://127.0.0.1:{}", proxy.port);
    let err = SmtpPool::connect(settings(&url, &pki.ca, &anonymous))
        .await
        .expect_err("407");
    assert!(
        matches!(err, SmtpError::Proxy(ProxyError::AuthFailed { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("407"), "{err}");

    // The certificate is still checked end to end through the tunnel.
    let mut s = settings(&url, &pki.ca, &good);
    s.ca_file = None;
    let err = SmtpPool::connect(s).await.expect_err("unknown CA");
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
}
