//! `IN ?` lists of keys in statements ClickHouse accepts: a list is sent in chunks bounded by
//! key count and by bytes (the aggregator's state reads, the API's feed).

/// Most keys in one `IN ?` list.
pub const MAX_IN_LIST_KEYS: usize = 1000;
/// Most bytes one `IN ?` list may take in the statement, counting each key as if every byte
/// were escaped, plus quotes and comma. ClickHouse refuses statements over `max_query_size`
/// (256 KiB by default; a permanent `SYNTAX_ERROR`), so a batch's keys are sent in chunks of
/// at most this size. Keys themselves are bounded before they enter a batch (`admission`).
pub const MAX_IN_LIST_BYTES: usize = 64 * 1024;

/// `keys` in consecutive chunks within [`MAX_IN_LIST_KEYS`] and [`MAX_IN_LIST_BYTES`]: one
/// `IN ?` list each.
pub fn in_lists<S: AsRef<str>>(keys: &[S]) -> Vec<&[S]> {
    in_list_chunks(keys, MAX_IN_LIST_KEYS, MAX_IN_LIST_BYTES)
}

/// `keys` in consecutive chunks of at most `max_keys` keys and `max_bytes` bytes (worst-case
/// escaped; a single longer key forms a chunk of its own).
pub fn in_list_chunks<S: AsRef<str>>(keys: &[S], max_keys: usize, max_bytes: usize) -> Vec<&[S]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, k) in keys.iter().enumerate() {
        let cost = k.as_ref().len().saturating_mul(2).saturating_add(3);
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
            let worst: usize = c.iter().map(|k| 2 * k.len() + 3).sum();
            assert!(c.len() <= MAX_IN_LIST_KEYS && worst <= MAX_IN_LIST_BYTES, "{} keys, {worst} bytes", c.len());
        }
        let short: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        assert_eq!(in_list_chunks(&short, 1000, MAX_IN_LIST_BYTES).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        // a key longer than the budget still goes, alone
        let long = vec!["a".to_string(), "b".repeat(100), "c".to_string()];
        assert_eq!(in_list_chunks(&long, 10, 50).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(in_list_chunks::<String>(&[], 10, 50).is_empty(), "no keys, no query");
    }
}
