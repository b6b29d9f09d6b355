//! Shared by the SMTP tests: a test CA and a leaf certificate made with rcgen
//! (rustls refuses a self-signed certificate used as its own CA), and the test
//! SMTP server (smtpd.py on aiosmtpd, from the venv that scripts/setup.sh
//! makes). A server that cannot be started fails the test; nothing skips.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use tempfile::TempDir;

pub const USER: &str = "ana@example.com";
pub const PASSWORD: &str = "s3cret pass";

/// A test CA and a certificate for `localhost` / 127.0.0.1 signed by it.
pub struct Pki {
    _dir: TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate (CN "postwire test client") signed by the same CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub fn pki() -> Pki {
    pki_for(&["localhost", "127.0.0.1"])
}

/// Like [`pki`], with a server certificate for `names` (another name makes a
/// certificate that does not match the server the client asked for).
pub fn pki_for(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "postwire test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    leaf_params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("localhost"),
    );
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "postwire test client");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write pem");
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", leaf.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        _dir: dir,
    }
}

pub fn python() -> PathBuf {
    let venv = std::env::var_os("POSTWIRE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "no Python venv at {} (run scripts/setup.sh, which installs aiosmtpd)",
        venv.display()
    );
    py
}

/// A running test server; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
    _dir: TempDir,
}

impl Server {
    pub fn start(mode: &str, pki: Option<&Pki>) -> Server {
        Server::start_with(mode, pki, &[])
    }

    /// Like [`Server::start`] with more options of smtpd.py (`--extensions`,
    /// `--size N`, `--no-smtputf8`, `--no-auth`).
    pub fn start_with(mode: &str, pki: Option<&Pki>, options: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_support/smtpd.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg(mode)
            .arg(&out)
            .args(["--user", USER, "--password", PASSWORD])
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(pki) = pki {
            cmd.arg("--cert").arg(&pki.cert).arg("--key").arg(&pki.key);
        }
        let mut child = cmd.spawn().expect("start the test SMTP server (python)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the test SMTP server ({mode}) did not start: {line:?}\n{err}");
        };
        Server {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The messages received so far, in order: (envelope JSON, bytes).
    pub fn messages(&self) -> Vec<(serde_json::Value, Vec<u8>)> {
        let mut emls: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        emls.sort();
        emls.iter()
            .map(|p| {
                let json = std::fs::read_to_string(p.with_extension("json")).expect("envelope");
                (
                    serde_json::from_str(&json).expect("envelope json"),
                    std::fs::read(p).expect("message"),
                )
            })
            .collect()
    }

    fn counter(&self, name: &str) -> usize {
        std::fs::read_to_string(self.out.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Most sessions open at the same time.
    pub fn peak_sessions(&self) -> usize {
        self.counter("peak")
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.counter("active")
    }

    /// Sessions opened in total.
    pub fn sessions(&self) -> usize {
        self.counter("sessions")
    }

    /// AUTH exchanges the server saw.
    pub fn auth_attempts(&self) -> usize {
        self.counter("auth_attempts")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running test proxy (proxy.py: SOCKS5 or HTTP CONNECT); killed on drop.
pub struct Proxy {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: TempDir,
}

impl Proxy {
    /// `kind` is `socks5` or `http`; with `auth`, a user name and password are required.
    pub fn start(kind: &str, auth: Option<(&str, &str)>) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("proxy");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_support/proxy.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg(kind)
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, password)) = auth {
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd.spawn().expect("start the test proxy (python)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            panic!("the test proxy ({kind}) did not start: {line:?}");
        };
        Proxy {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The tunnels opened so far, as `host:port`.
    pub fn tunnels(&self) -> Vec<String> {
        std::fs::read_to_string(self.out.join("tunnels"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Authentications refused so far.
    pub fn refused(&self) -> usize {
        std::fs::read_to_string(self.out.join("refused"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message of about `size` bytes with CRLF lines, some starting with dots.
pub fn message(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Ana <ana@example.com>\r\nTo: bob@example.org\r\nSubject: test {n}\r\n\
         Message-ID: <{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         .leading dot\r\n..two dots\r\n.\r\nNúñez\r\n"
    )
    .into_bytes();
    let mut i = 0;
    while m.len() + 2 < size {
        let line = format!("line {i} of message {n} {}\r\n", "x".repeat(60));
        m.extend_from_slice(line.as_bytes());
        i += 1;
    }
    m.extend_from_slice(b"end\r\n");
    m
}
