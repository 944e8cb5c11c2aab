//! Word-at-a-time ASCII checks for the short text of events and rows (ids, names, addresses),
//! inline: the decoder's UTF-8 check (`avro::binary::Reader::str`), a stored contact id's
//! (`aggregator::state::Ids`), a recipient's case (`aggregator::state::row::lowercase`).
//!
//! Text of up to 64 bytes is read as a few overlapping eight-byte words, no loop and no call:
//! `<[u8]>::is_ascii` is a call and a loop, ~35 instructions for a short string, and a byte at
//! a time is ~5 per byte (BENCHMARKS.md §1b). Longer text goes the general way.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x80 * ONES;

/// Whether every byte of `b` is below 0x80.
#[inline(always)]
pub fn is_ascii(b: &[u8]) -> bool {
    match b.len() {
        0..=64 => any_word(b, |w| w & HIGH) == 0,
        _ => b.is_ascii(),
    }
}

/// Whether any byte of `b` is `A`–`Z`.
#[inline(always)]
pub fn has_uppercase(b: &[u8]) -> bool {
    // each byte's low seven bits: adding cannot carry into the next byte; the high bit is set
    // where the byte is at least `A` (0x41) and not above `Z` (0x5A), and ASCII
    let upper = |w: u64| {
        let low = w & (0x7F * ONES);
        (low + 0x3F * ONES) & !(low + 0x25 * ONES) & !w & HIGH
    };
    match b.len() {
        0..=64 => any_word(b, upper) != 0,
        _ => b.chunks(64).any(|c| any_word(c, upper) != 0),
    }
}

/// `f` of overlapping words that cover `b` (at most 64 bytes), OR-ed: words of eight bytes at
/// 0, 8, .. and one ending at the end; for fewer than eight, two of four bytes (or the bytes
/// one by one below four), zero-extended. `f` must map a word of zero bytes to 0, and tell a
/// byte's property by that byte alone (so reading a byte twice changes nothing).
#[inline(always)]
fn any_word(b: &[u8], f: impl Fn(u64) -> u64) -> u64 {
    let n = b.len();
    debug_assert!(n <= 64);
    // (a word outside `b`, which the lengths rule out, reads as all ones: "not ASCII", so the
    // decoder's `from_utf8` checks it, never "ASCII" unchecked)
    let word = |at: usize| b.get(at..at + 8).and_then(|w| w.try_into().ok()).map_or(u64::MAX, u64::from_le_bytes);
    let half = |at: usize| b.get(at..at + 4).and_then(|w| w.try_into().ok()).map_or(u64::MAX, |w| u64::from(u32::from_le_bytes(w)));
    match n {
        33..=64 => f(word(0)) | f(word(8)) | f(word(16)) | f(word(24)) | f(word(n - 32)) | f(word(n - 24)) | f(word(n - 16)) | f(word(n - 8)),
        17..=32 => f(word(0)) | f(word(8)) | f(word(n - 16)) | f(word(n - 8)),
        8..=16 => f(word(0)) | f(word(n - 8)),
        4..=7 => f(half(0)) | f(half(n - 4)),
        _ => b.iter().fold(0, |acc, &c| acc | f(u64::from(c))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Both checks find exactly what a byte at a time finds, at every length up to 140
        /// (each of the word cases and the long path), with one byte of any value anywhere.
        #[test]
        fn as_byte_by_byte(b in proptest::collection::vec(0u8..0x80, 0..140), at in proptest::prelude::any::<proptest::sample::Index>(), one in proptest::prelude::any::<u8>()) {
            let mut b: Vec<u8> = b.iter().map(|x| x.to_ascii_lowercase()).collect();
            proptest::prop_assert!(is_ascii(&b));
            proptest::prop_assert!(!has_uppercase(&b));
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] = one;
            }
            proptest::prop_assert_eq!(is_ascii(&b), b.iter().all(|x| x.is_ascii()));
            proptest::prop_assert_eq!(has_uppercase(&b), b.iter().any(|x| x.is_ascii_uppercase()));
        }
    }

    /// Every byte value at every place, for every length of the word cases (1 to 70).
    #[test]
    fn every_byte_at_every_place() {
        for n in 1..=70usize {
            for i in 0..n {
                for one in 0..=255u8 {
                    let mut b = vec![b'a'; n];
                    b[i] = one;
                    assert_eq!(has_uppercase(&b), one.is_ascii_uppercase(), "{one:#x} at {i} of {n}");
                    assert_eq!(is_ascii(&b), one.is_ascii(), "{one:#x} at {i} of {n}");
                }
            }
        }
    }
}
