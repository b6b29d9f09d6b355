//! The access log of submissions: one `tracing` event (target
//! [`TARGET`], level INFO) per answered `submit`, with the token's name, the
//! client's id of the message, its size, its number of recipients, the
//! outcome (`accepted`, `duplicate`, `rejected`) and, when rejected, the
//! code. Never the bytes, the addresses or a secret: a token is named, not
//! shown. `POSTWIRE_LOG=postwire::access=info,warn` keeps only these lines.

use super::protocol::Code;

/// The `tracing` target of the access log.
pub const TARGET: &str = "postwire::access";

/// What the relay answered to one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored in the spool.
    Accepted,
    /// The id was known; nothing was stored.
    Duplicate,
    /// Refused with this code; nothing was stored.
    Rejected(Code),
}

/// Logs one answered submission. `size` is the announced (or received)
/// size in bytes; `recipients` is 0 when the refusal came before the
/// envelope was known.
pub fn submission(token: &str, id: &str, size: u64, recipients: usize, outcome: Outcome) {
    let (outcome, code) = match outcome {
        Outcome::Accepted => ("accepted", None),
        Outcome::Duplicate => ("duplicate", None),
        Outcome::Rejected(code) => ("rejected", Some(code)),
    };
    let code = code.and_then(code_name);
    // A refused id may be anything the client sent: at most what a valid one can be.
    let mut cut = id.len().min(128);
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    let id = &id[..cut];
    tracing::info!(
        target: TARGET,
        token,
        id,
        size,
        recipients,
        outcome,
        code = code.as_deref(),
        "submission"
    );
}

/// The protocol's name of a code (`sender_not_allowed`).
fn code_name(code: Code) -> Option<String> {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer into a shared buffer, for a subscriber in a test.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_access_line_names_the_token_id_size_recipients_and_outcome() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            submission("app", "m-1", 1234, 3, Outcome::Accepted);
            submission(
                "app",
                "m-2",
                99,
                0,
                Outcome::Rejected(Code::SenderNotAllowed),
            );
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("postwire::access"), "{text}");
        for field in [
            "token=\"app\"",
            "id=\"m-1\"",
            "size=1234",
            "recipients=3",
            "outcome=\"accepted\"",
        ] {
            assert!(lines[0].contains(field), "{field} in {text}");
        }
        assert!(lines[1].contains("code=\"sender_not_allowed\""), "{text}");
        // A refused id of any length is cut to what a valid one may be.
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let long = "é".repeat(1000);
        tracing::subscriber::with_default(subscriber, || {
            submission("app", &long, 1, 0, Outcome::Rejected(Code::BadId));
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(&"é".repeat(64)) && !text.contains(&"é".repeat(65)),
            "{text}"
        );
    }
}
