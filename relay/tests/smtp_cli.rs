//! `postwire send` and `postwire forward` against the STARTTLS + AUTH test
//! server (aiosmtpd, started here) and into a pickup directory.

mod smtp_support;

use std::{
    path::Path,
    process::{Command, Output},
};

use smtp_support::{PASSWORD, Pki, Proxy, Server, USER, message, pki};

fn postwire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_SMTP") || k == "POSTWIRE_PICKUP_DIR" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The server URL with the user and 8 connections; password and CA go by environment.
fn configure(cmd: &mut Command, server: &Server, pki: &Pki) {
    cmd.arg("--smtp")
        .arg(format!(
            "smtp://{}@localhost:{}?security=starttls&connections=8&timeout=20",
            USER.replace('@', "%40"),
            server.port
        ))
        .env("POSTWIRE_SMTP_PASSWORD", PASSWORD)
        .env("POSTWIRE_SMTP_CA_FILE", &pki.ca);
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run postwire");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn write_bulk(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir).expect("bulk dir");
    (0..n)
        .map(|i| {
            let m = message(i, 10 * 1024);
            std::fs::write(dir.join(format!("{i:05}.eml")), &m).expect("write message");
            m
        })
        .collect()
}

#[test]
fn send_bulk_delivers_1000_messages_over_8_connections_with_progress_and_a_summary() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bulk");
    let sent = write_bulk(&dir, 1000);
    std::fs::write(dir.join("README.txt"), "not a message").unwrap();

    let mut cmd = postwire();
    cmd.arg("send").arg("--bulk").arg(&dir);
    configure(&mut cmd, &server, &pki);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(
            "delivered 1000 of 1000 messages (1000 recipients accepted, 0 refused), 0 failed"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("over 8 connection(s)"), "{stdout}");
    assert!(
        stderr.contains("progress: 100/1000 sent, 0 failed"),
        "{stderr}"
    );
    assert!(stderr.contains("progress: 1000/1000 sent"), "{stderr}");
    assert!(stderr.contains("skipping 1 entry"), "{stderr}");
    assert!(!stderr.contains(PASSWORD) && !stdout.contains(PASSWORD));

    let got = server.messages();
    assert_eq!(got.len(), 1000);
    let mut received: Vec<Vec<u8>> = got.into_iter().map(|(_, m)| m).collect();
    received.sort();
    let mut expected = sent;
    expected.sort();
    assert!(
        received == expected,
        "the received messages differ from the files"
    );
    assert_eq!(server.peak_sessions(), 8);
}

#[test]
fn send_takes_spec_json_and_eml_and_reports_per_message() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("hello.json");
    std::fs::write(
        &json,
        r#"{"from": "Ana <ana@example.com>", "to": ["bob@example.org"],
            "bcc": ["hidden@example.net"], "subject": "Hola", "text": "hola\n"}"#,
    )
    .unwrap();
    let eml = tmp.path().join("m.eml");
    let m = message(1, 800);
    std::fs::write(&eml, &m).unwrap();

    let mut cmd = postwire();
    cmd.arg("send").arg(&json).arg(&eml);
    configure(&mut cmd, &server, &pki);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("hello.json: 250 2.0.0 OK queued as"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(2 of 2 recipient(s) accepted)"),
        "{stdout}"
    );
    let mut got = server.messages();
    assert_eq!(got.len(), 2);
    // Two connections may finish in either order: the spec's message has 2 recipients.
    got.sort_by_key(|(env, _)| std::cmp::Reverse(env["rcptTo"].as_array().map_or(0, Vec::len)));
    assert_eq!(got[0].0["mailFrom"], "ana@example.com");
    assert_eq!(
        got[0].0["rcptTo"],
        serde_json::json!(["bob@example.org", "hidden@example.net"])
    );
    let text = String::from_utf8_lossy(&got[0].1);
    assert!(text.contains("Subject: Hola"), "{text}");
    assert!(
        !text.contains("hidden@example.net"),
        "Bcc leaked into the headers"
    );
    assert_eq!(got[1].0["rcptTo"], serde_json::json!(["bob@example.org"]));
    assert_eq!(got[1].1, m);
}

#[test]
fn forward_sends_the_file_unchanged_to_new_recipients() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("saved.eml");
    let m = message(5, 300_000);
    std::fs::write(&eml, &m).unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();

    let mut cmd = postwire();
    cmd.arg("forward")
        .arg(&eml)
        .args([
            "--from",
            "ana@example.com",
            "--to",
            "x@example.net",
            "--to",
            "Y <y@example.net>",
        ])
        .arg("--smtp")
        .arg(format!("smtp://localhost:{}", server.port))
        .args(["--user", USER, "--security", "starttls"])
        .arg("--password-file")
        .arg(&pw)
        .arg("--ca-file")
        .arg(&pki.ca);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("to 2 of 2 recipient(s): 250"), "{stdout}");
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["mailFrom"], "ana@example.com");
    assert_eq!(
        got[0].0["rcptTo"],
        serde_json::json!(["x@example.net", "y@example.net"])
    );
    assert_eq!(got[0].1, m);
}

#[test]
fn a_wrong_password_fails_clearly_without_printing_it() {
    let pki = pki();
    let server = Server::start("secure", Some(&pki));
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("m.eml");
    std::fs::write(&eml, message(1, 100)).unwrap();
    let mut cmd = postwire();
    cmd.arg("send").arg(&eml);
    configure(&mut cmd, &server, &pki);
    cmd.env("POSTWIRE_SMTP_PASSWORD", "Wr0ngPassw0rd");
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(!out.status.success());
    assert!(
        stderr.contains("authentication as \"ana@example.com\" failed: 535"),
        "{stderr}"
    );
    assert!(!stderr.contains("Wr0ngPassw0rd") && !stdout.contains("Wr0ngPassw0rd"));
    assert!(server.messages().is_empty());
}

#[test]
fn the_password_is_not_a_command_line_option() {
    let (out, _, stderr) = run(postwire().args(["send", "x.eml", "--password", "p"]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("unexpected argument '--password'"),
        "{stderr}"
    );
}

#[test]
fn pickup_dir_writes_eml_and_envelope_instead_of_smtp() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("m.eml");
    let m = message(3, 2_000);
    std::fs::write(&eml, &m).unwrap();
    let pickup = tmp.path().join("pickup");
    let (out, stdout, stderr) = run(postwire()
        .arg("forward")
        .arg(&eml)
        .args(["--from", "a@example.com", "--to", "b@example.org"])
        .arg("--pickup-dir")
        .arg(&pickup));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let (out, stdout, stderr) = run(postwire()
        .arg("send")
        .arg(&eml)
        .env("POSTWIRE_PICKUP_DIR", &pickup));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut emls: Vec<_> = std::fs::read_dir(&pickup)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    emls.sort();
    assert_eq!(emls.len(), 2);
    for p in &emls {
        assert_eq!(std::fs::read(p).unwrap(), m);
    }
    let envelopes: Vec<serde_json::Value> = emls
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap()).unwrap())
        .collect();
    assert!(
        envelopes.contains(
            &serde_json::json!({"mailFrom": "a@example.com", "rcptTo": ["b@example.org"]})
        )
    );
    assert!(envelopes.contains(
        &serde_json::json!({"mailFrom": "ana@example.com", "rcptTo": ["bob@example.org"]})
    ));
}

/// The issue's acceptance case through the command: a spec with
/// `dsn: {notify: [failure, delay], ret: hdrs, envid: x}` and the recipient
/// `José@ejemplo.es` reaches the server with exactly those parameters, and
/// `--json` gives every recipient's code, enhanced status and text.
#[test]
fn send_passes_the_spec_dsn_and_a_utf8_recipient_and_prints_json() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("dsn.json");
    std::fs::write(
        &spec,
        r#"{"from": "Ana <ana@example.com>", "to": ["José@ejemplo.es", "reject@example.org"],
            "subject": "dsn", "text": "hola\n",
            "dsn": {"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"}}"#,
    )
    .unwrap();
    let mut cmd = postwire();
    cmd.arg("send").arg(&spec).arg("--json");
    configure(&mut cmd, &server, &pki);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(!out.status.success(), "a refused recipient fails the run");
    let results: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let r = &results[0];
    assert_eq!(r["ok"], true, "{r}\n{stderr}");
    assert_eq!(r["recipients"][0]["recipient"], "José@ejemplo.es");
    assert_eq!(r["recipients"][0]["code"], 250);
    assert_eq!(r["recipients"][0]["enhanced"], "2.1.5");
    assert_eq!(r["recipients"][1]["code"], 550);
    assert_eq!(r["recipients"][1]["enhanced"], "5.1.1");
    assert!(
        r["recipients"][1]["text"]
            .as_str()
            .unwrap()
            .contains("no such user")
    );
    assert_eq!(r["reply"]["code"], 250);
    assert!(
        stderr.contains("reject@example.org refused: 550 5.1.1"),
        "{stderr}"
    );
    let got = server.messages();
    assert_eq!(got[0].0["rcptTo"], serde_json::json!(["José@ejemplo.es"]));
    assert_eq!(
        got[0].0["mailParams"],
        serde_json::json!(["BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(
        got[0].0["rcptParams"],
        serde_json::json!([["NOTIFY=FAILURE,DELAY"]])
    );
}

#[test]
fn forward_takes_dsn_and_requiretls_flags_and_says_when_dsn_is_not_offered() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("saved.eml");
    std::fs::write(&eml, message(1, 2_000)).unwrap();
    let mut cmd = postwire();
    cmd.arg("forward").arg(&eml).args([
        "--from",
        "ana@example.com",
        "--to",
        "bob+1@example.org",
        "--notify",
        "success,failure",
        "--ret",
        "full",
        "--envid",
        "id=1",
        "--orcpt",
        "--require-tls",
    ]);
    configure(&mut cmd, &server, &pki);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("accepted bob+1@example.org: 250 2.1.5 OK"),
        "{stdout}"
    );
    let got = server.messages();
    assert_eq!(
        got[0].0["mailParams"],
        serde_json::json!(["BODY=8BITMIME", "REQUIRETLS", "RET=FULL", "ENVID=id+3D1"])
    );
    assert_eq!(
        got[0].0["rcptParams"],
        serde_json::json!([["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2B1@example.org"]])
    );

    // A server without DSN: the message goes, the warning says what was dropped.
    let bare = Server::start("secure", Some(&pki));
    let mut cmd = postwire();
    cmd.arg("forward").arg(&eml).args([
        "--from",
        "ana@example.com",
        "--to",
        "bob@example.org",
        "--notify",
        "never",
        "--json",
    ]);
    configure(&mut cmd, &bare, &pki);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(r["warnings"][0]["code"], "dsnNotOffered", "{r}");
    assert!(stderr.contains("does not offer DSN"), "{stderr}");
    assert_eq!(bare.messages().len(), 1);

    // Bad flag values are refused before connecting.
    let mut cmd = postwire();
    cmd.arg("forward").arg(&eml).args([
        "--from",
        "ana@example.com",
        "--to",
        "bob@example.org",
        "--notify",
        "never,success",
    ]);
    configure(&mut cmd, &bare, &pki);
    let (out, _, stderr) = run(&mut cmd);
    assert!(!out.status.success());
    assert!(stderr.contains("never"), "{stderr}");
    assert_eq!(bare.messages().len(), 1);
}

#[test]
fn smtp_check_reports_each_step_and_its_exit_status_names_the_failed_one() {
    let pki = pki();
    let server = Server::start_with(
        "secure",
        Some(&pki),
        &["--extensions", "--size", "10485760"],
    );
    let url = format!(
        "smtp://{}@localhost:{}?security=starttls&timeout=10",
        USER.replace('@', "%40"),
        server.port
    );
    let check = |password: &str, ca: bool, url: &str, json: bool| {
        let mut cmd = postwire();
        cmd.args(["smtp", "check", url])
            .env("POSTWIRE_SMTP_PASSWORD", password);
        if ca {
            cmd.env("POSTWIRE_SMTP_CA_FILE", &pki.ca);
        }
        if json {
            cmd.arg("--json");
        }
        run(&mut cmd)
    };

    let (out, stdout, stderr) = check(PASSWORD, true, &url, false);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("tls: TLSv1."), "{stdout}");
    assert!(stdout.contains("verified for localhost"), "{stdout}");
    assert!(stdout.contains("SIZE=10485760"), "{stdout}");
    assert!(
        stdout.contains("DSN") && stdout.contains("REQUIRETLS"),
        "{stdout}"
    );
    assert!(stdout.contains("AUTH=LOGIN,PLAIN,XOAUTH2"), "{stdout}");
    assert!(
        stdout.contains("auth: \"ana@example.com\" accepted"),
        "{stdout}"
    );
    assert!(stdout.contains("noop: 250"), "{stdout}");
    assert!(stdout.contains("quit: 221"), "{stdout}");

    // A wrong password is reported as such, with its own exit status.
    let (out, stdout, stderr) = check("Wr0ngPassw0rd", true, &url, false);
    assert_eq!(out.status.code(), Some(13), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("AUTH failed: authentication as \"ana@example.com\" failed: 535"),
        "{stderr}"
    );
    assert!(stdout.contains("tls: TLSv1."), "{stdout}");
    assert!(!stderr.contains("Wr0ngPassw0rd") && !stdout.contains("Wr0ngPassw0rd"));
    let (out, stdout, _) = check("Wr0ngPassw0rd", true, &url, true);
    assert_eq!(out.status.code(), Some(13));
    let v: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(v["failedStep"], "AUTH");
    assert_eq!(v["capabilities"]["dsn"], true);

    // A certificate from an unknown CA: the TLS step.
    let (out, _, stderr) = check(PASSWORD, false, &url, false);
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    assert!(stderr.contains("TLS failed"), "{stderr}");

    // Nothing listening: the connect step.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (out, _, stderr) = check(
        PASSWORD,
        true,
        &format!(
            "smtp://{}@127.0.0.1:{port}?security=starttls&connect_timeout=5",
            USER.replace('@', "%40")
        ),
        false,
    );
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(stderr.contains("connect failed"), "{stderr}");
    assert_eq!(server.messages().len(), 0);
}

/// The corporate-network case: a server that requires a client certificate,
/// reached through an authenticating SOCKS5 proxy, from `postwire send`
/// with the options in environment variables.
#[test]
fn send_delivers_through_a_proxy_with_a_client_certificate() {
    let pki = pki();
    let ca = pki.ca.to_str().expect("utf-8 path");
    let server = Server::start_with("secure", Some(&pki), &["--client-ca", ca]);
    let proxy = Proxy::start("socks5", Some(("p", "pw")));
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("m.eml");
    let m = message(3, 5_000);
    std::fs::write(&eml, &m).unwrap();
    let mut cmd = postwire();
    cmd.arg("send").arg(&eml);
    configure(&mut cmd, &server, &pki);
    cmd.env(
        "POSTWIRE_SMTP_PROXY",
        format!("socks5://p:pw@127.0.0.1:{}", proxy.port),
    )
    .env("POSTWIRE_SMTP_CLIENT_CERT", &pki.client_cert)
    .env("POSTWIRE_SMTP_CLIENT_KEY", &pki.client_key);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let got = server.messages();
    assert_eq!(got[0].1, m);
    assert_eq!(got[0].0["clientCert"], "postwire test client");
    // Every connection went through the proxy (the connection opened at
    // start, and another if a worker without one took the message).
    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty());
    assert!(
        tunnels
            .iter()
            .all(|t| *t == format!("localhost:{}", server.port)),
        "{tunnels:?}"
    );
    assert!(!stderr.contains("pw@") && !stdout.contains(":pw"));

    // --client-cert alone is a usage error.
    let mut cmd = postwire();
    cmd.arg("send")
        .arg(&eml)
        .arg("--client-cert")
        .arg(&pki.client_cert);
    configure(&mut cmd, &server, &pki);
    let (out, _, stderr) = run(&mut cmd);
    assert!(!out.status.success());
    assert!(stderr.contains("--client-key"), "{stderr}");
}
