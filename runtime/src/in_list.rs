//! `IN ?` lists of keys in statements ClickHouse accepts: a list is sent in chunks bounded by
//! key count and by bytes (the aggregator's state reads, the API's feed).

/// Most keys in one `IN ?` list.
pub const MAX_IN_LIST_KEYS: usize = 5000;
/// Most bytes one `IN ?` list may take in the statement: each key as the `clickhouse` crate
/// writes it (quoted, `\\`, `'`, `` ` ``, tab and newline escaped with a backslash), plus a
/// comma. ClickHouse refuses statements over `max_query_size` (256 KiB by default; a permanent
/// `SYNTAX_ERROR`), so a batch's keys are sent in chunks of at most this size, 64 KiB below it
/// for the rest of the statement. Keys themselves are bounded before they enter a batch
/// (`admission`). Fewer, longer lists are cheaper to answer: each list is a pass over the
/// granules its keys may be in, so 6,000 new delivery keys against 2 M stored deliveries took
/// 195 ms in lists of 1,000 and 111 ms in one (BENCHMARKS.md §10, "one list per read").
pub const MAX_IN_LIST_BYTES: usize = 192 * 1024;

/// `keys` in consecutive chunks within [`MAX_IN_LIST_KEYS`] and [`MAX_IN_LIST_BYTES`]: one
/// `IN ?` list each.
pub fn in_lists<S: AsRef<str>>(keys: &[S]) -> Vec<&[S]> {
    in_list_chunks(keys, MAX_IN_LIST_KEYS, MAX_IN_LIST_BYTES)
}

/// The bytes `key` takes in a statement's `IN` list: quoted, escaped as the `clickhouse` crate
/// escapes a bound string, and its comma.
pub fn statement_bytes(key: &str) -> usize {
    let escaped = key.bytes().filter(|b| matches!(b, b'\\' | b'\'' | b'`' | b'\t' | b'\n')).count();
    key.len() + escaped + 3
}

/// `keys` in consecutive chunks of at most `max_keys` keys and `max_bytes` bytes in the
/// statement ([`statement_bytes`]; a single longer key forms a chunk of its own).
pub fn in_list_chunks<S: AsRef<str>>(keys: &[S], max_keys: usize, max_bytes: usize) -> Vec<&[S]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, k) in keys.iter().enumerate() {
        let cost = statement_bytes(k.as_ref());
        if i > start && (i - start >= max_keys.max(1) || bytes.saturating_add(cost) > max_bytes) {
            out.extend(keys.get(start..i));
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(cost);
    }
    if start < keys.len() {
        out.extend(keys.get(start..));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_chunked_by_count_and_bytes() {
        let keys: Vec<String> = (0..2500).map(|i| format!("{i:0>300}@example.com")).collect();
        let chunks = in_lists(&keys);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), keys.len(), "every key once");
        assert_eq!(chunks.concat(), keys, "in order");
        for c in &chunks {
            let bytes: usize = c.iter().map(|k| statement_bytes(k)).sum();
            assert!(c.len() <= MAX_IN_LIST_KEYS && bytes <= MAX_IN_LIST_BYTES, "{} keys, {bytes} bytes", c.len());
        }
        let short: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        assert_eq!(in_lists(&short).len(), 1, "2,500 short keys: one list");
        assert_eq!(in_list_chunks(&short, 1000, MAX_IN_LIST_BYTES).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        // a key longer than the budget still goes, alone
        let long = vec!["a".to_string(), "b".repeat(100), "c".to_string()];
        assert_eq!(in_list_chunks(&long, 10, 50).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(in_list_chunks::<String>(&[], 10, 50).is_empty(), "no keys, no query");
    }
}
