//! Shared by the PostgreSQL spool's tests: a real PostgreSQL (Debian's
//! `postgresql` package, `scripts/setup.d/75-postgres.sh`), started by the test
//! itself in a fresh temporary directory, on a free 127.0.0.1 port with its
//! own unix socket directory, `fsync=on` and `synchronous_commit=on`.
//!
//! - [`PgServer::shared`]: one server per test binary; each test makes its
//!   own database with [`PgServer::create_database`] (names unique within the
//!   binary). [`PgServer::start`]: a server of the test's own, for tests that
//!   stop or restart it ([`PgServer::restart_immediate`]).
//! - Root (the CI runs as root): initdb and pg_ctl refuse root, so they run as
//!   the `postgres` system user (`runuser -u postgres --`), the directory
//!   chowned to it; any other user runs them as itself. The superuser is named
//!   `postgres` either way (trust over the unix socket, for [`PgServer::psql`]).
//! - Clients of the tests log in over TCP as the role [`ROLE`] with a password
//!   (scram-sha-256): [`PgServer::url`] + [`PgServer::password`].
//! - Nothing is left behind: every server has a watchdog (`sh`, in its own
//!   process group) that reads a pipe only this process holds; when the test
//!   binary ends in any way (exit, panic, abort, SIGKILL) the pipe closes, and
//!   the watchdog stops PostgreSQL (`pg_ctl -m immediate`) and removes the
//!   directory. A [`PgServer`] that is dropped does the same at once.
//! - The binaries: `$POSTWIRE_PG_BIN` if set, else the newest
//!   `/usr/lib/postgresql/<version>/bin`. A missing PostgreSQL fails the test.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::{
    fs,
    io::{Read, Write},
    net::TcpListener,
    os::unix::{fs::MetadataExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, OnceLock},
};

/// The login role the tests' clients use over TCP (with [`PgServer::password`]).
pub const ROLE: &str = "postwire";

/// A running PostgreSQL of the tests; stopped and removed on drop (and by its
/// watchdog when the test binary ends).
pub struct PgServer {
    bin: PathBuf,
    /// The temporary directory: the socket directory, holding `data/` and `pg.log`.
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    password: String,
    /// initdb/pg_ctl run as the `postgres` system user (this process is root).
    as_postgres: bool,
    /// Serialises stop/start, holds the watchdog (its stdin is the pipe).
    life: Mutex<Life>,
    /// Serialises CREATE DATABASE (all of them copy template1).
    create: Mutex<()>,
}

struct Life {
    running: bool,
    watchdog: Option<Child>,
}

impl PgServer {
    /// The server shared by every test of this test binary, started by the
    /// first test that asks. Never stopped by a test (its watchdog stops it
    /// when the binary ends): a test that stops or restarts its database
    /// starts a server of its own with [`PgServer::start`].
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    /// initdb into a fresh temporary directory, then `pg_ctl -w start` (it
    /// returns once the server accepts connections), then the role [`ROLE`].
    /// Panics with the server's log when PostgreSQL cannot be started.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let as_postgres = fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
        let dir = temp_dir(as_postgres);
        let data = dir.join("data");
        let log = dir.join("pg.log");
        let mut server = PgServer {
            bin,
            data,
            log,
            port: 0,
            password: random_hex(16),
            as_postgres,
            life: Mutex::new(Life {
                running: false,
                watchdog: None,
            }),
            create: Mutex::new(()),
            dir,
        };
        // First of all, so that the directory goes even when initdb fails.
        let watchdog = server.spawn_watchdog();
        server.life.get_mut().unwrap().watchdog = Some(watchdog);

        let initdb = server.tool("initdb");
        let out = server
            .command(&initdb)
            .arg("-D")
            .arg(&server.data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
                // Only initdb's own files go unsynced; every COMMIT of the
                // tests still waits for its WAL fsync (fsync=on below).
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        if !out.status.success() {
            panic!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conf = format!(
            "\n# postwire tests (relay/tests/pg_support)\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = on\n\
             synchronous_commit = on\n\
             full_page_writes = on\n\
             password_encryption = 'scram-sha-256'\n\
             max_connections = 200\n\
             logging_collector = off\n",
            server.dir.display()
        );
        append(&server.data.join("postgresql.conf"), &conf);
        fs::write(
            server.data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");

        // A free port, taken again if another process bound it in between.
        let mut tries = 0;
        loop {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => break,
                Err(log) if tries < 4 && log.contains("could not bind") => tries += 1,
                Err(log) => panic!("PostgreSQL did not start (port {}):\n{log}", server.port),
            }
        }
        server.life.get_mut().unwrap().running = true;
        server.psql(
            "postgres",
            &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{}'", server.password),
        );
        server
    }

    /// Creates the database `name` (letters, digits, `_`), owned by [`ROLE`];
    /// returns its URL `postgres://postwire@127.0.0.1:PORT/NAME?sslmode=disable`
    /// (the password is [`PgServer::password`]). Panics if it exists already:
    /// names are unique within a test binary.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() < 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "database name {name:?}: use a-z, 0-9 and _"
        );
        {
            let _one_at_a_time = self.create.lock().unwrap_or_else(|e| e.into_inner());
            self.psql(
                "postgres",
                &format!("CREATE DATABASE \"{name}\" OWNER {ROLE}"),
            );
        }
        self.url(name)
    }

    /// The URL of database `db` for [`ROLE`] over TCP (without the password).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{ROLE}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The password of [`ROLE`] (what `POSTWIRE_SPOOL_PASSWORD` or PGPASSWORD carry).
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The unix socket directory (also the server's temporary directory).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `sql` (one or more statements) in database `db` as the superuser
    /// over the unix socket; returns psql's unaligned, tuples-only output
    /// (columns split by `|`, rows by newlines), without the last newline.
    /// Panics with psql's error when a statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.psql_command();
        cmd.arg("-h").arg(&self.dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ]);
        match run_sql(cmd, sql) {
            Ok(out) => out,
            Err(e) => panic!(
                "psql {db}: {e}\n--- sql\n{sql}\n--- server log\n{}",
                self.log()
            ),
        }
    }

    /// Runs `sql` as a client would: psql given `url` (from
    /// [`PgServer::url`]) with PGPASSWORD = `password`, over TCP. Err is
    /// psql's error text (a wrong password, a server that is down...).
    pub fn psql_url(&self, url: &str, password: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.psql_command();
        cmd.arg("-d").arg(url).env("PGPASSWORD", password);
        run_sql(cmd, sql)
    }

    /// `pg_ctl -m immediate stop` (a crash: no checkpoint, no goodbye to
    /// clients), then start again on the same port and data directory; returns
    /// once the server accepts connections again (after its crash recovery).
    pub fn restart_immediate(&self) {
        let mut life = self.life.lock().unwrap_or_else(|e| e.into_inner());
        self.pg_ctl_stop("immediate");
        life.running = false;
        if let Err(log) = self.pg_ctl_start() {
            panic!(
                "PostgreSQL did not start again on port {}:\n{log}",
                self.port
            );
        }
        life.running = true;
    }

    /// Serves TLS with this PEM certificate chain and key from now on
    /// (`ssl = on`; restarts the server). Plain connections still work.
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let crt = self.data.join("server.crt");
        let k = self.data.join("server.key");
        fs::copy(cert, &crt).expect("copy server.crt");
        fs::copy(key, &k).expect("copy server.key");
        fs::set_permissions(&k, fs::Permissions::from_mode(0o600)).expect("chmod server.key");
        if self.as_postgres {
            for f in [&crt, &k] {
                let ok = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(f)
                    .status()
                    .expect("run chown");
                assert!(ok.success(), "chown {}", f.display());
            }
        }
        append(
            &self.data.join("postgresql.conf"),
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        );
        self.stop();
        self.start_again();
    }

    /// Stops the server cleanly (`pg_ctl -m fast stop`, waits). Idempotent.
    pub fn stop(&self) {
        self.stop_mode("fast");
    }

    /// Stops the server like a crash (`pg_ctl -m immediate stop`, waits). Idempotent.
    pub fn stop_immediate(&self) {
        self.stop_mode("immediate");
    }

    /// Starts a stopped server again, same port and data; returns once it
    /// accepts connections. Idempotent.
    pub fn start_again(&self) {
        let mut life = self.life.lock().unwrap_or_else(|e| e.into_inner());
        if life.running {
            return;
        }
        if let Err(log) = self.pg_ctl_start() {
            panic!(
                "PostgreSQL did not start again on port {}:\n{log}",
                self.port
            );
        }
        life.running = true;
    }

    fn stop_mode(&self, mode: &str) {
        let mut life = self.life.lock().unwrap_or_else(|e| e.into_inner());
        if life.running {
            self.pg_ctl_stop(mode);
            life.running = false;
        }
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// A command for `program` as the cluster's owner (see the module doc).
    fn command(&self, program: &Path) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new(runuser());
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The test's working directory may be closed to the postgres user.
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn psql_command(&self) -> Command {
        let mut cmd = Command::new(self.tool("psql"));
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        for var in [
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSERVICE",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGSSLMODE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// `pg_ctl -w start`; Err is the server's log when it did not come up.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let pg_ctl = self.tool("pg_ctl");
        let out = self
            .command(&pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args([
                "-w",
                "-t",
                "60",
                "-o",
                &format!("-p {}", self.port),
                "start",
            ])
            .output()
            .expect("run pg_ctl start");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start: {}\n{}{}--- {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log.display(),
                self.log()
            ))
        }
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let pg_ctl = self.tool("pg_ctl");
        let out = self
            .command(&pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-m", mode, "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl -m {mode} stop: {}\n{}\n--- server log\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The safety net: `sh` reading its stdin, a pipe whose write end only
    /// this process holds (Rust opens it close-on-exec, so no child inherits
    /// it). EOF comes when this process ends, however it ends, or when the
    /// server is dropped; then it stops PostgreSQL and removes the directory.
    /// In its own process group, so a Ctrl-C of the test run reaches it only
    /// through the pipe.
    fn spawn_watchdog(&self) -> Child {
        let pg_ctl = self.tool("pg_ctl");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"read line; "$@" >/dev/null 2>&1; rm -rf -- "$0""#)
            .arg(&self.dir);
        if self.as_postgres {
            cmd.arg(runuser()).args(["-u", "postgres", "--"]);
        }
        cmd.arg(pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd.spawn()
            .expect("start the PostgreSQL watchdog (/bin/sh)")
    }
}

impl Drop for PgServer {
    /// Stops the server (immediate: its data is thrown away) and removes its
    /// directory, by closing the watchdog's pipe and waiting for it.
    fn drop(&mut self) {
        let life = self.life.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut watchdog) = life.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// `$POSTWIRE_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POSTWIRE_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "POSTWIRE_PG_BIN={} has no initdb",
            dir.display()
        );
        return dir;
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            e.path().join("bin/initdb").is_file().then_some(version)
        })
        .max();
    match newest {
        Some(v) => root
            .join(v.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
            .join("bin"),
        None => panic!(
            "PostgreSQL not found in /usr/lib/postgresql/<version>/bin: run scripts/setup.sh \
             (it installs Debian's postgresql), or set POSTWIRE_PG_BIN to a directory with \
             initdb, pg_ctl, postgres and psql"
        ),
    }
}

fn runuser() -> &'static str {
    if Path::new("/usr/sbin/runuser").exists() {
        "/usr/sbin/runuser"
    } else {
        "runuser"
    }
}

/// A fresh directory for the server. As root, chowned to `postgres` (mode
/// 0700: PostgreSQL insists), under a parent the postgres user can reach.
fn temp_dir(as_postgres: bool) -> PathBuf {
    let mut base = std::env::temp_dir();
    if as_postgres && !reachable_by_all(&base) {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix("pw-pg-")
        .tempdir_in(&base)
        .expect("temp dir for PostgreSQL")
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    if as_postgres {
        let out = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .output()
            .expect("run chown");
        assert!(
            out.status.success(),
            "chown postgres {}: {} (is there a `postgres` user? scripts/setup.sh installs \
             Debian's postgresql, which makes it)",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Whether every directory from `/` to `dir` lets others through.
fn reachable_by_all(dir: &Path) -> bool {
    dir.ancestors().all(|d| {
        fs::metadata(d)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn append(path: &Path, text: &str) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

/// psql (`cmd`, reading SQL from stdin) with `sql`; its output without the
/// last newline, or its error text.
fn run_sql(mut cmd: Command, sql: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run psql: {e}"))?;
    let mut stdin = child.stdin.take().expect("psql stdin");
    let sql = sql.to_owned();
    // A writer thread: a long script must not block on a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(sql.as_bytes());
        let _ = stdin.write_all(b"\n");
    });
    let out: Output = child.wait_with_output().map_err(|e| format!("psql: {e}"))?;
    let _ = writer.join();
    if out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    } else {
        Err(format!(
            "psql: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}
