//! The pool's encoder: postcard's wire format, written straight into a `Vec<u8>`.
//!
//! A `map` serializes every item in the submitting thread and every result in a worker,
//! so the cost of a small value is the cost of the whole row. postcard's own serializer
//! encodes each varint into a buffer on the stack and hands those bytes to its output
//! (`Flavor::try_extend`, whatever the flavor): for an integer — the common `map`
//! argument and result — the copy costs twice the encoding (6.6 against 2.1 ns an item
//! on the benchmark machine). This serializer writes the same bytes in place. What reads
//! them is postcard's deserializer, and the tests below check, byte for byte, that both
//! agree on every kind of value serde has. Written by hand because postcard offers no
//! hook for it; messages other than a pool's items and results keep using postcard's.

use serde::Serialize;
use serde::ser;

/// A serializer that appends postcard's encoding of a value to `out`.
pub(crate) struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

type Result<T> = std::result::Result<T, postcard::Error>;

impl<'a> Encoder<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Encoder<'a> {
        Encoder { out }
    }

    /// postcard's varint (LEB128) of `value`: seven bits a byte, low first, the top bit
    /// set on every byte but the last.
    #[inline(always)]
    fn varint(&mut self, mut value: u64) {
        const MOST: usize = 10; // ⌈64 / 7⌉
        self.out.reserve(MOST);
        let len = self.out.len();
        let spare = &mut self.out.spare_capacity_mut()[..MOST];
        let mut used = 0;
        while value >= 0x80 {
            spare[used].write(value as u8 | 0x80);
            value >>= 7;
            used += 1;
        }
        spare[used].write(value as u8);
        // SAFETY: `reserve` made room for `MOST` more bytes, and the loop initialized
        // the first `used + 1 ≤ MOST` of them (a u64 takes at most 10 groups of 7 bits).
        unsafe { self.out.set_len(len + used + 1) };
    }

    /// [`varint`](Encoder::varint) of a `u128` (at most 19 bytes).
    fn varint_u128(&mut self, mut value: u128) {
        while value >= 0x80 {
            self.out.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    /// The start of a sequence or map: its length, which postcard needs up front.
    fn counted(&mut self, len: Option<usize>) -> Result<&mut Self> {
        self.varint(len.ok_or(postcard::Error::SerializeSeqLengthUnknown)? as u64);
        Ok(self)
    }

    /// The start of a tuple or struct variant: its index.
    fn variant(&mut self, index: u32) -> Result<&mut Self> {
        self.varint(u64::from(index));
        Ok(self)
    }

    /// A length-prefixed run of bytes (`str`, `bytes`).
    #[inline(always)]
    fn prefixed(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }
}

/// postcard's zigzag: small magnitudes of either sign become small unsigned numbers.
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn zigzag_i128(value: i128) -> u128 {
    ((value << 1) ^ (value >> 127)) as u128
}

impl ser::Serializer for &mut Encoder<'_> {
    type Ok = ();
    type Error = postcard::Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(u8::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.out.push(v as u8);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.varint(u64::from(zigzag(i64::from(v)) as u16));
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.varint(u64::from(zigzag(i64::from(v)) as u32));
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.varint(zigzag(v));
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        self.varint_u128(zigzag_i128(v));
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.varint(u64::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.varint(u64::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.varint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        self.varint_u128(v);
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.prefixed(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.prefixed(v.as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.prefixed(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.out.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        self.out.push(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.varint(u64::from(index));
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.varint(u64::from(index));
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        self.counted(len)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.variant(index)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        self.counted(len)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.variant(index)
    }

    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result<()> {
        self.prefixed(value.to_string().as_bytes());
        Ok(())
    }
}

/// The compound serializers: each part is written in turn, nothing before or after (the
/// length or variant, if any, went first).
macro_rules! compound {
    ($($trait:ident :: $method:ident($($key:ident: &'static str,)?)),* $(,)?) => {$(
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = postcard::Error;

            #[inline]
            fn $method<T: ?Sized + Serialize>(
                &mut self,
                $($key: &'static str,)?
                value: &T,
            ) -> Result<()> {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(key: &'static str,),
    SerializeStructVariant::serialize_field(key: &'static str,),
}

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = postcard::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::Encoder;

    fn ours<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = vec![0xAA]; // appends: what was there stays
        value.serialize(&mut Encoder::new(&mut out)).unwrap();
        assert_eq!(out[0], 0xAA);
        out.split_off(1)
    }

    fn same<T: Serialize + std::fmt::Debug>(value: &T) {
        assert_eq!(ours(value), postcard::to_allocvec(value).unwrap(), "{value:?}");
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    enum Shape {
        Unit,
        Newtype(i32),
        Tuple(u8, i64, String),
        Struct { name: String, sides: Vec<u16>, area: Option<f64> },
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Record {
        id: u64,
        delta: i128,
        big: u128,
        flag: bool,
        letter: char,
        ratio: f32,
        shapes: Vec<Shape>,
        index: BTreeMap<String, (i8, u32)>,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
        nothing: (),
    }

    #[test]
    fn every_kind_of_value_encodes_as_postcard_does() {
        for n in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            same(&n);
        }
        for n in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            same(&n);
            same(&(n as i32));
            same(&(n as i16));
            same(&(n as i8));
        }
        same(&u128::MAX);
        same(&i128::MIN);
        same(&'é');
        same(&"text");
        same(&Some(3u8));
        same(&None::<u8>);
        let record = Record {
            id: 300,
            delta: -5,
            big: 1 << 100,
            flag: true,
            letter: '∑',
            ratio: 0.25,
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(-7),
                Shape::Tuple(9, -1 << 40, "t".into()),
                Shape::Struct { name: "sq".into(), sides: vec![1, 2, 3, 4], area: Some(1.5) },
            ],
            index: [("a".to_owned(), (-1, 7)), ("b".to_owned(), (2, 70_000))].into(),
            blob: vec![0, 1, 255],
            nothing: (),
        };
        same(&record);
        let back: Record = postcard::from_bytes(&ours(&record)).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_sequence_of_unknown_length_is_refused_as_postcard_refuses_it() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                s.serialize_seq(None)?.end()
            }
        }
        let mut out = Vec::new();
        let error = Unsized.serialize(&mut Encoder::new(&mut out)).unwrap_err();
        assert_eq!(error, postcard::to_allocvec(&Unsized).unwrap_err());
    }

    proptest! {
        #[test]
        fn integers_encode_as_postcard_does(u in any::<u64>(), i in any::<i64>(), w in any::<u128>(), s in any::<i128>()) {
            prop_assert_eq!(ours(&u), postcard::to_allocvec(&u).unwrap());
            prop_assert_eq!(ours(&i), postcard::to_allocvec(&i).unwrap());
            prop_assert_eq!(ours(&(u as u32, i as i32, u as u16, i as i16)), postcard::to_allocvec(&(u as u32, i as i32, u as u16, i as i16)).unwrap());
            prop_assert_eq!(ours(&w), postcard::to_allocvec(&w).unwrap());
            prop_assert_eq!(ours(&s), postcard::to_allocvec(&s).unwrap());
        }

        #[test]
        fn strings_floats_and_collections_encode_as_postcard_does(
            text in ".*",
            floats in proptest::collection::vec(any::<f64>(), 0..20),
            pairs in proptest::collection::btree_map(any::<u16>(), any::<Option<i32>>(), 0..20),
        ) {
            let value = (text, floats, pairs);
            prop_assert_eq!(ours(&value), postcard::to_allocvec(&value).unwrap());
        }
    }
}
