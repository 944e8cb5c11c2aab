//! Sender health on the running aggregator: a sending domain over the 3 % hard-bounce
//! threshold is flagged (row in `sender_health`, record on the health topic), and
//! unflagged once enough good mail brings it back under.

use e2e::generate::{event, Stream};
use e2e::kafka::read_all;
use e2e::{wait_until, Pipeline, Stack};
use schemas::{BounceClass, EventType};
use std::time::Duration;

fn mail(from: usize, to: usize, bounced: usize, t: i64) -> Stream {
    let events = (from..to)
        .map(|i| {
            let (ty, bc) = if i < from + bounced { (EventType::Bounced, Some(BounceClass::Hard)) } else { (EventType::Delivered, None) };
            let mut e = event("acme", &format!("hm-{i}"), &format!("u{i}@example.org"), ty, bc, t, i);
            e.metadata.insert("from_domain".into(), "news.example.com".into());
            e.metadata.insert("sending_account".into(), "123456789012".into());
            e
        })
        .collect();
    Stream { events }
}

async fn flagged(p: &Pipeline) -> Option<u64> {
    let rows = p.rows("SELECT flagged FROM sender_health FINAL WHERE sending_domain = 'news.example.com'").await;
    rows.first().and_then(|r| r["flagged"].as_u64())
}

#[tokio::test(flavor = "multi_thread")]
async fn bounce_rate_flags_and_recovery_unflags() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "health").await;
    let topic = format!("{}.health", p.events_topic);
    p.aggregator_env.push(("SENDTRACE_HEALTH__INTERVAL_SECS".into(), "1".into()));
    p.aggregator_env.push(("SENDTRACE_HEALTH__TOPIC".into(), topic.clone()));
    p.start_aggregator().await;
    let t = chrono::Utc::now().timestamp_millis() - 3_600_000;

    // 200 messages, 20 hard bounces: 10 % > 3 %
    mail(0, 200, 20, t).produce(&stack.brokers, &p.events_topic, 0..200).await;
    wait_until("flagged", Duration::from_secs(120), || async { (flagged(&p).await == Some(1)).then_some(()) }).await;
    // the flag row holds the counts of the evaluation that raised it (possibly mid-stream)
    let row = &p.rows("SELECT reasons, sent, hard_bounces FROM sender_health FINAL WHERE sending_domain = 'news.example.com'").await[0];
    assert_eq!(row["reasons"], serde_json::json!(["bounce_rate"]));
    let (sent, bounces) = (row["sent"].as_u64().unwrap(), row["hard_bounces"].as_u64().unwrap());
    assert!((100..=200).contains(&sent) && bounces <= 20 && bounces * 100 > 3 * sent, "{sent} sent, {bounces} bounced");

    // 800 more delivered: 20 / 1000 = 2 % < 3 %: recovered
    mail(200, 1000, 0, t).produce(&stack.brokers, &p.events_topic, 0..800).await;
    wait_until("unflagged", Duration::from_secs(120), || async { (flagged(&p).await == Some(0)).then_some(()) }).await;
    let row = &p.rows("SELECT sent, hard_bounces FROM sender_health FINAL WHERE sending_domain = 'news.example.com'").await[0];
    let (sent, bounces) = (row["sent"].as_u64().unwrap(), row["hard_bounces"].as_u64().unwrap());
    assert!(bounces * 100 <= 3 * sent, "unflagged at {bounces}/{sent}");

    // once everything is applied, the evaluation's counts are exact
    wait_until("all 1000 applied", Duration::from_secs(60), || async {
        (p.number("SELECT count() FROM events").await == 1000).then_some(())
    })
    .await;
    let stats = p.rows(&aggregator::store::sender_stats_sql(24)).await;
    let s0 = stats.iter().find(|r| r["sending_domain"] == "news.example.com").expect("sender stats");
    assert_eq!((s0["sent"].as_u64(), s0["hard_bounces"].as_u64(), s0["sending_account"].as_str()), (Some(1000), Some(20), Some("123456789012")));

    let records = read_all(&stack.brokers, &topic, 4, Duration::from_secs(1));
    let flags: Vec<u64> = records
        .iter()
        .filter(|(k, _)| k.as_deref() == Some(b"acme/ses/news.example.com/123456789012".as_slice()))
        .map(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).unwrap()["flagged"].as_u64().unwrap())
        .collect();
    assert_eq!(flags, vec![1, 0], "one flag and one unflag published");
}
