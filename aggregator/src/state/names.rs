//! Interned names: the low-cardinality strings deliveries share (broadcast, sequence and
//! template ids, cost units, label sets) are held once and referred to by a `u32`.
//!
//! Grows with the number of distinct values and never shrinks (a broadcast id costs its
//! length plus ~50 bytes once); `sendtrace_aggregator_interned_names` shows the size.
//! High-cardinality values (message ids, recipients, contact ids, error texts) are not interned.

use crate::store::Text;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Id 0 is "none" (and the empty label set).
#[derive(Debug)]
pub struct Names {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    set_ids: FxHashMap<Box<[u32]>, u32>,
    sets: Vec<Box<[u32]>>,
    /// The ids of short names last looked up, by their bytes (`Short`).
    short: Box<[Short; SHORT_SLOTS]>,
}

/// A name of at most 16 bytes held exactly in two words and its length, and its id: every
/// event looks up its tenant and provider (a handful of short names) and the map's lookup,
/// hashing the text and comparing it with `memcmp`, was ~105 instructions each
/// (BENCHMARKS.md §1b). Direct-mapped; a slot another name takes is looked up again.
#[derive(Debug, Clone, Copy)]
struct Short {
    head: u64,
    tail: u64,
    /// `u32::MAX`: empty.
    len: u32,
    id: u32,
}

const SHORT_SLOTS: usize = 64;

/// `s` as two words that, with its length, are exactly its bytes: the first eight and the
/// last eight (overlapping below 16 bytes), the first four and the last four below 8, the
/// bytes themselves below 4. None above 16 bytes.
#[inline(always)]
fn short_words(s: &[u8]) -> Option<(u64, u64)> {
    if let (Some(h), Some(t)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        (s.len() <= 16).then(|| (u64::from_le_bytes(*h), u64::from_le_bytes(*t)))
    } else if let (Some(h), Some(t)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        Some((u64::from(u32::from_le_bytes(*h)), u64::from(u32::from_le_bytes(*t))))
    } else {
        Some((s.iter().fold(0, |w, b| w << 8 | u64::from(*b)), 0))
    }
}

impl Default for Names {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut ids = FxHashMap::default();
        ids.insert(empty.clone(), 0);
        let mut set_ids = FxHashMap::default();
        set_ids.insert(Box::<[u32]>::default(), 0);
        let short = Box::new([Short { head: 0, tail: 0, len: u32::MAX, id: 0 }; SHORT_SLOTS]);
        Names { ids, names: vec![empty], set_ids, sets: vec![Box::default()], short }
    }
}

impl Names {
    /// The id of `s` (interned on first sight). The empty string is 0, "none".
    #[inline]
    pub fn id(&mut self, s: &str) -> u32 {
        let Some((head, tail)) = short_words(s.as_bytes()) else { return self.id_in_map(s) };
        let len = s.len() as u32;
        let at = ((head ^ tail.rotate_left(29) ^ u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHORT_SLOTS;
        if let Some(slot) = self.short.get(at).filter(|c| c.head == head && c.tail == tail && c.len == len) {
            return slot.id;
        }
        let id = self.id_in_map(s);
        if let Some(slot) = self.short.get_mut(at) {
            *slot = Short { head, tail, len, id };
        }
        id
    }

    /// [`Names::id`] from the map.
    fn id_in_map(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    /// The string of `id` ("" for 0 or an unknown id).
    pub fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// The string of `id` for a row, shared with this table, not copied ("" for 0 or an unknown id).
    pub fn text(&self, id: u32) -> Text<'static> {
        match self.names.get(id as usize) {
            Some(n) if id != 0 => Text::Shared(n.clone()),
            _ => Text::Borrowed(""),
        }
    }

    /// `Some(text)` of a non-zero id (a row's nullable attribution column).
    pub fn value(&self, id: u32) -> Option<Text<'static>> {
        (id != 0).then(|| self.text(id))
    }

    /// The label set `set` with `labels` added (sorted by text, without repeats).
    pub fn add_labels<S: AsRef<str>>(&mut self, set: u32, labels: &[S]) -> u32 {
        // the set's ids and the new ones on the stack when they fit (a vector per labelled
        // event was ~70 instructions of its ~220; BENCHMARKS.md §1b)
        const ON_STACK: usize = 16;
        let held = self.sets.get(set as usize).map_or(0, |s| s.len());
        let (mut stack, mut heap) = ([0u32; ON_STACK], Vec::new());
        let ids: &mut [u32] = match stack.get_mut(..held + labels.len()) {
            Some(ids) => ids,
            None => {
                heap.resize(held + labels.len(), 0);
                &mut heap
            }
        };
        if let Some(s) = self.sets.get(set as usize) {
            ids[..held].copy_from_slice(s);
        }
        let mut n = held;
        for l in labels {
            let id = self.id(l.as_ref());
            if id != 0 && !ids[..n].contains(&id) {
                ids[n] = id;
                n += 1;
            }
        }
        if n == held {
            return set;
        }
        let ids = &mut ids[..n];
        ids.sort_unstable_by(|a, b| self.get(*a).cmp(self.get(*b)));
        if let Some(id) = self.set_ids.get(&*ids) {
            return *id;
        }
        let id = self.sets.len() as u32;
        let ids: Box<[u32]> = (&*ids).into();
        self.sets.push(ids.clone());
        self.set_ids.insert(ids, id);
        id
    }

    /// The labels of set `set`, sorted, shared with this table.
    pub fn labels(&self, set: u32) -> Vec<Text<'static>> {
        self.sets.get(set as usize).map(|s| s.iter().map(|id| self.text(*id)).collect()).unwrap_or_default()
    }

    /// The labels of set `set`, sorted (as `labels`, without building a vector).
    pub fn label_texts(&self, set: u32) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.sets.get(set as usize).map_or(&[][..], |s| &s[..]).iter().map(|id| self.get(*id))
    }

    /// Names and label sets held.
    pub fn len(&self) -> usize {
        self.names.len() + self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_sets_are_shared() {
        let mut n = Names::default();
        let a = n.id("bc-1");
        assert_eq!(n.id("bc-1"), a);
        assert_eq!(n.id(""), 0);
        assert_eq!(n.get(a), "bc-1");
        assert_eq!(n.value(0), None);
        let s1 = n.add_labels(0, &["b", "a", "b"]);
        assert_eq!(n.labels(s1), vec!["a", "b"]);
        let s2 = n.add_labels(0, &["a"]);
        let s3 = n.add_labels(s2, &["b"]);
        assert_eq!(s3, s1, "the same set, whatever the order it was built in");
        assert_eq!(n.add_labels(s1, &["a"]), s1);
    }

    proptest::proptest! {
        /// Names looked up in any order: each id is the name's place in first-seen order, the
        /// same every time, and its text is the name (short names through their slots too).
        #[test]
        fn ids_are_first_seen_places(lookups in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Strategy::prop_map(proptest::sample::select(vec!["", "a", "b", "ab", "ba", "acme", "beta", "ses", "sms", "tenant-01", "tenant-09", "xxxxxxxx", "0123456789abcdef", "0123456789abcdefg", "\u{e9}t\u{e9}"]), str::to_string),
            // many names, so that short ones share slots: every length to 20 bytes
            "[ab]{0,20}",
        ], 0..200)) {
            let mut n = Names::default();
            let mut truth: Vec<String> = vec![String::new()];
            for s in lookups {
                let want = match truth.iter().position(|t| *t == s) {
                    Some(i) => i,
                    None => {
                        truth.push(s.clone());
                        truth.len() - 1
                    }
                };
                let id = n.id(&s);
                proptest::prop_assert_eq!(id as usize, want);
                proptest::prop_assert_eq!(n.get(id), s.as_str());
            }
        }

        /// Label lists added one after another to one delivery's set (up to ~40 labels, past
        /// the stack's 16), each also alone to a fresh set: the set holds the sorted union of
        /// the non-empty labels, and one union is one set id however it was reached.
        #[test]
        fn label_sets_are_sorted_unions(adds in proptest::collection::vec(proptest::collection::vec("[a-z]{0,2}", 0..8), 0..6)) {
            let mut n = Names::default();
            let (mut set, mut truth) = (0, std::collections::BTreeSet::new());
            for labels in &adds {
                set = n.add_labels(set, labels);
                truth.extend(labels.iter().filter(|l| !l.is_empty()).cloned());
                proptest::prop_assert_eq!(n.label_texts(set).collect::<Vec<_>>(), truth.iter().map(String::as_str).collect::<Vec<_>>());
                let all: Vec<&String> = truth.iter().collect();
                proptest::prop_assert_eq!(n.add_labels(0, &all), set);
            }
        }
    }
}
