//! Consumer lag per partition, as the aggregator exports it, against what is known to be
//! waiting: records produced onto one partition of the events topic while the aggregator
//! cannot finish them (ClickHouse away behind a proxy) are its lag on that partition, exactly,
//! and 0 on the others; once ClickHouse is back and they are applied and committed, every
//! partition's lag is 0.

use e2e::kafka::produce_in_order;
use e2e::proxy::Proxy;
use e2e::{wait_until, Pipeline, Stack};
use std::collections::BTreeMap;
use std::time::Duration;

/// `sendtrace_aggregator_consumer_lag_records` of `topic`, by partition.
async fn lag(url: &str, topic: &str) -> BTreeMap<i32, f64> {
    let text = reqwest::get(url).await.expect("metrics").text().await.expect("text");
    let prefix = format!("sendtrace_aggregator_consumer_lag_records{{topic=\"{topic}\",partition=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (p, v) = rest.split_once("\"} ")?;
            Some((p.parse().ok()?, v.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_is_what_is_not_yet_committed() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "lag").await;
    let proxy = Proxy::start(stack.clickhouse_url.trim_start_matches("http://").to_string()).await;
    p.aggregator_env.push(("SENDTRACE_CLICKHOUSE__URL".into(), format!("http://127.0.0.1:{}", proxy.port)));
    p.aggregator_env.push(("SENDTRACE_MAX_RETRY_BACKOFF_MS".into(), "500".into()));
    p.aggregator_env.push(("SENDTRACE_READINESS__PROBE_INTERVAL_MS".into(), "500".into()));
    proxy.set_up(false);
    // Records no event decoder reads: each becomes a dead letter, which the aggregator records
    // as done in ClickHouse before it commits, so none is committed while ClickHouse is away.
    const WAITING: usize = 37;
    let records: Vec<Option<Vec<u8>>> = (0..WAITING).map(|i| Some(format!("not an event {i}").into_bytes())).collect();
    produce_in_order(&stack.brokers, &p.events_topic, 2, &records).await;
    p.start_aggregator().await;
    let url = format!("http://127.0.0.1:{}/metrics", p.admin_ports().1);
    let topic = p.events_topic.clone();
    let want_blocked: BTreeMap<i32, f64> = (0..4).map(|i| (i, if i == 2 { WAITING as f64 } else { 0.0 })).collect();
    wait_until("lag = the records waiting, per partition", Duration::from_secs(60), || async {
        (lag(&url, &topic).await == want_blocked).then_some(())
    })
    .await;
    // still so a few probes later: nothing is committed while ClickHouse is away
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lag(&url, &topic).await, want_blocked);

    proxy.set_up(true);
    let want_done: BTreeMap<i32, f64> = (0..4).map(|i| (i, 0.0)).collect();
    wait_until("lag 0 once applied and committed", Duration::from_secs(90), || async { (lag(&url, &topic).await == want_done).then_some(()) }).await;
    let done: u64 = p.number("SELECT count() FROM aggregator_offsets WHERE state = 'done'").await;
    assert!(done >= 1, "the records were applied (done manifests) before the lag reached 0");
}
