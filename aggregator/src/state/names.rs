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
}

impl Default for Names {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut ids = FxHashMap::default();
        ids.insert(empty.clone(), 0);
        let mut set_ids = FxHashMap::default();
        set_ids.insert(Box::<[u32]>::default(), 0);
        Names { ids, names: vec![empty], set_ids, sets: vec![Box::default()] }
    }
}

impl Names {
    /// The id of `s` (interned on first sight). The empty string is 0, "none".
    pub fn id(&mut self, s: &str) -> u32 {
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
        /// same every time, and its text is the name.
        #[test]
        fn ids_are_first_seen_places(lookups in proptest::collection::vec(proptest::sample::select(vec!["", "a", "b", "ab", "ba", "acme", "beta", "ses", "sms", "tenant-01", "tenant-09", "xxxxxxxx"]), 0..60)) {
            let mut n = Names::default();
            let mut truth: Vec<&str> = vec![""];
            for s in lookups {
                let want = match truth.iter().position(|t| *t == s) {
                    Some(i) => i,
                    None => {
                        truth.push(s);
                        truth.len() - 1
                    }
                };
                let id = n.id(s);
                proptest::prop_assert_eq!(id as usize, want);
                proptest::prop_assert_eq!(n.get(id), s);
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
