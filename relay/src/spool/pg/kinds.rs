//! How states and events are stored in the database: [`RcptState`] as its
//! own JSON (the same as `status` answers), and [`EventKind`] as the tagged
//! [`StoredKind`], which also has `accepted` (the event the accept
//! transaction commits with the message, for its history).

use serde::{Deserialize, Serialize};

use crate::spool::{BounceKind, EventKind, RcptState};

/// An event's kind in `postwire_events.kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(super) enum StoredKind {
    /// The message was accepted (not published: the client heard `accepted`).
    Accepted,
    /// See [`EventKind::Delivered`].
    Delivered { response: String },
    /// See [`EventKind::Deferred`].
    #[serde(rename_all = "camelCase")]
    Deferred {
        reason: String,
        attempts: u32,
        retry_at_ms: u64,
    },
    /// See [`EventKind::Failed`].
    Failed { reason: String },
    /// See [`EventKind::Bounced`].
    Bounced {
        bounce: BounceKind,
        status: String,
        #[serde(default)]
        diagnostic: Option<String>,
    },
    /// See [`EventKind::Complained`].
    #[serde(rename_all = "camelCase")]
    Complained {
        #[serde(default)]
        feedback_type: Option<String>,
    },
}

impl StoredKind {
    /// The event clients hear, or `None` for `accepted`.
    pub(super) fn event(self) -> Option<EventKind> {
        Some(match self {
            StoredKind::Accepted => return None,
            StoredKind::Delivered { response } => EventKind::Delivered { response },
            StoredKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            } => EventKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            },
            StoredKind::Failed { reason } => EventKind::Failed { reason },
            StoredKind::Bounced {
                bounce,
                status,
                diagnostic,
            } => EventKind::Bounced {
                bounce,
                status,
                diagnostic,
            },
            StoredKind::Complained { feedback_type } => EventKind::Complained { feedback_type },
        })
    }

    /// The stored form of `kind`.
    pub(super) fn of(kind: &EventKind) -> Self {
        match kind.clone() {
            EventKind::Delivered { response } => StoredKind::Delivered { response },
            EventKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            } => StoredKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            },
            EventKind::Failed { reason } => StoredKind::Failed { reason },
            EventKind::Bounced {
                bounce,
                status,
                diagnostic,
            } => StoredKind::Bounced {
                bounce,
                status,
                diagnostic,
            },
            EventKind::Complained { feedback_type } => StoredKind::Complained { feedback_type },
        }
    }

    /// The recipient state this event left behind (for a message's history).
    pub(super) fn state(&self) -> RcptState {
        match self.clone() {
            StoredKind::Accepted => RcptState::Queued,
            StoredKind::Delivered { response } => RcptState::Delivered { response },
            StoredKind::Deferred {
                reason, attempts, ..
            } => RcptState::Deferred { reason, attempts },
            StoredKind::Failed { reason } => RcptState::Failed { reason },
            StoredKind::Bounced {
                bounce,
                status,
                diagnostic,
            } => RcptState::Bounced {
                bounce,
                status,
                diagnostic,
                at_ms: 0,
            },
            StoredKind::Complained { feedback_type } => RcptState::Complained {
                feedback_type,
                at_ms: 0,
            },
        }
    }
}

/// An event kind as stored in `postwire_events.kind` (and copied into the
/// webhook outbox): `Ok(None)` for `accepted`; an error for a value that is
/// no stored kind.
pub(crate) fn decode(kind: serde_json::Value) -> Result<Option<EventKind>, serde_json::Error> {
    serde_json::from_value::<StoredKind>(kind).map(StoredKind::event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_json() {
        let k = EventKind::Deferred {
            reason: "451".into(),
            attempts: 2,
            retry_at_ms: 9,
        };
        let json = serde_json::to_value(StoredKind::of(&k)).unwrap();
        assert_eq!(json["kind"], "deferred");
        let back: StoredKind = serde_json::from_value(json).unwrap();
        assert_eq!(back.event(), Some(k));
        let a: StoredKind = serde_json::from_str(r#"{"kind":"accepted"}"#).unwrap();
        assert_eq!(a.event(), None);
    }
}
