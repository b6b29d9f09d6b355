//! The serde field names of a struct, read from its `Deserialize` impl: a
//! deserializer that records the `fields` list `deserialize_struct` is called
//! with. serde-wasm-bindgen only looks up the fields it knows, so
//! `deny_unknown_fields` never fires for JS objects; the bindings check for
//! unknown keys with these lists instead (and the TypeScript drift test
//! compares them with the interfaces). No list is written by hand.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Records the field names serde asks for, then stops with an error.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field introspection")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The serde field names of `T` (empty when `T` is not a struct).
pub fn of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The error is the point: introspection stops after the field list.
    let _ = T::deserialize(FieldNames(&mut names));
    names
}
