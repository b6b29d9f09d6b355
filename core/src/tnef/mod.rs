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
//! The reader checks what can be checked (signature, lengths, checksums,
//! RTF CRC) and never sizes an allocation by a length it has not checked
//! against the bytes that remain; it is lenient where real writers differ
//! (legacy key, missing attAttachRendData, attribute order). On damage,
//! [`decode_with`] (lenient by default) keeps what it could read and warns;
//! [`decode`] and `DecodeOptions { strict: true }` refuse the stream.

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

/// Decodes a TNEF stream (the bytes of a winmail.dat), strictly: the first
/// fault (a checksum, a length, an unreadable attribute) refuses the whole
/// stream. [`decode_with`] reads leniently by default.
pub fn decode(data: &[u8]) -> Result<TnefMessage, TnefError> {
    decode_with(data, DecodeOptions { strict: true }).map(|d| d.message)
}

/// How [`decode_with`] treats a damaged stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Refuse the whole stream at the first fault (as [`decode`] does)
    /// instead of keeping what could be read. Default: lenient.
    pub strict: bool,
}

/// A decoded stream and what a lenient reading left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The message, with every attribute and attachment that could be read.
    pub message: TnefMessage,
    /// One line per fault: its offset, what was wrong and what was lost
    /// (empty when the stream is sound, and always with `strict`).
    pub warnings: Vec<String>,
}

/// Decodes a TNEF stream; lenient by default (see `reader.rs`): damage is
/// skipped with a warning naming the offset and what was lost, bytes after
/// the last attribute are ignored with a warning, and attributes after a
/// damaged one are read again where the framing allows. Only a stream
/// that is not TNEF at all (signature, header) is an error.
pub fn decode_with(data: &[u8], options: DecodeOptions) -> Result<Decoded, TnefError> {
    let mut notes = reader::Notes {
        strict: options.strict,
        warnings: Vec::new(),
    };
    let message = reader::read(data, &mut notes)?;
    Ok(Decoded {
        message,
        warnings: notes.warnings,
    })
}

/// Encodes a message as a TNEF stream.
pub fn encode(message: &TnefMessage) -> Result<Vec<u8>, TnefError> {
    writer::write(message)
}
