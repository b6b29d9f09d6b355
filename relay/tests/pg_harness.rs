//! The PostgreSQL of the spool's tests (pg_support) does what those tests rely
//! on: one server per test binary with a database per test, password login
//! over TCP and trust over its own socket, durability settings on, and an
//! immediate (crash) restart on the same port that keeps committed rows.
//! That nothing is left running after the binary ends cannot be checked from
//! inside it: after `cargo test --test pg_harness`, `pgrep -u postgres postgres`
//! finds none of these servers (their watchdogs stop them).

mod pg_support;

use pg_support::{PgServer, ROLE};

#[test]
fn shared_server_gives_each_test_a_database_with_password_login() {
    let pg = PgServer::shared();
    let a = pg.create_database("harness_a");
    let b = pg.create_database("harness_b");
    assert_eq!(
        a,
        format!(
            "postgres://postwire@127.0.0.1:{}/harness_a?sslmode=disable",
            pg.port()
        )
    );
    // TCP with the password, as the role the relay uses
    assert_eq!(
        pg.psql_url(&a, pg.password(), "SELECT current_user, current_database()")
            .unwrap(),
        format!("{ROLE}|harness_a")
    );
    assert_eq!(
        pg.psql_url(&b, pg.password(), "SELECT current_database()")
            .unwrap(),
        "harness_b"
    );
    // the role owns its database: it can make its tables there
    pg.psql_url(
        &b,
        pg.password(),
        "CREATE TABLE t (x int); INSERT INTO t VALUES (7)",
    )
    .unwrap();
    // the password is checked
    let err = pg.psql_url(&a, "wrong", "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    let err = pg.psql_url(&a, "", "SELECT 1").unwrap_err();
    assert!(err.contains("password"), "{err}");
    // the superuser over the unix socket; the table the role made is there
    assert_eq!(pg.psql("harness_b", "SELECT x FROM t"), "7");
    assert!(
        pg.socket_dir()
            .join(format!(".s.PGSQL.{}", pg.port()))
            .exists()
    );
    // durability as the issue measures it
    assert_eq!(
        pg.psql("harness_a", "SHOW fsync; SHOW synchronous_commit"),
        "on\non"
    );
    // the same server for every test of the binary
    assert!(std::ptr::eq(pg, PgServer::shared()));
}

#[test]
fn restart_immediate_keeps_what_was_committed() {
    let pg = PgServer::start();
    let url = pg.create_database("crashy");
    let pw = pg.password().to_owned();
    pg.psql_url(
        &url,
        &pw,
        "CREATE TABLE kept (id int PRIMARY KEY, note text); \
         INSERT INTO kept VALUES (1, 'before the crash')",
    )
    .unwrap();
    let port = pg.port();

    pg.restart_immediate();
    assert_eq!(pg.port(), port);
    assert_eq!(
        pg.psql_url(&url, &pw, "SELECT note FROM kept WHERE id = 1")
            .unwrap(),
        "before the crash"
    );
    assert!(
        pg.log().contains("database system was interrupted"),
        "an immediate stop is a crash: recovery runs\n{}",
        pg.log()
    );

    // down: a client is refused; up again: the row is still there
    pg.stop();
    assert!(pg.psql_url(&url, &pw, "SELECT 1").is_err());
    pg.start_again();
    assert_eq!(pg.psql("crashy", "SELECT count(*) FROM kept"), "1");

    let dir = pg.socket_dir().to_owned();
    drop(pg);
    assert!(!dir.exists(), "dropped: its directory is removed");
}
