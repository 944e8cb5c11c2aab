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

/// An unsigned LEB128 length (of a string or an array): [`leb128_bytes`], the one encoder.
#[inline]
pub fn leb128(buf: &mut Vec<u8>, v: u64) {
    let (b, n) = leb128_bytes(v);
    buf.extend_from_slice(b.get(..n).unwrap_or_default());
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

/// A row's columns appended to a vector through a cursor that keeps the vector's pointer,
/// length and capacity in locals (registers): the length is stored back once, when the cursor
/// is dropped.
///
/// Through `&mut Vec<u8>` each column loaded the capacity and length from memory and stored the
/// length back (`reserve`, then `set_len`): ~8 instructions more per column, ~120 columns per
/// event across its event row, its delivery's row and its counters (BENCHMARKS.md §1b).
///
/// Every column is written by a [`Room`]: a row's columns through one ([`Cursor::room_for`]:
/// one test of the capacity for the row, none per column), or one column through the cursor's
/// own methods (a room of that column's most bytes each). [`put_str`] is one column's cursor,
/// for the rest.
pub struct Cursor<'b> {
    buf: &'b mut Vec<u8>,
    ptr: *mut u8,
    len: usize,
    cap: usize,
}

impl<'b> Cursor<'b> {
    #[inline(always)]
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        let (ptr, len, cap) = (buf.as_mut_ptr(), buf.len(), buf.capacity());
        Cursor { buf, ptr, len, cap }
    }

    /// Room for `n` more bytes: `ptr..ptr + cap` is the vector's allocation, `..len` written.
    #[inline(always)]
    fn room(&mut self, n: usize) {
        if self.cap - self.len < n {
            (self.ptr, self.cap) = grow(self.buf, self.len, n);
            debug_assert!(self.cap - self.len >= n);
        }
    }

    /// The next columns written without a test of the capacity each: room for `max` bytes,
    /// counted as the [`Room`]'s columns count them (each its most bytes: [`Room::STR`] and
    /// the others, whatever it writes), so that a row's count is the same for any values.
    /// Debug builds check every column against it (and so does every test that writes the
    /// row once: the count does not depend on the values).
    ///
    /// The test per column was 5 % of a batch's instructions (BENCHMARKS.md §1b).
    #[inline(always)]
    pub fn room_for(&mut self, max: usize) -> Room<'_, 'b> {
        self.room(max);
        Room { c: self, max, #[cfg(debug_assertions)] left: max }
    }

    /// Any fixed-width column (an integer's little-endian bytes).
    #[inline(always)]
    pub fn put<const N: usize>(&mut self, le_bytes: [u8; N]) {
        self.room_for(N).put(le_bytes);
    }

    #[inline(always)]
    pub fn byte(&mut self, b: u8) {
        self.put([b]);
    }

    /// An unsigned LEB128 length (of a string or an array).
    #[inline(always)]
    pub fn leb128(&mut self, v: u64) {
        self.room_for(Room::LEB128).leb128(v);
    }

    /// A `String` column: its length (LEB128), then its bytes.
    #[inline(always)]
    pub fn str(&mut self, s: &str) {
        self.room_for(Room::STR).str(s);
    }

    /// A `String` column of one of a few fixed words ([`Words`]): one 16-byte copy.
    #[inline(always)]
    pub fn word(&mut self, w: &[u8; 16]) {
        self.room_for(Room::WORD).word(w);
    }

    /// `s` appended as it is (bytes already encoded, such as a key's text columns).
    #[inline(always)]
    pub fn bytes(&mut self, s: &[u8]) {
        self.room_for(Room::BYTES).bytes(s);
    }

    /// A `Nullable(String)` column.
    #[inline(always)]
    pub fn opt_str(&mut self, s: Option<&str>) {
        self.room_for(Room::OPT_STR).opt_str(s);
    }

    /// A `Nullable` integer column (`Nullable(Int64)`, `Nullable(DateTime64)`).
    #[inline(always)]
    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.room_for(Room::OPT_I64).opt_i64(v);
    }

    /// `parts` appended by `memcpy` (the long and rare cases), out of line ([`append`]).
    #[inline(always)]
    fn append(&mut self, parts: &[&[u8]]) {
        (self.ptr, self.len, self.cap) = append(self.buf, self.len, parts);
    }

    /// The vector itself, with what the cursor wrote (for a writer of its own, such as JSON);
    /// the cursor goes on after what `f` appends.
    #[inline]
    pub fn with_vec(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        // SAFETY: `..len` is written (see `room`).
        unsafe { self.buf.set_len(self.len) };
        f(self.buf);
        (self.ptr, self.len, self.cap) = (self.buf.as_mut_ptr(), self.buf.len(), self.buf.capacity());
    }
}

impl Drop for Cursor<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `len <= cap` and `..len` is written: every write was inside the room it made.
        unsafe { self.buf.set_len(self.len) };
    }
}

/// Columns written into room a [`Cursor`] made beforehand ([`Cursor::room_for`]), without a
/// test of the capacity each. The only writer of a cursor's bytes.
///
/// Each column counts its most bytes against the room, whatever it writes (a `Nullable` time
/// 9, null or not; a string [`Room::STR`], short or long), so the count of a row is the same
/// for any values; the room must hold that count. Debug builds keep the count and panic past
/// the room; release builds do not count. Text too long to copy inline ([`SHORT`]) goes by
/// `memcpy`, which may grow the vector; the room is then made again, whole.
pub struct Room<'c, 'b> {
    c: &'c mut Cursor<'b>,
    /// What the room was made for (made again after a long text).
    max: usize,
    /// What is left of it, by the columns' counts.
    #[cfg(debug_assertions)]
    left: usize,
}

impl Room<'_, '_> {
    /// A `String` column's count: its one-byte length and up to [`SHORT`] bytes inline.
    pub const STR: usize = 1 + SHORT;
    /// A `Nullable(String)`'s: its null byte, then a string's.
    pub const OPT_STR: usize = 1 + Self::STR;
    /// Text already encoded ([`Room::bytes`]).
    pub const BYTES: usize = SHORT;
    /// An enum's word ([`Words`]).
    pub const WORD: usize = 16;
    /// A `Nullable` integer: the null byte and eight.
    pub const OPT_I64: usize = 9;
    /// An unsigned LEB128 length, ten bytes at most.
    pub const LEB128: usize = 10;

    /// `n` bytes of the room counted (debug builds: checked, and the capacity left checked to
    /// hold the rest of the room).
    #[inline(always)]
    fn spend(&mut self, n: usize) {
        #[cfg(debug_assertions)]
        {
            assert!(self.left >= n, "a row's columns past the room made for them ({} bytes, {} left, {n} more)", self.max, self.left);
            assert!(self.c.cap - self.c.len >= self.left, "a room's capacity lost (after long text?)");
            self.left -= n;
        }
        let _ = n;
    }

    /// `N` bytes stored at the cursor's end, of which the first `n` (at most `N`) are the
    /// column's: the cursor goes on after them.
    ///
    /// # Safety
    /// `N` bytes or more counted (`spend`) and not yet written since the room was made.
    #[inline(always)]
    unsafe fn store<const N: usize>(&mut self, v: [u8; N], n: usize) {
        debug_assert!(n <= N);
        // SAFETY: the room (made for `max` >= what is counted) holds `N` more bytes.
        unsafe { self.c.ptr.add(self.c.len).cast::<[u8; N]>().write_unaligned(v) };
        self.c.len += n;
    }

    /// Any fixed-width column (an integer's little-endian bytes).
    #[inline(always)]
    pub fn put<const N: usize>(&mut self, le_bytes: [u8; N]) {
        self.spend(N);
        // SAFETY: `N` counted.
        unsafe { self.store(le_bytes, N) };
    }

    #[inline(always)]
    pub fn byte(&mut self, b: u8) {
        self.put([b]);
    }

    /// An unsigned LEB128 length: its ten bytes' room stored whole, the length advanced by the
    /// bytes it has.
    #[inline(always)]
    pub fn leb128(&mut self, v: u64) {
        self.spend(Self::LEB128);
        if v < 0x80 {
            // SAFETY: ten bytes counted.
            unsafe { self.store([v as u8], 1) };
        } else {
            let (b, n) = leb128_bytes(v);
            // SAFETY: ten bytes counted.
            unsafe { self.store(b, n) };
        }
    }

    /// A `String` column: its length (LEB128), then its bytes.
    ///
    /// A row's text is mostly short (ids, names, enum words), and `extend_from_slice` of a
    /// length known only at run time is a call to `memcpy`: 26 M calls, 7 % of a shuffled
    /// batch's instructions (BENCHMARKS.md §1b). Up to 64 bytes (an event id's) are copied
    /// inline instead, after their one-byte length ([`copy_short`]); longer text goes the
    /// general way.
    #[inline(always)]
    pub fn str(&mut self, s: &str) {
        self.spend(Self::STR);
        let (s, n) = (s.as_bytes(), s.len());
        // (below 16 bytes first, the most of a row's text: one test before its copy's, where
        // testing for the long text first made it two)
        // SAFETY: `1 + SHORT` bytes counted: the length byte (one LEB128 byte, as `n < 128`)
        // and the `n <= SHORT` bytes copied after it, each copy's lengths tested.
        unsafe {
            let dst = self.c.ptr.add(self.c.len);
            if n < 16 {
                *dst = n as u8;
                copy_below_16(s, dst.add(1));
            } else if n <= SHORT {
                *dst = n as u8;
                copy_16_to_64(s, dst.add(1));
            } else {
                return self.long_str(s);
            }
        }
        self.c.len += 1 + n;
    }

    /// [`Room::str`] of text longer than [`SHORT`] bytes: by `memcpy`, then the room made again.
    #[inline(always)]
    fn long_str(&mut self, s: &[u8]) {
        let (b, n) = leb128_bytes(s.len() as u64);
        self.c.append(&[b.get(..n).unwrap_or_default(), s]);
        self.c.room(self.max);
    }

    /// A `String` column of one of a few fixed words ([`Words`]): one 16-byte copy.
    #[inline(always)]
    pub fn word(&mut self, w: &[u8; 16]) {
        self.spend(Self::WORD);
        // SAFETY: 16 bytes counted; the word's length byte and text are `1 + w[0]` of them
        // (`Words::of` keeps `w[0]` below 16), the rest is spare capacity.
        unsafe { self.store(*w, 1 + usize::from(w[0])) };
    }

    /// `s` appended as it is (bytes already encoded, such as a key's text columns): up to 64
    /// bytes inline ([`copy_short`]), longer ones by `memcpy` (then the room made again).
    #[inline(always)]
    pub fn bytes(&mut self, s: &[u8]) {
        self.spend(Self::BYTES);
        let n = s.len();
        if n > SHORT {
            self.c.append(&[s]);
            return self.c.room(self.max);
        }
        // SAFETY: `SHORT >= n` bytes counted, all `copy_short` writes.
        unsafe { copy_short(s, self.c.ptr.add(self.c.len)) };
        self.c.len += n;
    }

    /// Text already encoded, `whole[start..end]`: copied as the [`SHORT`] bytes from `start`
    /// when `whole` has that many from there and the text is no longer (one copy of a fixed
    /// width, no test of its length: text kept with `SHORT` bytes after its last, as
    /// `counters::KeyText` is; a counter row's four texts were ~4.3 M mispredicted length tests
    /// a campaign, BENCHMARKS.md §1b), else as [`Room::bytes`].
    #[inline(always)]
    pub fn bytes_of(&mut self, whole: &[u8], (start, end): (usize, usize)) {
        let n = end.wrapping_sub(start);
        match whole.get(start..).and_then(|w| w.first_chunk::<SHORT>()) {
            Some(w) if n <= SHORT => {
                self.spend(Self::BYTES);
                // SAFETY: `SHORT` bytes counted; the column's are its first `n`.
                unsafe { self.store(*w, n) };
            }
            _ => self.bytes(whole.get(start..end).unwrap_or_default()),
        }
    }

    /// A `Nullable(String)` column.
    #[inline(always)]
    pub fn opt_str(&mut self, s: Option<&str>) {
        self.spend(1);
        match s {
            Some(s) => {
                // SAFETY: one byte counted.
                unsafe { self.store([0], 1) };
                self.str(s);
            }
            None => {
                self.spend(Self::STR);
                // SAFETY: one byte counted.
                unsafe { self.store([1], 1) };
            }
        }
    }

    /// A `Nullable` integer column (`Nullable(Int64)`, `Nullable(DateTime64)`): the null byte and
    /// the value in one store of nine bytes.
    #[inline(always)]
    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.spend(Self::OPT_I64);
        match v {
            Some(v) => {
                let mut b = [0u8; 9];
                b[1..].copy_from_slice(&v.to_le_bytes());
                // SAFETY: nine bytes counted.
                unsafe { self.store(b, 9) };
            }
            None => {
                // SAFETY: nine bytes counted.
                unsafe { self.store([1], 1) };
            }
        }
    }
}

/// A `String` column whose value is one of a few fixed words (an enum's names, and `""` for
/// none), each encoded once: its length byte, its text, zeros to 16 bytes. Written, a word is
/// one 16-byte copy ([`Cursor::word`]): through [`Cursor::str`] it was the enum's jump to its
/// text, then the tests of the text's length for its copy, ~11 such columns per event
/// (BENCHMARKS.md §1b).
pub struct Words<const N: usize>([[u8; 16]; N]);

impl<const N: usize> Words<N> {
    /// `words` in order, after `""` when `empty_first` (for a column of an optional enum).
    /// Each word below 16 bytes and one entry per word, or the `static` does not compile.
    pub const fn of(empty_first: bool, words: &[&str]) -> Self {
        let skip = empty_first as usize;
        assert!(words.len() + skip == N, "one entry per word");
        let mut t = [[0u8; 16]; N];
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_bytes();
            assert!(w.len() < 16, "a word below 16 bytes");
            t[i + skip][0] = w.len() as u8;
            let mut j = 0;
            while j < w.len() {
                t[i + skip][j + 1] = w[j];
                j += 1;
            }
            i += 1;
        }
        Words(t)
    }

    /// The `i`th entry (an enum's discriminant, after one for `""` when the table has it);
    /// the first for an index past the end, which the callers' enums do not reach.
    #[inline(always)]
    pub fn get(&self, i: usize) -> &[u8; 16] {
        self.0.get(i).unwrap_or(&self.0[0])
    }
}

/// `parts` appended after the first `len` bytes (written): the allocation's pointer, the new
/// length and the capacity. Out of line, and of the vector alone, so that the cursor's fields
/// stay locals.
#[inline(never)]
fn append(buf: &mut Vec<u8>, len: usize, parts: &[&[u8]]) -> (*mut u8, usize, usize) {
    // SAFETY: the cursor wrote `..len` (inside the capacity, see `Cursor::room`).
    unsafe { buf.set_len(len) };
    for p in parts {
        buf.extend_from_slice(p);
    }
    (buf.as_mut_ptr(), buf.len(), buf.capacity())
}

/// `v`'s unsigned LEB128 bytes and how many there are (at most ten).
#[inline]
fn leb128_bytes(mut v: u64) -> ([u8; 10], usize) {
    let (mut b, mut n) = ([0u8; 10], 0);
    for slot in b.iter_mut() {
        n += 1;
        if v < 0x80 {
            *slot = v as u8;
            break;
        }
        *slot = (v & 0x7f) as u8 | 0x80;
        v >>= 7;
    }
    (b, n)
}

/// Room for `n` more bytes after the first `len` (written): the allocation's new pointer and
/// capacity. Out of line, and of the vector alone, so that the cursor's fields stay locals.
#[cold]
#[inline(never)]
fn grow(buf: &mut Vec<u8>, len: usize, n: usize) -> (*mut u8, usize) {
    // SAFETY: the cursor wrote `..len` (inside the capacity, see `Cursor::room`).
    unsafe { buf.set_len(len) };
    buf.reserve(n);
    (buf.as_mut_ptr(), buf.capacity())
}

/// A `String` column ([`Cursor::str`]).
#[inline(always)]
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    Cursor::new(buf).str(s);
}

/// Appends `s`: inline ([`copy_short`], no `memcpy` call) when it is short and fits the spare
/// capacity, else by `extend_from_slice`. For a vector sized exactly beforehand (`state::Ids`),
/// where [`Cursor::bytes`]' room for 64 bytes would grow it.
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
pub const SHORT: usize = 64;

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
    debug_assert!(s.len() <= SHORT);
    // SAFETY: as this function's (each takes its part of the lengths).
    unsafe {
        if s.len() >= 16 {
            copy_16_to_64(s, dst);
        } else {
            copy_below_16(s, dst);
        }
    }
}

/// [`copy_short`] of 16 to 64 bytes. (Tested before the shorter lengths in a chain from the
/// longest, text of 8 to 15 bytes took three tests, of 4 to 7 four; a row's text is mostly
/// short: BENCHMARKS.md §1b.)
///
/// # Safety
/// As [`copy_short`]'s, and `s.len() >= 16`.
#[inline(always)]
unsafe fn copy_16_to_64(s: &[u8], dst: *mut u8) {
    let (src, n) = (s.as_ptr(), s.len());
    debug_assert!((16..=SHORT).contains(&n));
    unsafe {
        if n >= 32 {
            dst.cast::<[u8; 32]>().write_unaligned(src.cast::<[u8; 32]>().read_unaligned());
            dst.add(n - 32).cast::<[u8; 32]>().write_unaligned(src.add(n - 32).cast::<[u8; 32]>().read_unaligned());
        } else {
            dst.cast::<[u8; 16]>().write_unaligned(src.cast::<[u8; 16]>().read_unaligned());
            dst.add(n - 16).cast::<[u8; 16]>().write_unaligned(src.add(n - 16).cast::<[u8; 16]>().read_unaligned());
        }
    }
}

/// [`copy_short`] of fewer than 16 bytes.
///
/// # Safety
/// As [`copy_short`]'s, and `s.len() < 16`.
#[inline(always)]
unsafe fn copy_below_16(s: &[u8], dst: *mut u8) {
    let (src, n) = (s.as_ptr(), s.len());
    debug_assert!(n < 16);
    unsafe {
        if n >= 8 {
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

    /// An unsigned LEB128 value, a byte at a time: the tests' reference for [`leb128_bytes`].
    fn leb128_byte_by_byte(buf: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return buf.push(byte);
            }
            buf.push(byte | 0x80);
        }
    }

    #[test]
    fn the_put_functions_write_what_serde_writes() {
        let mut a = Vec::new();
        put_str(&mut a, "é-1");
        let mut c = Cursor::new(&mut a);
        c.opt_str(None);
        c.opt_str(Some(&"x".repeat(200)));
        c.opt_i64(Some(-5));
        c.opt_i64(None);
        drop(c);
        put(&mut a, 7i128.to_le_bytes());
        let mut b = Vec::new();
        write(&mut b, &("é-1", None::<&str>, Some("x".repeat(200)), Some(-5i64), None::<i64>, 7i128)).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..5], &[4, 0xc3, 0xa9, b'-', b'1']);
    }

    /// One column of a row, for the cursor's test.
    #[derive(Debug, Clone)]
    enum Column {
        Str(String),
        OptStr(Option<String>),
        OptI64(Option<i64>),
        U32(u32),
        Len(u64),
        /// bytes already encoded (`bytes`), short or long
        Bytes(Vec<u8>),
        /// bytes already encoded, a span of a buffer (`bytes_of`): short or long, with the
        /// buffer's `SHORT` bytes after it or not
        BytesOf(Vec<u8>, usize, usize),
        /// an enum's word (`word`), from the tests' table
        Word(usize),
        /// appended through `with_vec`, as a writer of its own would (the event row's JSON)
        Raw(Vec<u8>),
    }

    fn column() -> impl proptest::strategy::Strategy<Value = Column> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-zé\\-]{0,150}".prop_map(Column::Str),
            proptest::option::of("[a-z]{0,80}").prop_map(Column::OptStr),
            any::<Option<i64>>().prop_map(Column::OptI64),
            any::<u32>().prop_map(Column::U32),
            prop_oneof![0u64..300, any::<u64>()].prop_map(Column::Len),
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Column::Bytes),
            (proptest::collection::vec(any::<u8>(), 0..160), any::<usize>(), any::<usize>()).prop_map(|(whole, a, b)| {
                let (a, b) = (a % (whole.len() + 1), b % (whole.len() + 1));
                Column::BytesOf(whole, a.min(b), a.max(b))
            }),
            (0..WORDS.0.len()).prop_map(Column::Word),
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Column::Raw),
        ]
    }

    static WORDS: Words<4> = Words::of(true, &["a", "fifteen-letters", "mid"]);

    /// The room a [`Room`] counts for `c` (`None` for what goes through the vector).
    fn counted(c: &Column) -> Option<usize> {
        Some(match c {
            Column::Str(_) => Room::STR,
            Column::OptStr(_) => Room::OPT_STR,
            Column::OptI64(_) => Room::OPT_I64,
            Column::U32(_) => 4,
            Column::Len(_) => Room::LEB128,
            Column::Bytes(_) | Column::BytesOf(..) => Room::BYTES,
            Column::Word(_) => Room::WORD,
            Column::Raw(_) => return None,
        })
    }

    proptest::proptest! {
        /// A cursor's columns, one after another from any spare capacity (none, or some: its
        /// growth in the middle of a row), are the bytes serde's serializer writes (and a byte
        /// at a time for lengths, `extend_from_slice` for raw bytes).
        #[test]
        fn a_cursor_writes_what_serde_writes(
            before in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
            columns in proptest::collection::vec(column(), 0..40),
            spare in 0usize..200,
        ) {
            let mut want = before.clone();
            for c in &columns {
                match c {
                    Column::Str(s) => write(&mut want, s.as_str()).unwrap(),
                    Column::OptStr(s) => write(&mut want, &s.as_deref()).unwrap(),
                    Column::OptI64(v) => write(&mut want, v).unwrap(),
                    Column::U32(v) => write(&mut want, v).unwrap(),
                    Column::Len(v) => leb128_byte_by_byte(&mut want, *v),
                    Column::Bytes(b) | Column::Raw(b) => want.extend_from_slice(b),
                    Column::BytesOf(w, a, b) => want.extend_from_slice(&w[*a..*b]),
                    Column::Word(i) => write(&mut want, ["", "a", "fifteen-letters", "mid"][*i]).unwrap(),
                }
            }
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            let mut cursor = Cursor::new(&mut got);
            for c in &columns {
                match c {
                    Column::Str(s) => cursor.str(s),
                    Column::OptStr(s) => cursor.opt_str(s.as_deref()),
                    Column::OptI64(v) => cursor.opt_i64(*v),
                    Column::U32(v) => cursor.put(v.to_le_bytes()),
                    Column::Len(v) => cursor.leb128(*v),
                    Column::Bytes(b) => cursor.bytes(b),
                    Column::BytesOf(w, a, b) => cursor.bytes(&w[*a..*b]),
                    Column::Word(i) => cursor.word(WORDS.get(*i)),
                    Column::Raw(b) => cursor.with_vec(|v| v.extend_from_slice(b)),
                }
            }
            drop(cursor);
            proptest::prop_assert_eq!(&got, &want);

            // the same through rooms, each for the columns up to the next written through the
            // vector, made exactly as large as they count (any more and a wrong count or a room
            // not made again after long text could hide in the spare capacity): a long text's
            // growth in the middle of a room, then the room's next columns
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            let mut cursor = Cursor::new(&mut got);
            for run in columns.split(|c| counted(c).is_none()).zip(columns.iter().filter(|c| counted(c).is_none()).map(Some).chain([None])) {
                let (run, raw) = run;
                let mut room = cursor.room_for(run.iter().filter_map(counted).sum());
                for c in run {
                    match c {
                        Column::Str(s) => room.str(s),
                        Column::OptStr(s) => room.opt_str(s.as_deref()),
                        Column::OptI64(v) => room.opt_i64(*v),
                        Column::U32(v) => room.put(v.to_le_bytes()),
                        Column::Len(v) => room.leb128(*v),
                        Column::Bytes(b) => room.bytes(b),
                        Column::BytesOf(w, a, b) => room.bytes_of(w, (*a, *b)),
                        Column::Word(i) => room.word(WORDS.get(*i)),
                        Column::Raw(_) => unreachable!("split off"),
                    }
                }
                if let Some(Column::Raw(b)) = raw {
                    cursor.with_vec(|v| v.extend_from_slice(b));
                }
            }
            drop(cursor);
            proptest::prop_assert_eq!(&got, &want);
        }
    }

    /// Debug builds check a room's columns against it (release builds rely on that: a row's
    /// count is the same for any values, so the tests that write each row catch a short room).
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "past the room made for them")]
    fn a_room_too_small_for_its_columns_panics_in_debug_builds() {
        let mut v = Vec::new();
        let mut c = Cursor::new(&mut v);
        let mut r = c.room_for(Room::STR + Room::OPT_I64 - 1);
        r.str("");
        r.opt_i64(None);
    }

    proptest::proptest! {
        /// Text of every length around the inline copy's pieces (0 to 140 bytes, so each of
        /// `copy_short`'s cases and the long path), after whatever the buffer held, at any
        /// spare capacity: what a length a byte at a time and `extend_from_slice` write
        /// (`extend_short` too).
        #[test]
        fn put_str_and_put_bytes_append_their_bytes(
            before in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            text in "[a-zé\\-]{0,70}",
            spare in 0usize..40,
        ) {
            let mut want = before.clone();
            leb128_byte_by_byte(&mut want, text.len() as u64);
            want.extend_from_slice(text.as_bytes());
            want.extend_from_slice(text.as_bytes());
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            put_str(&mut got, &text);
            Cursor::new(&mut got).bytes(text.as_bytes());
            proptest::prop_assert_eq!(&got, &want);
            // `extend_short` into spare capacity that may or may not hold it
            let mut got = Vec::with_capacity(before.len() + spare);
            got.extend_from_slice(&before);
            extend_short(&mut got, text.as_bytes());
            proptest::prop_assert_eq!(&got[..], &[&before[..], text.as_bytes()].concat()[..]);
        }
    }
}
