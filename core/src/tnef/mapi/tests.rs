//! Tests of the MAPI property streams: every type round-trips, lies are refused.

use super::read::read_props;
use super::write::{put_u16, put_u32, write_props};
use super::*;
use crate::tnef::codepage;
use crate::tnef::cursor::Cursor;
use crate::tnef::error::TnefError;

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
fn one_off_entry_ids_carry_name_type_and_address() {
    let id = one_off_entry_id("Bob", "SMTP", "bob@example.com");
    assert_eq!(&id[..4], &[0, 0, 0, 0]);
    assert_eq!(&id[4..20], &ONE_OFF_PROVIDER);
    let text = codepage::decode(&id[24..], 1200);
    assert_eq!(text, "Bob\0SMTP\0bob@example.com\0");
    assert_eq!(
        search_key("SMTP", "bob@Example.com"),
        b"SMTP:BOB@EXAMPLE.COM\0"
    );
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
