//! MAPI property streams, as carried by attMAPIProps, attAttachment and the
//! rows of attRecipTable ([MS-OXTNEF] 2.1.3.4): the property types, values
//! (single- and multi-valued), named properties, and their reading and
//! writing. Every value is padded to four bytes; every variable-size value is
//! preceded by a count of values and a byte length each.

use serde::Serialize;

use super::codepage;
use super::cursor::{Cursor, pad4};
use super::error::{Result, TnefError};

/// Property types ([MS-OXCDATA] 2.11.1); a multi-valued type is the base
/// type with [`MV_FLAG`].
pub mod types {
    /// PtypUnspecified.
    pub const UNSPECIFIED: u16 = 0x0000;
    /// PtypNull.
    pub const NULL: u16 = 0x0001;
    /// PtypInteger16.
    pub const SHORT: u16 = 0x0002;
    /// PtypInteger32.
    pub const LONG: u16 = 0x0003;
    /// PtypFloating32.
    pub const FLOAT: u16 = 0x0004;
    /// PtypFloating64.
    pub const DOUBLE: u16 = 0x0005;
    /// PtypCurrency.
    pub const CURRENCY: u16 = 0x0006;
    /// PtypFloatingTime.
    pub const APPTIME: u16 = 0x0007;
    /// PtypErrorCode.
    pub const ERROR: u16 = 0x000A;
    /// PtypBoolean.
    pub const BOOLEAN: u16 = 0x000B;
    /// PtypObject (in TNEF: an IID and the object's data, e.g. an embedded message).
    pub const OBJECT: u16 = 0x000D;
    /// PtypInteger64.
    pub const I8: u16 = 0x0014;
    /// PtypString8: 8-bit string in the message code page.
    pub const STRING8: u16 = 0x001E;
    /// PtypString: UTF-16LE.
    pub const UNICODE: u16 = 0x001F;
    /// PtypTime: FILETIME.
    pub const SYSTIME: u16 = 0x0040;
    /// PtypGuid.
    pub const CLSID: u16 = 0x0048;
    /// PtypServerId (stored as binary).
    pub const SERVER_ID: u16 = 0x00FB;
    /// PtypRestriction (stored as binary).
    pub const RESTRICTION: u16 = 0x00FD;
    /// PtypRuleAction (stored as binary).
    pub const RULE_ACTION: u16 = 0x00FE;
    /// PtypBinary.
    pub const BINARY: u16 = 0x0102;
    /// The multi-valued flag.
    pub const MV_FLAG: u16 = 0x1000;
}

/// Property ids this module reads or writes ([MS-OXPROPS]).
pub mod tags {
    /// PidTagImportance.
    pub const IMPORTANCE: u16 = 0x0017;
    /// PidTagMessageClass.
    pub const MESSAGE_CLASS: u16 = 0x001A;
    /// PidTagPriority.
    pub const PRIORITY: u16 = 0x0026;
    /// PidTagSubject.
    pub const SUBJECT: u16 = 0x0037;
    /// PidTagClientSubmitTime.
    pub const CLIENT_SUBMIT_TIME: u16 = 0x0039;
    /// PidTagSentRepresentingName.
    pub const SENT_REPRESENTING_NAME: u16 = 0x0042;
    /// PidTagSentRepresentingAddressType.
    pub const SENT_REPRESENTING_ADDRTYPE: u16 = 0x0064;
    /// PidTagSentRepresentingEmailAddress.
    pub const SENT_REPRESENTING_EMAIL: u16 = 0x0065;
    /// PidTagConversationTopic.
    pub const CONVERSATION_TOPIC: u16 = 0x0070;
    /// PidTagTnefCorrelationKey.
    pub const TNEF_CORRELATION_KEY: u16 = 0x007F;
    /// PidTagSenderName.
    pub const SENDER_NAME: u16 = 0x0C1A;
    /// PidTagSenderAddressType.
    pub const SENDER_ADDRTYPE: u16 = 0x0C1E;
    /// PidTagSenderEmailAddress.
    pub const SENDER_EMAIL: u16 = 0x0C1F;
    /// PidTagRecipientType.
    pub const RECIPIENT_TYPE: u16 = 0x0C15;
    /// PidTagDisplayCc.
    pub const DISPLAY_CC: u16 = 0x0E03;
    /// PidTagDisplayTo.
    pub const DISPLAY_TO: u16 = 0x0E04;
    /// PidTagMessageDeliveryTime.
    pub const MESSAGE_DELIVERY_TIME: u16 = 0x0E06;
    /// PidTagMessageFlags.
    pub const MESSAGE_FLAGS: u16 = 0x0E07;
    /// PidTagRtfInSync.
    pub const RTF_IN_SYNC: u16 = 0x0E1F;
    /// PidTagAttachSize.
    pub const ATTACH_SIZE: u16 = 0x0E20;
    /// PidTagBody.
    pub const BODY: u16 = 0x1000;
    /// PidTagRtfCompressed.
    pub const RTF_COMPRESSED: u16 = 0x1009;
    /// PidTagHtml / PidTagBodyHtml.
    pub const HTML: u16 = 0x1013;
    /// PidTagNativeBody.
    pub const NATIVE_BODY: u16 = 0x1016;
    /// PidTagInternetMessageId.
    pub const INTERNET_MESSAGE_ID: u16 = 0x1035;
    /// PidTagInternetReferences.
    pub const INTERNET_REFERENCES: u16 = 0x1039;
    /// PidTagInReplyToId.
    pub const IN_REPLY_TO: u16 = 0x1042;
    /// PidTagLastModificationTime.
    pub const LAST_MODIFICATION_TIME: u16 = 0x3008;
    /// PidTagCreationTime.
    pub const CREATION_TIME: u16 = 0x3007;
    /// PidTagDisplayName.
    pub const DISPLAY_NAME: u16 = 0x3001;
    /// PidTagAddressType.
    pub const ADDRTYPE: u16 = 0x3002;
    /// PidTagEmailAddress.
    pub const EMAIL_ADDRESS: u16 = 0x3003;
    /// PidTagAttachDataBinary / PidTagAttachDataObject.
    pub const ATTACH_DATA: u16 = 0x3701;
    /// PidTagAttachExtension.
    pub const ATTACH_EXTENSION: u16 = 0x3703;
    /// PidTagAttachFilename.
    pub const ATTACH_FILENAME: u16 = 0x3704;
    /// PidTagAttachMethod.
    pub const ATTACH_METHOD: u16 = 0x3705;
    /// PidTagAttachLongFilename.
    pub const ATTACH_LONG_FILENAME: u16 = 0x3707;
    /// PidTagRenderingPosition.
    pub const RENDERING_POSITION: u16 = 0x370B;
    /// PidTagAttachMimeTag.
    pub const ATTACH_MIME_TAG: u16 = 0x370E;
    /// PidTagAttachContentId.
    pub const ATTACH_CONTENT_ID: u16 = 0x3712;
    /// PidTagAttachContentLocation.
    pub const ATTACH_CONTENT_LOCATION: u16 = 0x3713;
    /// PidTagAttachFlags.
    pub const ATTACH_FLAGS: u16 = 0x3714;
    /// PidTagSmtpAddress.
    pub const SMTP_ADDRESS: u16 = 0x39FE;
    /// PidTagInternetCodepage.
    pub const INTERNET_CPID: u16 = 0x3FDE;
    /// PidTagMessageCodepage.
    pub const MESSAGE_CODEPAGE: u16 = 0x3FFD;
    /// PidTagAttachmentHidden.
    pub const ATTACHMENT_HIDDEN: u16 = 0x7FFE;
}

/// IID_IMessage, which prefixes an embedded message in PidTagAttachDataObject.
pub const IID_IMESSAGE: [u8; 16] = [
    0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// A MAPI property: tag (id and type), the name of a named property, value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapiProperty {
    /// The property id (0x8000 and above: a named property, see `name`);
    /// hexadecimal text ("0x3701") in JSON.
    #[serde(serialize_with = "serialize_hex16")]
    pub id: u16,
    /// The property type as stored (see [`types`]); hexadecimal text in JSON.
    #[serde(serialize_with = "serialize_hex16")]
    pub prop_type: u16,
    /// For named properties: the property set GUID and the name or number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<PropertyName>,
    /// The value.
    pub value: PropValue,
}

impl MapiProperty {
    /// A property with the type that `value` naturally has.
    pub fn new(id: u16, value: PropValue) -> Self {
        MapiProperty {
            id,
            prop_type: value.natural_type(),
            name: None,
            value,
        }
    }

    /// The tag as MAPI writes it: id in the high word, type in the low word.
    pub fn tag(&self) -> u32 {
        (u32::from(self.id) << 16) | u32::from(self.prop_type)
    }
}

/// The name of a named property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyName {
    /// The property set, as a GUID string ("00020329-0000-0000-c000-000000000046").
    #[serde(serialize_with = "serialize_guid")]
    pub guid: [u8; 16],
    /// The numeric id or the string name within the set.
    pub kind: NameKind,
}

/// How a named property is named: MNID_ID or MNID_STRING.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NameKind {
    /// MNID_ID: a number.
    Id(u32),
    /// MNID_STRING: a name.
    Name(String),
}

/// A MAPI property value, one variant per property type and multi-valued type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
#[non_exhaustive]
pub enum PropValue {
    /// PtypNull or PtypUnspecified: no value.
    Null,
    /// PtypInteger16.
    Short(i16),
    /// PtypInteger32.
    Long(i32),
    /// PtypFloating32.
    Float(f32),
    /// PtypFloating64.
    Double(f64),
    /// PtypCurrency: a 64-bit integer scaled by 10 000.
    Currency(i64),
    /// PtypFloatingTime: OLE automation date.
    AppTime(f64),
    /// PtypErrorCode.
    Error(u32),
    /// PtypBoolean.
    Boolean(bool),
    /// PtypInteger64.
    I8(i64),
    /// PtypTime: 100-nanosecond intervals since 1601-01-01 UTC.
    SysTime(u64),
    /// PtypGuid.
    Clsid(#[serde(serialize_with = "serialize_guid")] [u8; 16]),
    /// PtypString8, decoded with the message code page.
    String8(String),
    /// PtypString.
    Unicode(String),
    /// PtypBinary (and the binary-shaped PtypServerId, PtypRestriction, PtypRuleAction).
    Binary(#[serde(serialize_with = "serialize_b64")] Vec<u8>),
    /// PtypObject: the raw object data (for an embedded message: IID + TNEF).
    Object(#[serde(serialize_with = "serialize_b64")] Vec<u8>),
    /// PtypMultipleInteger16.
    MultiShort(Vec<i16>),
    /// PtypMultipleInteger32.
    MultiLong(Vec<i32>),
    /// PtypMultipleFloating32.
    MultiFloat(Vec<f32>),
    /// PtypMultipleFloating64.
    MultiDouble(Vec<f64>),
    /// PtypMultipleCurrency.
    MultiCurrency(Vec<i64>),
    /// PtypMultipleFloatingTime.
    MultiAppTime(Vec<f64>),
    /// PtypMultipleInteger64.
    MultiI8(Vec<i64>),
    /// PtypMultipleTime.
    MultiSysTime(Vec<u64>),
    /// PtypMultipleGuid.
    MultiClsid(Vec<[u8; 16]>),
    /// PtypMultipleString8.
    MultiString8(Vec<String>),
    /// PtypMultipleString.
    MultiUnicode(Vec<String>),
    /// PtypMultipleBinary.
    MultiBinary(#[serde(serialize_with = "serialize_b64_list")] Vec<Vec<u8>>),
}

impl PropValue {
    /// The property type a value of this variant is written with.
    pub fn natural_type(&self) -> u16 {
        use types::*;
        match self {
            PropValue::Null => NULL,
            PropValue::Short(_) => SHORT,
            PropValue::Long(_) => LONG,
            PropValue::Float(_) => FLOAT,
            PropValue::Double(_) => DOUBLE,
            PropValue::Currency(_) => CURRENCY,
            PropValue::AppTime(_) => APPTIME,
            PropValue::Error(_) => ERROR,
            PropValue::Boolean(_) => BOOLEAN,
            PropValue::I8(_) => I8,
            PropValue::SysTime(_) => SYSTIME,
            PropValue::Clsid(_) => CLSID,
            PropValue::String8(_) => STRING8,
            PropValue::Unicode(_) => UNICODE,
            PropValue::Binary(_) => BINARY,
            PropValue::Object(_) => OBJECT,
            PropValue::MultiShort(_) => SHORT | MV_FLAG,
            PropValue::MultiLong(_) => LONG | MV_FLAG,
            PropValue::MultiFloat(_) => FLOAT | MV_FLAG,
            PropValue::MultiDouble(_) => DOUBLE | MV_FLAG,
            PropValue::MultiCurrency(_) => CURRENCY | MV_FLAG,
            PropValue::MultiAppTime(_) => APPTIME | MV_FLAG,
            PropValue::MultiI8(_) => I8 | MV_FLAG,
            PropValue::MultiSysTime(_) => SYSTIME | MV_FLAG,
            PropValue::MultiClsid(_) => CLSID | MV_FLAG,
            PropValue::MultiString8(_) => STRING8 | MV_FLAG,
            PropValue::MultiUnicode(_) => UNICODE | MV_FLAG,
            PropValue::MultiBinary(_) => BINARY | MV_FLAG,
        }
    }

    /// The value as text, for the string types.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropValue::String8(s) | PropValue::Unicode(s) => Some(s),
            _ => None,
        }
    }

    /// The value as bytes, for the binary and object types.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            PropValue::Binary(b) | PropValue::Object(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an integer, for the integer and boolean types.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PropValue::Short(v) => Some(i64::from(v)),
            PropValue::Long(v) => Some(i64::from(v)),
            PropValue::I8(v) => Some(v),
            PropValue::Boolean(v) => Some(i64::from(v)),
            _ => None,
        }
    }
}

/// The first property with id `id` in `props`.
pub fn find(props: &[MapiProperty], id: u16) -> Option<&PropValue> {
    props
        .iter()
        .find(|p| p.id == id && p.name.is_none())
        .map(|p| &p.value)
}

/// Formats a GUID stored in its Windows byte order (first three fields little-endian).
pub fn format_guid(g: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

fn serialize_hex16<S: serde::Serializer>(v: &u16, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{v:04X}"))
}

fn serialize_guid<S: serde::Serializer>(
    g: &[u8; 16],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_guid(g))
}

fn serialize_b64<S: serde::Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    use base64::Engine;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
}

fn serialize_b64_list<S: serde::Serializer>(
    list: &[Vec<u8>],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use base64::Engine;
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(list.len()))?;
    for b in list {
        seq.serialize_element(&base64::engine::general_purpose::STANDARD.encode(b))?;
    }
    seq.end()
}

// ---------------------------------------------------------------- reading

/// Reads a property list: a u32 count, then that many properties.
/// `code_page` decodes PtypString8 values.
pub(crate) fn read_props(cur: &mut Cursor<'_>, code_page: u32) -> Result<Vec<MapiProperty>> {
    let at = cur.offset();
    let count = cur.u32("MAPI property count")? as usize;
    // Every property takes at least its four-byte tag: a count beyond that is a lie.
    if count > cur.remaining() / 4 {
        return Err(TnefError::BadAttribute {
            offset: at,
            name: "MAPI property list",
            reason: format!(
                "{count} properties announced, only {} bytes follow",
                cur.remaining()
            ),
        });
    }
    let mut props = Vec::new();
    for _ in 0..count {
        props.push(read_prop(cur, code_page)?);
    }
    Ok(props)
}

fn read_prop(cur: &mut Cursor<'_>, code_page: u32) -> Result<MapiProperty> {
    let at = cur.offset();
    let prop_type = cur.u16("MAPI property type")?;
    let id = cur.u16("MAPI property id")?;
    let name = if id >= 0x8000 {
        Some(read_name(cur, id)?)
    } else {
        None
    };
    let value = read_value(cur, id, prop_type, code_page, at)?;
    Ok(MapiProperty {
        id,
        prop_type,
        name,
        value,
    })
}

fn read_name(cur: &mut Cursor<'_>, id: u16) -> Result<PropertyName> {
    let guid = cur.array::<16>("named property GUID")?;
    let at = cur.offset();
    let kind = match cur.u32("named property kind")? {
        0 => NameKind::Id(cur.u32("named property id")?),
        1 => {
            let len = cur.len_u32("named property name length")?;
            let bytes = cur.take(len, "named property name")?;
            cur.skip(
                pad4(len).min(cur.remaining()),
                "named property name padding",
            )?;
            NameKind::Name(codepage::decode_utf16le(bytes))
        }
        other => {
            return Err(TnefError::BadProperty {
                offset: at,
                id,
                reason: format!("named property kind {other} is neither 0 (id) nor 1 (string)"),
            });
        }
    };
    Ok(PropertyName { guid, kind })
}

fn read_value(
    cur: &mut Cursor<'_>,
    id: u16,
    prop_type: u16,
    cp: u32,
    at: usize,
) -> Result<PropValue> {
    use types::*;
    let base = prop_type & !MV_FLAG;
    let multi = prop_type & MV_FLAG != 0;
    let variable = matches!(
        base,
        STRING8 | UNICODE | BINARY | OBJECT | SERVER_ID | RESTRICTION | RULE_ACTION
    );
    if !variable && !multi {
        return read_fixed(cur, id, base, at);
    }
    let count_at = cur.offset();
    let count = cur.u32("MAPI value count")? as usize;
    let min_size = if variable {
        4
    } else {
        fixed_size(base).unwrap_or(4)
    };
    if count > cur.remaining() / min_size.max(1) {
        return Err(TnefError::BadProperty {
            offset: count_at,
            id,
            reason: format!(
                "{count} values announced, only {} bytes follow",
                cur.remaining()
            ),
        });
    }
    if !multi {
        // A single variable-size value: the count is 1 (readers tolerate more and keep the first).
        if count == 0 {
            return Err(TnefError::BadProperty {
                offset: count_at,
                id,
                reason: "a single-valued property with a value count of 0".into(),
            });
        }
        let first = read_variable(cur)?;
        for _ in 1..count {
            read_variable(cur)?;
        }
        return Ok(match base {
            STRING8 => PropValue::String8(codepage::decode(codepage::trim_nul(first), cp)),
            UNICODE => PropValue::Unicode(codepage::decode_utf16le(first)),
            OBJECT => PropValue::Object(first.to_vec()),
            _ => PropValue::Binary(first.to_vec()),
        });
    }
    macro_rules! many {
        ($variant:ident, $read:expr) => {{
            let mut v = Vec::new();
            for _ in 0..count {
                v.push($read);
            }
            PropValue::$variant(v)
        }};
    }
    let fixed = |cur: &mut Cursor<'_>| read_fixed(cur, id, base, at);
    Ok(match base {
        SHORT => many!(
            MultiShort,
            match fixed(cur)? {
                PropValue::Short(v) => v,
                _ => 0,
            }
        ),
        LONG => many!(
            MultiLong,
            match fixed(cur)? {
                PropValue::Long(v) => v,
                _ => 0,
            }
        ),
        FLOAT => many!(
            MultiFloat,
            match fixed(cur)? {
                PropValue::Float(v) => v,
                _ => 0.0,
            }
        ),
        DOUBLE => many!(
            MultiDouble,
            match fixed(cur)? {
                PropValue::Double(v) => v,
                _ => 0.0,
            }
        ),
        CURRENCY => many!(
            MultiCurrency,
            match fixed(cur)? {
                PropValue::Currency(v) => v,
                _ => 0,
            }
        ),
        APPTIME => many!(
            MultiAppTime,
            match fixed(cur)? {
                PropValue::AppTime(v) => v,
                _ => 0.0,
            }
        ),
        I8 => many!(
            MultiI8,
            match fixed(cur)? {
                PropValue::I8(v) => v,
                _ => 0,
            }
        ),
        SYSTIME => many!(
            MultiSysTime,
            match fixed(cur)? {
                PropValue::SysTime(v) => v,
                _ => 0,
            }
        ),
        CLSID => many!(
            MultiClsid,
            match fixed(cur)? {
                PropValue::Clsid(v) => v,
                _ => [0; 16],
            }
        ),
        STRING8 => many!(
            MultiString8,
            codepage::decode(codepage::trim_nul(read_variable(cur)?), cp)
        ),
        UNICODE => many!(MultiUnicode, codepage::decode_utf16le(read_variable(cur)?)),
        BINARY | OBJECT | SERVER_ID | RESTRICTION | RULE_ACTION => {
            many!(MultiBinary, read_variable(cur)?.to_vec())
        }
        _ => {
            return Err(TnefError::UnsupportedPropertyType {
                offset: at,
                id,
                prop_type,
            });
        }
    })
}

/// Size on the wire of a fixed-size type, padding included.
fn fixed_size(base: u16) -> Option<usize> {
    use types::*;
    match base {
        UNSPECIFIED | NULL | SHORT | LONG | FLOAT | ERROR | BOOLEAN => Some(4),
        DOUBLE | CURRENCY | APPTIME | I8 | SYSTIME => Some(8),
        CLSID => Some(16),
        _ => None,
    }
}

fn read_fixed(cur: &mut Cursor<'_>, id: u16, base: u16, at: usize) -> Result<PropValue> {
    use types::*;
    let what = "MAPI property value";
    Ok(match base {
        UNSPECIFIED | NULL => {
            cur.skip(4, what)?;
            PropValue::Null
        }
        SHORT => {
            let v = cur.u16(what)? as i16;
            cur.skip(2, what)?;
            PropValue::Short(v)
        }
        BOOLEAN => {
            let v = cur.u16(what)?;
            cur.skip(2, what)?;
            PropValue::Boolean(v != 0)
        }
        LONG => PropValue::Long(cur.u32(what)? as i32),
        FLOAT => PropValue::Float(f32::from_bits(cur.u32(what)?)),
        ERROR => PropValue::Error(cur.u32(what)?),
        DOUBLE => PropValue::Double(f64::from_bits(cur.u64(what)?)),
        CURRENCY => PropValue::Currency(cur.u64(what)? as i64),
        APPTIME => PropValue::AppTime(f64::from_bits(cur.u64(what)?)),
        I8 => PropValue::I8(cur.u64(what)? as i64),
        SYSTIME => PropValue::SysTime(cur.u64(what)?),
        CLSID => PropValue::Clsid(cur.array::<16>(what)?),
        _ => {
            return Err(TnefError::UnsupportedPropertyType {
                offset: at,
                id,
                prop_type: base,
            });
        }
    })
}

/// One variable-size value: u32 byte length, the bytes, padding to four.
fn read_variable<'a>(cur: &mut Cursor<'a>) -> Result<&'a [u8]> {
    let len = cur.len_u32("MAPI value length")?;
    let bytes = cur.take(len, "MAPI value")?;
    // Some writers omit the padding after the very last value.
    cur.skip(pad4(len).min(cur.remaining()), "MAPI value padding")?;
    Ok(bytes)
}

// ---------------------------------------------------------------- writing

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize, what: &'static str) -> Result<()> {
    put_u32(
        out,
        u32::try_from(len).map_err(|_| TnefError::TooLarge { what, len })?,
    );
    Ok(())
}

/// Writes a property list: count, then each property.
pub(crate) fn write_props(out: &mut Vec<u8>, props: &[MapiProperty]) -> Result<()> {
    put_len(out, props.len(), "MAPI property list")?;
    for p in props {
        write_prop(out, p)?;
    }
    Ok(())
}

fn write_prop(out: &mut Vec<u8>, p: &MapiProperty) -> Result<()> {
    // The value decides the shape; keep the stored type only where it is a binary alias.
    let natural = p.value.natural_type();
    let prop_type = match (natural, p.prop_type & !types::MV_FLAG) {
        (types::BINARY, types::SERVER_ID | types::RESTRICTION | types::RULE_ACTION) => p.prop_type,
        (types::NULL, types::UNSPECIFIED) => types::UNSPECIFIED,
        _ => natural,
    };
    put_u16(out, prop_type);
    put_u16(out, p.id);
    if p.id >= 0x8000 {
        let name = p.name.clone().unwrap_or(PropertyName {
            guid: [0; 16],
            kind: NameKind::Id(u32::from(p.id)),
        });
        out.extend_from_slice(&name.guid);
        match &name.kind {
            NameKind::Id(n) => {
                put_u32(out, 0);
                put_u32(out, *n);
            }
            NameKind::Name(s) => {
                put_u32(out, 1);
                let bytes = utf16z(s);
                put_len(out, bytes.len(), "named property name")?;
                out.extend_from_slice(&bytes);
                out.resize(out.len() + pad4(bytes.len()), 0);
            }
        }
    }
    write_value(out, &p.value)
}

/// UTF-16LE with a NUL terminator.
pub(crate) fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

fn string8z(s: &str) -> Vec<u8> {
    let mut v = codepage::encode_1252(s);
    v.push(0);
    v
}

fn write_variable(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    put_len(out, bytes.len(), "MAPI value")?;
    out.extend_from_slice(bytes);
    out.resize(out.len() + pad4(bytes.len()), 0);
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &PropValue) -> Result<()> {
    macro_rules! multi {
        ($list:expr, $each:expr) => {{
            put_len(out, $list.len(), "MAPI multi-value")?;
            for v in $list {
                #[allow(clippy::redundant_closure_call)]
                ($each)(out, v)?;
            }
        }};
    }
    let short = |out: &mut Vec<u8>, v: &i16| -> Result<()> {
        put_u16(out, *v as u16);
        put_u16(out, 0);
        Ok(())
    };
    let long = |out: &mut Vec<u8>, v: &i32| -> Result<()> {
        put_u32(out, *v as u32);
        Ok(())
    };
    let float = |out: &mut Vec<u8>, v: &f32| -> Result<()> {
        put_u32(out, v.to_bits());
        Ok(())
    };
    let double = |out: &mut Vec<u8>, v: &f64| -> Result<()> {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    };
    let i8v = |out: &mut Vec<u8>, v: &i64| -> Result<()> {
        out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    };
    let u8v = |out: &mut Vec<u8>, v: &u64| -> Result<()> {
        out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    };
    let guid = |out: &mut Vec<u8>, v: &[u8; 16]| -> Result<()> {
        out.extend_from_slice(v);
        Ok(())
    };
    match value {
        PropValue::Null => put_u32(out, 0),
        PropValue::Short(v) => short(out, v)?,
        PropValue::Boolean(v) => {
            put_u16(out, u16::from(*v));
            put_u16(out, 0);
        }
        PropValue::Long(v) => long(out, v)?,
        PropValue::Float(v) => float(out, v)?,
        PropValue::Error(v) => put_u32(out, *v),
        PropValue::Double(v) | PropValue::AppTime(v) => double(out, v)?,
        PropValue::Currency(v) | PropValue::I8(v) => i8v(out, v)?,
        PropValue::SysTime(v) => u8v(out, v)?,
        PropValue::Clsid(v) => guid(out, v)?,
        PropValue::String8(s) => {
            put_u32(out, 1);
            write_variable(out, &string8z(s))?;
        }
        PropValue::Unicode(s) => {
            put_u32(out, 1);
            write_variable(out, &utf16z(s))?;
        }
        PropValue::Binary(b) | PropValue::Object(b) => {
            put_u32(out, 1);
            write_variable(out, b)?;
        }
        PropValue::MultiShort(l) => multi!(l, short),
        PropValue::MultiLong(l) => multi!(l, long),
        PropValue::MultiFloat(l) => multi!(l, float),
        PropValue::MultiDouble(l) | PropValue::MultiAppTime(l) => multi!(l, double),
        PropValue::MultiCurrency(l) | PropValue::MultiI8(l) => multi!(l, i8v),
        PropValue::MultiSysTime(l) => multi!(l, u8v),
        PropValue::MultiClsid(l) => multi!(l, guid),
        PropValue::MultiString8(l) => multi!(l, |out: &mut Vec<u8>, s: &String| write_variable(
            out,
            &string8z(s)
        )),
        PropValue::MultiUnicode(l) => multi!(l, |out: &mut Vec<u8>, s: &String| write_variable(
            out,
            &utf16z(s)
        )),
        PropValue::MultiBinary(l) => {
            multi!(l, |out: &mut Vec<u8>, b: &Vec<u8>| write_variable(out, b))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(props: Vec<MapiProperty>) {
        let mut out = Vec::new();
        write_props(&mut out, &props).unwrap();
        let mut cur = Cursor::new(&out, 0);
        let back = read_props(&mut cur, 1252).unwrap();
        assert!(cur.is_empty(), "{} bytes left over", cur.remaining());
        assert_eq!(back, props);
    }

    #[test]
    fn every_property_type_round_trips() {
        let named = |id: u16, kind: NameKind, value: PropValue| MapiProperty {
            name: Some(PropertyName {
                guid: [7; 16],
                kind,
            }),
            ..MapiProperty::new(id, value)
        };
        round_trip(vec![
            MapiProperty::new(0x0001, PropValue::Null),
            MapiProperty::new(0x0002, PropValue::Short(-7)),
            MapiProperty::new(0x0003, PropValue::Long(-123_456)),
            MapiProperty::new(0x0004, PropValue::Float(1.5)),
            MapiProperty::new(0x0005, PropValue::Double(-2.25)),
            MapiProperty::new(0x0006, PropValue::Currency(12_3400)),
            MapiProperty::new(0x0007, PropValue::AppTime(45_000.5)),
            MapiProperty::new(0x0008, PropValue::Error(0x8004_010F)),
            MapiProperty::new(0x0009, PropValue::Boolean(true)),
            MapiProperty::new(0x000A, PropValue::I8(-1 << 40)),
            MapiProperty::new(0x000B, PropValue::SysTime(133_000_000_000_000_000)),
            MapiProperty::new(0x000C, PropValue::Clsid([9; 16])),
            MapiProperty::new(0x000D, PropValue::String8("Café".into())),
            MapiProperty::new(0x000E, PropValue::Unicode("Reunión 日本".into())),
            MapiProperty::new(0x000F, PropValue::Binary(vec![1, 2, 3, 4, 5])),
            MapiProperty::new(0x0010, PropValue::Object(vec![0; 19])),
            MapiProperty::new(0x0011, PropValue::MultiShort(vec![1, -2, 3])),
            MapiProperty::new(0x0012, PropValue::MultiLong(vec![1, 2])),
            MapiProperty::new(0x0013, PropValue::MultiFloat(vec![0.5])),
            MapiProperty::new(0x0014, PropValue::MultiDouble(vec![0.25, 8.0])),
            MapiProperty::new(0x0015, PropValue::MultiCurrency(vec![5])),
            MapiProperty::new(0x0016, PropValue::MultiAppTime(vec![1.0])),
            MapiProperty::new(0x0017, PropValue::MultiI8(vec![i64::MIN, i64::MAX])),
            MapiProperty::new(0x0018, PropValue::MultiSysTime(vec![1, 2])),
            MapiProperty::new(0x0019, PropValue::MultiClsid(vec![[1; 16], [2; 16]])),
            MapiProperty::new(
                0x001A,
                PropValue::MultiString8(vec!["a".into(), "bcd".into()]),
            ),
            MapiProperty::new(
                0x001B,
                PropValue::MultiUnicode(vec!["ü".into(), String::new()]),
            ),
            MapiProperty::new(
                0x001C,
                PropValue::MultiBinary(vec![vec![1], vec![], vec![2, 3, 4, 5, 6]]),
            ),
            named(
                0x8001,
                NameKind::Id(0x8554),
                PropValue::Unicode("16.0".into()),
            ),
            named(
                0x8002,
                NameKind::Name("Keywords".into()),
                PropValue::MultiUnicode(vec!["x".into()]),
            ),
        ]);
    }

    #[test]
    fn counts_larger_than_the_data_are_errors() {
        let mut out = Vec::new();
        put_u32(&mut out, 1);
        put_u16(&mut out, types::BINARY | types::MV_FLAG);
        put_u16(&mut out, 0x1234);
        put_u32(&mut out, u32::MAX);
        let e = read_props(&mut Cursor::new(&out, 0), 1252).unwrap_err();
        assert!(
            matches!(e, TnefError::BadProperty { id: 0x1234, .. }),
            "{e}"
        );
        let e = read_props(&mut Cursor::new(&[0xFF, 0xFF, 0xFF, 0x0F], 0), 1252).unwrap_err();
        assert!(e.to_string().contains("announced"), "{e}");
    }
}
