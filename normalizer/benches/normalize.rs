//! The normalizer core (issue 14, goal 1): a stored raw record (Avro raw envelope) → canonical
//! Avro events, `pipeline::handle` per record on one thread, with the same-run baselines it is
//! judged against. Input: `normalizer::mix` (every provider's documented fixtures, SES through
//! SNS 60 %, recipients and ids unique per record), built and encoded before timing.
//!
//! Two groups, each timing one pass over its records (throughput in records, i.e. documents):
//! * `mix`: every record of the mix.
//! * `ses_sns`: the SES-through-SNS records alone, the same bodies `scripts/bench-normalizer.sh`
//!   maps with ClickHouse's SQL.
//!
//! In each: `handle` (the production path); `decode_raw` alone; `decode_raw` + a
//! `serde_json::Value` of the body (and of the SNS `Message` inside it): the tree parse the
//! old mapping did; and the parse limit: for `ses_sns` a typed, borrowed serde parse of only
//! the fields the mapping reads, for `mix` (whose providers each need their own types) serde's
//! `IgnoredAny` over the body and the SNS `Message`, i.e. reading the JSON and building nothing.
//!
//! With the service's allocator (mimalloc, as `src/main.rs`).
//!
//! `cargo bench -p normalizer --features samples --bench normalize` (CI: `-- --test`).
//! `SENDTRACE_BENCH_RECORDS` sets the mix's size (default 20 000); with
//! `SENDTRACE_BENCH_DUMP=<dir>` the bench writes `<dir>/ses_sns.jsonl` (one SES-through-SNS
//! body per line) for the ClickHouse baseline and `<dir>/ses_sns.ids.tsv` (event id, delivery
//! key and type of every event `handle` makes of them, to check the SQL against), and exits.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use normalizer::dead_letter::Coordinates;
use normalizer::mix::{self, MixRecord};
use normalizer::pipeline::{handle, OutputBounds};
use normalizer::providers::NormalizeOptions;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::hint::black_box;
use std::io::Write;

/// The service's allocator (`src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the SES mapping reads of an SNS notification.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Sns<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    message_id: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
}

/// What the SES mapping reads of an SES event (the SNS `Message`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SesEvent<'a> {
    #[serde(borrow)]
    event_type: Option<Str<'a>>,
    #[serde(borrow)]
    notification_type: Option<Str<'a>>,
    #[serde(borrow)]
    mail: Mail<'a>,
    #[serde(borrow, alias = "send", alias = "delivery", alias = "bounce", alias = "complaint", alias = "reject")]
    #[serde(alias = "failure", alias = "open", alias = "click", alias = "deliveryDelay", alias = "subscription")]
    detail: Option<Detail<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Mail<'a> {
    #[serde(borrow)]
    message_id: Str<'a>,
    #[serde(borrow)]
    timestamp: Option<Str<'a>>,
    #[serde(borrow, default)]
    destination: Vec<Str<'a>>,
    #[serde(borrow)]
    tags: Option<Pairs<'a, Vec<Str<'a>>>>,
    #[serde(borrow, default)]
    headers: Vec<Header<'a>>,
    #[serde(borrow)]
    sending_account_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Header<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    value: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Detail<'a> {
    #[serde(borrow)]
    timestamp: Option<Str<'a>>,
    #[serde(borrow, default)]
    recipients: Vec<Str<'a>>,
    #[serde(borrow)]
    bounce_type: Option<Str<'a>>,
    #[serde(borrow)]
    bounce_sub_type: Option<Str<'a>>,
    #[serde(borrow, default, alias = "complainedRecipients", alias = "delayedRecipients")]
    bounced_recipients: Vec<Recipient<'a>>,
    #[serde(borrow)]
    user_agent: Option<Str<'a>>,
    #[serde(borrow)]
    ip_address: Option<Str<'a>>,
    #[serde(borrow)]
    link: Option<Str<'a>>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
    #[serde(borrow)]
    error_message: Option<Str<'a>>,
    #[serde(borrow)]
    complaint_feedback_type: Option<Str<'a>>,
    #[serde(borrow)]
    delay_type: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Recipient<'a> {
    #[serde(borrow)]
    email_address: Str<'a>,
    #[serde(borrow)]
    diagnostic_code: Option<Str<'a>>,
}

/// A JSON object read as borrowed (name, value) pairs, in order, without a map.
#[allow(dead_code)]
struct Pairs<'a, V>(Vec<(Str<'a>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Pairs<'a, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a, V>(std::marker::PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<'a, V> {
            type Value = Pairs<'a, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Str<'a>, V>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A string borrowed from the input where it has no escapes (serde borrows a `Cow` only as a
/// field of its own, not inside an `Option` or a `Vec`).
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

fn records() -> usize {
    std::env::var("SENDTRACE_BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000)
}

/// Never inlined, so that callgrind's `--toggle-collect='normalize::handle_all*'` finds it in
/// any build (a fat-LTO build may inline it into criterion's routine).
#[inline(never)]
fn handle_all(records: &[MixRecord], opts: &NormalizeOptions) -> usize {
    // once, as the service does (`pipeline::run`): `Config::default()` per record was ~2 % of it
    let bounds = OutputBounds::default();
    let mut n = 0;
    for (i, r) in records.iter().enumerate() {
        let at = Coordinates { topic: "sendtrace.raw.v1", partition: 0, offset: i as i64 };
        n += handle(at, Some(black_box(&r.payload)), opts, bounds, mix::RECEIVED_AT_MS).len();
    }
    n
}

fn decode_all(records: &[MixRecord]) -> usize {
    records.iter().map(|r| schemas::avro::decode_raw(black_box(&r.payload)).expect("decodes").body.len()).sum()
}

/// `decode_raw` + `Value` of the body and, for SNS, of its `Message`.
fn value_all(records: &[MixRecord]) -> usize {
    let mut n = 0;
    for r in records {
        let env = schemas::avro::decode_raw(black_box(&r.payload)).expect("decodes");
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&env.body) else { continue };
        if let Some(m) = v.get("Message").and_then(serde_json::Value::as_str) {
            let inner: serde_json::Value = serde_json::from_str(m).expect("SNS Message is JSON");
            n += inner.as_object().map_or(0, |o| o.len());
        }
        n += v.as_object().map_or(1, |o| o.len());
    }
    n
}

/// `decode_raw` + reading the JSON of the body and the SNS `Message` without building anything.
fn skim_all(records: &[MixRecord]) -> usize {
    #[derive(Deserialize)]
    struct MaybeSns<'a> {
        #[serde(rename = "Message", borrow)]
        message: Option<Str<'a>>,
    }
    let mut n = 0;
    for r in records {
        let env = schemas::avro::decode_raw(black_box(&r.payload)).expect("decodes");
        if r.group == "ses_sns" {
            let sns: MaybeSns = serde_json::from_slice(&env.body).expect("SNS JSON");
            let m = sns.message.expect("a Message");
            serde_json::from_str::<IgnoredAny>(&m.0).expect("SNS Message is JSON");
            n += m.0.len();
        } else if serde_json::from_slice::<IgnoredAny>(&env.body).is_ok() {
            n += 1;
        }
    }
    n
}

/// `decode_raw` + the typed parse of only the fields the SES mapping reads (the parse limit).
fn typed_all(records: &[MixRecord]) -> usize {
    let mut n = 0;
    for r in records {
        let env = schemas::avro::decode_raw(black_box(&r.payload)).expect("decodes");
        let sns: Sns = serde_json::from_slice(&env.body).expect("SNS JSON");
        let ev: SesEvent = serde_json::from_str(&sns.message.0).expect("SES event JSON");
        n += ev.mail.destination.len() + ev.detail.map_or(0, |d| d.recipients.len() + d.bounced_recipients.len());
    }
    n
}

fn dump(dir: &str, records: &[MixRecord]) {
    std::fs::create_dir_all(dir).expect("dump dir");
    let path = format!("{dir}/ses_sns.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("dump file"));
    let mut n = 0;
    for r in records.iter().filter(|r| r.group == "ses_sns") {
        assert!(!r.envelope.body.contains(&b'\n'), "one body per line");
        f.write_all(&r.envelope.body).and_then(|()| f.write_all(b"\n")).expect("write");
        n += 1;
    }
    f.flush().expect("flush");
    // and the ids of the events the normalizer makes of them, for the script to compare
    let ids = format!("{dir}/ses_sns.ids.tsv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&ids).expect("ids file"));
    for (i, r) in records.iter().filter(|r| r.group == "ses_sns").enumerate() {
        let at = Coordinates { topic: "sendtrace.raw.v1", partition: 0, offset: i as i64 };
        for o in handle(at, Some(&r.payload), &NormalizeOptions::default(), OutputBounds::default(), mix::RECEIVED_AT_MS) {
            let e = schemas::avro::decode_event(&o.payload).expect("an event");
            writeln!(f, "{}\t{}\t{}", e.event_id, e.delivery_key, e.event_type).expect("write");
        }
    }
    f.flush().expect("flush");
    eprintln!("wrote {n} SES-through-SNS bodies to {path}, their events' ids to {ids}");
}

fn bench(c: &mut Criterion) {
    let all = mix::build(records());
    if let Ok(dir) = std::env::var("SENDTRACE_BENCH_DUMP") {
        dump(&dir, &all);
        return;
    }
    let ses: Vec<MixRecord> = all.iter().filter(|r| r.group == "ses_sns").cloned().collect();
    let opts = NormalizeOptions::default();
    let bytes = |rs: &[MixRecord]| rs.iter().map(|r| r.envelope.body.len()).sum::<usize>() / rs.len().max(1);
    eprintln!("mix: {} records (mean body {} B), of which SES through SNS {} (mean body {} B)", all.len(), bytes(&all), ses.len(), bytes(&ses));
    // the typed parse must read every SES record the mapping reads
    assert!(typed_all(&ses) > 0);

    for (name, records) in [("mix", &all), ("ses_sns", &ses)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(records.len() as u64));
        g.sample_size(10);
        g.bench_function("handle", |b| b.iter(|| handle_all(records, &opts)));
        g.bench_function("baseline_decode_raw", |b| b.iter(|| decode_all(records)));
        g.bench_function("baseline_value", |b| b.iter(|| value_all(records)));
        if name == "ses_sns" {
            g.bench_function("baseline_typed_parse", |b| b.iter(|| typed_all(records)));
        } else {
            g.bench_function("baseline_skim", |b| b.iter(|| skim_all(records)));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
