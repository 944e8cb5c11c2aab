//! SES over HTTP → ingest → Kafka → normalizer → Kafka → aggregator → ClickHouse,
//! on the real local stack. Asserts rows in ClickHouse, not logs.

use e2e::{ses, wait_until, Pipeline, Stack};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn ses_events_reach_clickhouse_with_right_status_once_each() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "ses-e2e").await;
    p.start_all().await;
    // The running aggregator has transparent huge pages off (its default; `aggregator::memory`),
    // where the kernel reports it (`THP_enabled`, Linux 5.0+).
    let pid = p.aggregator.as_ref().expect("aggregator started").pid();
    if let Some(enabled) = aggregator::memory::transparent_huge_pages_enabled(&pid.to_string()) {
        assert!(!enabled, "aggregator {pid}: THP_enabled is not 0");
    }

    // M1: arrives out of order (open, then delivery, then send): status must be `opened`.
    let m1_open = ses::body("event_open.json", "m1", None);
    let m1_delivery = ses::body("event_delivery.json", "m1", None);
    let m1_send = ses::body("event_send.json", "m1", None);
    // M2: a bounce of three recipients, then a late open for one of them: stays `bounced`.
    let r = ["r1@example.com", "r2@example.com", "r3@example.com"];
    let m2_bounce = ses::body("event_bounce_multi.json", "m2", Some(&r));
    let m2_open = ses::body("event_open.json", "m2", Some(&r[..1]));
    // M3: delivered, then a soft bounce: recorded, status stays `delivered`.
    let m3_delivery = ses::body("event_delivery.json", "m3", Some(&["s@example.com"]));
    let m3_soft = ses::body("event_bounce_transient.json", "m3", Some(&["s@example.com"]));

    for body in [&m1_open, &m1_delivery, &m1_send, &m2_bounce, &m2_open, &m3_delivery, &m3_soft] {
        let (status, text) = p.post_sns("acme", body).await;
        assert_eq!(status, 200, "{text}");
    }
    // SNS retries a notification: the same body again must not count twice.
    assert_eq!(p.post_sns("acme", &m1_delivery).await.0, 200);
    // A subscription confirmation is stored and reported, but is no delivery event.
    assert_eq!(p.post_sns("acme", &e2e::samples::sign_sns(&e2e::fixture("ses", "subscription_confirmation.json"))).await.0, 200);

    let expected_events = 3 + 4 + 2;
    wait_until("all events in ClickHouse", Duration::from_secs(90), || async {
        let n = p.number("SELECT count() FROM events").await;
        (n >= expected_events).then_some(())
    })
    .await;
    // let the duplicate and the confirmation pass through too
    tokio::time::sleep(Duration::from_secs(3)).await;

    // every event row exactly once (no FINAL: physically one row per event)
    assert_eq!(p.number("SELECT count() FROM events").await, expected_events);
    assert_eq!(p.number("SELECT uniqExact(event_id) FROM events").await, expected_events);

    let status = |rows: &Vec<serde_json::Value>, msg: &str, rcpt: &str| -> String {
        rows.iter()
            .find(|r| r["provider_message_id"] == msg && r["recipient"] == rcpt)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no delivery row for {msg}/{rcpt}: {rows:?}"))
    };
    let rows = p
        .rows("SELECT provider_message_id, recipient, status, open_count, soft_bounce_count, bounce_class, broadcast_id FROM deliveries FINAL")
        .await;
    assert_eq!(rows.len(), 1 + 3 + 1, "{rows:?}");
    assert_eq!(status(&rows, "m1", "recipient@example.com"), "opened");
    for rcpt in r {
        assert_eq!(status(&rows, "m2", rcpt), "bounced");
    }
    assert_eq!(status(&rows, "m3", "s@example.com"), "delivered");
    let m3 = rows.iter().find(|r| r["provider_message_id"] == "m3").unwrap();
    assert_eq!(m3["soft_bounce_count"], 1);
    let m2r1 = rows.iter().find(|r| r["provider_message_id"] == "m2" && r["recipient"] == "r1@example.com").unwrap();
    assert_eq!(m2r1["open_count"], 1, "the late open is recorded");
    assert_eq!(m2r1["broadcast_id"], "spring-sale", "SES tags carried into attribution");

    // daily counters equal a count over the event rows, per day and event type
    let from_events = p
        .query("SELECT toDate(occurred_at) AS d, event_type, bounce_class, count() AS n FROM events FINAL GROUP BY d, event_type, bounce_class ORDER BY d, event_type, bounce_class")
        .await;
    let from_counters = p
        .query("SELECT bucket_start AS d, event_type, bounce_class, sum(events) AS n FROM counters WHERE period = 'day' GROUP BY d, event_type, bounce_class ORDER BY d, event_type, bounce_class")
        .await;
    assert_eq!(from_counters, from_events);
    assert!(!from_events.is_empty());
    // week and month buckets hold the same totals
    for period in ["week", "month"] {
        let n = p.number(&format!("SELECT sum(events) FROM counters WHERE period = '{period}'")).await;
        assert_eq!(n, expected_events, "{period} total");
    }
}
