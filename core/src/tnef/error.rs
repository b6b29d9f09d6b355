//! The one error type of the TNEF module: every way a winmail.dat can be
//! unreadable or a message unwritable, each naming what was wrong and, for
//! input, the byte offset where it was found.

use thiserror::Error;

/// An error reading or writing TNEF.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TnefError {
    /// The stream does not start with the TNEF signature 0x223E9F78.
    #[error("not a TNEF stream: signature is 0x{found:08X}, expected 0x223E9F78")]
    BadSignature {
        /// The first four bytes, little-endian.
        found: u32,
    },
    /// The input ended inside a structure.
    #[error("TNEF truncated at offset {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// Offset where the structure starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// An attribute's checksum does not match the sum of its data bytes.
    #[error(
        "TNEF attribute 0x{attribute:08X} at offset {offset}: checksum 0x{stored:04X} does not match computed 0x{computed:04X}"
    )]
    Checksum {
        /// Offset of the attribute header.
        offset: usize,
        /// The attribute id (type in the high word).
        attribute: u32,
        /// The checksum stored in the stream.
        stored: u16,
        /// The checksum of the data bytes.
        computed: u16,
    },
    /// An attribute level other than 1 (message) or 2 (attachment).
    #[error("TNEF attribute at offset {offset}: unknown level {level} (expected 1 or 2)")]
    BadLevel {
        /// Offset of the attribute header.
        offset: usize,
        /// The level byte found.
        level: u8,
    },
    /// A known attribute whose data has the wrong size or shape.
    #[error("TNEF attribute {name} at offset {offset}: {reason}")]
    BadAttribute {
        /// Offset of the attribute data.
        offset: usize,
        /// The attribute's name (e.g. "attAttachRendData").
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A MAPI property with a type this reader cannot size.
    #[error(
        "MAPI property 0x{id:04X} at offset {offset}: unsupported property type 0x{prop_type:04X}"
    )]
    UnsupportedPropertyType {
        /// Offset of the property tag.
        offset: usize,
        /// The property id.
        id: u16,
        /// The property type.
        prop_type: u16,
    },
    /// A MAPI property value that is malformed (e.g. a count larger than the data).
    #[error("MAPI property 0x{id:04X} at offset {offset}: {reason}")]
    BadProperty {
        /// Offset of the value.
        offset: usize,
        /// The property id.
        id: u16,
        /// What was wrong.
        reason: String,
    },
    /// Compressed RTF (PidTagRtfCompressed) that cannot be decompressed.
    #[error("compressed RTF: {0}")]
    CompressedRtf(String),
    /// Embedded messages nested deeper than the reader allows.
    #[error("TNEF embedded messages nested deeper than {max} levels at offset {offset}")]
    TooDeep {
        /// Offset of the embedded message data in its parent.
        offset: usize,
        /// The nesting limit.
        max: usize,
    },
    /// A value too large for the TNEF format (lengths are 32-bit).
    #[error("cannot write TNEF: {what} is {len} bytes, more than the 4 GiB a TNEF length can hold")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
    },
}

/// Shorthand for results of this module.
pub(crate) type Result<T> = std::result::Result<T, TnefError>;
