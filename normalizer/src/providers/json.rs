//! Reading provider JSON into borrowed, typed structs that are as forgiving as
//! `serde_json::Value` accessors: a field of another JSON type than expected reads as absent
//! (as `v.pointer(..).and_then(Value::as_str)` gave `None`), never as an error, and a key that
//! appears twice keeps its last value (as a `Value` map did). Only malformed JSON is an error,
//! the same error a `Value` parse gives.
//!
//! Why not `Value`: a tree of owned strings and maps per body was the normalizer's largest cost
//! after Avro (issue 14's profile); these types read only the fields a mapping uses, borrow
//! strings without escapes from the body, and skip the rest without building anything.
//!
//! * [`Str`]: a string, or absent.
//! * [`Strs`]: the string elements of an array (others skipped), or empty.
//! * [`Bool`]: a boolean, or absent.
//! * [`Obj`]: an object read as `T` (a [`lenient_struct!`] type), or absent.
//! * [`List`]: the object elements of an array, each read as `T` (others skipped), or empty.
//! * [`Scalar`]: a string, number or boolean as text, or absent.
//! * [`OneOrMany`]: a string, or the string elements of an array.
//! * [`Array`]: the elements of an array, each read as `T`, or absent.
//! * [`Scalars`]: an object's scalar entries by key, or absent.
//! * [`Present`]: any of these, and whether its key was there.
//! * [`lenient_struct!`]: a struct of such fields read from an object by key.
//!
//! Values not read are [`Skip`]ped, checked as a `Value` parse checks them (not serde's
//! `IgnoredAny`, which lets a lone surrogate escape or invalid UTF-8 through unread).
//!
//! And one strict type: [`Text`], a string borrowed when it can be, with exactly `String`'s
//! errors (for derived structs whose parse errors must stay those of their owned original).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A JSON string borrowed from the input when it has no escapes; `None` for any other type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Option<Cow<'a, str>>);

impl<'a> Str<'a> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Implements the visitor methods of every JSON type but strings, maps and arrays as `$other`.
macro_rules! scalars_as {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Drains a map or an array the caller does not want.
macro_rules! containers_as {
    ($other:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            while m.next_entry::<Skip, Skip>()?.is_some() {}
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<Skip>()?.is_some() {}
            Ok($other)
        }
    };
}

/// Any JSON value, read and dropped. Unlike serde's `IgnoredAny`, through the parse a `Value`
/// gets (`deserialize_any`): serde_json skips an ignored string without checking its escapes
/// or, from bytes, its UTF-8, so a body a `Value` parse refuses (`"\ud800"`, invalid UTF-8
/// in a field no mapping reads) would be read; with `Skip` it fails with the same error.
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            scalars_as!(Skip);
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(s))))
            }
            scalars_as!(Str(None));
            containers_as!(Str(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON string, borrowed from the input when it has no escapes; any other type is an error,
/// the same one a `String` field gives (`invalid type: .., expected a string`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_string(V(PhantomData))
    }
}

/// A JSON boolean; `None` for any other type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bool(pub Option<bool>);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Bool(Some(b)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Bool(None))
            }
            containers_as!(Bool(None));
        }
        d.deserialize_any(V)
    }
}

/// The elements of a JSON array: `first` is the first element if it is a string (what
/// `v.get(0).and_then(Value::as_str)` gave), `all` every string element in order (what
/// `as_array().iter().filter_map(Value::as_str)` gave). Empty for any other type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strs<'a> {
    pub first: Option<Cow<'a, str>>,
    pub all: Vec<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Strs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Strs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Strs::default();
                let mut index = 0usize;
                while let Some(Str(x)) = s.next_element::<Str<'a>>()? {
                    if index == 0 {
                        out.first = x.clone();
                    }
                    index += 1;
                    out.all.extend(x);
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Strs::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Strs::default())
            }
            scalars_as!(Strs::default());
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON object read as `T`; `None` for any other type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<T> Obj<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<Skip>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            scalars_as!(Obj(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The object elements of a JSON array, each read as `T`, in order (other elements skipped);
/// empty for any other type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Obj(x)) = s.next_element::<Obj<T>>()? {
                    out.extend(x);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(List(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            scalars_as!(List(Vec::new()));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string, number or boolean as text (a number as `serde_json::Number` prints it), as
/// `build::scalar` gives of a `Value`; `None` for objects, arrays and null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scalar<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(s))))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(if b { "true" } else { "false" }))))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(serde_json::Number::from(n).to_string()))))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(serde_json::Number::from(n).to_string()))))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Scalar(serde_json::Number::from_f64(n).map(|n| Cow::Owned(n.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            containers_as!(Scalar(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string as one element, or the string elements of an array (others skipped); empty for
/// any other type (what matching `Value::String` and `Value::Array` gave).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OneOrMany<'a>(pub Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for OneOrMany<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OneOrMany<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![Cow::Borrowed(s)]))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![Cow::Owned(s.to_owned())]))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![Cow::Owned(s)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Str(x)) = s.next_element::<Str<'a>>()? {
                    out.extend(x);
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(OneOrMany(Vec::new()))
            }
            scalars_as!(OneOrMany(Vec::new()));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The elements of a JSON array, each read as `T` (use a lenient `T` such as [`Obj`] to keep
/// every position); `None` for any other type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array<T>(pub Option<Vec<T>>);

impl<T> Default for Array<T> {
    fn default() -> Self {
        Array(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Array<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = s.next_element::<T>()? {
                    out.push(x);
                }
                Ok(Array(Some(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Array(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Array(None))
            }
            scalars_as!(Array(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The entries of a JSON object whose values are [`Scalar`]s, by key (a repeated key keeps its
/// last value, as a `Value` map did; entries that are not scalars kept as `None` so that a
/// later non-scalar still hides an earlier scalar); `None` for any other type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scalars<'a>(pub Option<std::collections::BTreeMap<Cow<'a, str>, Scalar<'a>>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalars<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalars<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = std::collections::BTreeMap::new();
                while let Some((Key(k), v)) = m.next_entry::<Key<'a>, Scalar<'a>>()? {
                    out.insert(k, v);
                }
                Ok(Scalars(Some(out)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<Skip>()?.is_some() {}
                Ok(Scalars(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Scalars(None))
            }
            scalars_as!(Scalars(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A field read as `T` that remembers whether its key was there at all (whatever its value),
/// for mappings that tell an absent key from one of another type (`Value::get(..).is_none()`).
/// Reads as `T` through `Deref`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Present<T> {
    pub present: bool,
    pub value: T,
}

impl<T> std::ops::Deref for Present<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|value| Present { present: true, value })
    }
}

/// A JSON object key, borrowed when it has no escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Str::deserialize(d)? {
            Str(Some(s)) => Ok(Key(s)),
            Str(None) => Err(de::Error::custom("a key that is not a string")),
        }
    }
}

/// Declares a struct of lenient fields read from a JSON object: each field from its key (the
/// last occurrence wins), every other key skipped unread. Use it through [`Obj`] (or as the
/// top level: a body that is not an object then fails to parse as one).
macro_rules! lenient_struct {
    ($(#[$meta:meta])* $vis:vis struct $name:ident<'a> { $($(#[$fmeta:meta])* $field:ident: $ty:ty = $key:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name<'a> {
            $($(#[$fmeta])* pub $field: $ty,)*
            _borrows: std::marker::PhantomData<&'a ()>,
        }

        impl<'de: 'a, 'a> serde::Deserialize<'de> for $name<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(k) = m.next_key::<$crate::providers::json::Key<'de>>()? {
                            match &*k.0 {
                                $($key => out.$field = m.next_value()?,)*
                                _ => {
                                    m.next_value::<$crate::providers::json::Skip>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V(std::marker::PhantomData))
            }
        }
    };
}
pub(crate) use lenient_struct;

#[cfg(test)]
mod tests {
    use super::*;

    lenient_struct! {
        struct Probe<'a> {
            s: Str<'a> = "s",
            b: Bool = "b",
            l: Strs<'a> = "l",
            o: Obj<Inner<'a>> = "o",
            list: List<Inner<'a>> = "list",
        }
    }
    lenient_struct! {
        struct Inner<'a> {
            x: Str<'a> = "x",
        }
    }

    #[test]
    fn other_types_read_as_absent_and_the_last_key_wins() {
        let p: Probe = serde_json::from_str(r#"{"s":1,"b":"no","l":{"a":[1]},"o":[{"x":"y"}],"list":3,"zz":{"deep":[1,2,{"a":null}]}}"#).unwrap();
        assert_eq!((p.s.get(), p.b.0, p.l.all.len(), p.o.get().is_none(), p.list.0.len()), (None, None, 0, true, 0));
        let p: Probe = serde_json::from_str(r#"{"s":"a","s":"b\n","b":true,"l":[1,"x","y"],"o":{"x":"z"},"list":[{"x":"1"},2,{"x":3},{"x":"4"}]}"#).unwrap();
        assert_eq!(p.s.get(), Some("b\n"));
        assert_eq!(p.b.0, Some(true));
        assert_eq!((p.l.first, p.l.all), (None, vec![Cow::Borrowed("x"), Cow::Borrowed("y")]));
        assert_eq!(p.o.get().and_then(|i| i.x.get()), Some("z"));
        assert_eq!(p.list.0.iter().map(|i| i.x.get()).collect::<Vec<_>>(), [Some("1"), None, Some("4")]);
    }

    #[test]
    fn malformed_json_is_an_error_like_a_value_parse() {
        // the last three in keys no mapping reads: skipped, but checked as a `Value` parse checks them
        for bad in [r#"{"s":"#, r#"{"s":"\ud800"}"#, r#"{"o":{"x":[}}"#, "{} x", r#"{"zz":"\ud800"}"#, r#"{"zz":[1e400]}"#, r#"{"o":{"zz":{"a":"\udc00x"}}}"#] {
            let typed = serde_json::from_str::<Probe>(bad).map_err(|e| e.to_string());
            let value = serde_json::from_str::<serde_json::Value>(bad).map_err(|e| e.to_string());
            assert_eq!(typed.err(), value.err(), "{bad}");
        }
    }
}
