//! postwire-core: the message model and the format engines of postwire.
//!
//! Sans-IO and deterministic: bytes in, bytes out. No clock, no randomness,
//! no filesystem: time and entropy are passed in by the caller
//! ([`build::BuildOptions`]), so that the same input gives the same bytes
//! natively and in WebAssembly.
//!
//! | module | owns |
//! |---|---|
//! | [`spec`] | the message spec (the JSON contract), normal form |
//! | [`address`] | mailboxes: parsing, validation, IDN |
//! | [`build`](mod@build) | spec -> RFC 5322 bytes (mail-builder) |
//! | [`parse`](mod@parse) | RFC 5322 bytes -> spec (MIME structure split here, headers and charsets by a patched mail-parser, `vendor/mail-parser/PATCHES.md`) |
//! | [`envelope`] | MAIL FROM / RCPT TO rules |
//! | [`ical`] | iCalendar appointments, iTIP meeting requests |
//! | [`report`] | delivery status notifications (RFC 3464), abuse reports (RFC 5965), non-standard bounces |
//! | [`reply`] | replies and forwards as new messages |
//! | [`tnef`] | TNEF (winmail.dat): read, write, spec conversions |
//!
//! Layers, each importing only those under it: the model (`spec`,
//! `address`, `content_type`, the iCalendar model), the MIME engines
//! (`build`, `parse`), the conversions (calendar and TNEF to and from MIME
//! parts), `reply`, and on top the entry points `build()` and `parse()`
//! (`compose.rs`), which compose a spec's calendar and TNEF parts around the
//! MIME engines.
//!
//! ```
//! use postwire_core::{build::{build, BuildOptions}, parse::parse, spec::from_json};
//! let spec = from_json(r#"{"from": "ana@example.com", "to": ["bob@example.com"],
//!     "subject": "Hola", "text": "¿Qué tal?"}"#)?;
//! let bytes = build(&spec, &BuildOptions { now: 1_764_000_000, seed: 1 })?;
//! let back = parse(&bytes)?;
//! assert_eq!(back.subject.as_deref(), Some("Hola"));
//! assert_eq!(back.text.as_deref(), Some("¿Qué tal?"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod address;
#[doc(hidden)]
pub mod b64;
pub mod build;
mod compose;
pub mod content_type;
pub mod entropy;
pub mod envelope;
mod html;
pub mod ical;
pub mod parse;
pub mod reply;
pub mod report;
pub mod spec;
pub mod tnef;

pub use address::Mailbox;
pub use build::{BuildError, BuildOptions, build};
pub use envelope::Envelope;
pub use parse::{ParseError, parse};
pub use spec::{Alternate, Attachment, MessageSpec, Priority, Timestamp};
