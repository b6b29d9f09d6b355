//! Fuzzes the report reader: any bytes must give a report (leniently) or
//! an error, never a panic; a report serialises to JSON and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::report::{Report, parse_report};

fuzz_target!(|data: &[u8]| {
    let Ok(report) = parse_report(data) else {
        return;
    };
    let json = serde_json::to_string(&report).expect("a report serialises");
    let back: Report = serde_json::from_str(&json).expect("a report's JSON reads back");
    assert_eq!(back, report);
});
