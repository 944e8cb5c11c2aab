//! The suppression list and machine opens, through the running stack:
//! SES events over HTTP → rows in `suppressions`, records on the compacted topic,
//! and a privacy-proxy open kept but counted apart.

use e2e::kafka::read_all;
use e2e::{ses, wait_until, Pipeline, Stack};
use std::collections::BTreeMap;
use std::time::Duration;

fn with_open_client(body: &[u8], ua: &str, ip: &str) -> Vec<u8> {
    let mut sns: serde_json::Value = serde_json::from_slice(body).unwrap();
    let mut msg: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
    msg["open"]["userAgent"] = ua.into();
    msg["open"]["ipAddress"] = ip.into();
    sns["Message"] = msg.to_string().into();
    e2e::samples::sign_sns(&serde_json::to_vec(&sns).unwrap())
}

async fn suppressions(p: &Pipeline) -> BTreeMap<String, (String, String)> {
    p.rows("SELECT address, scope, reason FROM suppressions FINAL ORDER BY address")
        .await
        .into_iter()
        .map(|r| (r["address"].as_str().unwrap().to_string(), (r["scope"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn suppressions_and_machine_opens() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "suppr").await;
    p.start_all().await;

    let posts = vec![
        ses::body("event_bounce_permanent.json", "h1", Some(&["hard@example.com"])),
        ses::body("event_complaint.json", "c1", Some(&["angry@example.com"])),
        // three soft bounces of one address within the window: marketing mail suppressed
        ses::body("event_bounce_transient.json", "s1", Some(&["soft@example.com"])),
        ses::body("event_bounce_transient.json", "s2", Some(&["soft@example.com"])),
        ses::body("event_bounce_transient.json", "s3", Some(&["soft@example.com"])),
        // two soft bounces only: not suppressed
        ses::body("event_bounce_transient.json", "t1", Some(&["fine@example.com"])),
        ses::body("event_bounce_transient.json", "t2", Some(&["fine@example.com"])),
        // an Apple Mail Privacy Protection prefetch and a human open of another message
        with_open_client(&ses::body("event_open.json", "o1", Some(&["reader@example.com"])), "Mozilla/5.0", "17.58.101.2"),
        with_open_client(&ses::body("event_open.json", "o2", Some(&["reader@example.com"])), "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15", "203.0.113.7"),
    ];
    for body in &posts {
        let (status, text) = p.post_sns("acme", body).await;
        assert_eq!(status, 200, "{text}");
    }
    let got = wait_until("three suppressions", Duration::from_secs(180), || async {
        let s = suppressions(&p).await;
        (s.len() >= 3).then_some(s)
    })
    .await;
    assert_eq!(got["hard@example.com"], ("email".to_string(), "hard_bounce".to_string()));
    assert_eq!(got["angry@example.com"], ("all".to_string(), "complaint".to_string()));
    assert_eq!(got["soft@example.com"], ("email_marketing".to_string(), "soft_bounces".to_string()));
    assert!(!got.contains_key("fine@example.com"), "two soft bounces are below the threshold");

    // a later hard bounce upgrades the soft-bounce entry
    let (status, _) = p.post_sns("acme", &ses::body("event_bounce_permanent.json", "s4", Some(&["soft@example.com"]))).await;
    assert_eq!(status, 200);
    wait_until("upgrade to hard bounce", Duration::from_secs(60), || async {
        (suppressions(&p).await.get("soft@example.com").map(|x| x.1.as_str()) == Some("hard_bounce")).then_some(())
    })
    .await;

    // a weaker event for a complained address (a hard bounce, in a later batch) changes nothing
    let (status, _) = p.post_sns("acme", &ses::body("event_bounce_permanent.json", "c2", Some(&["angry@example.com"]))).await;
    assert_eq!(status, 200);
    let angry = |records: &[(Option<Vec<u8>>, Vec<u8>)]| records.iter().filter(|(k, _)| k.as_deref() == Some(b"acme/angry@example.com".as_slice())).count();
    wait_until("the later bounce's batch published", Duration::from_secs(60), || async {
        (angry(&read_all(&stack.brokers, &p.suppressions_topic, 4, Duration::from_secs(1))) >= 2).then_some(())
    })
    .await;
    assert_eq!(suppressions(&p).await["angry@example.com"], ("all".to_string(), "complaint".to_string()));

    // the compacted topic carries the entries, keyed by tenant/address; each key's latest
    // record is the strongest entry (what senders read last wins)
    let records = read_all(&stack.brokers, &p.suppressions_topic, 4, Duration::from_secs(1));
    let keys: Vec<String> = records.iter().filter_map(|(k, _)| k.as_ref().map(|k| String::from_utf8_lossy(k).to_string())).collect();
    for addr in ["hard@example.com", "angry@example.com", "soft@example.com"] {
        assert!(keys.contains(&format!("acme/{addr}")), "{addr} on the topic: {keys:?}");
    }
    let last_soft = records
        .iter()
        .rfind(|(k, _)| k.as_deref() == Some(b"acme/soft@example.com".as_slice()))
        .map(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).unwrap())
        .unwrap();
    assert_eq!(last_soft["reason"], "hard_bounce");
    let last_angry = records
        .iter()
        .rfind(|(k, _)| k.as_deref() == Some(b"acme/angry@example.com".as_slice()))
        .map(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).unwrap())
        .unwrap();
    assert_eq!(last_angry["reason"], "complaint", "a weaker entry is never published over a stronger one");

    // machine open: kept, flagged, counted apart; the human open counts
    let opens = p.rows("SELECT provider_message_id, machine FROM events WHERE event_type = 'opened' ORDER BY provider_message_id").await;
    assert_eq!(opens.len(), 2);
    assert_eq!(opens[0]["machine"], "apple_mpp");
    assert_eq!(opens[1]["machine"], "");
    let d = p.rows("SELECT provider_message_id, status, open_count, machine_open_count FROM deliveries FINAL WHERE recipient = 'reader@example.com' ORDER BY provider_message_id").await;
    assert_eq!((d[0]["status"].as_str(), d[0]["open_count"].as_u64(), d[0]["machine_open_count"].as_u64()), (Some("unknown"), Some(0), Some(1)));
    assert_eq!((d[1]["status"].as_str(), d[1]["open_count"].as_u64()), (Some("opened"), Some(1)));
    assert_eq!(p.number("SELECT sum(events) FROM counters WHERE period = 'day' AND event_type = 'opened' AND machine = 'apple_mpp'").await, 1);
    assert_eq!(p.number("SELECT sum(events) FROM counters WHERE period = 'day' AND event_type = 'opened' AND machine = ''").await, 1);
    let eng = p.rows("SELECT human_opens, machine_opens, score FROM engagement WHERE recipient = 'reader@example.com'").await;
    assert_eq!((eng[0]["human_opens"].as_u64(), eng[0]["machine_opens"].as_u64(), eng[0]["score"].as_u64()), (Some(1), Some(1), Some(5)));
}
