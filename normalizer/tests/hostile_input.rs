//! Property tests: `pipeline::handle` never panics and always answers with events or exactly
//! one decodable dead letter, on arbitrary payload bytes and on arbitrary (and mutated
//! fixture) bodies wrapped in a valid raw envelope for every provider. The cargo-fuzz
//! targets in `fuzz/` search the same space much longer (see FUZZING.md).

use normalizer::dead_letter::Coordinates;
use normalizer::pipeline::{handle, OutputBounds, Outgoing};
use normalizer::providers::NormalizeOptions;
use proptest::prelude::*;
use schemas::{ProviderId, RawEnvelope};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

/// Every fixture body, with the provider whose folder holds it.
static FIXTURES: LazyLock<Vec<(ProviderId, Vec<u8>)>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers");
    let mut out = Vec::new();
    for p in ProviderId::ALL {
        let dir = root.join(p.as_str()).join("fixtures");
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if (name.ends_with(".json") || name.ends_with(".txt")) && !name.ends_with(".expected.jsonl") {
                out.push((p, std::fs::read(&f).unwrap()));
            }
        }
    }
    assert!(out.len() > 50, "fixtures found: {}", out.len());
    out
});

fn stored(provider: ProviderId, route: usize, headers: BTreeMap<String, String>, body: Vec<u8>) -> Vec<u8> {
    // Every route the provider declares, by index.
    let routes = normalizer::providers::registry(provider).routes();
    let route = routes[route % routes.len()].clone();
    let env = RawEnvelope {
        request_id: "prop".into(),
        tenant: "acme".into(),
        provider,
        url: route.path(provider, "acme"),
        route,
        content_type: "application/json".into(),
        received_at: 1_700_000_000_000,
        headers,
        body,
    };
    schemas::avro::encode_raw(&env).unwrap()
}

/// What every `handle` answer must look like: events keyed by delivery, and dead letters
/// (for the record, or one per failed item, bounded in number and size) each with a reason
/// and the record's coordinates.
fn check(out: &[Outgoing]) -> Result<(), TestCaseError> {
    let bounds = OutputBounds::default();
    let dead: Vec<&Outgoing> = out.iter().filter(|o| o.dead_letter).collect();
    prop_assert!(dead.len() <= bounds.max_dead_letters_per_record + 1);
    for o in dead {
        prop_assert!(o.payload.len() <= bounds.dead_letter_raw_max_bytes + normalizer::dead_letter::MAX_OVERHEAD_BYTES);
        let dl = schemas::avro::decode_dead_letter(&o.payload).unwrap();
        prop_assert!(!dl.reason_code.is_empty() && !dl.reason.is_empty());
        prop_assert_eq!((dl.raw_topic.as_str(), dl.raw_partition, dl.raw_offset), ("raw", 1, 9));
    }
    for o in out.iter().filter(|o| !o.dead_letter) {
        let e = schemas::avro::decode_event(&o.payload).unwrap();
        prop_assert_eq!(&o.key, &e.delivery_key);
        prop_assert_eq!(e.tenant.as_str(), "acme");
    }
    Ok(())
}

fn run(payload: Option<&[u8]>) -> Vec<Outgoing> {
    let at = Coordinates { topic: "raw", partition: 1, offset: 9 };
    handle(at, payload, &NormalizeOptions::default(), OutputBounds::default(), 1_700_000_000_000)
}

fn provider() -> impl Strategy<Value = ProviderId> {
    prop::sample::select(ProviderId::ALL.to_vec())
}

/// JSON-ish text built from fragments providers look for, so bodies get past the first parse.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[a-zA-Z0-9@:._ -]{0,12}\"",
        Just("\"2024-01-01T00:00:00Z\"".to_string()),
        Just("\"9999-12-31T23:59:59.999999999+99:99\"".to_string()),
        Just("1e999".to_string()),
        Just("-0".to_string()),
    ];
    let keys = prop::sample::select(vec![
        "Type", "Message", "MessageId", "TopicArn", "eventType", "notificationType", "mail", "messageId",
        "destination", "bounce", "bouncedRecipients", "event", "email", "timestamp", "sg_message_id",
        "event-data", "recipient", "RecordType", "MessageID", "Recipient", "type", "data", "to", "created_at",
        "token", "message_id", "http_status", "response", "sent_at", "channel", "provider", "provider_message_id",
        "cost", "labels", "metadata", "error", "details", "tags", "detail", "detail-type", "source", "id",
    ]);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
    .prop_map(String::into_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_payload_bytes(payload in prop::option::of(prop::collection::vec(any::<u8>(), 0..512))) {
        check(&run(payload.as_deref()))?;
    }

    #[test]
    fn arbitrary_bodies_in_valid_envelopes(p in provider(), route in 0usize..2, body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_like(),
    ]) {
        check(&run(Some(&stored(p, route, BTreeMap::new(), body))))?;
    }

    #[test]
    fn mutated_fixtures_in_valid_envelopes(
        pick in any::<prop::sample::Index>(),
        other_provider in prop::option::weighted(0.1, provider()),
        route in 0usize..2,
        at in any::<prop::sample::Index>(),
        cut in 0usize..16,
        insert in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let (p, body) = pick.get(&FIXTURES);
        let mut body = body.clone();
        let at = at.index(body.len() + 1);
        let end = (at + cut).min(body.len());
        body.splice(at..end, insert);
        check(&run(Some(&stored(other_provider.unwrap_or(*p), route, BTreeMap::new(), body))))?;
    }
}

#[test]
fn fixtures_in_valid_envelopes_give_events() {
    // The mutation test above starts from these: each fixture alone must already pass `check`.
    for (p, body) in FIXTURES.iter() {
        for route in 0..normalizer::providers::registry(*p).routes().len() {
            check(&run(Some(&stored(*p, route, BTreeMap::new(), body.clone())))).unwrap();
        }
    }
}
