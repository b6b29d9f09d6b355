//! TNEF (Transport Neutral Encapsulation Format, the `winmail.dat` that
//! Outlook and Exchange attach as `application/ms-tnef`), read and written
//! per [MS-OXTNEF].
//!
//! ```
//! use postwire_core::tnef::{self, TnefAttachment, TnefMessage};
//!
//! let message = TnefMessage {
//!     subject: Some("Quarterly report".into()),
//!     text: Some("See attached.".into()),
//!     attachments: vec![TnefAttachment {
//!         long_filename: Some("report.csv".into()),
//!         mime_type: Some("text/csv".into()),
//!         data: b"q,total\n1,42\n".to_vec(),
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let bytes = tnef::encode(&message)?;
//! let back = tnef::decode(&bytes)?;
//! assert_eq!(back.subject.as_deref(), Some("Quarterly report"));
//! assert_eq!(back.attachments[0].filename(), Some("report.csv"));
//! assert_eq!(back.attachments[0].data, b"q,total\n1,42\n");
//! # Ok::<(), tnef::TnefError>(())
//! ```
//!
//! Layout, one job per file:
//! - [`model`]: [`TnefMessage`] and its parts;
//! - `reader` / `writer`: the stream, attribute by attribute;
//! - [`attributes`]: attribute ids, dates, attAttachRendData, attFrom;
//! - [`mapi`]: MAPI property streams (every type, multi-valued, named);
//! - [`rtf`]: compressed RTF (LZFu) with its CRC;
//! - [`rtf_html`]: HTML and text encapsulated in RTF, both ways;
//! - [`codepage`]: Windows code pages of the 8-bit strings;
//! - [`spec`]: conversions to and from the message spec (`tnef: true`).
//!
//! Why our own: no kept crate reads *and* writes TNEF with its MAPI
//! properties (the `tnef` crate extracts attachments only, `ytnef` binds C).
//! The reader is strict about what can be checked (signature, lengths,
//! checksums, RTF CRC) and never sizes an allocation by a length it has not
//! checked against the bytes that remain; it is lenient where real writers
//! differ (legacy key, missing attAttachRendData, attribute order).

pub mod attributes;
pub mod codepage;
mod cursor;
mod error;
pub mod mapi;
pub mod model;
mod reader;
pub mod rtf;
pub mod rtf_html;
pub mod spec;
mod writer;

pub use error::TnefError;
pub use mapi::{MapiProperty, NameKind, PropValue, PropertyName};
pub use model::{
    RawAttribute, RecipientKind, TnefAddress, TnefAttachment, TnefMessage, TnefRecipient,
};
pub use reader::MAX_DEPTH;

/// Decodes a TNEF stream (the bytes of a winmail.dat). Strict: see the module doc.
pub fn decode(data: &[u8]) -> Result<TnefMessage, TnefError> {
    reader::read(data)
}

/// Encodes a message as a TNEF stream.
pub fn encode(message: &TnefMessage) -> Result<Vec<u8>, TnefError> {
    writer::write(message)
}
