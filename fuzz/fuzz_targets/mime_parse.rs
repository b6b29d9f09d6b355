//! Fuzzes the MIME parser: any bytes must parse (leniently) or fail with an
//! error, never panic; what parses must build again (or be refused with an
//! error), and what builds must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::{BuildOptions, build, parse::parse_with_warnings};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_with_warnings(data) else {
        return;
    };
    let opts = BuildOptions {
        now: 1_700_000_000,
        seed: 7,
    };
    if let Ok(bytes) = build(&parsed.spec, &opts) {
        if let Err(e) = parse_with_warnings(&bytes) {
            panic!("a message postwire built does not parse: {e}");
        }
    }
});
