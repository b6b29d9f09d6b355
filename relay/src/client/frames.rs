//! The relay's frames as the client reads them: tolerant where the server's
//! own types are strict (an unknown code or field from a newer relay is
//! kept as text, an unknown frame type is ignored), and the client's frames
//! as it writes them.

use serde::Deserialize;

use super::Ready;
use crate::spool::RcptStatus;

/// One frame from the relay that the client acts on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum Incoming {
    Ready(Ready),
    #[serde(rename_all = "camelCase")]
    Accepted {
        id: String,
        #[serde(default)]
        duplicate: bool,
        #[serde(default)]
        rcpt_to: Vec<String>,
    },
    Rejected {
        id: String,
        code: String,
        #[serde(default)]
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    Delivered {
        id: String,
        rcpt: String,
        #[serde(default)]
        response: String,
        #[serde(default)]
        smtp_code: Option<u16>,
    },
    #[serde(rename_all = "camelCase")]
    Deferred {
        id: String,
        rcpt: String,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        attempts: u32,
        #[serde(default)]
        retry_at: u64,
        #[serde(default)]
        smtp_code: Option<u16>,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        id: String,
        rcpt: String,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        smtp_code: Option<u16>,
    },
    Status {
        id: String,
        known: bool,
        #[serde(default)]
        recipients: Vec<RcptStatus>,
    },
    Error {
        code: String,
        #[serde(default)]
        message: String,
    },
}

impl Incoming {
    /// The frame, or `None` for text that is not a frame the client knows.
    pub(crate) fn parse(text: &str) -> Option<Incoming> {
        serde_json::from_str(text).ok()
    }
}

/// The `submit` frame of a message.
pub(crate) fn submit(
    id: &str,
    size: usize,
    envelope: Option<&postwire_core::envelope::Envelope>,
) -> String {
    let mut frame = serde_json::json!({ "type": "submit", "id": id, "size": size });
    if let Some(e) = envelope {
        frame["envelope"] = serde_json::to_value(e).unwrap_or_default();
    }
    frame.to_string()
}

/// The `status` frame asking about `id`.
pub(crate) fn status(id: &str) -> String {
    serde_json::json!({ "type": "status", "id": id }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::RcptState;

    #[test]
    fn frames_of_the_relay_are_read_and_unknown_ones_ignored() {
        let ready = Incoming::parse(
            r#"{"type":"ready","protocol":"postwire.v1","token":"app","window":8,"maxSize":100}"#,
        );
        assert_eq!(
            ready,
            Some(Incoming::Ready(Ready {
                protocol: "postwire.v1".into(),
                token: "app".into(),
                window: 8,
                max_size: 100
            }))
        );
        let rejected = Incoming::parse(
            r#"{"type":"rejected","id":"a","code":"from_the_future","message":"m"}"#,
        );
        assert!(
            matches!(rejected, Some(Incoming::Rejected { code, .. }) if code == "from_the_future")
        );
        let status = Incoming::parse(
            r#"{"type":"status","id":"a","known":true,"recipients":[{"rcpt":"b@x.org","state":"failed","reason":"550 no"}]}"#,
        );
        let Some(Incoming::Status { recipients, .. }) = status else {
            panic!("status");
        };
        assert_eq!(
            recipients[0].state,
            RcptState::Failed {
                reason: "550 no".into()
            }
        );
        assert_eq!(Incoming::parse(r#"{"type":"news"}"#), None);
        assert_eq!(Incoming::parse("not json"), None);
    }
}
