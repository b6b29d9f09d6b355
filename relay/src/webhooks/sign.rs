//! The signature of a webhook request: `Postwire-Signature: t=<unix
//! seconds>,v1=<hex HMAC-SHA256>`, the HMAC keyed with the endpoint's
//! secret (its UTF-8 bytes, `whsec_` prefix included) over
//! `<t>.<body>`. docs/webhooks.md shows how a receiver checks it.

use ring::hmac;

/// The name of the header.
pub const HEADER: &str = "Postwire-Signature";

/// The hex HMAC-SHA256 of `timestamp + "." + body` with `secret`.
pub fn mac_hex(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The header value for `body` sent at `timestamp`.
pub fn header_value(secret: &str, timestamp: u64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", mac_hex(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_carries_the_time_and_the_mac_of_time_dot_body() {
        let v = header_value("whsec_k", 1_700_000_000, b"{}");
        let mac = v.strip_prefix("t=1700000000,v1=").expect("format");
        assert_eq!(mac.len(), 64);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"whsec_k");
        let tag = hmac::sign(&key, b"1700000000.{}");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(mac, hex);
        assert_ne!(mac_hex("whsec_other", 1_700_000_000, b"{}"), hex);
    }
}
