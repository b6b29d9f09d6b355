//! The TNEF message model: what a winmail.dat holds, as plain Rust values.
//! The reader fills it, the writer serialises it; both keep every MAPI
//! property they do not map to a field in `properties`, so nothing is lost.

use serde::{Serialize, Serializer};

use super::attributes::{RendData, format_rfc3339};
use super::mapi::MapiProperty;

/// A TNEF message: the message attributes, the MAPI properties, the
/// recipients and the attachments of a winmail.dat (or of an embedded message).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TnefMessage {
    /// The legacy key after the signature (readers ignore its value).
    pub legacy_key: u16,
    /// attTnefVersion, when present (0x00010000 for TNEF 1.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// attOemCodepage: the code page of the 8-bit strings (1252 when absent).
    pub code_page: u32,
    /// The message class ("IPM.Note", "IPM.Schedule.Meeting.Request"...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_class: Option<String>,
    /// The subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TnefAddress>,
    /// When the message was sent, Unix seconds (PidTagClientSubmitTime or attDateSent).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "date_opt")]
    pub date_sent: Option<i64>,
    /// When it was received, Unix seconds (PidTagMessageDeliveryTime or attDateRecd).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "date_opt")]
    pub date_received: Option<i64>,
    /// When it was last modified, Unix seconds (attDateModified).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "date_opt")]
    pub date_modified: Option<i64>,
    /// attMessageID: MAPI's hexadecimal message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// PidTagInternetMessageId: the RFC 5322 Message-ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
    /// PidTagTnefCorrelationKey as text: the value of X-MS-TNEF-Correlator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlator: Option<String>,
    /// attPriority: 1 high, 2 normal, 3 low.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    /// The plain-text body (PidTagBody or attBody).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The HTML body (PidTagHtml, or de-encapsulated from the RTF body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The RTF body, decompressed from PidTagRtfCompressed.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rtf_opt")]
    pub rtf: Option<Vec<u8>>,
    /// The recipients (attRecipTable).
    pub recipients: Vec<TnefRecipient>,
    /// Every message-level MAPI property (attMAPIProps), as read. The writer
    /// writes those it does not derive from the fields above.
    pub properties: Vec<MapiProperty>,
    /// The attachments, in order.
    pub attachments: Vec<TnefAttachment>,
    /// Attributes this model has no field for, kept verbatim.
    pub other_attributes: Vec<RawAttribute>,
}

/// An address in TNEF: display name, address and address type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TnefAddress {
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address: an email address for SMTP, a DN for Exchange ("EX").
    pub email: String,
    /// The address type ("SMTP", "EX").
    pub addr_type: String,
}

/// How a recipient receives the message (PidTagRecipientType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RecipientKind {
    /// MAPI_ORIG (0).
    Originator,
    /// MAPI_TO (1).
    To,
    /// MAPI_CC (2).
    Cc,
    /// MAPI_BCC (3).
    Bcc,
    /// Any other value.
    Other(u32),
}

impl RecipientKind {
    /// From PidTagRecipientType (the high bits are flags).
    pub fn from_mapi(v: i64) -> Self {
        match v & 0x0FFF_FFFF {
            0 => RecipientKind::Originator,
            1 => RecipientKind::To,
            2 => RecipientKind::Cc,
            3 => RecipientKind::Bcc,
            other => RecipientKind::Other(other as u32),
        }
    }

    /// As PidTagRecipientType.
    pub fn to_mapi(self) -> i32 {
        match self {
            RecipientKind::Originator => 0,
            RecipientKind::To => 1,
            RecipientKind::Cc => 2,
            RecipientKind::Bcc => 3,
            RecipientKind::Other(v) => v as i32,
        }
    }
}

/// A row of the recipient table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TnefRecipient {
    /// To, Cc or Bcc.
    pub kind: RecipientKind,
    /// Name and address.
    pub address: TnefAddress,
    /// The row's MAPI properties, as read.
    pub properties: Vec<MapiProperty>,
}

/// An attachment of a TNEF message.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TnefAttachment {
    /// attAttachTitle: the (often 8.3) file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// PidTagAttachLongFilename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_filename: Option<String>,
    /// PidTagAttachMimeTag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// PidTagAttachContentId, without angle brackets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// PidTagAttachContentLocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_location: Option<String>,
    /// PidTagAttachMethod (1 by value, 5 embedded message, 6 OLE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<i32>,
    /// PidTagAttachmentHidden: not shown in the attachment list (inline).
    pub hidden: bool,
    /// The file data (attAttachData, or PidTagAttachDataBinary); in JSON, its size.
    #[serde(rename = "size", serialize_with = "len_of")]
    pub data: Vec<u8>,
    /// An attached message (PidTagAttachDataObject), decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded: Option<Box<TnefMessage>>,
    /// attAttachCreateDate, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "date_opt")]
    pub create_date: Option<i64>,
    /// attAttachModifyDate, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "date_opt")]
    pub modify_date: Option<i64>,
    /// attAttachRendData, when the attachment had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rend_data: Option<RendData>,
    /// attAttachMetaFile: the icon or rendering as a Windows metafile.
    #[serde(skip)]
    pub meta_file: Option<Vec<u8>>,
    /// The attachment's MAPI properties (attAttachment), as read.
    pub properties: Vec<MapiProperty>,
    /// Attachment attributes this model has no field for, kept verbatim.
    pub other_attributes: Vec<RawAttribute>,
}

impl TnefAttachment {
    /// The best file name: long file name, PidTagAttachFilename, title,
    /// display name, in that order.
    pub fn filename(&self) -> Option<&str> {
        use super::mapi::{find, tags};
        self.long_filename
            .as_deref()
            .or_else(|| find(&self.properties, tags::ATTACH_FILENAME).and_then(|v| v.as_str()))
            .or(self.title.as_deref())
            .or_else(|| find(&self.properties, tags::DISPLAY_NAME).and_then(|v| v.as_str()))
            .filter(|s| !s.is_empty())
    }
}

/// An attribute kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAttribute {
    /// 1 message, 2 attachment.
    pub level: u8,
    /// The attribute id (type in the high word).
    pub id: u32,
    /// The data.
    #[serde(skip)]
    pub data: Vec<u8>,
}

fn date_opt<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secs) => s.serialize_str(&format_rfc3339(*secs)),
        None => s.serialize_none(),
    }
}

fn rtf_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&String::from_utf8_lossy(bytes)),
        None => s.serialize_none(),
    }
}

fn len_of<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(v.len() as u64)
}
