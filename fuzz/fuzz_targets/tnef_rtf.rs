//! Fuzzes compressed RTF (LZFu) and the RTF-to-text/HTML conversion of TNEF
//! bodies: any bytes decompress or fail with an error; any bytes compress and
//! decompress back to themselves; any RTF converts without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::tnef::{rtf, rtf_html};

fuzz_target!(|data: &[u8]| {
    let _ = rtf::decompress(data);
    if let Ok(packed) = rtf::compress(data) {
        match rtf::decompress(&packed) {
            Ok(back) => assert_eq!(back, data, "LZFu round trip changed the bytes"),
            Err(e) => panic!("compressed RTF does not decompress: {e}"),
        }
    }
    let _ = rtf_html::deencapsulate(data);
    let _ = rtf_html::plain_text(data);
});
