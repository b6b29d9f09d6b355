//! SMTP delivery: a pool of N parallel, secured, authenticated SMTP sessions,
//! built on lettre's protocol code over connections we own.
//!
//! | piece | file |
//! | --- | --- |
//! | settings, `smtp://` / `smtps://` URLs | [`settings`] |
//! | the pool: N workers, each owning a connection; send, bulk | [`pool`] |
//! | forward and streaming `forward_file` | [`forward`] |
//! | blocking wrapper | [`blocking`] |
//! | replies per recipient | [`reply`] |
//! | the server's EHLO capabilities | [`capabilities`] |
//! | pre-flight check: TLS, capabilities, AUTH, NOOP, QUIT | [`check`] |
//! | SOCKS5 and HTTP CONNECT proxies | [`proxy`] |
//! | MAIL/RCPT parameters: SIZE, 8BITMIME, SMTPUTF8, DSN, REQUIRETLS | `params` |
//! | the error type | [`error`] |
//!
//! The pickup directory ([`crate::pickup::Pickup`]) is the other [`Transport`];
//! the result types both use live in [`crate::delivery`] (re-exported here).
//!
//! Security modes: `none`, `starttls` (required), `tls` (implicit) and `auto`
//! (STARTTLS when offered). Credentials never go over an unencrypted
//! connection unless `allow_plaintext_auth` is set. Certificates are checked
//! against the bundled Mozilla roots plus an optional CA file.
//!
//! Why not lettre's `AsyncSmtpTransport`: it never sets TCP_NODELAY (each
//! message then waits for a delayed ACK: ~44 ms), its pool caps idle rather
//! than open connections, it copies a whole message into memory, and it stops
//! at the first refused recipient. We use `AsyncSmtpConnection` over our own
//! sockets instead; see `connection.rs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use postwire_relay::smtp::{SmtpPool, SmtpSettings};
//! let mut settings = SmtpSettings::from_url("smtps://ana@smtp.example.com?connections=4")?;
//! settings.password = Some(postwire_relay::smtp::Secret::new("s3cret"));
//! let pool = SmtpPool::connect(settings).await?;
//! let report = pool.forward_file("saved.eml", "ana@example.com", &["bob@example.org"]).await?;
//! assert!(report.is_complete());
//! # Ok(()) }
//! ```

pub mod blocking;
pub mod capabilities;
pub mod check;
mod connection;
mod content;
pub mod error;
pub mod forward;
mod params;
pub mod pool;
pub mod proxy;
pub mod reply;
pub mod settings;
mod wire;

pub use crate::delivery::{Content, Failure, Transport, Warning};
pub use blocking::BlockingSmtpPool;
pub use capabilities::Capabilities;
pub use check::{AuthCheck, CheckError, CheckReport, CheckStep, TlsReport, check};
pub use error::{SmtpError, Stage};
pub use pool::{BulkProgress, DeliveryResult, Outgoing, SmtpPool};
pub use postwire_core::envelope::Envelope;
pub use proxy::{Proxy, ProxyError, ProxyKind};
pub use reply::{DeliveryReport, EnhancedStatus, RecipientStatus, SmtpReply};
pub use settings::{AuthMechanism, Secret, Security, SettingsError, SmtpSettings};

impl Transport for SmtpPool {
    type Error = SmtpError;

    fn deliver(
        &self,
        envelope: Envelope,
        content: Content,
    ) -> impl Future<Output = DeliveryResult> + Send {
        self.send_content(envelope, content)
    }
}
