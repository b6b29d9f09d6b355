//! Fuzzes the mailbox parser: any string parses or fails with an error; a
//! mailbox that parses prints in a form that parses back to the same address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::Mailbox;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Mailbox::parse(s) else { return };
    let printed = m.to_string();
    match Mailbox::parse(&printed) {
        Ok(again) => assert_eq!(
            again.to_string(),
            printed,
            "printing is not stable for {s:?}"
        ),
        Err(e) => panic!("{s:?} parsed, but its printed form {printed:?} does not: {e}"),
    }
});
