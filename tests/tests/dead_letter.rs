//! A payload that passes ingest's checks but cannot be normalized reaches the
//! dead-letter topic with a reason and its raw coordinates; nothing is dropped.

use e2e::{kafka::read_all, ses, wait_until, Pipeline, Stack};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_ses_message_goes_to_dead_letter_topic_with_reason() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "dlq").await;
    p.start_ingest().await;
    p.start_normalizer().await;

    // injected failure: an SNS Notification whose Message is not JSON
    let malformed = e2e::samples::sign_sns(&e2e::fixture("ses", "malformed_message.json"));
    let (status, text) = p.post_sns("acme", &malformed).await;
    assert_eq!(status, 200, "ingest stores what it can verify: {text}");
    // and a good one beside it, which must still flow
    assert_eq!(p.post_sns("acme", &ses::body("event_delivery.json", "ok-1", None)).await.0, 200);

    let dead = wait_until("a dead letter", Duration::from_secs(60), || async {
        let recs = read_all(&stack.brokers, &p.dead_letter_topic, 4, Duration::from_millis(800));
        (!recs.is_empty()).then_some(recs)
    })
    .await;
    assert_eq!(dead.len(), 1);
    let dl = schemas::avro::decode_dead_letter(&dead[0].1).expect("dead letter decodes");
    assert_eq!(dl.reason_code, "invalid_json");
    assert!(dl.reason.contains("SNS Message"), "{}", dl.reason);
    assert_eq!(dl.raw_topic, p.raw_topic);
    assert_eq!(dl.provider.as_deref(), Some("ses"));
    // the dead letter carries the raw record itself
    let raw = schemas::avro::decode_raw(&dl.raw).expect("raw envelope kept");
    assert_eq!(raw.body, malformed);

    let events = read_all(&stack.brokers, &p.events_topic, 4, Duration::from_millis(800));
    assert_eq!(events.len(), 1, "the good notification still became one event");
}
