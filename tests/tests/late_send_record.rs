//! Joins in either arrival order: provider events that arrive before the sender's send
//! record are attributed once the record arrives (broadcast, sequence, template, cost),
//! and the per-broadcast numbers follow (`broadcast_stats`, `attributed_counters`, the
//! event rows' attribution columns).

use e2e::{ses, wait_until, Pipeline, Stack};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn events_before_their_send_record_are_attributed_when_it_arrives() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "late-join").await;
    p.start_all().await;

    // provider events first: delivered and opened, no attribution of their own
    for name in ["event_delivery.json", "event_open.json"] {
        let mut body = ses::body(name, "late-1", Some(&["late@example.com"]));
        // strip the fixture's own tags so only the send record can attribute
        let mut sns: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut msg: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
        msg["mail"]["tags"] = serde_json::json!({});
        sns["Message"] = msg.to_string().into();
        body = e2e::samples::sign_sns(&serde_json::to_vec(&sns).unwrap());
        assert_eq!(p.post_sns("acme", &body).await.0, 200);
    }
    wait_until("the delivery row", Duration::from_secs(90), || async {
        (p.number("SELECT count() FROM deliveries FINAL WHERE provider_message_id = 'late-1' AND status = 'opened'").await == 1).then_some(())
    })
    .await;
    assert_eq!(p.number("SELECT count() FROM broadcast_stats WHERE broadcast_id = 'b-late'").await, 0);

    // then the send record
    let record = serde_json::json!([{
        "channel": "email", "provider": "ses", "provider_message_id": "late-1", "recipient": "late@example.com",
        "broadcast": "b-late", "sequence": "onboarding", "template": "t-late", "message_class": "marketing",
        "cost": {"amount": "0.0001", "unit": "USD"}
    }]);
    let (status, text) = p
        .post("/v1/sends/acme", &[("x-api-key", "acme-api-key"), ("content-type", "application/json")], serde_json::to_vec(&record).unwrap())
        .await;
    assert_eq!(status, 200, "{text}");

    let stats = wait_until("attributed", Duration::from_secs(90), || async {
        let rows = p.rows("SELECT broadcast_id, sequence_id, template_key, deliveries, delivered, unique_opens, toString(cost) AS cost FROM broadcast_stats WHERE broadcast_id = 'b-late'").await;
        rows.into_iter().next()
    })
    .await;
    assert_eq!(stats["sequence_id"], "onboarding");
    assert_eq!(stats["template_key"], "t-late");
    assert_eq!((stats["deliveries"].as_u64(), stats["delivered"].as_u64(), stats["unique_opens"].as_u64()), (Some(1), Some(1), Some(1)));
    assert_eq!(stats["cost"], "0.0001");
    // the per-broadcast counters follow: the earlier delivered and opened moved from '' to b-late
    let counts = |b: &'static str| {
        let p = &p;
        async move {
            p.rows(&format!("SELECT event_type, sum(events) AS n FROM attributed_counters WHERE period = 'day' AND broadcast_id = '{b}' GROUP BY event_type HAVING n != 0 ORDER BY event_type"))
                .await
                .into_iter()
                .map(|r| (r["event_type"].as_str().unwrap_or_default().to_string(), r["n"].as_i64().or_else(|| r["n"].as_str().and_then(|x| x.parse().ok())).unwrap_or(0)))
                .collect::<Vec<_>>()
        }
    };
    let moved = wait_until("attributed counters", Duration::from_secs(30), || async {
        let c = counts("b-late").await;
        (c.len() == 3).then_some(c)
    })
    .await;
    assert_eq!(moved, vec![("delivered".to_string(), 1), ("opened".to_string(), 1), ("queued".to_string(), 1)]);
    assert_eq!(counts("").await, vec![], "nothing left unattributed");
    assert_eq!(p.number("SELECT count() FROM events FINAL WHERE broadcast_id = 'b-late' AND sequence_id = 'onboarding'").await, 3, "the event rows follow");
    let d = &p.rows("SELECT status, message_class, broadcast_id FROM deliveries FINAL WHERE provider_message_id = 'late-1'").await[0];
    assert_eq!((d["status"].as_str(), d["message_class"].as_str()), (Some("opened"), Some("marketing")), "the late queued record does not regress the status");
}
