//! Fuzzes the iCalendar reader and writer: any bytes parse or fail with an
//! error; a calendar that parses is written, and what is written parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::ical;

fuzz_target!(|data: &[u8]| {
    let _ = ical::parse_ics(data);
    let Ok(cal) = ical::parse_calendar(data) else {
        return;
    };
    if let Ok(text) = ical::calendar_to_ics(&cal, 1_700_000_000) {
        if let Err(e) = ical::parse_calendar(text.as_bytes()) {
            panic!("a calendar postwire wrote does not parse: {e}\n{text}");
        }
    }
});
