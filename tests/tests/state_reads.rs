//! The aggregator's reads of stored state cost what a batch asks for, not what the table holds,
//! and still return exactly the stored rows under FINAL (BENCHMARKS.md §10):
//! - stored deliveries (`load_deliveries`, for every key of a batch not in its memory, most of
//!   them new) skip the granules that hold none of the keys (migration 12's bloom filter on
//!   `deliveries.delivery_key`); before it, 1,000 new keys read nearly every granule;
//! - soft-bounce history (`soft_bounce_history`, every batch with a soft email bounce) reads
//!   `soft_bounces` (migration 13) through its primary index instead of scanning the tenant's
//!   `events`, and equals a brute force over the generated events;
//! - stored events of re-attributed deliveries (`load_events`) skip granules through migration
//!   13's bloom filter on `events.delivery_key`.

use aggregator::store::{load_deliveries, load_events, soft_bounce_history, TenantKey};
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

/// (kept, total) granules of the plan of `select` (`EXPLAIN indexes = 1`), after asserting that
/// `index` took part.
async fn granules(p: &Pipeline, select: &str, index: &str) -> (u64, u64) {
    let plan = p.query(&format!("EXPLAIN indexes = 1 {select} FORMAT TabSeparatedRaw")).await;
    assert!(plan.contains(index), "{index} is used:\n{plan}");
    let counts: Vec<(u64, u64)> = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Granules: "))
        .filter_map(|g| g.split_once('/'))
        .filter_map(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .collect();
    let total = counts.iter().map(|g| g.1).max().unwrap_or_else(|| panic!("granule counts in the plan:\n{plan}"));
    (counts.last().expect("granule counts").0, total)
}

/// A small deterministic generator (splitmix64): the same events on every run.
struct Gen(u64);
impl Gen {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// One generated event row, as the columns the reads look at.
#[derive(Clone, Debug)]
struct Gen1 {
    tenant: &'static str,
    event_id: String,
    delivery_key: String,
    recipient: String,
    channel: &'static str,
    event_type: &'static str,
    bounce_class: &'static str,
    occurred_ms: i64,
}

fn values(rows: &[Gen1]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "('{}','{}','{}','{}','{}','{}','{}',fromUnixTimestamp64Milli(toInt64({}), 'UTC'))",
                r.tenant, r.event_id, r.delivery_key, r.recipient, r.channel, r.event_type, r.bounce_class, r.occurred_ms
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

const EVENT_COLUMNS: &str = "events (tenant, event_id, delivery_key, recipient, channel, event_type, bounce_class, occurred_at)";

#[tokio::test(flavor = "multi_thread")]
async fn soft_bounce_history_reads_few_granules_and_equals_the_events_brute_force() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "state-reads-soft").await; // migrated
    let day = 86_400_000i64;
    // the first day of the month two months back: the generated 40 days span two monthly
    // partitions whatever the date, and lie within the events' TTL
    let base = {
        use chrono::{Datelike, TimeZone};
        let m = chrono::Utc::now().date_naive().with_day(1).unwrap() - chrono::Months::new(2);
        chrono::Utc.from_utc_datetime(&m.and_hms_opt(0, 0, 0).unwrap()).timestamp_millis()
    };
    // 240,000 soft bounces of other addresses, one each, ahead of the generated ones in the
    // primary key ('bulk-…' < 'user…'): the tenant's history the old read looked through
    const BULK: u64 = 240_000;
    p.query(&format!(
        "INSERT INTO {EVENT_COLUMNS} SELECT 'acme', concat('b', toString(number)), lower(hex(SHA256(toString(number)))), \
         concat('bulk-', toString(number), '@x.test'), 'email', 'bounced', 'soft', fromUnixTimestamp64Milli(toInt64({base} + number), 'UTC') \
         FROM numbers({BULK})"
    ))
    .await;
    // 4,000 generated events of 40 addresses (recipients in mixed case): bounces soft and hard,
    // other types, SMS, another tenant, over 40 days
    let mut g = Gen(13);
    let mut rows: Vec<Gen1> = (0..4000)
        .map(|i| {
            let a = g.next(40);
            let recipient = if g.next(2) == 0 { format!("User{a}@Example.com") } else { format!("user{a}@example.com") };
            let event_type = if g.next(10) < 6 { "bounced" } else { "delivered" };
            let bounce_class = match (event_type, g.next(10)) {
                ("bounced", 0..=6) => "soft",
                ("bounced", _) => "hard",
                _ => "",
            };
            Gen1 {
                tenant: if g.next(10) == 0 { "other" } else { "acme" },
                event_id: format!("e{i}"),
                delivery_key: format!("d{}", i / 3),
                recipient,
                channel: if g.next(10) == 0 { "sms" } else { "email" },
                event_type,
                bounce_class,
                occurred_ms: base + g.next(40 * day as u64) as i64,
            }
        })
        .collect();
    for chunk in rows.chunks(1000) {
        p.query(&format!("INSERT INTO {EVENT_COLUMNS} VALUES {}", values(chunk))).await;
    }
    // 300 of them stored again in a later part (a replayed batch; same event, same key)
    let again: Vec<Gen1> = (0..300).map(|_| rows[g.next(rows.len() as u64) as usize].clone()).collect();
    p.query(&format!("INSERT INTO {EVENT_COLUMNS} VALUES {}", values(&again))).await;
    rows.extend(again);

    let client = clickhouse::Client::default().with_url(&stack.clickhouse_url).with_database(&p.database);
    let mut addresses: Vec<String> = (0..40).map(|a| format!("user{a}@example.com")).collect();
    addresses.extend(["bulk-5@x.test".to_string(), format!("bulk-{}@x.test", BULK - 1), "nobody@x.test".to_string()]);
    addresses.sort();
    let span = (base + 10 * day, base + 30 * day);
    // the truth: distinct soft email bounces of acme per lower-case address, within the span
    let truth = |span: (i64, i64)| {
        let mut t: std::collections::BTreeMap<String, std::collections::BTreeSet<(i64, String)>> = Default::default();
        for r in &rows {
            let address = r.recipient.to_lowercase();
            if r.tenant == "acme" && r.channel == "email" && r.event_type == "bounced" && r.bounce_class == "soft" && (span.0..=span.1).contains(&r.occurred_ms) && addresses.contains(&address) {
                t.entry(address).or_default().insert((r.occurred_ms, r.event_id.clone()));
            }
        }
        for n in [5, BULK - 1] {
            let ms = base + n as i64;
            if (span.0..=span.1).contains(&ms) {
                t.entry(format!("bulk-{n}@x.test")).or_default().insert((ms, format!("b{n}")));
            }
        }
        t.into_iter().map(|(a, s)| (a, s.into_iter().map(|(ms, _)| ms).collect::<Vec<_>>())).collect::<std::collections::BTreeMap<_, _>>()
    };
    let (client, addresses) = (&client, &addresses);
    let read_in = |span: (i64, i64)| async move {
        let got = soft_bounce_history(client, "acme", addresses, span).await.expect("soft_bounce_history");
        got.into_iter()
            .map(|(a, mut ts)| {
                ts.sort();
                (a, ts)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let expected = truth(span);
    assert!(expected.len() >= 30 && expected.values().map(Vec::len).sum::<usize>() >= 300, "the truth is not trivial: {expected:?}");
    assert_eq!(read_in(span).await, expected, "filled by the view as events are inserted");
    // the span is inclusive at both ends
    let edge = expected.values().flatten().copied().min().unwrap();
    let at_edge = soft_bounce_history(client, "acme", addresses, (edge, edge)).await.expect("read");
    assert_eq!(at_edge.values().flatten().filter(|t| **t == edge).count(), expected.values().flatten().filter(|t| **t == edge).count());
    assert!(at_edge.values().flatten().all(|t| *t == edge));
    // the widest span (a saturated one) holds every stored soft bounce
    let everything = (i64::MIN, i64::MAX);
    assert_eq!(read_in(everything).await, truth(everything), "the widest span");
    assert!(truth(everything).values().map(Vec::len).sum::<usize>() > expected.values().map(Vec::len).sum::<usize>());

    // the migration's backfill alone finds the same, and running it again changes nothing
    let backfill = schemas::ddl::MIGRATIONS
        .iter()
        .find(|m| m.1 == "history_reads")
        .map(|m| schemas::ddl::statements(m.2))
        .unwrap()
        .into_iter()
        .find(|s| s.starts_with("INSERT INTO soft_bounces"))
        .expect("the backfill statement");
    p.query("TRUNCATE TABLE soft_bounces").await;
    assert!(read_in(span).await.is_empty());
    p.query(&backfill).await;
    assert_eq!(read_in(span).await, expected, "after the backfill");
    p.query(&backfill).await;
    assert_eq!(read_in(span).await, expected, "after the backfill ran twice");

    // what the engine reads: the granules of the 43 addresses, not the tenant's 30
    p.query("OPTIMIZE TABLE soft_bounces FINAL").await;
    let list = addresses.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(",");
    let (kept, total) = granules(&p, &format!("SELECT * FROM soft_bounces FINAL WHERE tenant = 'acme' AND address IN ({list})"), "PrimaryKey").await;
    assert!(total >= 29, "{total} granules: the table spans many granules");
    // bulk-5's, bulk-239999's, and the generated addresses' one or two in each of two partitions
    assert!(kept <= 6, "{kept} of {total} granules read for 43 addresses");
    let (old_kept, old_total) =
        granules(&p, &format!("SELECT * FROM events FINAL WHERE tenant = 'acme' AND channel = 'email' AND event_type = 'bounced' AND bounce_class = 'soft' AND lower(recipient) IN ({list})"), "PrimaryKey").await;
    // the old read: `recipient_bf` at 1 % false positives per address and granule, then FINAL's
    // exact mode widening it
    assert!(old_kept * 2 >= old_total, "the old read kept most of the tenant's events: {old_kept} of {old_total}");
    println!("granules read for 43 addresses: {kept} of {total} in soft_bounces; {old_kept} of {old_total} in events");
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_events_of_a_few_deliveries_skip_granules_and_are_found_exactly() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "state-reads-events").await; // migrated
    let day = 86_400_000i64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // 720,000 events of 240,000 deliveries (three each); event ids are hashes, as `schemas::ids`
    // makes them, so a delivery's events lie anywhere in the table's order (tenant, event_id)
    const STORED: u64 = 720_000; // 88 granules of 8,192 rows
    let insert = |numbers: &str, event_type: &str| {
        format!(
            "INSERT INTO {EVENT_COLUMNS} SELECT 'acme', lower(hex(SHA256(concat('ev', toString(number))))), \
             lower(hex(SHA256(concat('state-reads-', toString(intDiv(number, 3)))))), 'a@x.test', 'email', '{event_type}', '', \
             fromUnixTimestamp64Milli(toInt64({}), 'UTC') FROM {numbers}",
            now - day
        )
    };
    p.query(&insert(&format!("numbers({STORED})"), "delivered")).await;
    // a second version of two events (a re-attributed copy: same event, same delivery), left in
    // a part of its own: FINAL must see it although exact mode is off (`load_events`)
    p.query(&insert("numbers(3000, 2)", "opened")).await;
    let event_id = |n: u64| {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(format!("ev{n}")))
    };
    assert_eq!(event_id(7), p.query("SELECT lower(hex(SHA256('ev7'))) FORMAT TabSeparated").await.trim(), "same ids in Rust and SQL");

    // a late send record's deliveries: 2 stored (one asked twice), 2 never stored
    let stored: Vec<u64> = vec![7, 1000];
    let mut keys: Vec<TenantKey> = stored.iter().map(|i| ("acme".to_string(), key(*i))).collect();
    keys.push(("acme".to_string(), key(7)));
    keys.extend((0..2).map(|i| ("acme".to_string(), key(10_000_000 + i))));
    let got = load_events(&client_of(&stack, &p), &keys).await.expect("load_events");
    let mut found: Vec<(String, String, String)> =
        got.values().flatten().map(|r| (r.delivery_key.to_string(), r.event_id.to_string(), r.event_type.to_string())).collect();
    found.sort();
    let mut expected: Vec<(String, String, String)> = stored
        .iter()
        .flat_map(|d| (d * 3..d * 3 + 3).map(move |n| (key(*d), event_id(n), if n == 3000 || n == 3001 { "opened" } else { "delivered" }.to_string())))
        .collect();
    expected.sort();
    assert_eq!(found, expected, "each stored event of the deliveries once, at its latest version");

    // what the engine reads, as `load_events` asks (exact mode off)
    let list = keys.iter().map(|k| format!("'{}'", k.1)).collect::<Vec<_>>().join(",");
    let select = format!("SELECT * FROM events FINAL WHERE tenant = 'acme' AND delivery_key IN ({list})");
    let (kept, total) = granules(&p, &format!("{select} SETTINGS use_skip_indexes_if_final_exact_mode = 0"), "delivery_key_bf").await;
    assert!(total >= 80, "{total} granules: the table spans many granules");
    // the 6 stored events' granules at most, + 4 keys × 88 granules × 0.1 % false positives
    // (migration 22; at migration 8's 1 % this read kept 10)
    assert!(kept * 4 <= total, "{kept} of {total} granules read for 4 deliveries (≤ a quarter)");
    assert!(kept <= 8, "{kept} of {total} granules read for 4 deliveries: the filter's false positives are 0.1 %");
    let (exact, _) = granules(&p, &select, "PrimaryKeyExpand").await;
    println!("granules read for 4 deliveries of {total}: {kept}; in FINAL's exact mode: {exact}");
}

fn client_of(stack: &Stack, p: &Pipeline) -> clickhouse::Client {
    clickhouse::Client::default().with_url(&stack.clickhouse_url).with_database(&p.database)
}

/// The stored-keys filter (`aggregator::stored_keys`) loads, for each partition, exactly the
/// fingerprints the aggregator computes for the stored deliveries the partitioner puts there:
/// the engine's `CRC32(delivery_key) % n` and `sipHash64(concat(tenant, '/', delivery_key))`
/// agree with `partition_of` and `fingerprint` on every stored delivery (several tenants,
/// upper- and lower-case keys, several versions of some); and a partition with more stored
/// deliveries than the bound gets no filter.
#[tokio::test(flavor = "multi_thread")]
async fn stored_keys_of_each_partition_are_what_the_aggregator_computes() {
    use aggregator::stored_keys::{fingerprint, partition_of, StoredKeys};
    use std::collections::BTreeSet;
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "stored-keys").await; // migrated
    const N: u64 = 20_000;
    // tenant t{i % 3}; keys lower-case hex SHA-256, every fifth upper-case; every seventh a second version
    let tenant = |i: u64| format!("t{}", i % 3);
    let key_of = |i: u64| if i.is_multiple_of(5) { key(i).to_uppercase() } else { key(i) };
    p.query(&format!(
        "INSERT INTO deliveries (tenant, delivery_key, status, version) \
         SELECT concat('t', toString(number % 3)), if(number % 5 = 0, upper(hex(SHA256(concat('state-reads-', toString(number))))), lower(hex(SHA256(concat('state-reads-', toString(number)))))), 'sent', 1 FROM numbers({N})"
    ))
    .await;
    p.query(&format!(
        "INSERT INTO deliveries (tenant, delivery_key, status, version) \
         SELECT concat('t', toString(number % 3)), if(number % 5 = 0, upper(hex(SHA256(concat('state-reads-', toString(number))))), lower(hex(SHA256(concat('state-reads-', toString(number)))))), 'delivered', 2 FROM numbers({N}) WHERE number % 7 = 0"
    ))
    .await;
    let client = client_of(&stack, &p);
    for partitions in [1, 4, 7] {
        let mut all = BTreeSet::new();
        for partition in 0..partitions {
            let f = StoredKeys::load(&client, partition, partitions, N as usize).await.expect("load").expect("within the bound");
            let want: BTreeSet<u64> = (0..N).filter(|i| partition_of(&key_of(*i), partitions) == partition).map(|i| fingerprint(&tenant(i), &key_of(i))).collect();
            assert_eq!(f.len(), want.len(), "partition {partition} of {partitions}");
            for i in 0..N {
                let k = key_of(i);
                let mine = partition_of(&k, partitions) == partition;
                let verdict = f.lookup(&tenant(i), &k);
                assert_eq!(verdict == aggregator::stored_keys::Lookup::Read, mine, "delivery {i}, partition {partition} of {partitions}: {verdict:?}");
            }
            all.extend(want);
        }
        assert_eq!(all.len() as u64, N, "every stored delivery in one partition's filter ({partitions} partitions)");
    }
    // a bound below what a partition holds: no filter
    assert!(StoredKeys::load(&client, 0, 1, N as usize - 1).await.expect("load").is_none(), "over the bound");
    // a key never stored: new for the filter of its partition
    let f = StoredKeys::load(&client, partition_of("never-stored", 4), 4, N as usize).await.expect("load").expect("within");
    assert_eq!(f.lookup("t0", "never-stored"), aggregator::stored_keys::Lookup::New);
}

/// The filter's premise: the services' producer (`runtime::kafka::ReplaceableProducer`, as the
/// normalizer writes the events topic, keyed by delivery key) puts a record keyed `k` in
/// partition `partition_of(k, n)` of the real broker's topic (librdkafka's default
/// partitioner), for a partition count that is not a power of two.
#[tokio::test(flavor = "multi_thread")]
async fn the_producer_puts_a_key_where_partition_of_says() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use std::time::{Duration, Instant};
    let stack = Stack::from_env();
    let topic = format!("partitioner-{}", uuid::Uuid::new_v4());
    const PARTITIONS: i32 = 7;
    stack.create_topics(&[&topic], PARTITIONS).await;
    let producer = runtime::kafka::ReplaceableProducer::new(runtime::kafka::KafkaConfig { brokers: stack.brokers.clone(), ..Default::default() }).expect("producer");
    let keys: Vec<String> = (0..140u64).map(|i| if i.is_multiple_of(2) { key(i) } else { key(i).to_uppercase() }).collect();
    for k in &keys {
        producer.send_checked(&topic, k, b"x", Duration::from_secs(30)).await.expect("stored");
    }
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, rdkafka::Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < keys.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.insert(String::from_utf8(m.key().unwrap_or_default().to_vec()).expect("utf-8 key"), m.partition());
        }
    }
    assert_eq!(seen.len(), keys.len(), "every record read back");
    let wrong: Vec<_> = seen.iter().filter(|(k, p)| aggregator::stored_keys::partition_of(k, PARTITIONS) != **p).collect();
    assert!(wrong.is_empty(), "records not where partition_of says: {wrong:?}");
    assert!(seen.values().collect::<std::collections::BTreeSet<_>>().len() as i32 == PARTITIONS, "the keys spread over every partition");
}
