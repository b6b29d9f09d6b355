//! Fuzzes the TNEF writer from the spec side: any MessageSpec JSON that is
//! read is written as winmail.dat (or refused with an error), and what is
//! written decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::{spec, tnef};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = spec::from_json(s) else { return };
    let message = tnef::spec::to_tnef(&spec, "<fuzz@example.com>", 1_700_000_000);
    let Ok(bytes) = tnef::encode(&message) else {
        return;
    };
    if let Err(e) = tnef::decode(&bytes) {
        panic!("winmail.dat postwire wrote does not decode: {e}");
    }
});
