//! Structured JSON logs (`SENDTRACE_LOG_JSON=1`) carry ingest's request id through the stages:
//! a notification ingest stores and the normalizer dead-letters is named by the same
//! `request_id` in ingest's log line, in the normalizer's line about its dead letter, and in the
//! raw envelope the dead letter carries.

use e2e::{kafka::read_all, wait_until, Pipeline, Stack};
use std::time::Duration;

/// The JSON log lines of `path` (other lines skipped).
fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Whether a JSON log line names `request_id` in its fields or in any of its spans.
fn names(line: &serde_json::Value, request_id: &str) -> bool {
    let in_fields = line["fields"]["request_id"].as_str() == Some(request_id);
    let in_spans = line["spans"].as_array().is_some_and(|s| s.iter().any(|sp| sp["request_id"].as_str() == Some(request_id)));
    in_fields || in_spans || line["span"]["request_id"].as_str() == Some(request_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn request_id_in_every_stage_log_and_the_dead_letter() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "reqid").await;
    p.service_env = vec![("SENDTRACE_LOG_JSON".into(), "1".into()), ("RUST_LOG".into(), "info,ingest=debug".into())];
    p.start_ingest().await;
    p.start_normalizer().await;

    // an SNS notification whose Message is not JSON: stored by ingest, dead-lettered by the normalizer
    let malformed = e2e::samples::sign_sns(&e2e::fixture("ses", "malformed_message.json"));
    let (status, text) = p.post_sns("acme", &malformed).await;
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON answer");
    let request_id = answer["request_id"].as_str().expect("request_id in the answer").to_string();

    let dead = wait_until("the dead letter", Duration::from_secs(60), || async {
        let recs = read_all(&stack.brokers, &p.dead_letter_topic, 4, Duration::from_millis(800));
        (!recs.is_empty()).then_some(recs)
    })
    .await;
    let dl = schemas::avro::decode_dead_letter(&dead[0].1).expect("dead letter");
    assert_eq!(schemas::avro::decode_raw(&dl.raw).expect("raw envelope kept whole").request_id, request_id, "the dead letter's raw envelope");
    assert_eq!(dl.request_id.as_deref(), Some(request_id.as_str()), "the dead letter's own request_id field");

    let ingest = json_lines(&p.log_of("ingest"));
    assert!(!ingest.is_empty(), "ingest logs JSON");
    assert!(
        ingest.iter().any(|l| l["fields"]["message"].as_str() == Some("Raw record stored.") && names(l, &request_id)),
        "ingest's line for the stored record names {request_id}"
    );
    let normalizer = wait_until("the normalizer's dead-letter line", Duration::from_secs(10), || async {
        let lines = json_lines(&p.log_of("normalizer"));
        lines.into_iter().find(|l| l["fields"]["message"].as_str() == Some("Record sent to dead-letter topic."))
    })
    .await;
    assert!(names(&normalizer, &request_id), "the normalizer's dead-letter line names {request_id}: {normalizer}");
    assert_eq!(normalizer["fields"]["reason"].as_str(), Some("invalid_json"), "{normalizer}");
}
