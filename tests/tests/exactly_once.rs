//! Exactly once in effect, on the real stack: a generated stream with duplicates,
//! out-of-order events and late send records, consumed by an aggregator that is
//! (1) SIGKILLed at random points and restarted, (2) cut off from ClickHouse
//! for a while, (3) sharing the partitions with a second aggregator that is then
//! SIGKILLed (rebalances: each keeps the state of partitions it is assigned again), or (4)
//! writing its partitions concurrently behind 150 ms round trips (which the test sees).
//! Afterwards every table must equal the brute-force truth computed
//! from the stream: nothing lost, nothing counted twice. That includes the exact
//! unique-recipient sets (`unique_recipients`, filled by a materialized view on `events`).

use e2e::generate::{stream, Rng, Stream, UniqueKey};
use e2e::proxy::Proxy;
use e2e::{wait_until, Pipeline, Stack};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

async fn day_counters(p: &Pipeline, period: &str) -> BTreeSet<(String, String, String, u64)> {
    p.rows(&format!("SELECT toString(bucket_start) AS d, event_type, bounce_class, toUInt64(sum(events)) AS n FROM counters WHERE period = '{period}' GROUP BY d, event_type, bounce_class"))
        .await
        .into_iter()
        .map(|r| {
            (
                r["d"].as_str().unwrap_or_default().to_string(),
                r["event_type"].as_str().unwrap_or_default().to_string(),
                r["bounce_class"].as_str().unwrap_or_default().to_string(),
                r["n"].as_u64().or_else(|| r["n"].as_str().and_then(|x| x.parse().ok())).unwrap_or(0),
            )
        })
        .collect()
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn number(v: &serde_json::Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|x| x.parse().ok())).unwrap_or(0)
}

/// Unique-recipient counts of a query returning the key columns and `n`; `by_broadcast` adds broadcast_id.
async fn unique_counts(p: &Pipeline, sql: &str, by_broadcast: bool) -> BTreeMap<UniqueKey, u64> {
    p.rows(sql)
        .await
        .into_iter()
        .map(|r| {
            let col = |c: &str| r[c].as_str().unwrap_or_default().to_string();
            let broadcast = if by_broadcast { col("broadcast_id") } else { String::new() };
            ((col("period"), col("b"), col("channel"), col("provider"), col("event_type"), col("machine"), broadcast), number(&r["n"]))
        })
        .collect()
}

/// The truth's sets merged over broadcasts (unless `by_broadcast`), counted.
fn truth_counts(truth: &BTreeMap<UniqueKey, BTreeSet<String>>, by_broadcast: bool) -> BTreeMap<UniqueKey, u64> {
    let mut merged: BTreeMap<UniqueKey, BTreeSet<&str>> = BTreeMap::new();
    for (k, set) in truth {
        let mut k = k.clone();
        if !by_broadcast {
            k.6 = String::new();
        }
        merged.entry(k).or_default().extend(set.iter().map(String::as_str));
    }
    merged.into_iter().map(|(k, set)| (k, set.len() as u64)).collect()
}

/// `unique_recipients` (uniqExactMerge) == the brute-force truth == uniqExact over `events FINAL`,
/// per period × bucket × channel × provider × event type × machine, and per broadcast too.
/// Per broadcast, a recipient whose event rows were written before the delivery's send record
/// stays in the `''` set as well (a set cannot drop a member when the rows are re-attributed):
/// there the sets are only bounded by the truth over all broadcasts.
async fn assert_unique_recipients_equal_truth(p: &Pipeline, s: &Stream, zone: &str) {
    let truth = s.expected_unique_recipients(zone);
    // the stream exercises what the counts must get right
    assert!(truth.keys().any(|k| !k.5.is_empty()), "machine opens in the stream");
    let day_queued = |k: &UniqueKey| k.0 == "day" && k.4 == "queued";
    let events: usize = s.distinct().values().filter(|e| e.event_type == schemas::EventType::Queued).count();
    let uniques: usize = truth_counts(&truth, false).iter().filter(|(k, _)| day_queued(k)).map(|(_, n)| *n as usize).sum();
    assert!(uniques < events, "some recipients got two deliveries ({uniques} unique of {events})");

    let group = "period, b, channel, provider, event_type, machine";
    for by_broadcast in [false, true] {
        let (cols, what) = if by_broadcast { (format!("{group}, broadcast_id"), "(per broadcast)") } else { (group.to_string(), "(all broadcasts)") };
        let (mv_bc, events_bc) = if by_broadcast { (", broadcast_id", ", ifNull(broadcast_id, '') AS broadcast_id") } else { ("", "") };
        let mv = unique_counts(
            p,
            &format!("SELECT period, toString(bucket_start) AS b, channel, provider, event_type, machine{mv_bc}, toUInt64(uniqExactMerge(recipients)) AS n FROM unique_recipients GROUP BY {cols}"),
            by_broadcast,
        )
        .await;
        let want = truth_counts(&truth, by_broadcast);
        let all = truth_counts(&truth, false);
        let unattributed = |k: &UniqueKey| by_broadcast && k.6.is_empty();
        let over_all = |k: &UniqueKey, n: u64| all.get(&(k.0.clone(), k.1.clone(), k.2.clone(), k.3.clone(), k.4.clone(), k.5.clone(), String::new())).is_none_or(|m| n > *m);
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, n)| match mv.get(*k) {
                Some(got) if unattributed(k) => got < n || over_all(k, *got),
                got => got != Some(n),
            })
            .take(5)
            .map(|(k, n)| (k, n, mv.get(k)))
            .collect();
        assert!(wrong.is_empty(), "unique_recipients {what} differ from the truth (key, want, got), e.g. {wrong:?}");
        let extra: Vec<_> = mv.iter().filter(|(k, n)| !want.contains_key(*k) && (!unattributed(k) || over_all(k, **n))).take(5).collect();
        assert!(extra.is_empty(), "unique_recipients {what}: beyond the truth only unattributed sets, none larger than all broadcasts: {extra:?}");

        // the same sets straight from the deduplicated event rows
        let mut buckets = vec!["('day', toDate(occurred_at, 'UTC'))".to_string(), "('week', toMonday(occurred_at, 'UTC'))".into(), "('month', toStartOfMonth(occurred_at, 'UTC'))".into()];
        if zone != "UTC" {
            buckets.push(format!("('day:{zone}', toDate(occurred_at, '{zone}'))"));
            buckets.push(format!("('week:{zone}', toMonday(occurred_at, '{zone}'))"));
            buckets.push(format!("('month:{zone}', toStartOfMonth(occurred_at, '{zone}'))"));
        }
        let from_events = unique_counts(
            p,
            &format!(
                "SELECT pb.1 AS period, toString(pb.2) AS b, channel, provider, event_type, machine{events_bc}, \
                 toUInt64(uniqExact(lower(recipient))) AS n FROM events FINAL ARRAY JOIN [{}] AS pb GROUP BY {cols}",
                buckets.join(", ")
            ),
            by_broadcast,
        )
        .await;
        let attributed = |m: &BTreeMap<UniqueKey, u64>| -> BTreeMap<UniqueKey, u64> { m.iter().filter(|(k, _)| !by_broadcast || !k.6.is_empty()).map(|(k, n)| (k.clone(), *n)).collect() };
        assert_eq!(attributed(&mv), attributed(&from_events), "unique_recipients {what} == uniqExact(lower(recipient)) over events FINAL");
    }
    // the same periods and buckets as counters
    let buckets = |t: &str| format!("SELECT DISTINCT period, toString(bucket_start) AS b FROM {t} ORDER BY period, b FORMAT TabSeparated");
    assert_eq!(p.query(&buckets("unique_recipients")).await, p.query(&buckets("counters")).await, "periods and bucket starts as in counters");
}

async fn assert_tables_equal_truth(p: &Pipeline, s: &Stream, zone: &str) {
    let distinct = s.distinct().len() as u64;
    wait_until("all distinct events applied", Duration::from_secs(240), || async {
        (p.number("SELECT count() FROM events FINAL").await >= distinct).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // at most one first-written row per event: replays were dropped by dedup tokens (a row
    // written again for a late send record's attribution replaces its first row on merge, so
    // the first rows may be fewer, never more)
    assert!(p.number("SELECT count() FROM events WHERE reattributed = 0").await <= distinct, "event rows");
    assert_eq!(p.number("SELECT uniqExact(event_id) FROM events").await, distinct);
    assert_eq!(p.number("SELECT count() FROM events FINAL").await, distinct);

    let got: BTreeMap<String, String> = p
        .rows("SELECT delivery_key, status FROM deliveries FINAL")
        .await
        .into_iter()
        .map(|r| (r["delivery_key"].as_str().unwrap_or_default().to_string(), r["status"].as_str().unwrap_or_default().to_string()))
        .collect();
    let want = s.expected_status();
    assert_eq!(got.len(), want.len(), "delivery rows");
    let wrong: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).take(5).collect();
    assert!(wrong.is_empty(), "statuses differ from the truth, e.g. {wrong:?}");
    // deliveries by status from the signed quarter-hour sums: the truth's, and per quarter hour
    // the same as a count over the delivery rows
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for st in want.values() {
        *by_status.entry(st.clone()).or_default() += 1;
    }
    let summed: BTreeMap<String, u64> = p
        .rows("SELECT status, sum(deliveries) AS n FROM delivery_status_counts GROUP BY status HAVING n != 0")
        .await
        .into_iter()
        .map(|r| (text(&r["status"]), number(&r["n"])))
        .collect();
    assert_eq!(summed, by_status, "delivery_status_counts by status");
    let quarter = |sql: &'static str| async move { p.rows(sql).await.into_iter().map(|r| (number(&r["b"]), text(&r["s"]), number(&r["n"]))).collect::<BTreeSet<_>>() };
    let sums = quarter("SELECT toUInt64(toUnixTimestamp(bucket)) AS b, status AS s, sum(deliveries) AS n FROM delivery_status_counts GROUP BY b, s HAVING n != 0").await;
    let rows = quarter(
        "SELECT toUInt64(toUnixTimestamp(toStartOfFifteenMinutes(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), \
         ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at))))) AS b, status AS s, count() AS n \
         FROM deliveries FINAL GROUP BY b, s",
    )
    .await;
    assert_eq!(sums, rows, "delivery_status_counts per quarter hour = deliveries FINAL");
    // the funnels' signed sums and recipients, the same way
    e2e::funnels::assert_funnels_equal_deliveries(p).await;
    // the listing copy holds every delivery once, at its current first known time and status
    let listing = |sql: &'static str| async move { p.rows(sql).await.into_iter().map(|r| (text(&r["k"]), number(&r["t"]), text(&r["s"]))).collect::<Vec<_>>() };
    let ordered = listing("SELECT delivery_key AS k, toUInt64(sort_at) AS t, status AS s FROM delivery_order FINAL ORDER BY k").await;
    let current = listing(
        "SELECT delivery_key AS k, toUInt64(toUnixTimestamp64Milli(least(status_at, ifNull(first_queued_at, status_at), ifNull(first_sent_at, status_at), \
         ifNull(first_delivered_at, status_at), ifNull(first_bounced_at, status_at), ifNull(first_failed_at, status_at)))) AS t, status AS s \
         FROM deliveries FINAL ORDER BY k",
    )
    .await;
    assert_eq!(ordered.len(), want.len(), "delivery_order: one entry per delivery");
    assert_eq!(ordered, current, "delivery_order FINAL = deliveries FINAL");
    // and the latency copy the same (the view's rows and the tombstones of moved deliveries)
    assert_eq!(e2e::latency::assert_latency_equals_deliveries(p).await, want.len(), "delivery_latency: every delivery");

    let counters = day_counters(p, "day").await;
    assert_eq!(counters, s.expected_day_counts(chrono_tz::UTC), "day counters");
    for period in ["week", "month"] {
        assert_eq!(p.number(&format!("SELECT sum(events) FROM counters WHERE period = '{period}'")).await, distinct, "{period} total");
    }
    // by broadcast: every event under its delivery's send record, late records included;
    // the same count over the event rows, whose attribution columns follow the delivery's
    let want = s.expected_attributed_day_counts();
    let day_broadcast_type = |sql: &'static str| async move {
        p.rows(sql).await.into_iter().map(|r| (text(&r["d"]), text(&r["b"]), text(&r["t"]), number(&r["n"]))).collect::<BTreeSet<_>>()
    };
    let attributed = day_broadcast_type(
        "SELECT toString(bucket_start) AS d, broadcast_id AS b, event_type AS t, sum(events) AS n FROM attributed_counters WHERE period = 'day' GROUP BY d, b, t HAVING n != 0",
    );
    assert_eq!(attributed.await, want, "attributed day counters");
    let from_rows = day_broadcast_type(
        "SELECT toString(toDate(occurred_at)) AS d, ifNull(broadcast_id, '') AS b, event_type AS t, count() AS n FROM events FINAL GROUP BY d, b, t",
    );
    assert_eq!(from_rows.await, want, "event rows' attribution");
    // and the failures copy the API's bounce reasons read: each bounced or failed event once, at
    // its latest attribution (the same rows as `events FINAL`, late send records' moves included)
    let failing = s.distinct().values().filter(|e| matches!(e.event_type, schemas::EventType::Bounced | schemas::EventType::Failed)).count();
    assert!(failing > 0, "the stream has failures");
    assert_eq!(e2e::failures::assert_failures_equal_events(p).await, failing, "attributed_failures: every bounced or failed event");
    for period in ["week", "month"] {
        assert_eq!(p.number(&format!("SELECT sum(events) FROM attributed_counters WHERE period = '{period}'")).await, distinct, "{period} attributed total");
    }
    // cost: every send record costs 0.0075 USD (Decimal, summed exactly)
    let records = s.distinct().values().filter(|e| e.event_type == schemas::EventType::Queued).count();
    let cost = p.query("SELECT toString(sum(cost_amount)) FROM counters WHERE period = 'day' AND cost_unit = 'USD' FORMAT TabSeparated").await;
    let want_cost = rust_decimal::Decimal::new(75, 4) * rust_decimal::Decimal::from(records as u64);
    assert_eq!(cost.trim().parse::<rust_decimal::Decimal>().ok(), Some(want_cost), "cost sum");

    assert_unique_recipients_equal_truth(p, s, zone).await;
}

/// The value of metric `name` (with its labels, as `/metrics` prints them), 0 when absent.
fn metric(metrics: &str, name: &str) -> f64 {
    e2e::observe::prometheus_sum(metrics, name).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_aggregator_converges_to_the_truth() {
    let stack = Stack::from_env();
    let zone = "America/New_York";
    let env = [("SENDTRACE_BATCH_MAX_EVENTS", "150"), ("SENDTRACE_BATCH_LINGER_MS", "50"), ("SENDTRACE_REPORTING_TIME_ZONE", zone)];
    // migrate sees the zone too: the unique_recipients view counts its days
    let mut p = Pipeline::with_aggregator_env(&stack, "crash", env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).await;
    let s = stream(7, 1200);
    s.produce(&stack.brokers, &p.events_topic, 0..s.events.len()).await;

    // injected failure: SIGKILL at random points while it consumes, then restart
    let mut rng = Rng::new(42);
    p.start_aggregator().await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(800 + rng.below(2000))).await;
        if let Some(a) = p.aggregator.as_mut() {
            a.kill();
        }
        p.start_aggregator().await;
    }
    assert_tables_equal_truth(&p, &s, zone).await;
    // the reporting time zone's days hold the same events, split at New York midnight
    let local = day_counters(&p, &format!("day:{zone}")).await;
    assert_eq!(local, s.expected_day_counts(chrono_tz::America::New_York), "local day counters");
    // the last run moved rows of late send records from memory (`aggregator::recent`; its
    // deliveries were created since its claims), and everything above came out exact
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_ports().1)).await.unwrap().text().await.unwrap();
    let memory = metric(&metrics, "sendtrace_aggregator_history_reads_total{from=\"memory\"}");
    assert!(memory > 0.0, "histories from memory {memory}:\n{metrics}");
}

/// The stored-keys filter (`aggregator::stored_keys`): an aggregator started after a first one
/// stored the deliveries of the stream's first half reads back exactly the stored deliveries the
/// second half touches, and no other: the second half's new deliveries skip the read. Counted
/// against the brute force over the two halves (the states read, the reads skipped, the
/// fingerprints held), and every table equals the truth of the whole stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_aggregator_reads_only_the_stored_deliveries() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "stored-keys").await;
    let s = stream(17, 600);
    let half = s.events.len() / 2;
    let keys = |events: &[schemas::Event]| events.iter().map(|e| (e.tenant.clone(), e.delivery_key.clone())).collect::<BTreeSet<_>>();
    let (stored, touched) = (keys(&s.events[..half]), keys(&s.events[half..]));
    s.produce(&stack.brokers, &p.events_topic, 0..half).await;
    p.start_aggregator().await;
    // the first half applied: its events and its deliveries' states stored (a unit's last insert)
    let first = Stream { events: s.events[..half].to_vec() };
    let (events, deliveries) = (first.distinct().len() as u64, stored.len() as u64);
    wait_until("the first half applied", Duration::from_secs(240), || async {
        (p.number("SELECT count() FROM events FINAL").await >= events && p.number("SELECT count() FROM deliveries FINAL").await >= deliveries).then_some(())
    })
    .await;
    // SIGTERM: the unit in progress, if any, ends before the exit
    if let Some(a) = p.aggregator.as_mut() {
        a.stop();
    }
    s.produce(&stack.brokers, &p.events_topic, half..s.events.len()).await;
    p.start_aggregator().await;
    assert_tables_equal_truth(&p, &s, "UTC").await;

    let read_back = touched.intersection(&stored).count() as f64;
    let new = touched.difference(&stored).count() as f64;
    assert!(read_back > 0.0 && new > 0.0, "the second half has stored ({read_back}) and new ({new}) deliveries");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_ports().1)).await.unwrap().text().await.unwrap();
    assert_eq!(metric(&metrics, "sendtrace_aggregator_state_reloads_total"), read_back, "states read: the stored deliveries touched\n{metrics}");
    assert_eq!(metric(&metrics, "sendtrace_aggregator_state_reads_skipped_total"), new, "reads skipped: the new deliveries\n{metrics}");
    assert_eq!(metric(&metrics, "sendtrace_aggregator_stored_keys"), stored.union(&touched).count() as f64, "fingerprints held: every delivery\n{metrics}");
    assert_eq!(metric(&metrics, "sendtrace_aggregator_stored_keys_off_total"), 0.0, "no partition without its filter\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregator_waits_out_a_clickhouse_outage_without_loss() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "chdown").await;
    let target = stack.clickhouse_url.trim_start_matches("http://").to_string();
    let proxy = Proxy::start(target).await;
    p.aggregator_env.push(("SENDTRACE_CLICKHOUSE__URL".into(), format!("http://127.0.0.1:{}", proxy.port)));
    p.aggregator_env.push(("SENDTRACE_MAX_RETRY_BACKOFF_MS".into(), "1000".into()));
    // a small state bound: cold deliveries are evicted and reloaded from ClickHouse on demand
    p.aggregator_env.push(("SENDTRACE_MAX_DELIVERIES_IN_MEMORY".into(), "100".into()));
    // (split over the 4 partitions, 25 each; batches small enough that each partition's
    // aggregator sees several, so that its cold deliveries age out and come back)
    p.aggregator_env.push(("SENDTRACE_BATCH_MAX_EVENTS".into(), "300".into()));
    // and a small bound on the rows kept for late send records (`aggregator::recent`): the
    // oldest deliveries' rows are dropped, and read back from ClickHouse when their record comes
    p.aggregator_env.push(("SENDTRACE_MAX_HISTORY_BYTES_IN_MEMORY".into(), "400000".into()));
    let s = stream(11, 800);
    let half = s.events.len() / 2;
    s.produce(&stack.brokers, &p.events_topic, 0..half).await;
    p.start_aggregator().await;
    wait_until("some progress", Duration::from_secs(60), || async { (p.number("SELECT count() FROM events").await > 0).then_some(()) }).await;

    // injected failure: ClickHouse unreachable for the aggregator while more events arrive
    proxy.set_up(false);
    s.produce(&stack.brokers, &p.events_topic, half..s.events.len()).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let agg = p.aggregator.as_ref().expect("running");
    let rss_mib = agg.rss_kib() / 1024;
    assert!(agg.rss_kib() > 0, "aggregator still alive during the outage");
    assert!(rss_mib < 400, "memory stays bounded while ClickHouse is down: {rss_mib} MiB");
    proxy.set_up(true);

    assert_tables_equal_truth(&p, &s, "UTC").await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_ports().1)).await.unwrap().text().await.unwrap();
    let reloads = metric(&metrics, "sendtrace_aggregator_state_reloads_total");
    assert!(reloads > 0.0, "evicted deliveries were reloaded from ClickHouse:\n{metrics}");
    // late send records moved rows, some of them dropped from memory for the bound and read back
    let (read, dropped) = (metric(&metrics, "sendtrace_aggregator_history_reads_total{from=\"clickhouse\"}"), metric(&metrics, "sendtrace_aggregator_recent_history_dropped_total"));
    assert!(read > 0.0 && dropped > 0.0, "histories read from ClickHouse {read}, dropped from memory {dropped}:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_aggregators_and_their_rebalances_converge_to_the_truth() {
    let stack = Stack::from_env();
    // Sessions of 8 s, not the suite's 3 s: tansu counts a member's session from its last request
    // also while a join or sync keeps it from heartbeating (3.0-3.7 s seen), so with 3 s it
    // expired live members in the middle of these rebalances (RELIABILITY.md, tansu's groups).
    let env = [("SENDTRACE_BATCH_MAX_EVENTS", "100"), ("SENDTRACE_BATCH_LINGER_MS", "50"), ("SENDTRACE_KAFKA__SESSION_TIMEOUT_MS", "8000")];
    let mut p = Pipeline::with_aggregator_env(&stack, "rebalance", env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).await;
    let s = stream(13, 1200);
    // In thirds: one before A starts, one while B joins, the rest after B left. Why: with the whole
    // stream there from the start, A alone could read most of a partition before B joined, and
    // B the rest of it before it left; A then had nothing more of it to read, claimed it never
    // again, and B's claim stayed the newest (seen once the batch got faster, 2026-12-04).
    // Records after B left reach every partition, so A must take each of B's over.
    let n = s.events.len();
    let thirds = [0, n / 3, 2 * n / 3];
    s.produce(&stack.brokers, &p.events_topic, thirds[0]..thirds[1]).await;

    // A alone, then B joins (rebalance), then B leaves mid-stream (SIGTERM: it finishes its batch
    // and leaves the group; rebalance): A takes B's partitions over, claims them anew (the fence)
    // and reloads their deliveries from ClickHouse. (A SIGKILLed B is left to its session's
    // expiry, and tansu 0.6 can then keep B's partitions assigned to the dead B for good:
    // RELIABILITY.md, tansu's groups. Crashed aggregators are `sigkilled_aggregator_converges_to_the_truth`
    // here and the fault suite's, restarted as they would be.)
    let applied = |log: std::path::PathBuf| std::fs::read_to_string(log).unwrap_or_default().matches("Batch applied.").count();
    p.start_aggregator().await;
    wait_until("A applies a batch alone", Duration::from_secs(60), || async { (applied(p.log_of("aggregator")) > 0).then_some(()) }).await;
    let mut b = p.spawn_second_aggregator("b").await;
    // the middle third fed 100 events every half second (~12 s in all) until B has applied two
    // batches: B has records of its own only once it has joined, and A reads all there are until then
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut next = thirds[1];
    while applied(p.log_of("aggregator-b")) < 2 {
        assert!(std::time::Instant::now() < deadline, "B applies two batches within 120 s ({next} of {n} events produced)");
        let to = (next + 100).min(thirds[2]);
        if next < to {
            s.produce(&stack.brokers, &p.events_topic, next..to).await;
            next = to;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = p.number("SELECT uniqExact(event_id) FROM events").await;
    assert!(events < s.distinct().len() as u64, "B leaves mid-stream ({events} events stored)");
    let (status, _) = b.terminate(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "B exits cleanly on SIGTERM: {status:?}");
    s.produce(&stack.brokers, &p.events_topic, next..n).await;
    assert_tables_equal_truth(&p, &s, "UTC").await;
    let log = std::fs::read_to_string(p.log_of("aggregator")).unwrap_or_default();
    let assigned: Vec<&str> = log.lines().filter(|l| l.contains("Partitions assigned.")).collect();
    assert!(assigned.len() >= 2, "A saw both rebalances:\n{log}");
    // every partition B claimed was claimed again after B left: no newest claim is B's
    let writer_of = |log: std::path::PathBuf| {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        log.split("writer=").nth(1).and_then(|w| w.split_whitespace().next()).map(str::to_string).expect("the writer is in the log")
    };
    let b_writer = writer_of(p.log_of("aggregator-b"));
    let claims = p.rows("SELECT partition, epoch, writer FROM aggregator_claims ORDER BY partition, epoch, writer").await;
    assert!(claims.iter().any(|c| text(&c["writer"]) == b_writer), "B claimed partitions: {claims:?}");
    // (ordered as `offsets` ranks claims: the last of each partition is its newest)
    let newest: BTreeMap<u64, String> = claims.iter().map(|c| (number(&c["partition"]), text(&c["writer"]))).collect();
    assert_eq!(newest.len(), 4, "every partition was claimed: {claims:?}");
    assert!(newest.values().all(|w| *w != b_writer), "no partition's newest claim is B's, gone: {claims:?}");
}

/// One `events` insert as the recording proxy saw it: the partition in its dedup token, when
/// the request came in and when its answer went back.
#[derive(Debug, Clone, Copy)]
struct Insert {
    partition: i32,
    start: std::time::Instant,
    end: std::time::Instant,
}

/// An HTTP proxy in front of ClickHouse that holds every request `delay` (a round trip's
/// latency, as a cluster's quorum inserts add) and records the `events` inserts.
async fn recording_proxy(target: String, delay: Duration) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Insert>>>) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<Insert>>>;
    let seen: Seen = Default::default();
    let http = reqwest::Client::new();
    async fn forward(State((target, delay, http, seen)): State<(String, Duration, reqwest::Client, Seen)>, req: Request) -> Response {
        let start = std::time::Instant::now();
        let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
        let query: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).unwrap_or_default();
        // the aggregator's token: group:topic:partition:first-last:table (`offsets::token`)
        let partition = query
            .iter()
            .find(|(k, _)| k == "insert_deduplication_token")
            .and_then(|(_, t)| t.strip_suffix(":events").and_then(|t| t.split(':').nth(2)).and_then(|p| p.parse::<i32>().ok()));
        let (method, headers) = (req.method().clone(), req.headers().clone());
        let body = axum::body::to_bytes(req.into_body(), usize::MAX).await.unwrap_or_default();
        tokio::time::sleep(delay).await;
        let mut out = http.request(method, format!("{target}{path}")).body(body);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host" && *k != "content-length") {
            out = out.header(k, v);
        }
        let Ok(resp) = out.send().await else { return Response::builder().status(502).body(Body::empty()).unwrap() };
        let mut answer = Response::builder().status(resp.status());
        for (k, v) in resp.headers().iter().filter(|(k, _)| *k != "transfer-encoding" && *k != "content-length" && *k != "connection") {
            answer = answer.header(k, v);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        if let Some(partition) = partition {
            seen.lock().unwrap().push(Insert { partition, start, end: std::time::Instant::now() });
        }
        answer.body(Body::from(bytes)).unwrap()
    }
    let app = axum::Router::new().fallback(forward).with_state((target, delay, http, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// An aggregator holding several partitions writes them concurrently (`pipeline::Partitions`):
/// with every ClickHouse round trip 150 ms long, the `events` inserts of two partitions are in
/// flight at the same time (drained one after another, they never are), and every table still
/// equals the truth.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_are_written_concurrently_and_stay_exact() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "concur").await;
    let (url, seen) = recording_proxy(stack.clickhouse_url.clone(), Duration::from_millis(150)).await;
    p.aggregator_env.push(("SENDTRACE_CLICKHOUSE__URL".into(), url));
    let s = stream(13, 300);
    // all on the topic first: the aggregator's first batch holds every partition
    s.produce(&stack.brokers, &p.events_topic, 0..s.events.len()).await;
    p.start_aggregator().await;
    assert_tables_equal_truth(&p, &s, "UTC").await;
    let inserts = seen.lock().unwrap().clone();
    let partitions: BTreeSet<i32> = inserts.iter().map(|i| i.partition).collect();
    assert!(partitions.len() >= 2, "events inserts of several partitions: {inserts:?}");
    let overlapping = inserts.iter().enumerate().any(|(n, a)| inserts[n + 1..].iter().any(|b| a.partition != b.partition && a.start < b.end && b.start < a.end));
    assert!(overlapping, "two partitions' events inserts in flight at once: {inserts:?}");
}
