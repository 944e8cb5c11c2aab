//! The times a delivery row keeps, in 4 bytes each for the common ones.
//!
//! The row keeps the first time of each milestone and the last of delivered, opened and
//! clicked (14 columns). The nine common ones are offsets in milliseconds from a per-delivery
//! base (whole seconds, set a day before the first time seen, so earlier out-of-order events
//! still fit), which covers ~48 days after it; a time outside that range, and the five rare
//! milestones (bounced, which comes with an error text that needs `Rare` anyway, complained,
//! failed, unsubscribed, replied), are kept as full `i64` in the delivery's `Rare` part.
//! Exact to the millisecond either way.

use super::Rare;
use schemas::EventType;

/// One kept time (the `deliveries` column it feeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    FirstQueued,
    FirstSent,
    FirstDelivered,
    LastDelivered,
    FirstOpened,
    LastOpened,
    FirstClicked,
    LastClicked,
    FirstRead,
    // not compact: in `Rare`
    FirstBounced,
    FirstComplained,
    FirstFailed,
    FirstUnsubscribed,
    FirstReplied,
}

impl Slot {
    pub const ALL: [Slot; SLOTS] = [
        Slot::FirstQueued,
        Slot::FirstSent,
        Slot::FirstDelivered,
        Slot::LastDelivered,
        Slot::FirstOpened,
        Slot::LastOpened,
        Slot::FirstClicked,
        Slot::LastClicked,
        Slot::FirstRead,
        Slot::FirstBounced,
        Slot::FirstComplained,
        Slot::FirstFailed,
        Slot::FirstUnsubscribed,
        Slot::FirstReplied,
    ];
}

pub const SLOTS: usize = 14;
/// Slots below this index are compact offsets.
pub const COMPACT: usize = 9;
const NONE: u32 = u32::MAX;
const SPILLED: u32 = u32::MAX - 1;
/// The base is this far before the first time seen.
const MARGIN_MS: i64 = 86_400_000;

impl Slot {
    pub fn first_of(t: EventType) -> Option<Slot> {
        Some(match t {
            EventType::Queued => Slot::FirstQueued,
            EventType::Sent => Slot::FirstSent,
            EventType::Delivered => Slot::FirstDelivered,
            EventType::Opened => Slot::FirstOpened,
            EventType::Clicked => Slot::FirstClicked,
            EventType::Read => Slot::FirstRead,
            EventType::Bounced => Slot::FirstBounced,
            EventType::Complained => Slot::FirstComplained,
            EventType::Failed => Slot::FirstFailed,
            EventType::Unsubscribed => Slot::FirstUnsubscribed,
            EventType::Replied => Slot::FirstReplied,
            EventType::Deferred | EventType::Unknown => return None,
        })
    }
    pub fn last_of(t: EventType) -> Option<Slot> {
        match t {
            EventType::Delivered => Some(Slot::LastDelivered),
            EventType::Opened => Some(Slot::LastOpened),
            EventType::Clicked => Some(Slot::LastClicked),
            _ => None,
        }
    }
}

/// Full times: the rare slots, and compact ones that did not fit (`i64::MIN` = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WideTimes {
    rare: [i64; SLOTS - COMPACT],
    spilled: Option<Box<[i64; COMPACT]>>,
}

impl Default for WideTimes {
    fn default() -> Self {
        WideTimes { rare: [i64::MIN; SLOTS - COMPACT], spilled: None }
    }
}

impl WideTimes {
    fn get(&self, i: usize) -> Option<i64> {
        let t = match i.checked_sub(COMPACT) {
            Some(r) => self.rare.get(r).copied(),
            None => self.spilled.as_ref().and_then(|s| s.get(i).copied()),
        };
        t.filter(|t| *t != i64::MIN)
    }
    fn set(&mut self, i: usize, t: i64) {
        let slot = match i.checked_sub(COMPACT) {
            Some(r) => self.rare.get_mut(r),
            None => self.spilled.get_or_insert_with(|| Box::new([i64::MIN; COMPACT])).get_mut(i),
        };
        if let Some(slot) = slot {
            *slot = t;
        }
    }
}

/// The compact part: base + offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Seconds since the epoch; `NONE` until the first time is set.
    base_secs: u32,
    offsets: [u32; COMPACT],
}

impl Default for Times {
    fn default() -> Self {
        Times { base_secs: NONE, offsets: [NONE; COMPACT] }
    }
}

impl Times {
    pub fn get(&self, wide: Option<&WideTimes>, slot: Slot) -> Option<i64> {
        let i = slot as usize;
        let from_wide = || wide.and_then(|w| w.get(i));
        match self.offsets.get(i) {
            None => from_wide(),
            Some(&NONE) => None,
            Some(&SPILLED) => from_wide(),
            Some(off) => Some(self.base_secs as i64 * 1000 + *off as i64),
        }
    }

    /// Every slot's time, by slot index ([`Slot::ALL`]'s order): [`Self::get`] of each, read
    /// in one pass (a delivery row reads all fourteen; one at a time each was an index check and
    /// a four-way match, ~140 instructions a row; BENCHMARKS.md §1b). Without a wide part, the
    /// rare slots are none and a compact one is its offset or none.
    #[inline]
    pub fn all(&self, wide: Option<&WideTimes>) -> [Option<i64>; SLOTS] {
        let mut out = [None; SLOTS];
        match wide {
            None => {
                let base = self.base_secs as i64 * 1000;
                for (o, off) in out.iter_mut().zip(self.offsets) {
                    // (`SPILLED` without a wide part reads as none, as `get` reads it)
                    *o = (off < SPILLED).then_some(base + off as i64);
                }
            }
            Some(_) => {
                for (o, slot) in out.iter_mut().zip(Slot::ALL) {
                    *o = self.get(wide, slot);
                }
            }
        }
        out
    }

    /// Sets `slot` to `t`, in the rare part when it is a rare slot or does not fit.
    pub fn set(&mut self, rare: &mut Option<Box<Rare>>, slot: Slot, t: i64) {
        let i = slot as usize;
        if let Some(off) = self.offsets.get_mut(i) {
            if self.base_secs == NONE {
                // out of range (before 1970 or after 2106): stays NONE and every time spills
                self.base_secs = u32::try_from(t.saturating_sub(MARGIN_MS).div_euclid(1000)).unwrap_or(NONE);
            }
            let d = if self.base_secs == NONE { -1 } else { t.checked_sub(self.base_secs as i64 * 1000).unwrap_or(-1) };
            if (0..SPILLED as i64).contains(&d) {
                *off = d as u32;
                return;
            }
            *off = SPILLED;
        }
        rare.get_or_insert_with(Default::default).times.set(i, t);
    }

    /// Keeps the earlier of the stored time and `t`.
    pub fn lower(&mut self, rare: &mut Option<Box<Rare>>, slot: Slot, t: i64) {
        if self.get(rare.as_deref().map(|r| &r.times), slot).is_none_or(|c| t < c) {
            self.set(rare, slot, t);
        }
    }

    /// Keeps the later of the stored time and `t`.
    pub fn raise(&mut self, rare: &mut Option<Box<Rare>>, slot: Slot, t: i64) {
        if self.get(rare.as_deref().map(|r| &r.times), slot).is_none_or(|c| t > c) {
            self.set(rare, slot, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_rare_and_far_times_are_exact() {
        let mut t = Times::default();
        let mut rare = None;
        let t0 = 1_767_225_600_123;
        t.set(&mut rare, Slot::FirstDelivered, t0);
        assert!(rare.is_none(), "a common time fits");
        t.lower(&mut rare, Slot::FirstSent, t0 - 3_600_000); // an hour earlier, arriving later
        t.raise(&mut rare, Slot::LastOpened, t0 + 60 * 86_400_000); // 60 days later: spills
        t.set(&mut rare, Slot::FirstReplied, t0 + 5);
        t.lower(&mut rare, Slot::FirstSent, t0 - 30 * 86_400_000); // far before the base: spills
        let w = rare.as_deref().map(|r| &r.times);
        assert_eq!(t.get(w, Slot::FirstDelivered), Some(t0));
        assert_eq!(t.get(w, Slot::FirstSent), Some(t0 - 30 * 86_400_000));
        assert_eq!(t.get(w, Slot::LastOpened), Some(t0 + 60 * 86_400_000));
        assert_eq!(t.get(w, Slot::FirstReplied), Some(t0 + 5));
        assert_eq!(t.get(w, Slot::FirstOpened), None);
        assert_eq!(t.get(w, Slot::FirstComplained), None);
        // a later time that fits again replaces a spilled one
        t.raise(&mut rare, Slot::LastOpened, i64::MAX);
        assert_eq!(t.get(rare.as_deref().map(|r| &r.times), Slot::LastOpened), Some(i64::MAX));
    }

    proptest::proptest! {
        /// Any times in any order: every slot reads back exactly the earliest (first) or
        /// latest (last) time given, whether it fits the compact part or not (all but
        /// `i64::MIN`, the wide part's "none"; `admission` refuses it long before).
        #[test]
        fn any_times_are_kept_exactly(ops in proptest::collection::vec((0usize..SLOTS, proptest::prop_oneof![(i64::MIN + 1)..=i64::MAX, 1_700_000_000_000i64..1_800_000_000_000]), 1..20)) {
            let (mut t, mut rare) = (Times::default(), None);
            let mut want: [Option<i64>; SLOTS] = [None; SLOTS];
            for (i, ms) in ops {
                let slot = Slot::ALL[i];
                let last = matches!(slot, Slot::LastDelivered | Slot::LastOpened | Slot::LastClicked);
                if last { t.raise(&mut rare, slot, ms) } else { t.lower(&mut rare, slot, ms) }
                let w = &mut want[i];
                *w = Some(match *w { None => ms, Some(c) if last => c.max(ms), Some(c) => c.min(ms) });
            }
            for (i, w) in want.iter().enumerate() {
                proptest::prop_assert_eq!(t.get(rare.as_deref().map(|r| &r.times), Slot::ALL[i]), *w);
            }
            // and all at once, as a delivery row reads them; with the wide part, and (compact
            // slots alone) without one
            proptest::prop_assert_eq!(t.all(rare.as_deref().map(|r| &r.times)), want);
            let compact = |w: &[Option<i64>; SLOTS]| -> Vec<Option<i64>> { w.iter().take(COMPACT).copied().collect() };
            if rare.is_none() {
                proptest::prop_assert_eq!(compact(&t.all(None)), compact(&want));
            }
        }
    }
}
