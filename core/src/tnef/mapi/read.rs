//! Reading a MAPI property stream: every count and length is checked against
//! the bytes that remain before anything is sized or looped by it.

use super::{MapiProperty, NameKind, PropValue, PropertyName, types};
use crate::tnef::codepage;
use crate::tnef::cursor::{Cursor, pad4};
use crate::tnef::error::{Result, TnefError};

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
