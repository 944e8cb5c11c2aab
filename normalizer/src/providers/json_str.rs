//! Reading one JSON string out of a body, fast, for the parse fast paths (`ses/sns_scan.rs`).
//!
//! Why not serde_json: the SNS `Message` is a JSON document inside a JSON string, so it has an
//! escape every ~10 bytes (every `"` of the inner document is `\"`), and serde_json's
//! `parse_str` pays a call to its escape scan, a `memcpy` into its scratch buffer and a call to
//! `parse_escape` per escape, then a copy of the result into a `String`: that was ~45 % of
//! `pipeline::handle` on SES through SNS (issue 14's profile, BENCHMARKS.md §9). Here one loop
//! scans 16 bytes at a time and writes the unescaped string straight into its buffer, at an
//! index kept in a register (a `Vec`'s length, written back by every `push`, was a store and a
//! load per escape), and UTF-8 is checked only when a byte ≥ 0x80 was seen (the scan ORs the
//! words it reads, so pure ASCII, nearly every string here, skips `from_utf8`).
//!
//! Exactness: [`read`] gives `None` for anything it does not accept exactly as serde_json
//! would, and the caller then parses the whole body with serde_json (same value or same
//! error). It accepts a subset of what serde_json accepts: the escapes `\" \\ \/ \b \f \n
//! \r \t \uXXXX` (a `\uXXXX` surrogate only as a high + low pair), no control character
//! below U+0020 unescaped, and valid UTF-8, and for those it gives serde_json's value
//! (`tests` hold it to serde_json on every escape, surrogates, control characters and
//! invalid UTF-8).

use std::borrow::Cow;
use std::mem::MaybeUninit;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` (little-endian) that end a plain run: `"`, `\` or a control character
/// below 0x20, as the high bit of each such byte. Exact for the lowest flagged byte (a
/// borrow can flag bytes above it, never below), which is the only one read.
#[inline(always)]
fn specials(w: u64) -> u64 {
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let quote = zero_in(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    quote | backslash | control
}

/// Bytes that end a plain run, one at a time (the tail shorter than a chunk).
#[inline(always)]
fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Text from bytes that are valid UTF-8 when `seen` (an OR of words covering every one of
/// them, and maybe more) has no high bit; checked otherwise.
#[inline(always)]
fn text(bytes: &[u8], seen: u64) -> Option<&str> {
    if seen & HIGHS == 0 {
        debug_assert!(bytes.is_ascii());
        // SAFETY: every byte of `bytes` was ORed into `seen`, which has no high bit: all are
        // ASCII, which is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Reads the JSON string whose opening quote is at `s[start]`: its value (borrowed from `s`
/// when it has no escapes) and the index just past its closing quote, or `None` when
/// serde_json might not read it the same way (see the module doc).
pub fn read(s: &[u8], start: usize) -> Option<(Cow<'_, str>, usize)> {
    if s.get(start) != Some(&b'"') {
        return None;
    }
    let from = start + 1;
    // A run without escapes, borrowed as it is.
    let (mut i, stop, mut seen) = plain_run(s, from);
    match stop {
        b'"' => return Some((Cow::Borrowed(text(&s[from..i], seen)?), i + 1)),
        b'\\' => {}
        _ => return None,
    }
    // The unescaped string is never longer than what it was read from: `o` (the bytes written)
    // stays ≤ `i - from` (the bytes read), as every escape is at least as long as what it
    // stands for, so 16 bytes written at `o` fit wherever 16 bytes of `s` remain at `i`.
    // Written into the spare capacity, not a zeroed buffer: zeroing the rest of the body for
    // every escaped string would be quadratic in a hostile body of many of them.
    let mut out: Vec<u8> = Vec::with_capacity(s.len() - from);
    let buf = out.spare_capacity_mut();
    let mut o = i - from;
    put(buf, 0, &s[from..i]);
    // Escapes write only valid UTF-8 (`\uXXXX` through `char`), so `seen` covers the bytes
    // copied from `s`.
    loop {
        // s[i] is a backslash; `\"` (the inner document's quotes, nearly every escape of an
        // SNS `Message`) tested first, before the escape table's indirect jump
        if s.get(i + 1) == Some(&b'"') {
            put(buf, o, b"\"");
            o += 1;
            i += 2;
        } else {
            (i, o) = unescape(s, i + 1, buf, o)?;
        }
        // The plain run after it, 16 bytes at a time: written whole, then the index cut back
        // to the first special byte (cheaper than a `memcpy` call for the ~10 bytes runs have
        // here).
        loop {
            let Some(chunk) = s.get(i..i + 16) else {
                while let Some(&b) = s.get(i) {
                    if is_special(b) {
                        break;
                    }
                    put(buf, o, &[b]);
                    seen |= u64::from(b);
                    o += 1;
                    i += 1;
                }
                break;
            };
            put(buf, o, chunk);
            let (k, words) = specials16(chunk);
            seen |= words;
            match k {
                None => {
                    i += 16;
                    o += 16;
                }
                Some(k) => {
                    i += k;
                    o += k;
                    break;
                }
            }
        }
        match s.get(i) {
            Some(b'"') => {
                // SAFETY: `put` wrote every byte below `o` (each write starts at the current
                // `o`, which then moves by at most what was written), within the capacity.
                unsafe { out.set_len(o) };
                let text = if seen & HIGHS == 0 {
                    debug_assert!(std::str::from_utf8(&out).is_ok());
                    // SAFETY: every byte copied from `s` was ORed into `seen`, which has no
                    // high bit, so those are ASCII; the rest are escapes' UTF-8 encodings.
                    unsafe { String::from_utf8_unchecked(out) }
                } else {
                    String::from_utf8(out).ok()?
                };
                return Some((Cow::Owned(text), i + 1));
            }
            Some(b'\\') => {}
            _ => return None,
        }
    }
}

/// Writes `bytes` into `buf` at `at` (panics past its end: `read` never writes there).
#[inline(always)]
fn put(buf: &mut [MaybeUninit<u8>], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].write_copy_of_slice(bytes);
}

/// The position of the first `"`, `\` or control byte of a 16-byte chunk, if any, and the OR
/// of its two words (whose high bits say whether a byte ≥ 0x80 is in it).
#[inline(always)]
fn specials16(chunk: &[u8]) -> (Option<usize>, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&chunk[..8]);
    hi.copy_from_slice(&chunk[8..16]);
    let (lo, hi) = (u64::from_le_bytes(lo), u64::from_le_bytes(hi));
    let (slo, shi) = (specials(lo), specials(hi));
    let k = if slo != 0 {
        Some((slo.trailing_zeros() / 8) as usize)
    } else if shi != 0 {
        Some(8 + (shi.trailing_zeros() / 8) as usize)
    } else {
        None
    };
    (k, lo | hi)
}

/// From `i`, the index of the first `"`, `\` or control byte and that byte (0 at the end),
/// and the OR of the words read on the way (every byte before that index in it).
#[inline(always)]
fn plain_run(s: &[u8], mut i: usize) -> (usize, u8, u64) {
    let mut seen = 0;
    while let Some(chunk) = s.get(i..i + 16) {
        let (k, words) = specials16(chunk);
        seen |= words;
        if let Some(k) = k {
            return (i + k, s[i + k], seen);
        }
        i += 16;
    }
    while let Some(&b) = s.get(i) {
        if is_special(b) {
            return (i, b, seen);
        }
        seen |= u64::from(b);
        i += 1;
    }
    (i, 0, seen)
}

/// Writes the escape whose letter is at `s[i]` (after its backslash) into `out` at `o`; the
/// indexes after it in `s` and in `out`.
#[inline(always)]
fn unescape(s: &[u8], i: usize, out: &mut [MaybeUninit<u8>], o: usize) -> Option<(usize, usize)> {
    let byte = match *s.get(i)? {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unescape_unicode(s, i + 1, out, o),
        _ => return None,
    };
    put(out, o, &[byte]);
    Some((i + 1, o + 1))
}

/// `\uXXXX` (its hex digits from `s[i]`), a surrogate only as a high + low pair.
fn unescape_unicode(s: &[u8], i: usize, out: &mut [MaybeUninit<u8>], o: usize) -> Option<(usize, usize)> {
    let first = hex4(s, i)?;
    let (c, next) = match first {
        0xD800..=0xDBFF => {
            if s.get(i + 4..i + 6)? != b"\\u" {
                return None;
            }
            let low = hex4(s, i + 6)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            let c = 0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            (char::from_u32(c)?, i + 10)
        }
        0xDC00..=0xDFFF => return None,
        _ => (char::from_u32(u32::from(first))?, i + 4),
    };
    // At most 4 bytes for the 6 or 12 read.
    let mut utf8 = [0u8; 4];
    let n = c.encode_utf8(&mut utf8).len();
    put(out, o, &utf8[..n]);
    Some((next, o + n))
}

/// Four hex digits from `s[i]`, either case, as serde_json reads them.
fn hex4(s: &[u8], i: usize) -> Option<u16> {
    let digits = s.get(i..i + 4)?;
    let mut n: u16 = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u16::from(v);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `read` must give serde_json's value whenever it gives one, and the index past the string.
    fn check(json: &[u8]) -> Option<String> {
        let ours = read(json, 0);
        let theirs: Result<String, _> = serde_json::from_slice(json);
        if let Some((value, end)) = &ours {
            assert_eq!(*end, json.len(), "end of {json:?}");
            assert_eq!(theirs.as_deref().ok(), Some(value.as_ref()), "value of {json:?}");
        }
        ours.map(|(v, _)| v.into_owned())
    }

    /// Must be read (not left to serde_json) and be this.
    fn reads(json: &[u8], expected: &str) {
        assert_eq!(check(json).as_deref(), Some(expected), "{}", String::from_utf8_lossy(json));
    }

    /// Must be left to serde_json.
    fn declines(json: &[u8]) {
        assert_eq!(read(json, 0), None, "{}", String::from_utf8_lossy(json));
    }

    #[test]
    fn every_escape_as_serde_json() {
        reads(br#""""#, "");
        reads(br#""plain text, longer than eight bytes""#, "plain text, longer than eight bytes");
        reads(br#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{c}\n\r\t");
        reads(br#""a\u0041\u00e9\u20AC\uFFFF\u0000z""#, "aAé€\u{ffff}\u{0}z");
        reads(br#""\ud83d\ude00 and \uD83D\uDE00""#, "😀 and 😀");
        reads(br#""\udbff\udfff""#, "\u{10ffff}");
        reads("\"ünïcödé 😀 \\\"x\\\" ünïcödé\"".as_bytes(), "ünïcödé 😀 \"x\" ünïcödé");
        reads(br#""{\"eventType\":\"Bounce\",\"mail\":{\"tags\":{\"a\":[\"b\"]}}}""#, r#"{"eventType":"Bounce","mail":{"tags":{"a":["b"]}}}"#);
        reads("\"\u{7f}\u{80}\"".as_bytes(), "\u{7f}\u{80}");
    }

    #[test]
    fn declines_what_serde_json_refuses_or_might() {
        for bad in [
            &br#""\ud800""#[..],
            br#""\ud800x""#,
            br#""\ud800\n""#,
            br#""\ud800\u0041""#,
            br#""\udc00""#,
            br#""\udc00\ud800""#,
            br#""\ud800\ud800""#,
            br#""\u12""#,
            br#""\u12g4""#,
            br#""\x""#,
            br#""\'""#,
            br#""\"#,
            br#""abc"#,
            br#""abc\"#,
            b"\"a\nb\"",
            b"\"a\tb\"",
            b"\"\x00\"",
            b"\"\x1f\"",
            b"\"\\\"\x01\"",
            b"\"\xff\"",
            b"\"\\n\xc3\"",
            b"\"\xc3\x28 eight more bytes\"",
            b"\"\xed\xa0\x80\"",
            b"abc",
            b"",
        ] {
            declines(bad);
            check(bad);
        }
    }

    /// Each special byte at every position of the 16-byte chunks, after an escape and not.
    #[test]
    fn specials_at_every_position() {
        for lead in ["", "\\n"] {
            for pos in 0..40 {
                for special in ["\\\"", "\\u00e9", "\u{1}", "\"", "\\x"] {
                    let body = format!("{lead}{}{special}{}", "a".repeat(pos), "b".repeat(40 - pos));
                    let json = format!("\"{body}\"");
                    if special != "\"" {
                        check(json.as_bytes());
                    }
                    let ok = special.starts_with('\\') && special != "\\x";
                    assert_eq!(read(json.as_bytes(), 0).is_some(), ok || special == "\"", "{json}");
                }
            }
        }
    }

    proptest! {
        /// Any string serde_json writes, escaped or with `\u` escapes of every char: read, same value.
        #[test]
        fn reads_what_serde_json_writes(s in any::<String>(), ascii_escape in any::<bool>()) {
            let json = if ascii_escape {
                let mut j = String::from("\"");
                for u in s.encode_utf16() {
                    j.push_str(&format!("\\u{u:04x}"));
                }
                j.push('"');
                j
            } else {
                serde_json::to_string(&s).unwrap()
            };
            prop_assert_eq!(check(json.as_bytes()), Some(s));
        }

        /// Any bytes between quotes: when read, as serde_json reads them.
        #[test]
        fn never_differs_from_serde_json(body in proptest::collection::vec(prop_oneof![
            Just(b'\\'), Just(b'"'), Just(b'u'), Just(b'd'), Just(b'8'), Just(b'0'), Just(b'c'),
            Just(b'n'), Just(0x1f), Just(0xc3), Just(0xa9), Just(0xed), Just(0xff), any::<u8>()
        ], 0..40)) {
            let mut json = vec![b'"'];
            json.extend_from_slice(&body);
            json.push(b'"');
            if let Some((value, end)) = read(&json, 0) {
                let theirs: Option<String> = serde_json::from_slice(&json[..end]).ok();
                prop_assert_eq!(theirs, Some(value.into_owned()));
            }
        }
    }
}
