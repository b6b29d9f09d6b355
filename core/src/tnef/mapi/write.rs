//! Writing a MAPI property stream: the type comes from the value (binary
//! aliases keep their stored type), strings are UTF-16 or Windows-1252.

use super::{MapiProperty, NameKind, PropValue, PropertyName, types};
use crate::tnef::codepage;
use crate::tnef::cursor::pad4;
use crate::tnef::error::{Result, TnefError};

pub(super) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
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
pub fn utf16z(s: &str) -> Vec<u8> {
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
