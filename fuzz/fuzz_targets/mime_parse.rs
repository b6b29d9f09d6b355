//! Fuzzes the MIME parse (issue 13): any input must parse or fail with an
//! error, never panic (the debug build's dependency assertions included),
//! and what parses must build, and parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::{BuildOptions, build, parse::parse_with_warnings};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_with_warnings(data) {
        let options = BuildOptions { now: 0, seed: 1 };
        if let Ok(bytes) = build(&parsed.spec, &options) {
            if let Err(e) = parse_with_warnings(&bytes) {
                panic!("a built message does not parse: {e}");
            }
        }
    }
});
