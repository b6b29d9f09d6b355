//! SIGHUP reloads the relay's tokens (`server::live_tokens`). In its own test
//! binary because the signal goes to the whole process: the other server
//! tests must not see extra reloads.

#![cfg(unix)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use postwire_relay::server::live_tokens::{self, LiveTokens};
use postwire_relay::token;

#[tokio::test]
async fn sighup_reloads_the_token_file_when_polling_would_not_yet() {
    let dir = tempfile::tempdir().unwrap();
    let secret = token::add(dir.path(), "app", &["@example.com".into()], 1000, 60).unwrap();
    let live = Arc::new(LiveTokens::load(dir.path()).unwrap());
    // Polling once an hour: only the signal can make the change show.
    let task = live_tokens::spawn(Arc::clone(&live), Duration::from_secs(3600));
    token::remove(dir.path(), "app").unwrap();
    let added = token::add(dir.path(), "late", &["@example.com".into()], 1000, 60).unwrap();
    assert!(live.current().authenticate(&secret).is_some());
    assert_eq!(live.status().reloads, 0, "no reload before the signal");

    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", std::process::id())])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.status().reloads == 0 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the tokens within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = live.current();
    assert!(
        now.authenticate(&secret).is_none(),
        "the removed token is gone"
    );
    assert_eq!(
        now.authenticate(&added).map(|t| t.name.as_str()),
        Some("late")
    );
    task.abort();
}
