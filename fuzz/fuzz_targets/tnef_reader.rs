//! Fuzzes the TNEF reader: any input must decode or fail with an error,
//! never panic; what decodes must encode, and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = postwire_core::tnef::decode(data) {
        if let Ok(bytes) = postwire_core::tnef::encode(&message) {
            // Our own output must always be readable.
            if let Err(e) = postwire_core::tnef::decode(&bytes) {
                panic!("re-encoded message does not decode: {e}");
            }
        }
    }
});
