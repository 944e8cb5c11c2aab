//! The delivery's contact id and the event ids it has applied, in one exact-length allocation:
//! `[contact length: u16][contact bytes][48-bit hashes, 6 bytes each, sorted]`.
//!
//! 48 bits: two distinct events of one delivery (~6 on average) collide with a probability
//! of ~15 / 2^48 ≈ 5 × 10⁻¹⁴, i.e. about one wrongly ignored event in 2 × 10¹³ deliveries.
//! One allocation instead of two, no spare capacity: ~22 bytes less per delivery than a
//! `Vec<u64>` plus a `String`. A contact id longer than 65,535 bytes is not held (the event
//! row keeps it; `sendtrace_aggregator_contact_id_too_long_total` counts them).

/// Bytes per hash.
const W: usize = 6;
const MASK: u64 = (1 << 48) - 1;
/// Bytes of the contact length prefix.
const P: usize = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids(Box<[u8]>);

/// 48 bits of an event id (itself a SHA-256 prefix in hex).
pub fn event_hash(event_id: &str) -> u64 {
    // Ours: 16 lower-case hex digits first, read eight at a time (`from_str_radix` per digit
    // was ~300 instructions per event, 3 % of a batch; BENCHMARKS.md §1b). The same value.
    if let Some(h) = event_id.as_bytes().get(..16).and_then(super::key::hex16) {
        return h >> 16;
    }
    event_hash_slow(event_id)
}

/// [`event_hash`] for any other id (upper case, shorter, not hex: a foreign producer's).
fn event_hash_slow(event_id: &str) -> u64 {
    let h = u64::from_str_radix(event_id.get(..16).unwrap_or(event_id), 16).unwrap_or_else(|_| {
        // Not hex (foreign producer): FNV-1a of the bytes.
        super::key::fnv1a(super::key::FNV_OFFSET, event_id.as_bytes())
    });
    h >> 16
}

/// A stored hash: six bytes, big-endian.
#[inline]
fn read48(b: &[u8; W]) -> u64 {
    let mut w = [0u8; 8];
    w[8 - W..].copy_from_slice(b);
    u64::from_be_bytes(w)
}

impl Ids {
    /// The one allocation (for `StateStore::prefetch`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn contact_len(&self) -> usize {
        match self.0.get(..P) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]) as usize,
            _ => 0,
        }
    }

    /// Where the hashes start.
    fn start(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            P + self.contact_len()
        }
    }

    pub fn contact(&self) -> Option<&str> {
        let n = self.contact_len();
        if n == 0 {
            return None;
        }
        let b = self.0.get(P..P + n)?;
        // Not checked again: `from_utf8`'s call was ~140 instructions per delivery row written,
        // an inline ASCII check ~35 (BENCHMARKS.md §1b).
        // SAFETY: these bytes are a `&str`'s, whole: the contact is written only by `build` and
        // `set_contact`, each from a `&str` (its length in the prefix, its bytes after it), and
        // `insert` copies the prefix and the contact unchanged; nothing else writes `self.0`.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    }

    /// Number of event hashes.
    pub fn len(&self) -> usize {
        self.0.len().saturating_sub(self.start()) / W
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn build(contact: &str, hashes: &[u64]) -> Box<[u8]> {
        let mut v = Vec::with_capacity(P + contact.len() + hashes.len() * W);
        v.extend_from_slice(&(contact.len() as u16).to_be_bytes());
        v.extend_from_slice(contact.as_bytes());
        for h in hashes {
            v.extend_from_slice(&h.to_be_bytes()[8 - W..]);
        }
        v.into_boxed_slice()
    }

    /// Adds `h` (48 bits); false if it was there. One pass over the hashes (a delivery holds
    /// a few; the copy below reads them all anyway), the new allocation filled by inline copies
    /// (a binary search re-reading the prefix per probe and three `memcpy` calls were ~300
    /// instructions per event; BENCHMARKS.md §1b).
    pub fn insert(&mut self, h: u64) -> bool {
        use crate::store::rowbinary::extend_short;
        let h = h & MASK;
        let old = &self.0[..];
        let start = self.start();
        let (words, _) = old.get(start..).unwrap_or_default().as_chunks::<W>();
        let mut pos = words.len();
        for (i, w) in words.iter().enumerate() {
            let x = read48(w);
            if x >= h {
                if x == h {
                    return false;
                }
                pos = i;
                break;
            }
        }
        let at = start + pos * W;
        let mut v = Vec::with_capacity(old.len().max(P) + W);
        if old.is_empty() {
            v.extend_from_slice(&0u16.to_be_bytes());
        } else {
            extend_short(&mut v, old.get(..at).unwrap_or_default());
        }
        let h = h.to_be_bytes();
        extend_short(&mut v, h.get(8 - W..).unwrap_or_default());
        extend_short(&mut v, old.get(at..).unwrap_or_default());
        self.0 = v.into_boxed_slice();
        true
    }

    /// Replaces the contact id; false (and nothing changed) if it is longer than 65,535 bytes.
    pub fn set_contact(&mut self, contact: &str) -> bool {
        if contact.len() > u16::MAX as usize {
            return false;
        }
        // the hashes' bytes as they are (decoding them into a vector and back, with its own
        // allocation, was ~250 instructions a delivery; BENCHMARKS.md §1b)
        let hashes = self.0.get(self.start()..).unwrap_or_default();
        let mut v = Vec::with_capacity(P + contact.len() + hashes.len());
        v.extend_from_slice(&(contact.len() as u16).to_be_bytes());
        crate::store::rowbinary::extend_short(&mut v, contact.as_bytes());
        crate::store::rowbinary::extend_short(&mut v, hashes);
        self.0 = v.into_boxed_slice();
        true
    }

    pub fn to_vec(&self) -> Vec<u64> {
        self.hashes().collect()
    }

    /// The hashes in order, read in one pass (`at` finds the start again per hash).
    pub fn hashes(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.0.get(self.start()..).unwrap_or_default().as_chunks::<W>().0.iter().map(read48)
    }

    /// From a stored row (hashes in any order; 64-bit hashes of older rows are cut to their top 48 bits).
    pub fn from_stored(contact: Option<&str>, mut hashes: Vec<u64>) -> Ids {
        for h in &mut hashes {
            if *h > MASK {
                *h >>= 16;
            }
        }
        hashes.sort_unstable();
        hashes.dedup();
        let contact = contact.filter(|c| c.len() <= u16::MAX as usize).unwrap_or_default();
        if contact.is_empty() && hashes.is_empty() {
            return Ids::default();
        }
        Ids(Self::build(contact, &hashes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every id hashes as it did (`event_hash_slow`, `from_str_radix` then FNV-1a): the
        /// hashes are stored with the deliveries, so a change would make replays look new.
        #[test]
        fn event_hashes_are_as_they_were(id in proptest::prop_oneof!["[0-9a-f]{16,70}", "[0-9a-fA-F+g]{0,20}", "[0-9a-f]{15}[^0-9a-f]{1,3}", proptest::prelude::any::<String>()]) {
            proptest::prop_assert_eq!(event_hash(&id), event_hash_slow(&id));
        }

        /// Inserts in any order, with repeats, a contact set before, between or never (and maybe
        /// replaced after them): the set of 48-bit hashes, sorted, `insert` false for a repeat,
        /// the last contact kept, and the allocation exactly as long as what it holds.
        #[test]
        fn inserts_keep_a_sorted_set_in_an_exact_allocation(
            hashes in proptest::collection::vec(proptest::prop_oneof![0u64..8, proptest::prelude::any::<u64>()], 0..40),
            contact in proptest::option::of("[a-zé]{1,12}"),
            contact_at in 0usize..41,
            again in proptest::option::of("[a-z0-9]{1,70}"),
        ) {
            let mut ids = Ids::default();
            let mut truth = std::collections::BTreeSet::new();
            for (i, h) in hashes.iter().enumerate() {
                if i == contact_at {
                    if let Some(c) = &contact {
                        ids.set_contact(c);
                    }
                }
                proptest::prop_assert_eq!(ids.insert(*h), truth.insert(h & MASK));
            }
            if contact_at >= hashes.len() {
                if let Some(c) = &contact {
                    ids.set_contact(c);
                }
            }
            // a contact replaced, shorter or longer, after the hashes
            if let Some(c) = &again {
                ids.set_contact(c);
            }
            let contact = again.or(contact);
            proptest::prop_assert_eq!(ids.to_vec(), truth.iter().copied().collect::<Vec<_>>());
            proptest::prop_assert_eq!(ids.contact(), contact.as_deref());
            let held = if ids.as_bytes().is_empty() { 0 } else { P + contact.as_ref().map_or(0, |c| c.len()) + truth.len() * W };
            proptest::prop_assert_eq!(ids.as_bytes().len(), held);
        }
    }

    #[test]
    fn contact_and_sorted_48_bit_hashes_in_one_allocation() {
        let mut s = Ids::default();
        assert_eq!((s.len(), s.contact()), (0, None));
        for h in [5u64, 1, MASK, 3, 5] {
            s.insert(h);
        }
        assert_eq!(s.to_vec(), vec![1, 3, 5, MASK]);
        assert!(!s.insert(3));
        assert!(s.set_contact("contact-7"));
        assert_eq!(s.contact(), Some("contact-7"));
        assert_eq!(s.to_vec(), vec![1, 3, 5, MASK], "hashes kept when the contact changes");
        assert!(s.insert(2));
        assert_eq!(s.to_vec(), vec![1, 2, 3, 5, MASK]);
        assert_eq!(s.contact(), Some("contact-7"));
        assert!(s.set_contact("kontakt-ü-7"), "not ASCII");
        assert_eq!(s.contact(), Some("kontakt-ü-7"));
        assert!(s.set_contact("contact-7"));
        assert!(!s.set_contact(&"x".repeat(70_000)));
        assert_eq!(s.contact(), Some("contact-7"));
        let mut c = Ids::default();
        assert!(c.set_contact("first"));
        assert!(c.insert(9));
        assert_eq!((c.to_vec(), c.contact()), (vec![9], Some("first")));
        let id = schemas::ids::event_id("t", "ses", schemas::ids::EventSource::ProviderEventId("x"), "Open", "a@x.io");
        let h = event_hash(&id);
        assert_eq!(h, u64::from_str_radix(&id[..12], 16).unwrap());
        // a row written with 64-bit hashes reloads to the same set
        let old = u64::from_str_radix(&id[..16], 16).unwrap();
        let r = Ids::from_stored(Some("c"), vec![old, 7]);
        assert_eq!((r.to_vec(), r.contact()), (vec![7, h], Some("c")));
        assert_eq!(Ids::from_stored(None, vec![]), Ids::default());
    }
}
