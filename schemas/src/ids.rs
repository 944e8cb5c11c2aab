//! Deterministic identifiers. Replaying a raw record must give the same ids,
//! so every id here is a hash of stable inputs, never a random value.

use sha2::{Digest, Sha256};

/// SHA-256 of the length-prefixed parts (the last one ASCII-lowercased when `lower_last`),
/// its first 16 bytes as 32 lowercase hex digits.
///
/// Written by hand rather than `hex::encode` + `to_ascii_lowercase`: those built the id one
/// `char` at a time and copied the recipient to lowercase it, two allocations and a slow
/// path per id, twice per event (issue 14, BENCHMARKS.md §9). Same bytes out (`tests`).
fn hash_parts(parts: &[&[u8]], lower_last: bool) -> String {
    let mut h = Sha256::new();
    for (n, p) in parts.iter().enumerate() {
        // length-prefix each part so ("ab","c") and ("a","bc") differ
        h.update((p.len() as u64).to_le_bytes());
        if lower_last && n + 1 == parts.len() {
            update_lowercase(&mut h, p);
        } else {
            h.update(p);
        }
    }
    hex16(&h.finalize())
}

/// Feeds `bytes` ASCII-lowercased (as `str::to_ascii_lowercase`, same length) without a copy
/// on the heap.
fn update_lowercase(h: &mut Sha256, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len()) {
        let part = &mut buf[..chunk.len()];
        part.copy_from_slice(chunk);
        part.make_ascii_lowercase();
        h.update(part);
    }
}

/// The first 16 bytes of `digest` in lowercase hex.
fn hex16(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    // Hex digits are ASCII: the conversion cannot fail.
    std::str::from_utf8(&out).map(str::to_owned).unwrap_or_default()
}

/// Identity of one delivery: one message to one recipient.
pub fn delivery_key(tenant: &str, provider: &str, provider_message_id: &str, recipient: &str) -> String {
    hash_parts(&[tenant.as_bytes(), provider.as_bytes(), provider_message_id.as_bytes(), recipient.as_bytes()], true)
}

/// What identifies the provider's report an event came from.
#[derive(Debug, Clone, Copy)]
pub enum EventSource<'a> {
    /// The provider gave the event its own id (SNS MessageId, sg_event_id, svix-id ..).
    ProviderEventId(&'a str),
    /// No provider id: the raw body's digest ([`body_digest`], computed once per body,
    /// not once per item: a batch of n items must cost O(body), not O(n × body)) and the
    /// item's index inside it.
    Body { digest: &'a BodyDigest, item: usize },
}

/// SHA-256 of a raw body.
pub type BodyDigest = [u8; 32];

/// The digest [`EventSource::Body`] identifies a body by.
pub fn body_digest(body: &[u8]) -> BodyDigest {
    Sha256::digest(body).into()
}

/// Deterministic event id: tenant, provider, source, event name and recipient.
pub fn event_id(tenant: &str, provider: &str, source: EventSource<'_>, event_name: &str, recipient: &str) -> String {
    match source {
        EventSource::ProviderEventId(id) => hash_parts(&[
            tenant.as_bytes(),
            provider.as_bytes(),
            b"pe",
            id.as_bytes(),
            event_name.as_bytes(),
            recipient.as_bytes(),
        ], true),
        EventSource::Body { digest, item } => hash_parts(&[
                tenant.as_bytes(),
                provider.as_bytes(),
                b"body",
                digest,
                &(item as u64).to_le_bytes(),
                event_name.as_bytes(),
                recipient.as_bytes(),
            ], true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_inputs() {
        let a = event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "a@x.io");
        assert_eq!(a, event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "A@x.io"));
        assert_ne!(a, event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "b@x.io"));
        assert_ne!(a, event_id("u", "ses", EventSource::ProviderEventId("m1"), "Bounce", "a@x.io"));
        let d = body_digest(b"[1]");
        let b1 = event_id("t", "sendgrid", EventSource::Body { digest: &d, item: 0 }, "open", "a@x.io");
        let b2 = event_id("t", "sendgrid", EventSource::Body { digest: &d, item: 1 }, "open", "a@x.io");
        assert_ne!(b1, b2);
        assert_ne!(b1, event_id("t", "sendgrid", EventSource::Body { digest: &body_digest(b"[2]"), item: 0 }, "open", "a@x.io"));
        assert_eq!(a.len(), 32);
        assert_eq!(delivery_key("t", "ses", "m", "A@x.io"), delivery_key("t", "ses", "m", "a@x.io"));
    }

    /// The hand-written hashing gives the bytes `hex::encode` of the digest over a lowercased
    /// copy gave (issue 14), for recipients of every length around the 64-byte chunks.
    #[test]
    fn ids_are_the_hex_of_the_digest_of_the_lowercased_parts() {
        fn before(parts: &[&[u8]]) -> String {
            let mut h = Sha256::new();
            for p in parts {
                h.update((p.len() as u64).to_le_bytes());
                h.update(p);
            }
            hex::encode(&h.finalize()[..16])
        }
        for len in [0, 1, 5, 63, 64, 65, 127, 128, 129, 300] {
            let recipient: String = (0..len).map(|i| ["A", "b", "Z", "é", "@", "Ä"][i % 6]).collect();
            let lower = recipient.to_ascii_lowercase();
            assert_eq!(
                delivery_key("t", "ses", "m", &recipient),
                before(&[b"t", b"ses", b"m", lower.as_bytes()]),
                "{recipient}"
            );
            assert_eq!(
                event_id("t", "ses", EventSource::ProviderEventId("p"), "Bounce", &recipient),
                before(&[b"t", b"ses", b"pe", b"p", b"Bounce", lower.as_bytes()])
            );
            let d = body_digest(b"[1]");
            assert_eq!(
                event_id("t", "sg", EventSource::Body { digest: &d, item: 3 }, "open", &recipient),
                before(&[b"t", b"sg", b"body", &d, &3u64.to_le_bytes(), b"open", lower.as_bytes()])
            );
        }
        // A fixed id (Python's hashlib over the same length-prefixed parts).
        assert_eq!(delivery_key("acme", "ses", "m-1", "A@X.io"), "f47c3d8edec21bd580ee352affb9564f");
    }
}
