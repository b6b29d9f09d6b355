//! MAPI properties, as carried by attMAPIProps, attAttachment and the rows
//! of attRecipTable ([MS-OXTNEF] 2.1.3.4): the value model here, the ids in
//! [`types`] and [`tags`], the stream format in `read` and `write`. Every
//! value is padded to four bytes; every variable-size value is preceded by a
//! count of values and a byte length each.

use serde::Serialize;

mod read;
pub mod tags;
#[cfg(test)]
mod tests;
pub mod types;
mod write;

pub(crate) use read::read_props;
pub use write::utf16z;
pub(crate) use write::write_props;

/// IID_IMessage, which prefixes an embedded message in PidTagAttachDataObject.
pub const IID_IMESSAGE: [u8; 16] = [
    0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// The provider UID of one-off entry ids ([MS-OXCDATA] 2.2.5.1).
const ONE_OFF_PROVIDER: [u8; 16] = [
    0x81, 0x2B, 0x1F, 0xA4, 0xBE, 0xA3, 0x10, 0x19, 0x9D, 0x6E, 0x00, 0xDD, 0x01, 0x0F, 0x54, 0x02,
];

/// A one-off entry id ([MS-OXCDATA] 2.2.5.1) for an address outside any
/// address book: flags, provider UID, version, Unicode flags, then display
/// name, address type and address as NUL-terminated UTF-16.
pub fn one_off_entry_id(name: &str, addr_type: &str, email: &str) -> Vec<u8> {
    let mut v = vec![0u8; 4];
    v.extend_from_slice(&ONE_OFF_PROVIDER);
    v.extend_from_slice(&[0x00, 0x00, 0x01, 0x90]); // version 0; MAPI_UNICODE | no rich info
    for s in [name, addr_type, email] {
        v.extend_from_slice(&utf16z(s));
    }
    v
}

/// A search key: "TYPE:ADDRESS" in upper case with a NUL, as MAPI compares addresses.
pub fn search_key(addr_type: &str, email: &str) -> Vec<u8> {
    let mut v = format!("{addr_type}:{email}").to_uppercase().into_bytes();
    v.push(0);
    v
}

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
    /// PtypTime: 100-nanosecond intervals since 1601-01-01 UTC (RFC 3339 in JSON).
    SysTime(#[serde(serialize_with = "serialize_filetime")] u64),
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
    MultiSysTime(#[serde(serialize_with = "serialize_filetimes")] Vec<u64>),
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

fn filetime_text(ft: u64) -> String {
    super::attributes::format_rfc3339(super::attributes::filetime_to_unix(ft))
}

fn serialize_filetime<S: serde::Serializer>(
    ft: &u64,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&filetime_text(*ft))
}

fn serialize_filetimes<S: serde::Serializer>(
    list: &[u64],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(|ft| filetime_text(*ft)))
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
