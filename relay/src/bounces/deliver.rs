//! [`VerpDeliver`]: sends each recipient of a leased message in its own SMTP
//! transaction with its own return path ([`super::verp`]), and remembers the
//! message's Message-ID ([`MessageIds`]) for reports that come back to
//! another address.
//!
//! Only the reverse path changes: the message bytes, the DSN request (ENVID,
//! NOTIFY, ORCPT) and REQUIRETLS go out as the client gave them, and the
//! spool keeps the original envelope sender. A message with the null reverse
//! path (`<>`, itself a bounce) keeps it: nothing may bounce back to it.
//! The transactions of one message run at once, up to the number of
//! upstream connections.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};

use super::verp::Verp;
use crate::spool::{Key, Lease, Outcome, deliver::Deliver};

/// Message-IDs remembered at most (the oldest are forgotten first).
pub const MESSAGE_IDS_KEEP: usize = 100_000;

/// Message-ID -> message of the messages delivered lately. In memory only:
/// after a restart only the VERP address finds a message (which is how
/// almost every report comes back).
#[derive(Debug, Default)]
pub struct MessageIds {
    inner: Mutex<(HashMap<String, Key>, VecDeque<String>)>,
}

/// A Message-ID without its angle brackets and surrounding white space.
pub fn normalize_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

impl MessageIds {
    /// Remembers that `message_id` is the message `key`.
    pub fn insert(&self, message_id: &str, key: &Key) {
        let id = normalize_message_id(message_id);
        if id.is_empty() {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *g;
        if map.insert(id.clone(), key.clone()).is_none() {
            order.push_back(id);
            if order.len() > MESSAGE_IDS_KEEP
                && let Some(old) = order.pop_front()
            {
                map.remove(&old);
            }
        }
    }

    /// The message with this Message-ID, if remembered.
    pub fn get(&self, message_id: &str) -> Option<Key> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.get(&normalize_message_id(message_id)).cloned()
    }

    /// Remembers that the VERP message tag `tag` is the message `key` (so
    /// that a report finds it without a search of the spool).
    pub fn insert_tag(&self, tag: &str, key: &Key) {
        // A NUL never appears in a Message-ID: the two kinds cannot collide.
        self.insert(&format!("\0{tag}"), key);
    }

    /// The message of a VERP message tag, if remembered.
    pub fn by_tag(&self, tag: &str) -> Option<Key> {
        self.get(&format!("\0{tag}"))
    }
}

/// The Message-ID header of a message, if it has one in its header block.
pub fn message_id_of(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut value = value.to_string();
        while let Some(next) = lines.peek() {
            if !next.starts_with([' ', '\t']) {
                break;
            }
            value.push_str(next);
            lines.next();
        }
        let id = normalize_message_id(&value);
        return (!id.is_empty()).then_some(id);
    }
    None
}

/// A [`Deliver`] that gives each recipient its own VERP return path.
pub struct VerpDeliver {
    inner: Arc<dyn Deliver>,
    verp: Arc<Verp>,
    ids: Arc<MessageIds>,
}

impl std::fmt::Debug for VerpDeliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerpDeliver")
            .field("inner", &self.inner.describe())
            .field("verp", &self.verp)
            .finish()
    }
}

impl VerpDeliver {
    /// Delivers through `inner` with return paths of `verp`, remembering
    /// Message-IDs in `ids`.
    pub fn new(inner: Arc<dyn Deliver>, verp: Arc<Verp>, ids: Arc<MessageIds>) -> Self {
        VerpDeliver { inner, verp, ids }
    }
}

impl Deliver for VerpDeliver {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        Box::pin(async move {
            if let Some(id) = message_id_of(&lease.bytes) {
                self.ids.insert(&id, &lease.key);
            }
            if lease.envelope.mail_from.trim().is_empty() {
                return self.inner.deliver(lease).await;
            }
            self.ids
                .insert_tag(&self.verp.message_tag(&lease.key), &lease.key);
            // One transaction per recipient, at most as many at once as the
            // upstream has connections; each copy of the lease lives only
            // for its own transaction (memory: connections x message size).
            let one = |rcpt: String| {
                let mut envelope = lease.envelope.clone();
                envelope.mail_from = self.verp.address(&lease.key, &rcpt);
                envelope.rcpt_to = vec![rcpt];
                let single = Lease {
                    key: lease.key.clone(),
                    envelope,
                    bytes: lease.bytes.clone(),
                    attempts: lease.attempts,
                    received_ms: lease.received_ms,
                    fence: lease.fence,
                };
                async move { self.inner.deliver(&single).await }
            };
            stream::iter(lease.envelope.rcpt_to.iter().cloned().map(one))
                .buffer_unordered(self.inner.concurrency().max(1))
                .flat_map(stream::iter)
                .collect()
                .await
        })
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }

    fn describe(&self) -> String {
        format!(
            "{} (return path bounces+…@{})",
            self.inner.describe(),
            self.verp.domain()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Envelope;

    /// Remembers the envelopes it was given and accepts every recipient.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Envelope>>);

    impl Deliver for Recorder {
        fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
            self.0.lock().unwrap().push(lease.envelope.clone());
            let out = lease
                .envelope
                .rcpt_to
                .iter()
                .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
                .collect();
            Box::pin(async move { out })
        }
        fn concurrency(&self) -> usize {
            2
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    fn lease(from: &str) -> Lease {
        Lease {
            key: Key {
                token: "app".into(),
                id: "m1".into(),
            },
            envelope: Envelope {
                mail_from: from.into(),
                rcpt_to: vec!["bob@example.org".into(), "carl@example.net".into()],
                ..Envelope::default()
            },
            bytes: b"Message-ID: <abc@example.com>\r\nFrom: a@example.com\r\n\r\nhi\r\n".to_vec(),
            attempts: 0,
            received_ms: 0,
            fence: 0,
        }
    }

    #[tokio::test]
    async fn each_recipient_gets_its_own_return_path_and_the_null_sender_stays_null() {
        let rec = Arc::new(Recorder::default());
        let verp = Arc::new(Verp::with_secret(b"k", "b.example.com"));
        let ids = Arc::new(MessageIds::default());
        let d = VerpDeliver::new(rec.clone(), Arc::clone(&verp), Arc::clone(&ids));
        let l = lease("ana@example.com");
        let out = d.deliver(&l).await;
        assert_eq!(out.len(), 2);
        {
            let sent = rec.0.lock().unwrap();
            assert_eq!(sent.len(), 2, "one transaction per recipient");
            for env in sent.iter() {
                let tags = verp.parse(&env.mail_from).expect("a VERP return path");
                assert_eq!(tags.message, verp.message_tag(&l.key));
                assert_eq!(tags.rcpt, verp.rcpt_tag(&l.key, &env.rcpt_to[0]));
            }
        }
        assert_eq!(ids.get("<abc@example.com>"), Some(l.key.clone()));
        assert_eq!(ids.by_tag(&verp.message_tag(&l.key)), Some(l.key.clone()));
        d.deliver(&lease("")).await;
        let sent = rec.0.lock().unwrap();
        assert_eq!(sent[2].mail_from, "");
        assert_eq!(sent[2].rcpt_to.len(), 2);
    }

    #[test]
    fn the_message_id_is_read_from_the_header_block_only() {
        assert_eq!(
            message_id_of(b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nMessage-ID: <c@d>\r\n")
                .as_deref(),
            Some("a@b")
        );
        assert_eq!(
            message_id_of(b"Subject: x\r\n\r\nMessage-ID: <c@d>\r\n"),
            None
        );
    }
}
