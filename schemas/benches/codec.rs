//! The Avro codec on realistic records: the schema-specific path (`schemas::avro::*`) against
//! the apache-avro `Value` path (`schemas::avro::value_path::*`) in the same run.
//!
//! `cargo bench -p sendtrace-schemas --bench codec` (BENCHMARKS.md §8).
//!
//! Input, built before the timed loops, deterministic:
//! * 1,000 events as the normalizer emits them: one send record per delivery (attribution,
//!   cost, a label, metadata, a contact id) and ~5 provider events (opens and clicks with a
//!   user agent, IP and URL, bounces with an error); 32-hex ids and delivery keys, 60-char
//!   SES-like message ids, 25-char recipients.
//! * 100 raw envelopes of SES notifications: a ~1.9 KB SNS body and 6 headers.
//!
//! Each benchmark handles the whole set per iteration (`Throughput::Elements`: records/s).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal::Decimal;
use schemas::avro::{self, value_path};
use schemas::ids::{delivery_key, event_id, EventSource};
use schemas::{BounceClass, Channel, Event, EventType, MessageClass, Money, Origin, ProviderId, RawEnvelope, Route, TimeSource};
use std::collections::BTreeMap;

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const TENANTS: [&str; 4] = ["acme", "globex-corp", "initech", "umbrella-health"];
const PATH: [EventType; 6] = [EventType::Sent, EventType::Delivered, EventType::Opened, EventType::Clicked, EventType::Opened, EventType::Bounced];

fn events(n: usize) -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n);
    let mut d = 0usize;
    while out.len() < n {
        let tenant = TENANTS[d % TENANTS.len()];
        let provider = ["ses", "sendgrid", "postmark", "mailgun"][rng.below(4) as usize];
        let msg = format!(
            "0100018f{:08x}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}-000000",
            d as u32,
            rng.next() as u32,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() & 0xffff_ffff_ffff
        );
        let rcpt = format!("u{:07}@example-mail.com", d % 10_000_000);
        let dk = delivery_key(tenant, provider, &msg, &rcpt);
        let mut t = 1_767_225_600_000 + rng.below(90 * 86_400_000) as i64;
        let steps = 3 + rng.below(4) as usize;
        for (i, ty) in std::iter::once(EventType::Queued).chain(PATH.iter().copied().take(steps)).enumerate() {
            let record = ty == EventType::Queued;
            let pe_id = format!("{msg}-{i}");
            let name = if record { "send_record".to_string() } else { ty.as_str().to_string() };
            let engaged = matches!(ty, EventType::Opened | EventType::Clicked);
            out.push(Event {
                event_id: event_id(tenant, provider, EventSource::ProviderEventId(&pe_id), &name, &rcpt),
                tenant: tenant.into(),
                channel: Channel::Email,
                provider: provider.into(),
                provider_message_id: msg.clone(),
                provider_event_id: Some(pe_id),
                provider_event_name: name,
                delivery_key: dk.clone(),
                recipient: rcpt.clone(),
                broadcast_id: Some(format!("bc-2026-{:04}", d % 97)),
                sequence_id: None,
                contact_id: record.then(|| format!("contact-{d}")),
                template_key: record.then(|| "welcome-v3".to_string()),
                message_class: record.then_some(MessageClass::Marketing),
                labels: if record { vec!["newsletter".into()] } else { vec![] },
                metadata: if record { BTreeMap::from([("campaign".to_string(), "spring-sale".to_string())]) } else { BTreeMap::new() },
                event_type: ty,
                bounce_class: (ty == EventType::Bounced).then_some(BounceClass::Hard),
                occurred_at: t,
                received_at: t + 1_500,
                time_source: TimeSource::Provider,
                click_url: (ty == EventType::Clicked).then(|| "https://example.com/spring?utm_source=newsletter".to_string()),
                user_agent: engaged.then(|| "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)".to_string()),
                ip: engaged.then(|| "203.0.113.7".to_string()),
                error_code: (ty == EventType::Bounced).then(|| "5.1.1".to_string()),
                error_reason: (ty == EventType::Bounced).then(|| "smtp; 550 5.1.1 user unknown".to_string()),
                cost: record.then(|| Money::new(Decimal::new(75, 5), "USD")),
                raw_topic: "sendtrace.raw.v1".into(),
                raw_partition: (d % 12) as i32,
                raw_offset: (d * 8 + i) as i64,
                origin: if record { Origin::SendRecord } else { Origin::Provider },
            });
            t += 1_000 + rng.below(3_600_000) as i64;
        }
        d += 1;
    }
    out.truncate(n);
    out
}

/// An SES notification as SNS posts it: ~1.9 KB of JSON with the SES event escaped inside.
fn sns_body(i: usize) -> Vec<u8> {
    let message = format!(
        r#"{{"eventType":"Delivery","mail":{{"timestamp":"2026-12-02T10:00:00.000Z","source":"news@example.com","sourceArn":"arn:aws:ses:eu-west-1:123456789012:identity/example.com","sendingAccountId":"123456789012","messageId":"0100018f{i:08x}-2f1c9c1e-9a0b-4c7e-8d2f-1b3a5c7e9d0f-000000","destination":["u{i:07}@example-mail.com"],"headersTruncated":false,"headers":[{{"name":"From","value":"news@example.com"}},{{"name":"To","value":"u{i:07}@example-mail.com"}},{{"name":"Subject","value":"Spring sale"}}],"commonHeaders":{{"from":["news@example.com"],"to":["u{i:07}@example-mail.com"],"messageId":"0100018f{i:08x}","subject":"Spring sale"}},"tags":{{"ses:configuration-set":["sendtrace"],"broadcast_id":["bc-2026-0042"],"ses:source-ip":["203.0.113.7"]}}}},"delivery":{{"timestamp":"2026-12-02T10:00:01.000Z","processingTimeMillis":812,"recipients":["u{i:07}@example-mail.com"],"smtpResponse":"250 2.0.0 OK 1733133601 a1b2c3d4e5f6-ses","remoteMtaIp":"198.51.100.25","reportingMTA":"a8-30.smtp-out.amazonses.com"}}}}"#
    );
    let body = serde_json::json!({
        "Type": "Notification",
        "MessageId": format!("5f0f5c2e-{i:04x}-5d2a-9b8e-0c3f4a6b7d8e"),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": message,
        "Timestamp": "2026-12-02T10:00:01.512Z",
        "SignatureVersion": "2",
        "Signature": "k".repeat(344),
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:ses-events:0b1c2d3e"
    });
    serde_json::to_vec(&body).expect("json")
}

fn envelopes(n: usize) -> Vec<RawEnvelope> {
    (0..n)
        .map(|i| RawEnvelope {
            request_id: format!("2f1c9c1e-9a0b-4c7e-8d2f-{i:012x}"),
            tenant: TENANTS[i % TENANTS.len()].into(),
            provider: ProviderId::Ses,
            route: Route::Webhook,
            url: format!("/webhooks/ses/{}", TENANTS[i % TENANTS.len()]),
            content_type: "text/plain; charset=UTF-8".into(),
            received_at: 1_764_669_601_512 + i as i64,
            headers: BTreeMap::from([
                ("content-type".to_string(), "text/plain; charset=UTF-8".to_string()),
                ("user-agent".to_string(), "Amazon Simple Notification Service Agent".to_string()),
                ("x-amz-sns-message-id".to_string(), format!("5f0f5c2e-{i:04x}-5d2a-9b8e-0c3f4a6b7d8e")),
                ("x-amz-sns-message-type".to_string(), "Notification".to_string()),
                ("x-amz-sns-subscription-arn".to_string(), "arn:aws:sns:eu-west-1:123456789012:ses-events:0b1c2d3e".to_string()),
                ("x-amz-sns-topic-arn".to_string(), "arn:aws:sns:eu-west-1:123456789012:ses-events".to_string()),
            ]),
            body: sns_body(i),
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let events = events(1_000);
    let event_bytes: Vec<Vec<u8>> = events.iter().map(|e| avro::encode_event(e).expect("encodes")).collect();
    let envelopes = envelopes(100);
    let raw_bytes: Vec<Vec<u8>> = envelopes.iter().map(|r| avro::encode_raw(r).expect("encodes")).collect();
    let body = envelopes.iter().map(|r| r.body.len()).sum::<usize>() / envelopes.len();
    let avg = raw_bytes.iter().map(Vec::len).sum::<usize>() / raw_bytes.len();
    let event_avg = event_bytes.iter().map(Vec::len).sum::<usize>() / event_bytes.len();
    eprintln!("events: {} ({event_avg} B on average); envelopes: {} ({avg} B, body {body} B)", events.len(), envelopes.len());

    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("encode/value_path", |b| b.iter(|| events.iter().map(|e| value_path::encode_event(e).expect("encodes").len()).sum::<usize>()));
    g.bench_function("encode/fast", |b| b.iter(|| events.iter().map(|e| avro::encode_event(e).expect("encodes").len()).sum::<usize>()));
    g.bench_function("encode_into/fast", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                buf.clear();
                avro::encode_event_into(e, &mut buf).expect("encodes");
                n += buf.len();
            }
            n
        })
    });
    // each decoded value is dropped in the loop, as a consumer would after using it
    g.bench_function("decode/value_path", |b| b.iter(|| event_bytes.iter().map(|x| value_path::decode_event(x).expect("decodes").raw_offset).sum::<i64>()));
    g.bench_function("decode/fast", |b| b.iter(|| event_bytes.iter().map(|x| avro::decode_event(x).expect("decodes").raw_offset).sum::<i64>()));
    g.finish();

    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Elements(envelopes.len() as u64));
    g.bench_function("encode/value_path", |b| b.iter(|| envelopes.iter().map(|r| value_path::encode_raw(r).expect("encodes").len()).sum::<usize>()));
    g.bench_function("encode/fast", |b| b.iter(|| envelopes.iter().map(|r| avro::encode_raw(r).expect("encodes").len()).sum::<usize>()));
    g.bench_function("decode/value_path", |b| b.iter(|| raw_bytes.iter().map(|x| value_path::decode_raw(x).expect("decodes").body.len()).sum::<usize>()));
    g.bench_function("decode/fast", |b| b.iter(|| raw_bytes.iter().map(|x| avro::decode_raw(x).expect("decodes").body.len()).sum::<usize>()));
    g.bench_function("decode_ref/fast", |b| {
        b.iter(|| raw_bytes.iter().map(|x| black_box(avro::decode_raw_ref(x).expect("decodes")).body.len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
