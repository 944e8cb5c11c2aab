//! The aggregator's read of stored deliveries (`load_deliveries`, for every key of a batch not
//! in its memory, most of them new) skips the granules that hold none of the keys (migration
//! 12's bloom filter on `deliveries.delivery_key`), and still finds exactly the stored ones,
//! latest version, under FINAL. Before it, 1,000 new keys read nearly every granule of the
//! table (BENCHMARKS.md §10).

use aggregator::store::{load_deliveries, TenantKey};
use e2e::{Pipeline, Stack};

/// The stored keys: lower-case hex SHA-256, as `schemas::ids` makes them.
fn key(i: u64) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("state-reads-{i}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn new_delivery_keys_skip_granules_and_stored_ones_are_found_at_their_latest_version() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "state-reads").await; // migrated
    const STORED: u64 = 120_000; // 15 granules of 8,192 rows
    // the stored deliveries, one part; columns not named take their defaults
    p.query(&format!(
        "INSERT INTO deliveries (tenant, delivery_key, status, version) \
         SELECT 'acme', lower(hex(SHA256(concat('state-reads-', toString(number))))), 'sent', 1 FROM numbers({STORED})"
    ))
    .await;
    // a newer version of ten of them, in a second part
    p.query("INSERT INTO deliveries (tenant, delivery_key, status, version) \
             SELECT 'acme', lower(hex(SHA256(concat('state-reads-', toString(number * 1000))))), 'delivered', 2 FROM numbers(10)")
        .await;
    p.query("OPTIMIZE TABLE deliveries FINAL").await;
    assert_eq!(key(7), p.query("SELECT lower(hex(SHA256('state-reads-7'))) FORMAT TabSeparated").await.trim(), "same keys in Rust and SQL");

    // a batch's keys: 1,000 new ones and 50 stored ones (ten of them with a second version)
    let new: Vec<String> = (0..1000).map(|i| key(10_000_000 + i)).collect();
    let stored: Vec<u64> = (0..50).map(|i| i * 1000).chain([STORED - 1]).collect();
    let mut keys: Vec<TenantKey> = new.iter().map(|k| ("acme".to_string(), k.clone())).collect();
    keys.extend(stored.iter().map(|i| ("acme".to_string(), key(*i))));

    let client = clickhouse::Client::default().with_url(&stack.clickhouse_url).with_database(&p.database);
    let rows = load_deliveries(&client, &keys).await.expect("load_deliveries");
    let mut found: Vec<(String, String, u64)> = rows.iter().map(|r| (r.delivery_key.to_string(), r.status.to_string(), r.version)).collect();
    found.sort();
    let mut expected: Vec<(String, String, u64)> =
        stored.iter().map(|i| (key(*i), if i % 1000 == 0 && *i < 10_000 { "delivered" } else { "sent" }.to_string(), if i % 1000 == 0 && *i < 10_000 { 2 } else { 1 })).collect();
    expected.sort();
    assert_eq!(found, expected, "exactly the stored keys, each at its latest version");

    // what the engine reads for the new keys alone: the granules the skip index keeps
    let list = new.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(",");
    let plan = p
        .query(&format!("EXPLAIN indexes = 1 SELECT * FROM deliveries FINAL WHERE tenant = 'acme' AND delivery_key IN ({list}) FORMAT TabSeparatedRaw"))
        .await;
    assert!(plan.contains("delivery_key_bf"), "the skip index is used:\n{plan}");
    let granules: Vec<(u64, u64)> = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Granules: "))
        .filter_map(|g| g.split_once('/'))
        .filter_map(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .collect();
    let total = granules.iter().map(|g| g.1).max().expect("granule counts in the plan");
    let kept = granules.last().expect("granule counts").0;
    assert!(total >= 14, "{total} granules: the table spans many granules\n{plan}");
    // 1,000 keys × 15 granules × 1/10,000 false positives: ~1.5 granules expected
    assert!(kept * 4 <= total, "{kept} of {total} granules read for 1,000 new keys (≤ a quarter)\n{plan}");
    let nothing = load_deliveries(&client, &keys[..1000]).await.expect("load_deliveries");
    assert!(nothing.is_empty(), "no stored delivery for new keys: {}", nothing.len());
}
