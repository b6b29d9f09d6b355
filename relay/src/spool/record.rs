//! The spool's record format: framing with a CRC-32, and the two payloads
//! (message, settle; a settle record also carries an operator's hold,
//! release, cancel or delete, in fields older journals simply lack). Pure functions over byte slices; no I/O here.
//!
//! ```text
//! 0      4     5       8        12       16
//! | PWR1 | kind | 0 0 0 | len LE | crc LE | payload (len bytes) ...
//! ```
//! The CRC-32 (IEEE) covers the kind byte, the length and the payload.

use serde::{Deserialize, Serialize};

use super::{Key, MessageMeta, RcptStatus};

/// The four bytes every record starts with.
pub const MAGIC: [u8; 4] = *b"PWR1";
/// Size of a record header.
pub const HEADER_LEN: usize = 16;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A message: meta JSON and bytes (batch files).
    Message = 1,
    /// The state of a message's recipients after an attempt (journal).
    Settle = 2,
}

/// The payload of a settle record: the state of every recipient of a message
/// after an attempt (only the recipients that attempt touched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settle {
    /// The message.
    pub key: Key,
    /// Recipients and their new state.
    pub rcpts: Vec<RcptStatus>,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Whether every recipient of the message is now final.
    pub done: bool,
    /// An operator's hold (`true`) or release (`false`); absent in records
    /// that change no hold, and in journals older than the admin API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
    /// The operator deleted the message (it is not listed any more; its key
    /// stays known until its retention ends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The record is an operator's action (hold, release, cancel, delete),
    /// not an attempt's outcome: it ends no lease and counts no attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
    /// The message's history until now, written by compaction (which keeps
    /// one record per message): recovery starts the history from it and
    /// adds the states of the records after it. Empty in every other record
    /// (their own states are their history) and in older journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<super::HistoryItem>,
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than a header, or than the header's length says (a torn write).
    #[error("truncated record: {needed} bytes needed, {present} present")]
    Truncated {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// The record does not start with `PWR1`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The checksum does not match: the record was damaged.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// CRC stored in the header.
        stored: u32,
        /// CRC of the bytes present.
        computed: u32,
    },
    /// Unknown kind byte.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// The payload is not what its kind says.
    #[error("bad payload: {0}")]
    Payload(String),
}

/// One decoded record, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its payload.
    pub payload: &'a [u8],
}

fn crc(kind: u8, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one record to `out`.
///
/// Payloads over 4 GiB cannot be framed; callers cap message sizes far below.
pub fn encode(out: &mut Vec<u8>, kind: Kind, payload_parts: &[&[u8]]) -> Result<(), RecordError> {
    let total: usize = payload_parts.iter().map(|p| p.len()).sum();
    let len =
        u32::try_from(total).map_err(|_| RecordError::Payload("payload over 4 GiB".into()))?;
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind as u8]);
    h.update(&len.to_le_bytes());
    for p in payload_parts {
        h.update(p);
    }
    out.reserve(HEADER_LEN + total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    for p in payload_parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Decodes the record at the start of `buf`; returns it and its total length.
/// The length field is checked against `buf.len()` before it is used.
pub fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), RecordError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Err(RecordError::Truncated {
            needed: HEADER_LEN,
            present: buf.len(),
        });
    };
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&header[..4]);
    if magic != MAGIC {
        return Err(RecordError::BadMagic(magic));
    }
    let kind_byte = header[4];
    if header[5..8] != [0, 0, 0] {
        return Err(RecordError::Payload(
            "reserved header bytes are not zero".into(),
        ));
    }
    let len = le32(&header[8..12]);
    let stored = le32(&header[12..16]);
    let total = HEADER_LEN.saturating_add(len as usize);
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Err(RecordError::Truncated {
            needed: total,
            present: buf.len(),
        });
    };
    let computed = crc(kind_byte, len, payload);
    if computed != stored {
        return Err(RecordError::Checksum { stored, computed });
    }
    let kind = match kind_byte {
        1 => Kind::Message,
        2 => Kind::Settle,
        other => return Err(RecordError::UnknownKind(other)),
    };
    Ok((Record { kind, payload }, total))
}

/// Encodes a message record.
pub fn encode_message(
    out: &mut Vec<u8>,
    meta: &MessageMeta,
    bytes: &[u8],
) -> Result<(), RecordError> {
    let json = serde_json::to_vec(meta).map_err(|e| RecordError::Payload(e.to_string()))?;
    let json_len =
        u32::try_from(json.len()).map_err(|_| RecordError::Payload("meta too long".into()))?;
    encode(out, Kind::Message, &[&json_len.to_le_bytes(), &json, bytes])
}

/// Splits a message record's payload into its meta and the offset of the
/// message bytes within the payload.
pub fn decode_message(payload: &[u8]) -> Result<(MessageMeta, usize), RecordError> {
    let Some(len_bytes) = payload.get(..4) else {
        return Err(RecordError::Payload(
            "message record shorter than its meta length".into(),
        ));
    };
    let json_len = le32(len_bytes) as usize;
    let end = 4usize.saturating_add(json_len);
    let json = payload.get(4..end).ok_or_else(|| {
        RecordError::Payload(format!("meta length {json_len} exceeds the record"))
    })?;
    let meta: MessageMeta = serde_json::from_slice(json)
        .map_err(|e| RecordError::Payload(format!("message meta: {e}")))?;
    Ok((meta, end))
}

/// Encodes a settle record.
pub fn encode_settle(out: &mut Vec<u8>, settle: &Settle) -> Result<(), RecordError> {
    let json = serde_json::to_vec(settle).map_err(|e| RecordError::Payload(e.to_string()))?;
    encode(out, Kind::Settle, &[&json])
}

/// Decodes a settle record's payload.
pub fn decode_settle(payload: &[u8]) -> Result<Settle, RecordError> {
    serde_json::from_slice(payload).map_err(|e| RecordError::Payload(format!("settle record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settle_record_without_the_operator_fields_still_reads() {
        let old = br#"{"key":{"token":"t","id":"m"},"rcpts":[],"atMs":5,"done":false}"#;
        let s = decode_settle(old).unwrap();
        assert_eq!((s.held, s.deleted, s.control), (None, false, false));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut out = Vec::new();
        encode(&mut out, Kind::Settle, &[b"hello ", b"world"]).unwrap();
        let (rec, used) = decode(&out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(rec.kind, Kind::Settle);
        assert_eq!(rec.payload, b"hello world");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut out = Vec::new();
        encode(&mut out, Kind::Message, &[b"payload bytes"]).unwrap();
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode(&bad).is_err(),
                    "flip at byte {byte} bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_huge_length_field_is_reported_as_truncation_without_allocating() {
        let mut out = Vec::new();
        encode(&mut out, Kind::Settle, &[b"x"]).unwrap();
        out[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&out), Err(RecordError::Truncated { .. })));
    }

    #[test]
    fn a_meta_length_beyond_the_payload_is_an_error() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&1000u32.to_le_bytes());
        payload.extend_from_slice(b"{}");
        assert!(matches!(
            decode_message(&payload),
            Err(RecordError::Payload(_))
        ));
    }
}
