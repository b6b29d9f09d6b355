//! Fuzzes what the relay reads from a WebSocket client: any text is read as
//! a control frame or refused with an error; a `submit` frame's id, size and
//! envelope (with any bytes after the frame as the message, from which an
//! absent envelope is derived) are validated or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_relay::server::protocol::ClientFrame;
use postwire_relay::server::validate;
use postwire_relay::token::TokenRecord;

fuzz_target!(|data: &[u8]| {
    // The frame, then a NUL, then the message bytes.
    let (frame, bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(frame) else {
        return;
    };
    let Ok(ClientFrame::Submit { id, envelope, size }) = serde_json::from_str::<ClientFrame>(text)
    else {
        return;
    };
    let token = TokenRecord {
        name: "app".into(),
        hash: format!("sha256:{}", "0".repeat(64)),
        allow_from: vec!["@example.com".into(), "ana@example.org".into()],
        max_size: 1 << 20,
        rate_per_minute: 60,
    };
    let _ = validate::id(&id);
    let _ = validate::size(size, &token);
    if let Ok(env) = validate::envelope(envelope.as_ref(), bytes, &token) {
        assert!(
            !env.rcpt_to.is_empty(),
            "an accepted envelope without recipients"
        );
        assert!(
            token.may_send_as(&env.mail_from),
            "an envelope sender the token may not use"
        );
        for a in std::iter::once(&env.mail_from).chain(&env.rcpt_to) {
            assert!(
                !a.bytes().any(|b| b == b'\r' || b == b'\n'),
                "a line break in {a:?}"
            );
        }
    }
});
