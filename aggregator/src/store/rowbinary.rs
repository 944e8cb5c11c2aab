//! ClickHouse `RowBinary`, written by us: every INSERT the aggregator sends is these bytes,
//! sent through the crate's `insert_formatted` with an explicit column list (`write.rs`).
//!
//! Why by hand: the `clickhouse` crate's serializer is private and reached only through
//! `Insert::write`, one row struct at a time. Owning the encoding lets a batch write its rows
//! straight into each table's buffer (no row structs collected into vectors; BENCHMARKS.md
//! §1b), and lets the benchmark time exactly what is sent, without HTTP and LZ4.
//!
//! The encoding, for the types our rows use: integers little-endian, strings and arrays with
//! a LEB128 length, `Nullable` as a 1/0 null byte then the value, struct fields in order.
//! `tests/batch_rows.rs` checks it against the crate: bytes sent through `insert_formatted` to
//! `clickhouse::test::Mock` read back, by the crate's own reader, as the rows they came from.
//!
//! Two ways in: [`write`], a serde serializer for any row struct (the small tables), and the
//! `put_*` functions, for writers that walk a batch (`batch.rs`, `counters.rs`).

use serde::ser::{self, Impossible, Serialize};

/// A row holding a type `RowBinary` is not written for here (a map, an enum, a `char`):
/// a programming error of the row's declaration, found by the tests, never by input.
#[derive(Debug, thiserror::Error)]
#[error("RowBinary: {0}")]
pub struct Error(String);

impl Error {
    pub fn code(&self) -> &'static str {
        "row_encoding"
    }
}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Appends `row` to `buf`.
pub fn write<T: Serialize + ?Sized>(buf: &mut Vec<u8>, row: &T) -> Result<(), Error> {
    row.serialize(&mut RowBinary(buf))
}

pub struct RowBinary<'b>(pub &'b mut Vec<u8>);

/// An unsigned LEB128 length (of a string or an array).
#[inline]
pub fn leb128(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

fn unsupported(what: &str) -> Error {
    Error(format!("{what} is not used by our rows"))
}

impl<'a, 'b> ser::Serializer for &'a mut RowBinary<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.0.push(v as u8);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.0.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, _: char) -> Result<(), Error> {
        Err(unsupported("char"))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        leb128(self.0, v.len() as u64);
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        leb128(self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.0.push(1);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.0.push(0);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        Err(unsupported("an enum"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<(), Error> {
        Err(unsupported("an enum"))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Error> {
        let len = len.ok_or_else(|| Error("a sequence without a length".into()))?;
        leb128(self.0, len as u64);
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported("an enum"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported("an enum"))
    }
}

impl<'a, 'b> ser::SerializeSeq for &'a mut RowBinary<'b> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<'a, 'b> ser::SerializeTuple for &'a mut RowBinary<'b> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<'a, 'b> ser::SerializeTupleStruct for &'a mut RowBinary<'b> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<'a, 'b> ser::SerializeStruct for &'a mut RowBinary<'b> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Result<(), Error> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A `String` column: its length (LEB128), then its bytes.
///
/// A row's text is mostly short (ids, names, enum words), and `extend_from_slice` of a length
/// known only at run time is a call to `memcpy`: 26 M calls, 7 % of a shuffled batch's
/// instructions (BENCHMARKS.md §1b). Up to 64 bytes (an event id's) are copied inline instead,
/// after their one-byte length ([`copy_short`]); longer text goes the general way.
#[inline(always)]
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    let (s, n) = (s.as_bytes(), s.len());
    if n > SHORT {
        return put_long_str(buf, s);
    }
    buf.reserve(1 + SHORT);
    let at = buf.len();
    // SAFETY: `reserve` made room for the length byte (one LEB128 byte, as `n < 128`) and
    // `n <= SHORT` bytes after it, which `copy_short` writes: all of `at..at + 1 + n`.
    unsafe {
        let dst = buf.as_mut_ptr().add(at);
        *dst = n as u8;
        copy_short(s, dst.add(1));
        buf.set_len(at + 1 + n);
    }
}

/// `s` appended (bytes already encoded, such as a key's text columns): up to 64 bytes inline
/// ([`copy_short`]), longer ones by `extend_from_slice`.
#[inline(always)]
pub fn put_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > SHORT {
        return buf.extend_from_slice(s);
    }
    buf.reserve(SHORT);
    let at = buf.len();
    // SAFETY: `reserve` made room for `n <= SHORT` bytes, which `copy_short` writes.
    unsafe {
        copy_short(s, buf.as_mut_ptr().add(at));
        buf.set_len(at + n);
    }
}

/// Appends `s`: inline ([`copy_short`], no `memcpy` call) when it is short and fits the spare
/// capacity, else by `extend_from_slice`. For a vector sized exactly beforehand (`state::Ids`),
/// where [`put_bytes`]' `reserve` would grow it.
#[inline(always)]
pub fn extend_short(buf: &mut Vec<u8>, s: &[u8]) {
    let (at, n) = (buf.len(), s.len());
    if n > SHORT || buf.capacity() - at < n {
        return buf.extend_from_slice(s);
    }
    // SAFETY: `n <= SHORT` and the spare capacity holds `n` bytes, all `copy_short` writes.
    unsafe {
        copy_short(s, buf.as_mut_ptr().add(at));
        buf.set_len(at + n);
    }
}

/// The most [`copy_short`] copies.
const SHORT: usize = 64;

/// Copies `s` (at most [`SHORT`] bytes) to `dst` as two fixed-size pieces, inline: its head
/// and its tail, which overlap when it is shorter than both.
///
/// # Safety
/// `s.len() <= SHORT`, `dst` is valid for writing `s.len()` bytes, and they do not overlap
/// `s` (the callers write into a vector they borrow mutably, `s` apart). Every read is inside
/// `s` (each piece starts at 0 or ends at its length, and is no longer than it); every write
/// is inside `dst..dst + s.len()`.
#[inline(always)]
unsafe fn copy_short(s: &[u8], dst: *mut u8) {
    let (src, n) = (s.as_ptr(), s.len());
    debug_assert!(n <= SHORT);
    unsafe {
        if n >= 32 {
            dst.cast::<[u8; 32]>().write_unaligned(src.cast::<[u8; 32]>().read_unaligned());
            dst.add(n - 32).cast::<[u8; 32]>().write_unaligned(src.add(n - 32).cast::<[u8; 32]>().read_unaligned());
        } else if n >= 16 {
            dst.cast::<[u8; 16]>().write_unaligned(src.cast::<[u8; 16]>().read_unaligned());
            dst.add(n - 16).cast::<[u8; 16]>().write_unaligned(src.add(n - 16).cast::<[u8; 16]>().read_unaligned());
        } else if n >= 8 {
            dst.cast::<u64>().write_unaligned(src.cast::<u64>().read_unaligned());
            dst.add(n - 8).cast::<u64>().write_unaligned(src.add(n - 8).cast::<u64>().read_unaligned());
        } else if n >= 4 {
            dst.cast::<u32>().write_unaligned(src.cast::<u32>().read_unaligned());
            dst.add(n - 4).cast::<u32>().write_unaligned(src.add(n - 4).cast::<u32>().read_unaligned());
        } else if n > 0 {
            // (1 to 3 bytes: the first, the middle and the last cover them)
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
    }
}

/// [`put_str`] of text longer than [`SHORT`] bytes.
#[inline(never)]
fn put_long_str(buf: &mut Vec<u8>, s: &[u8]) {
    leb128(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// A `Nullable(String)` column.
#[inline]
pub fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.push(0);
            put_str(buf, s);
        }
        None => buf.push(1),
    }
}

/// A `Nullable` integer column (`Nullable(Int64)`, `Nullable(DateTime64)`).
#[inline]
pub fn put_opt_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => {
            buf.push(0);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        None => buf.push(1),
    }
}

/// Any fixed-width integer column, little-endian.
#[inline]
pub fn put<const N: usize>(buf: &mut Vec<u8>, le_bytes: [u8; N]) {
    buf.extend_from_slice(&le_bytes);
}

/// Reads back what the `put_*` functions and [`write`] wrote, value by value (for rows kept as
/// their bytes: `recent`). `None` at the end of the bytes or on text that is not UTF-8.
pub struct Reader<'b>(pub &'b [u8]);

impl<'b> Reader<'b> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let (head, rest) = (self.0.len() >= n).then(|| self.0.split_at(n))?;
        self.0 = rest;
        Some(head)
    }

    /// An unsigned LEB128 length.
    pub fn leb128(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn str(&mut self) -> Option<&'b str> {
        let n = usize::try_from(self.leb128()?).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// A `Nullable(String)`: `Some(None)` for null.
    pub fn opt_str(&mut self) -> Option<Option<&'b str>> {
        match *self.take(1)?.first()? {
            0 => self.str().map(Some),
            _ => Some(None),
        }
    }

    /// A fixed-size value's little-endian bytes.
    pub fn le<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// An array's length, if no more than the bytes left could hold (one byte per element at least).
    pub fn array_len(&mut self) -> Option<usize> {
        usize::try_from(self.leb128()?).ok().filter(|n| *n <= self.0.len())
    }
}

/// One table's rows as they are sent: `RowBinary` bytes and how many rows they hold. Reused
/// across batches (`clear` keeps the capacity), so a batch writes into pages already mapped.
#[derive(Debug, Default, Clone)]
pub struct RowBuffer {
    pub bytes: Vec<u8>,
    pub rows: usize,
}

impl RowBuffer {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.rows = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row with the serde serializer.
    pub fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> Result<(), Error> {
        write(&mut self.bytes, row)?;
        self.rows += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_put_functions_write_what_serde_writes() {
        let mut a = Vec::new();
        put_str(&mut a, "é-1");
        put_opt_str(&mut a, None);
        put_opt_str(&mut a, Some(&"x".repeat(200)));
        put_opt_i64(&mut a, Some(-5));
        put_opt_i64(&mut a, None);
        put(&mut a, 7i128.to_le_bytes());
        let mut b = Vec::new();
        write(&mut b, &("é-1", None::<&str>, Some("x".repeat(200)), Some(-5i64), None::<i64>, 7i128)).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..5], &[4, 0xc3, 0xa9, b'-', b'1']);
    }

    proptest::proptest! {
        /// Text of every length around the inline copy's pieces (0 to 140 bytes, so each of
        /// `copy_short`'s cases and the long path), after whatever the buffer held, at any
        /// spare capacity: what `leb128` and `extend_from_slice` write (`extend_short` too).
        #[test]
        fn put_str_and_put_bytes_append_their_bytes(
            before in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            text in "[a-zé\\-]{0,70}",
            spare in 0usize..40,
        ) {
            let mut want = before.clone();
            leb128(&mut want, text.len() as u64);
            want.extend_from_slice(text.as_bytes());
            want.extend_from_slice(text.as_bytes());
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            put_str(&mut got, &text);
            put_bytes(&mut got, text.as_bytes());
            proptest::prop_assert_eq!(&got, &want);
            // `extend_short` into spare capacity that may or may not hold it
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            extend_short(&mut got, text.as_bytes());
            proptest::prop_assert_eq!(&got[..], &[&before[..], text.as_bytes()].concat()[..]);
        }
    }
}
