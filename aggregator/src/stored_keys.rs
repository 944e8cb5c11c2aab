//! Which deliveries of a partition have a stored state: an exact filter that lets a unit's new
//! deliveries skip the `deliveries` read.
//!
//! Every delivery a unit touches that is not in memory is asked of `deliveries FINAL`
//! (`store::load_deliveries`), and in a live stream most of them are new: nothing is stored.
//! Migration 12's bloom filter keeps that read from scanning the tenant, but ClickHouse tests
//! every key of the list against every granule the primary key leaves (a granule for each key,
//! once the table has more granules than the list has keys), and its bloom filter is no finer
//! than 1 in 10,000 whatever is asked (0.0001, 0.00001 and 0.000001 build the same 2.4 bytes
//! per row on 26.9), so a list of k new keys reads about k × (1 − (1 − 10⁻⁴)ᵏ) granules of
//! 8,192 rows: ~2,000 granules (16 M rows) for a unit of 5,000 new deliveries once the tenant
//! has more than 5,000 granules (BENCHMARKS.md §10, "new deliveries without a read").
//!
//! So each partition's aggregator keeps the fingerprints of the deliveries stored for its
//! partition, loaded once when it claims the partition and grown with every delivery it writes,
//! and asks ClickHouse only for keys whose fingerprint it holds. It is exact: a fingerprint is
//! added before the delivery's first insert (a superset of what is stored: a fingerprint of a
//! delivery whose insert never landed only costs a read), and a key the filter does not hold
//! was never stored, because
//! - the events topic is keyed by delivery key, and librdkafka's default partitioner
//!   (`consistent_random`: CRC-32 of the key modulo the partition count) puts every event of a
//!   delivery in one partition: [`partition_of`], which ClickHouse computes as
//!   `CRC32(delivery_key) % n`, so the load asks exactly for the stored keys this partition can
//!   see, whichever aggregator wrote them and under whatever partition count;
//! - a key seen on another partition than [`partition_of`] says (a producer with another
//!   partitioner, a topic whose partition count changed under a running aggregator) turns the
//!   filter off for the partition until it is claimed again: every key is read, as before;
//! - the fingerprint is SipHash-2-4 (zero keys) of `tenant/delivery_key`, which is ClickHouse's
//!   `sipHash64(concat(tenant, '/', delivery_key))`; a collision only costs a read.
//!
//! Memory: 9–18 bytes per stored delivery of the partition (a hash set of `u64`), bounded by
//! `max_stored_keys_in_memory` (split over the partitions held); a partition with more stored
//! deliveries than its share goes without the filter.

use crate::store::SinkError;
use rustc_hash::FxHashSet;
use std::hash::Hasher;

/// The partition librdkafka's default partitioner gives a record keyed `key` on a topic of
/// `partitions` partitions (`consistent_random`: CRC-32 of a non-empty key, modulo the count;
/// ClickHouse's `CRC32(key) % partitions`).
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    let n = partitions.max(1) as u32;
    (crc32fast::hash(key.as_bytes()) % n) as i32
}

/// A delivery's fingerprint: ClickHouse's `sipHash64(concat(tenant, '/', delivery_key))`.
pub fn fingerprint(tenant: &str, key: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher24::new();
    h.write(tenant.as_bytes());
    h.write(b"/");
    h.write(key.as_bytes());
    h.finish()
}

/// The statement [`StoredKeys::load`] sends: the fingerprints of every delivery stored whose key
/// falls in partition `?` of `?`. (Each version of a delivery gives its fingerprint again, and
/// the set keeps one: the bound is on distinct deliveries, so the rows are read until it is
/// passed, never cut by a `LIMIT` that could leave out a stored delivery.)
pub const LOAD: &str = "SELECT sipHash64(concat(tenant, '/', delivery_key)) FROM deliveries WHERE CRC32(delivery_key) % ? = ?";

/// The fingerprints of the deliveries stored for one partition (and of those about to be).
#[derive(Debug)]
pub struct StoredKeys {
    partition: i32,
    partitions: i32,
    keys: FxHashSet<u64>,
    max: usize,
}

/// What the filter says of a key not in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Maybe stored: read it.
    Read,
    /// Never stored: a new delivery.
    New,
    /// The key belongs to another partition by [`partition_of`]: the filter cannot answer.
    Foreign,
}

impl StoredKeys {
    /// An empty filter (nothing stored for the partition).
    pub fn empty(partition: i32, partitions: i32, max: usize) -> Self {
        StoredKeys { partition, partitions, keys: FxHashSet::default(), max }
    }

    /// Loads the fingerprints of `partition` of `partitions` from `deliveries`; `Ok(None)` when
    /// more than `max` deliveries are stored there (the partition goes without the filter).
    pub async fn load(client: &clickhouse::Client, partition: i32, partitions: i32, max: usize) -> Result<Option<Self>, SinkError> {
        let mut out = StoredKeys::empty(partition, partitions, max);
        let mut rows = client.query(LOAD).bind(partitions.max(1) as u32).bind(partition as u32).fetch::<u64>()?;
        while let Some(h) = rows.next().await? {
            if out.keys.insert(h) && out.keys.len() > max {
                // (the cursor dropped here ends the response)
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `tenant`'s `key`, not in memory, has to be read.
    pub fn lookup(&self, tenant: &str, key: &str) -> Lookup {
        if partition_of(key, self.partitions) != self.partition {
            Lookup::Foreign
        } else if self.keys.contains(&fingerprint(tenant, key)) {
            Lookup::Read
        } else {
            Lookup::New
        }
    }

    /// Records that `tenant`'s `key` may be stored from now on (before its insert); false when
    /// that would hold more than the bound (then the filter must go).
    pub fn insert(&mut self, tenant: &str, key: &str) -> bool {
        self.keys.insert(fingerprint(tenant, key));
        self.keys.len() <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_partitions_are_the_documented_functions() {
        // SipHash-2-4 with zero keys (the reference implementation's output for these inputs,
        // as ClickHouse 26.9's sipHash64 returns them; tests/tests/state_reads.rs asks the engine)
        assert_eq!(fingerprint("acme", "ABCDEF0123456789"), 15654006632482908571);
        // CRC-32 (IEEE, as zlib and librdkafka's rd_crc32): CRC32('ABCDEF0123456789') = 2635035449
        assert_eq!(crc32fast::hash(b"ABCDEF0123456789"), 2635035449);
        assert_eq!(partition_of("ABCDEF0123456789", 4), (2635035449u32 % 4) as i32);
        assert_eq!(partition_of("ABCDEF0123456789", 1), 0);
        assert_eq!(partition_of("ABCDEF0123456789", 0), 0, "a count of 0 is read as 1");
    }

    #[test]
    fn a_key_is_read_only_if_its_fingerprint_is_held() {
        let keys: Vec<String> = (0..200).map(|i| format!("{i:032x}")).collect();
        let p = partition_of(&keys[0], 3);
        let mut f = StoredKeys::empty(p, 3, 1_000);
        let (mine, foreign): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| partition_of(k, 3) == p);
        assert!(!mine.is_empty() && !foreign.is_empty());
        for k in mine.iter().step_by(2) {
            assert!(f.insert("acme", k));
        }
        for (i, k) in mine.iter().enumerate() {
            let want = if i % 2 == 0 { Lookup::Read } else { Lookup::New };
            assert_eq!(f.lookup("acme", k), want, "{k}");
            assert_eq!(f.lookup("other", k), Lookup::New, "another tenant's delivery of the same key");
        }
        for k in foreign {
            assert_eq!(f.lookup("acme", k), Lookup::Foreign);
        }
    }

    #[test]
    fn the_bound_is_kept() {
        let mut f = StoredKeys::empty(0, 1, 2);
        assert!(f.insert("t", "a"));
        assert!(f.insert("t", "b"));
        assert!(f.insert("t", "b"), "the same key again adds nothing");
        assert!(!f.insert("t", "c"), "a third is over the bound");
    }
}
