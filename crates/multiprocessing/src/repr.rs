//! Python's `repr` of a serde value, for texts that show values in Python's notation: a
//! manager's `KeyError: 'missing'`, a `ShareableList`'s repr. Strings in quotes, `None`,
//! `True`, tuples in parentheses, lists in brackets, maps in braces; a struct as its name
//! with its fields (`Point(x=1, y=2)`, as a dataclass prints).

use std::fmt::{self, Write};

use serde::ser::{self, Serialize};

/// `value` as Python's `repr` would show the same data.
pub(crate) fn repr<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Repr(String::new());
    match value.serialize(&mut out) {
        Ok(()) => out.0,
        Err(_) => "<key>".to_owned(),
    }
}

struct Repr(String);

impl Repr {
    /// Writes `opening` and starts a sequence that `close` ends.
    fn open(&mut self, opening: &str, close: &'static str, tuple: bool) -> Seq<'_> {
        self.0.push_str(opening);
        Seq { out: self, close, first: true, tuple }
    }
}

#[derive(Debug)]
struct Unrepresentable;

impl fmt::Display for Unrepresentable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no repr")
    }
}

impl std::error::Error for Unrepresentable {}

impl ser::Error for Unrepresentable {
    fn custom<T: fmt::Display>(_: T) -> Unrepresentable {
        Unrepresentable
    }
}

/// Python's string literal: single quotes unless the text has one and no double quote.
fn quote(text: &str, out: &mut String) {
    let q = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    out.push(q);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
}

/// Python's float repr: `1.0`, `0.5`, `inf`, `nan`, `1e+20`, `1.5e-07`.
fn float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("nan");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // Python switches to exponent notation outside 1e-4 <= |x| < 1e16.
    let exponent = if value == 0.0 { 0 } else { value.abs().log10().floor() as i32 };
    if (-4..16).contains(&exponent) {
        let _ = write!(out, "{value:?}");
        return;
    }
    let text = format!("{value:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "{mantissa}e{sign}{:02}", exp.abs());
}

/// A sequence being written: its closing text and whether an item was written.
struct Seq<'a> {
    out: &'a mut Repr,
    close: &'static str,
    first: bool,
    /// A one-item tuple needs a trailing comma: `(1,)`.
    tuple: bool,
}

impl Seq<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unrepresentable> {
        if !self.first {
            self.out.0.push_str(", ");
        }
        self.first = false;
        value.serialize(&mut *self.out)
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), Unrepresentable> {
        if !self.first {
            self.out.0.push_str(", ");
        }
        self.first = false;
        self.out.0.push_str(name);
        self.out.0.push('=');
        value.serialize(&mut *self.out)
    }

    fn finish(self, items: usize) -> Result<(), Unrepresentable> {
        if self.tuple && items == 1 {
            self.out.0.push(',');
        }
        self.out.0.push_str(self.close);
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Repr {
    type Ok = ();
    type Error = Unrepresentable;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Seq<'a>;
    type SerializeStruct = Seq<'a>;
    type SerializeStructVariant = Seq<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unrepresentable> {
        self.0.push_str(if v { "True" } else { "False" });
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unrepresentable> {
        self.serialize_i128(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unrepresentable> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unrepresentable> {
        self.serialize_u128(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unrepresentable> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unrepresentable> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unrepresentable> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unrepresentable> {
        self.serialize_i64(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unrepresentable> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unrepresentable> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unrepresentable> {
        self.serialize_u64(v.into())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unrepresentable> {
        float(v.into(), &mut self.0);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unrepresentable> {
        float(v, &mut self.0);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unrepresentable> {
        quote(v.encode_utf8(&mut [0; 4]), &mut self.0);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unrepresentable> {
        quote(v, &mut self.0);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unrepresentable> {
        self.0.push_str("b'");
        for &b in v {
            match b {
                b'\\' => self.0.push_str("\\\\"),
                b'\'' => self.0.push_str("\\'"),
                b'\n' => self.0.push_str("\\n"),
                b'\r' => self.0.push_str("\\r"),
                b'\t' => self.0.push_str("\\t"),
                0x20..=0x7e => self.0.push(b as char),
                _ => {
                    let _ = write!(self.0, "\\x{b:02x}");
                }
            }
        }
        self.0.push('\'');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unrepresentable> {
        self.0.push_str("None");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unrepresentable> {
        self.0.push_str("None");
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Unrepresentable> {
        let _ = write!(self.0, "{name}()");
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unrepresentable> {
        let _ = write!(self.0, "<{name}.{variant}>");
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unrepresentable> {
        let _ = write!(self.0, "{variant}(");
        value.serialize(&mut *self)?;
        self.0.push(')');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Unrepresentable> {
        self.0.push('[');
        Ok(Seq { out: self, close: "]", first: true, tuple: false })
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Unrepresentable> {
        self.0.push('(');
        Ok(Seq { out: self, close: ")", first: true, tuple: true })
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unrepresentable> {
        let _ = write!(self.0, "{name}(");
        Ok(Seq { out: self, close: ")", first: true, tuple: false })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unrepresentable> {
        Ok(self.open(&format!("{variant}("), ")", false))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Seq<'a>, Unrepresentable> {
        Ok(self.open("{", "}", false))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Seq<'a>, Unrepresentable> {
        Ok(self.open(&format!("{name}("), ")", false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unrepresentable> {
        Ok(self.open(&format!("{variant}("), ")", false))
    }
}

macro_rules! seq_impls {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Unrepresentable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unrepresentable> {
                self.item(value)
            }
            fn end(self) -> Result<(), Unrepresentable> {
                let items = usize::from(!self.first);
                self.finish(items)
            }
        }
    )*};
}

seq_impls!(
    SerializeSeq::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), Unrepresentable> {
        // Counts items in `tuple` mode: a second item clears the one-item comma.
        if !self.first {
            self.tuple = false;
        }
        self.item(value)
    }
    fn end(self) -> Result<(), Unrepresentable> {
        let items = usize::from(!self.first);
        self.finish(items)
    }
}

impl ser::SerializeMap for Seq<'_> {
    type Ok = ();
    type Error = Unrepresentable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unrepresentable> {
        self.item(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unrepresentable> {
        self.out.0.push_str(": ");
        value.serialize(&mut *self.out)
    }
    fn end(self) -> Result<(), Unrepresentable> {
        self.finish(0)
    }
}

macro_rules! struct_impls {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Unrepresentable;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), Unrepresentable> {
                self.field(name, value)
            }
            fn end(self) -> Result<(), Unrepresentable> {
                self.finish(0)
            }
        }
    )*};
}

struct_impls!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::repr;

    #[test]
    fn values_look_as_python_shows_them() {
        assert_eq!(repr("missing"), "'missing'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr(&7u8), "7");
        assert_eq!(repr(&-1.5f64), "-1.5");
        assert_eq!(repr(&1.0f64), "1.0");
        assert_eq!(repr(&true), "True");
        assert_eq!(repr(&None::<u8>), "None");
        assert_eq!(repr(&(1, "a")), "(1, 'a')");
        assert_eq!(repr(&(1,)), "(1,)");
        assert_eq!(repr(&vec![1, 2]), "[1, 2]");
        assert_eq!(repr(&serde_bytes::Bytes::new(b"a\x00'")), "b'a\\x00\\''");
        assert_eq!(repr(&serde_bytes::Bytes::new(b"a\n\t")), "b'a\\n\\t'");
        assert_eq!(repr(&1e20f64), "1e+20");
        assert_eq!(repr(&1.5e-7f64), "1.5e-07");
        assert_eq!(repr(&f64::NEG_INFINITY), "-inf");
    }
}
