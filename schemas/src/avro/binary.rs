//! Avro binary encoding primitives for the schema-specific codecs (`event`, `raw`): zig-zag
//! varints, length-prefixed strings and bytes, union and enum indices, blocked collections.
//!
//! The reader accepts exactly what apache-avro's decoder accepts for the same schema (same
//! varint rules, same length and collection bounds), so both paths refuse the same records
//! with the same [`CodecError`] code; it never allocates for a length before checking it
//! against [`MAX_DECODE_ALLOCATION_BYTES`] and against the bytes actually left.

use super::{CodecError, MAX_DECODE_ALLOCATION_BYTES};

/// Appends `n` zig-zag encoded as a varint (Avro `int` and `long` share the encoding).
#[inline]
pub(super) fn put_long(buf: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7F {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Appends Avro `bytes` (and `string`, the same on the wire): the length, then the bytes.
#[inline]
pub(super) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_long(buf, b.len() as i64);
    buf.extend_from_slice(b);
}

#[inline]
pub(super) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

/// A `["null", "string"]` union: index 0, or index 1 and the string.
#[inline]
pub(super) fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(2);
            put_str(buf, s);
        }
    }
}

/// An array or map of strings as one block (count, items, `0`), or just `0` when empty: what
/// apache-avro writes, so the bytes are the same.
pub(super) fn put_block<'a, I: ExactSizeIterator<Item = &'a str>>(buf: &mut Vec<u8>, items: I) {
    if items.len() > 0 {
        put_long(buf, items.len() as i64);
        for s in items {
            put_str(buf, s);
        }
    }
    buf.push(0);
}

/// Bytes a length prefix plus content take at most: for size hints, never for correctness.
#[inline]
pub(super) fn bytes_hint(len: usize) -> usize {
    len + 5
}

/// Why a datum could not be read. Every kind becomes [`CodecError::Avro`] (`invalid_avro`),
/// as apache-avro's decoding errors do.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("the datum ends early")]
    Truncated,
    #[error("a varint longer than 10 bytes")]
    VarintOverflow,
    #[error("{what} {value} out of range")]
    OutOfRange { what: &'static str, value: i64 },
    #[error("unable to allocate {0} bytes (maximum allowed: {max})", max = MAX_DECODE_ALLOCATION_BYTES)]
    TooLarge(u64),
    #[error("a string that is not UTF-8")]
    Utf8,
    #[error("a decimal of {0} bytes cannot hold precision 38")]
    ShortDecimal(usize),
}

impl From<ReadError> for CodecError {
    fn from(e: ReadError) -> Self {
        CodecError::Avro(e.to_string())
    }
}

/// Element sizes apache-avro's decoder accounts a collection's items at (`Value`, and
/// `(String, Value)` for maps): using the same bound, both paths refuse the same counts.
const ARRAY_ITEM_BYTES: usize = std::mem::size_of::<apache_avro::types::Value>();
const MAP_ENTRY_BYTES: usize = std::mem::size_of::<(String, apache_avro::types::Value)>();

/// Reads a datum from a byte slice, borrowing strings and bytes from it.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    /// The datum's last eight bytes as a little-endian word (`None` for a datum shorter than
    /// eight): a varint among the last few bytes is read from it ([`Reader::long`]).
    last: Option<u64>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(datum: &'a [u8]) -> Self {
        Reader { rest: datum, last: datum.last_chunk::<8>().map(|w| u64::from_le_bytes(*w)) }
    }

    /// A zig-zag varint: at most 10 bytes, bits beyond 64 dropped (as apache-avro).
    ///
    /// One byte, or up to eight read as one word (a millisecond time takes six: byte by byte
    /// it was ~100 instructions, three per event; BENCHMARKS.md §1b): the next eight bytes, or
    /// with fewer left, the datum's last eight shifted so that those left come first and each
    /// place after the end reads 0x80, a byte that continues (so a varint the end cuts is not
    /// taken for a whole one; an event's `raw_offset` is there, and read byte by byte it was
    /// ~75 instructions per event). Else byte by byte ([`Reader::long_bytewise`], which the
    /// tests check it against).
    #[inline(always)]
    pub(super) fn long(&mut self) -> Result<i64, ReadError> {
        if let Some(&b) = self.rest.first() {
            if b < 0x80 {
                self.rest = &self.rest[1..];
                return Ok(zag(u64::from(b)));
            }
        }
        let w = match (self.rest.first_chunk::<8>(), self.rest.len(), self.last) {
            (Some(word), _, _) => Some(u64::from_le_bytes(*word)),
            (None, left @ 1..=7, Some(last)) => Some((last >> (8 * (8 - left))) | (0x8080_8080_8080_8080 << (8 * left))),
            _ => None,
        };
        if let Some(w) = w {
            // the high bit of each byte that ends the varint; the lowest is its last byte
            let ends = !w & 0x8080_8080_8080_8080;
            if ends != 0 {
                let len = (ends.trailing_zeros() / 8 + 1) as usize;
                // the varint's bytes (up to its last byte's high bit), their 7-bit groups
                let x = w & (ends ^ (ends - 1)) & 0x7F7F_7F7F_7F7F_7F7F;
                // packed: pairs of groups, then fours, then all eight (56 bits)
                let x = (x & 0x007F_007F_007F_007F) | ((x & 0x7F00_7F00_7F00_7F00) >> 1);
                let x = (x & 0x0000_3FFF_0000_3FFF) | ((x & 0x3FFF_0000_3FFF_0000) >> 2);
                let x = (x & 0x0000_0000_0FFF_FFFF) | ((x & 0x0FFF_FFFF_0000_0000) >> 4);
                self.rest = &self.rest[len..];
                return Ok(zag(x));
            }
        }
        self.long_bytewise()
    }

    /// The next byte's value when it is a one-byte varint of a value from 0 to 63 (even and
    /// below 0x80: zig-zag's non-negative half), not consumed; `None` otherwise. The fast way
    /// of [`Reader::index`] and [`Reader::bytes`]: through [`Reader::long`] each was ~10
    /// instructions more, ~50 times an event (BENCHMARKS.md §1b).
    #[inline(always)]
    fn short(&self) -> Option<usize> {
        self.rest.first().filter(|&&b| b & 0x81 == 0).map(|&b| usize::from(b >> 1))
    }

    /// [`Reader::long`], a byte at a time: varints of nine or ten bytes, and those near the end.
    #[inline(never)]
    fn long_bytewise(&mut self) -> Result<i64, ReadError> {
        let mut z = 0u64;
        for (i, &b) in self.rest.iter().take(10).enumerate() {
            z |= u64::from(b & 0x7F) << (i * 7);
            if b < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(zag(z));
            }
        }
        Err(if self.rest.len() >= 10 { ReadError::VarintOverflow } else { ReadError::Truncated })
    }

    #[inline]
    pub(super) fn int(&mut self) -> Result<i32, ReadError> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| ReadError::OutOfRange { what: "int", value: n })
    }

    /// An index below `n`: a union branch or an enum symbol.
    ///
    /// One byte of an index below 64 (every union's and enum's here) is read directly: an even
    /// byte below 0x80 is the varint of half its value ([`Reader::short`]); anything else goes
    /// the general way, which gives the same index or the same error.
    #[inline(always)]
    pub(super) fn index(&mut self, what: &'static str, n: usize) -> Result<usize, ReadError> {
        if let Some(i) = self.short().filter(|&i| i < n) {
            self.rest = self.rest.get(1..).unwrap_or_default();
            return Ok(i);
        }
        let i = self.long()?;
        usize::try_from(i).ok().filter(|&i| i < n).ok_or(ReadError::OutOfRange { what, value: i })
    }

    /// A length: refused when negative or above the bound before anything is allocated, and
    /// when beyond the bytes left.
    #[inline(always)]
    fn len(&mut self) -> Result<usize, ReadError> {
        let n = self.long()?;
        let len = usize::try_from(n).map_err(|_| ReadError::OutOfRange { what: "length", value: n })?;
        if len > MAX_DECODE_ALLOCATION_BYTES {
            return Err(ReadError::TooLarge(len as u64));
        }
        if len > self.rest.len() {
            return Err(ReadError::Truncated);
        }
        Ok(len)
    }

    ///
    /// A length below 64 (nearly every string of an event) is its one byte ([`Reader::short`]):
    /// no bound to check but the bytes left, which the general way checks the same.
    #[inline(always)]
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        if let Some(len) = self.short() {
            if let Some((b, rest)) = self.rest.get(1..).and_then(|r| r.split_at_checked(len)) {
                self.rest = rest;
                return Ok(b);
            }
        }
        let len = self.len()?;
        let (b, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(b)
    }

    /// Checked for ASCII first: nearly every string of an event is (ids, names, addresses,
    /// URLs), and `is_ascii` checks a word at a time where `from_utf8`'s call and loop cost
    /// ~1,400 instructions per event, 8 % of the aggregator's whole batch (BENCHMARKS.md §1b).
    /// (Tried: OR-ing the bytes together without an early exit, vectorized; more instructions.)
    /// Text of up to 64 bytes (most of an event's) is checked inline ([`crate::ascii::is_ascii`]).
    #[inline(always)]
    pub(super) fn str(&mut self) -> Result<&'a str, ReadError> {
        let b = self.bytes()?;
        if crate::ascii::is_ascii(b) {
            // SAFETY: every byte is below 0x80, and a byte sequence of ASCII bytes alone is
            // valid UTF-8 (each is a one-byte code point), which is all `from_utf8_unchecked`
            // requires.
            return Ok(unsafe { std::str::from_utf8_unchecked(b) });
        }
        std::str::from_utf8(b).map_err(|_| ReadError::Utf8)
    }

    /// A `["null", "string"]` union.
    #[inline(always)]
    pub(super) fn opt_str(&mut self) -> Result<Option<&'a str>, ReadError> {
        match self.index("union index", 2)? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }

    /// Whether an array or map ends before its first item (its first block count is 0), which
    /// is then read; else nothing is read and [`Reader::block`] reads the count.
    #[inline(always)]
    pub(super) fn empty_collection(&mut self) -> bool {
        match self.rest.split_first() {
            Some((0, rest)) => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// The next block's item count of an array (`map: false`) or map: 0 at the end. A negative
    /// count is followed by the block's byte size (skipped). `so_far` items were read before:
    /// the total is bounded as apache-avro bounds it, and by the bytes left (an item takes at
    /// least one), so a lying count is refused before anything is reserved for it.
    pub(super) fn block(&mut self, so_far: usize, map: bool) -> Result<usize, ReadError> {
        let n = self.long()?;
        let count = match n {
            0 => return Ok(0),
            n if n < 0 => {
                self.long()?;
                n.checked_neg().ok_or(ReadError::VarintOverflow)?
            }
            n => n,
        };
        let count = usize::try_from(count).map_err(|_| ReadError::OutOfRange { what: "count", value: n })?;
        let item = if map { MAP_ENTRY_BYTES } else { ARRAY_ITEM_BYTES };
        let desired = so_far.checked_add(count).and_then(|t| t.checked_mul(item)).ok_or(ReadError::TooLarge(u64::MAX))?;
        if count > MAX_DECODE_ALLOCATION_BYTES || desired > MAX_DECODE_ALLOCATION_BYTES {
            return Err(ReadError::TooLarge(desired as u64));
        }
        if count > self.rest.len() {
            return Err(ReadError::Truncated);
        }
        Ok(count)
    }
}

#[inline]
fn zag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// An Avro `decimal(38, 10)` as bytes, the way the Value path reads it: fewer than 16 bytes
/// cannot hold precision 38 (apache-avro refuses them while resolving: `invalid_avro`); more
/// than 16 do not fit an `i128` (`None`: the caller's `invalid_field`).
pub(super) fn decimal(b: &[u8]) -> Result<Option<i128>, ReadError> {
    if b.len() < 16 {
        return Err(ReadError::ShortDecimal(b.len()));
    }
    Ok(<[u8; 16]>::try_from(b).ok().map(i128::from_be_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A string reads as `from_utf8` reads its bytes, ASCII or not.
        #[test]
        fn strings_read_as_from_utf8_reads_them(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), ascii_only in proptest::prelude::any::<bool>()) {
            let bytes: Vec<u8> = if ascii_only { bytes.iter().map(|b| b & 0x7F).collect() } else { bytes };
            let mut buf = Vec::new();
            put_bytes(&mut buf, &bytes);
            let read = Reader::new(&buf).str().ok();
            proptest::prop_assert_eq!(read, std::str::from_utf8(&bytes).ok());
        }
    }

    proptest::proptest! {
        /// A varint reads the same as a word and byte by byte: the value or the error, and
        /// the bytes left; any bytes (continuations anywhere, non-canonical, cut, too long),
        /// after `skip` bytes of the datum were read (so with fewer than eight left, the word
        /// comes from the datum's last eight).
        #[test]
        fn varints_read_as_a_word_as_byte_by_byte(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20), high in proptest::prelude::any::<u32>(), skip in 0usize..20) {
            // bytes with their high bit set by `high`'s bits, so varints of every length occur
            let bytes: Vec<u8> = bytes.iter().enumerate().map(|(i, b)| if high >> (i % 32) & 1 == 1 { b | 0x80 } else { b & 0x7F }).collect();
            let (mut word, mut bytewise) = (Reader::new(&bytes), Reader::new(&bytes));
            let skip = skip.min(bytes.len());
            (word.rest, bytewise.rest) = (&bytes[skip..], &bytes[skip..]);
            let (a, b) = (word.long(), bytewise.long_bytewise());
            proptest::prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            proptest::prop_assert_eq!(word.rest.len(), bytewise.rest.len());
        }
    }

    #[test]
    #[allow(deprecated)] // `to_avro_datum`: the reference's simplest form
    fn varints_match_apache_avro() {
        for n in [0i64, 1, -1, 63, -64, 64, -65, 8191, 1 << 40, 1_772_000_000_000, -(1 << 55), (1 << 55) - 1, 1 << 55, i64::MAX, i64::MIN, i32::MIN as i64] {
            let mut buf = Vec::new();
            put_long(&mut buf, n);
            let apache = apache_avro::to_avro_datum(&apache_avro::Schema::Long, apache_avro::types::Value::Long(n)).unwrap();
            assert_eq!(buf, apache, "{n}");
            assert_eq!(Reader::new(&buf).long().unwrap(), n);
            // and read as a word: followed by eight more bytes
            let padded = [&buf[..], &[0x7F; 8]].concat();
            let mut r = Reader::new(&padded);
            assert_eq!((r.long().unwrap(), r.rest.len()), (n, 8), "{n}");
        }
        // ten bytes with the last continuing: overflow; nine: truncated
        assert!(matches!(Reader::new(&[0xFF; 11]).long(), Err(ReadError::VarintOverflow)));
        assert!(matches!(Reader::new(&[0xFF; 9]).long(), Err(ReadError::Truncated)));
        assert!(matches!(Reader::new(&[]).long(), Err(ReadError::Truncated)));
    }

    #[test]
    fn lengths_are_bounded_before_allocating() {
        let mut buf = Vec::new();
        put_long(&mut buf, 1 << 30);
        let err = Reader::new(&buf).bytes().unwrap_err();
        assert!(CodecError::from(err).to_string().contains("allocate"));
        let mut buf = Vec::new();
        put_long(&mut buf, -1);
        assert!(matches!(Reader::new(&buf).bytes(), Err(ReadError::OutOfRange { .. })));
        let mut buf = Vec::new();
        put_long(&mut buf, 5);
        buf.extend_from_slice(b"abc");
        assert!(matches!(Reader::new(&buf).bytes(), Err(ReadError::Truncated)));
        let mut buf = Vec::new();
        put_long(&mut buf, i64::MIN);
        assert!(Reader::new(&buf).block(0, false).is_err());
        let mut buf = Vec::new();
        put_long(&mut buf, 1 << 40);
        assert!(matches!(Reader::new(&buf).block(0, true), Err(ReadError::TooLarge(_))));
    }
}
