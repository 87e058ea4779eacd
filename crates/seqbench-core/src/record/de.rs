//! Reading a record without serde's `flatten`. A derived `Deserialize` with a flattened field
//! buffers every unknown key and value (loss curves included) before it deserializes the
//! flattened struct from that buffer; at a million records that was most of `seqbench report`'s
//! time and memory. Here one pass over the JSON object sends each key straight to its field.
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Declares `Measurements` and `Measurements::read_field`, which reads the value of one field
/// by its JSON name: the field list is written once, so the two cannot drift apart.
macro_rules! measurements_struct {
    (
        $(#[$struct_meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$struct_meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// Every field's JSON name.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Reads the next value of `map` into the field named `key`; false (value not
            /// consumed) when no field has that name.
            pub(crate) fn read_field<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    $( stringify!($field) => self.$field = map.next_value()?, )*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}
pub(crate) use measurements_struct;

/// A string borrowed from the input when it has no escapes (then no allocation), else owned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<'de>(pub Cow<'de, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Stands in for a field absent from the input: `Option` fields become `None` (as serde's
/// derive does), anything else is a "missing field" error.
struct Missing(&'static str);

impl<'de> Deserializer<'de> for Missing {
    type Error = de::value::Error;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::missing_field(self.0))
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_none()
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The value of a field the input did not have.
pub(crate) fn missing<'de, T: Deserialize<'de>, E: de::Error>(field: &'static str) -> Result<T, E> {
    T::deserialize(Missing(field)).map_err(|e| E::custom(e))
}

/// Skips the next value of `map`.
pub(crate) fn skip_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// Declares the record struct, generic over its string type `S` (owned `String` when written,
/// borrowed [`Text`] when a report reads a million of them) and its parameter map `P`, and
/// implements `Deserialize` for it without serde's buffering `flatten`: keys are matched
/// against the struct's own fields first, then offered to the flattened one (see
/// `measurements_struct!`); unknown keys are skipped, as the derive does. The field list is
/// written once, here: `Record` and the report's `Row` are two instances of one struct.
macro_rules! record_struct {
    (
        $(#[$struct_meta:meta])*
        pub struct $name:ident<$s:ident, $p:ident> {
            $( $(#[$m1:meta])* pub $f1:ident : $t1:ty, )*
            flatten $flat:ident : $flat_ty:ty,
            $( $(#[$m2:meta])* pub $f2:ident : $t2:ty, )*
        }
    ) => {
        $(#[$struct_meta])*
        pub struct $name<$s, $p> {
            $( $(#[$m1])* pub $f1: $t1, )*
            #[serde(flatten)]
            pub $flat: $flat_ty,
            $( $(#[$m2])* pub $f2: $t2, )*
        }

        impl<'de, $s: serde::Deserialize<'de>, $p: serde::Deserialize<'de>> serde::Deserialize<'de> for $name<$s, $p> {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct FlatVisitor<$s, $p>(std::marker::PhantomData<($s, $p)>);
                impl<'de, $s: serde::Deserialize<'de>, $p: serde::Deserialize<'de>> serde::de::Visitor<'de> for FlatVisitor<$s, $p> {
                    type Value = $name<$s, $p>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        write!(f, "a {} object", stringify!($name))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        $( let mut $f1 = None; )*
                        $( let mut $f2 = None; )*
                        let mut $flat = <$flat_ty>::default();
                        while let Some(key) = map.next_key::<$crate::record::de::Text<'de>>()? {
                            match key.0.as_ref() {
                                $( stringify!($f1) => $f1 = Some(map.next_value()?), )*
                                $( stringify!($f2) => $f2 = Some(map.next_value()?), )*
                                other => {
                                    if !$flat.read_field(other, &mut map)? {
                                        $crate::record::de::skip_value(&mut map)?;
                                    }
                                }
                            }
                        }
                        Ok($name {
                            $( $f1: match $f1 {
                                Some(value) => value,
                                None => $crate::record::de::missing(stringify!($f1))?,
                            }, )*
                            $flat,
                            $( $f2: match $f2 {
                                Some(value) => value,
                                None => $crate::record::de::missing(stringify!($f2))?,
                            }, )*
                        })
                    }
                }
                deserializer.deserialize_map(FlatVisitor(std::marker::PhantomData))
            }
        }
    };
}
pub(crate) use record_struct;
