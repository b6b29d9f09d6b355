//! Fuzzes the MessageSpec JSON reader and the MIME build behind it: any JSON
//! is read or refused with an error; a spec that is read builds or is
//! refused with an error; a built message parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::{BuildOptions, build, parse, spec};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = spec::from_json(s) else { return };
    let opts = BuildOptions {
        now: 1_700_000_000,
        seed: 7,
    };
    if let Ok(bytes) = build(&spec, &opts) {
        if let Err(e) = parse(&bytes) {
            panic!("a message built from a valid spec does not parse: {e}");
        }
    }
});
