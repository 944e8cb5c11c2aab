//! Exactly once in effect, on the real stack: a generated stream with duplicates,
//! out-of-order events and late send records, consumed by an aggregator that is
//! (1) SIGKILLed at random points and restarted, or (2) cut off from ClickHouse
//! for a while. Afterwards every table must equal the brute-force truth computed
//! from the stream: nothing lost, nothing counted twice.

use e2e::generate::{stream, Rng, Stream};
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

async fn assert_tables_equal_truth(p: &Pipeline, s: &Stream) {
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

    let counters = day_counters(p, "day").await;
    assert_eq!(counters, s.expected_day_counts(chrono_tz::UTC), "day counters");
    for period in ["week", "month"] {
        assert_eq!(p.number(&format!("SELECT sum(events) FROM counters WHERE period = '{period}'")).await, distinct, "{period} total");
    }
    // by broadcast: every event under its delivery's send record, late records included;
    // the same count over the event rows, whose attribution columns follow the delivery's
    let want = s.expected_attributed_day_counts();
    let attributed: BTreeSet<(String, String, String, u64)> = p
        .rows("SELECT toString(bucket_start) AS d, broadcast_id AS b, event_type AS t, sum(events) AS n FROM attributed_counters WHERE period = 'day' GROUP BY d, b, t HAVING n != 0")
        .await
        .into_iter()
        .map(|r| (text(&r["d"]), text(&r["b"]), text(&r["t"]), number(&r["n"])))
        .collect();
    assert_eq!(attributed, want, "attributed day counters");
    let from_rows: BTreeSet<(String, String, String, u64)> = p
        .rows("SELECT toString(toDate(occurred_at)) AS d, ifNull(broadcast_id, '') AS b, event_type AS t, count() AS n FROM events FINAL GROUP BY d, b, t")
        .await
        .into_iter()
        .map(|r| (text(&r["d"]), text(&r["b"]), text(&r["t"]), number(&r["n"])))
        .collect();
    assert_eq!(from_rows, want, "event rows' attribution");
    for period in ["week", "month"] {
        assert_eq!(p.number(&format!("SELECT sum(events) FROM attributed_counters WHERE period = '{period}'")).await, distinct, "{period} attributed total");
    }
    // cost: every send record costs 0.0075 USD (Decimal, summed exactly)
    let records = s.distinct().values().filter(|e| e.event_type == schemas::EventType::Queued).count();
    let cost = p.query("SELECT toString(sum(cost_amount)) FROM counters WHERE period = 'day' AND cost_unit = 'USD' FORMAT TabSeparated").await;
    let want_cost = rust_decimal::Decimal::new(75, 4) * rust_decimal::Decimal::from(records as u64);
    assert_eq!(cost.trim().parse::<rust_decimal::Decimal>().ok(), Some(want_cost), "cost sum");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_aggregator_converges_to_the_truth() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "crash").await;
    p.aggregator_env.push(("SENDTRACE_BATCH_MAX_EVENTS".into(), "150".into()));
    p.aggregator_env.push(("SENDTRACE_BATCH_LINGER_MS".into(), "50".into()));
    p.aggregator_env.push(("SENDTRACE_REPORTING_TIME_ZONE".into(), "America/New_York".into()));
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
    assert_tables_equal_truth(&p, &s).await;
    // the reporting time zone's days hold the same events, split at New York midnight
    let local = day_counters(&p, "day:America/New_York").await;
    assert_eq!(local, s.expected_day_counts(chrono_tz::America::New_York), "local day counters");
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

    assert_tables_equal_truth(&p, &s).await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_ports().1)).await.unwrap().text().await.unwrap();
    let reloads: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sendtrace_aggregator_state_reloads_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0.0);
    assert!(reloads > 0.0, "evicted deliveries were reloaded from ClickHouse:\n{metrics}");
}
