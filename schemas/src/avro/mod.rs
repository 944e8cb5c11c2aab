//! Avro schemas and the wire codec.
//!
//! Every record on a sendtrace topic is Avro *single-object encoding*
//! (`C3 01`, the 8-byte CRC-64-AVRO fingerprint of the writer schema, the datum),
//! so a reader can tell which schema version wrote it and resolve it against its own.
//! Old writer schemas are kept in `avro/history/` and listed in `*_HISTORY`.
//!
//! # Layout
//! * `binary`: Avro's binary primitives (varints, strings, unions, blocks), bounded reads.
//! * `event`, `raw`: schema-specific codecs for the CURRENT event and raw envelope schemas,
//!   straight between the struct and the bytes. They are the hot paths (ingest encodes an
//!   envelope per request, the normalizer decodes it and encodes events, the aggregator
//!   decodes events): 26-85x faster than building `Value` trees for events, 3-19x for
//!   envelopes (BENCHMARKS.md §8).
//! * `value_path`: the apache-avro `Value` codec, byte-for-byte the reference the fast paths
//!   are tested against; it still reads records of older writer schemas (resolution) and
//!   handles dead letters.
//!
//! Why by hand: apache-avro's serde paths (`GenericDatumWriter::write_ser`, `read_deser`) and
//! `serde_avro_fast` skip the `Value` tree but need serde impls shaped like the Avro schema,
//! and ours are the JSON shape (RFC 3339 times, string amounts), so mirror structs would be
//! as much code; `read_deser` cannot resolve older writers, and `serde_avro_fast` writes
//! decimals trimmed to their shortest bytes, not the 16 bytes every record so far holds.

mod binary;
mod event;
#[cfg(test)]
mod proptests;
mod raw;
#[doc(hidden)]
pub mod value_path;

use crate::event::{Event, EventRef};
use crate::raw::RawEnvelope;
use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::LazyLock;

pub use raw::RawEnvelopeRef;
pub use value_path::{decode_dead_letter, encode_dead_letter, event_from_value, event_to_value};

pub const EVENT_SCHEMA: &str = include_str!("../../avro/event.avsc");
pub const RAW_ENVELOPE_SCHEMA: &str = include_str!("../../avro/raw_envelope.avsc");
pub const DEAD_LETTER_SCHEMA: &str = include_str!("../../avro/dead_letter.avsc");

/// Every event schema a producer may have written with, oldest first; the last is current.
pub const EVENT_HISTORY: &[&str] = &[include_str!("../../avro/history/event.v1.avsc"), EVENT_SCHEMA];
pub const RAW_ENVELOPE_HISTORY: &[&str] = &[RAW_ENVELOPE_SCHEMA];
pub const DEAD_LETTER_HISTORY: &[&str] = &[include_str!("../../avro/history/dead_letter.v1.avsc"), include_str!("../../avro/history/dead_letter.v2.avsc"), DEAD_LETTER_SCHEMA];

const MAGIC: [u8; 2] = [0xC3, 0x01];

/// Largest allocation the Avro decoder makes for one length it reads (a string, bytes, or a
/// collection's items): above any record a topic holds (ingest's body limit is 5 MiB), far
/// below a service's memory. Without it, a 13-byte record claiming a 500 MiB string made the
/// decoder allocate 500 MiB before finding the bytes missing (the library's default bound).
/// Process-wide (the Avro library keeps one setting); installed before the first decode.
pub const MAX_DECODE_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("not Avro single-object encoded (bad magic)")]
    BadMagic,
    #[error("written with an unknown schema (fingerprint {0})")]
    UnknownSchema(String),
    #[error("Avro: {0}")]
    Avro(String),
    #[error("field `{0}` missing or of the wrong type")]
    Field(&'static str),
    #[error("unknown provider `{0}` (written by a newer ingest?)")]
    UnknownProvider(String),
    #[error("unknown route `{0}`")]
    UnknownRoute(String),
    /// A borrowing decoder was given a record of an older schema: rewrite it first
    /// ([`upgrade_event`]).
    #[error("written with an older schema: rewrite it in the current one first")]
    OlderSchema,
}

impl CodecError {
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::BadMagic => "bad_magic",
            CodecError::UnknownSchema(_) => "unknown_schema",
            CodecError::Avro(_) => "invalid_avro",
            CodecError::Field(_) => "invalid_field",
            CodecError::UnknownProvider(_) => "unknown_provider",
            CodecError::UnknownRoute(_) => "unknown_route",
            CodecError::OlderSchema => "older_schema",
        }
    }
}

/// One record type's codec: its current schema and every schema that ever wrote it.
pub struct Codec {
    current: Schema,
    fingerprint: [u8; 8],
    writers: HashMap<[u8; 8], Schema>,
}

fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    let mut out = [0u8; 8];
    out.copy_from_slice(&fp.bytes[..8]);
    out
}

impl Codec {
    /// Panics only on a malformed schema compiled into the binary (tested below).
    fn new(history: &[&str]) -> Codec {
        apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION_BYTES);
        let schemas: Vec<Schema> = history
            .iter()
            .map(|s| Schema::parse_str(s).expect("built-in Avro schema parses"))
            .collect();
        let current = schemas.last().expect("at least one schema").clone();
        Codec {
            fingerprint: fingerprint(&current),
            writers: schemas.into_iter().map(|s| (fingerprint(&s), s)).collect(),
            current,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.current
    }

    /// The current schema's fingerprint, as written after the magic.
    pub fn fingerprint(&self) -> [u8; 8] {
        self.fingerprint
    }

    pub fn encode(&self, value: Value) -> Result<Vec<u8>, CodecError> {
        #[allow(deprecated)]
        let datum = apache_avro::to_avro_datum(&self.current, value).map_err(|e| CodecError::Avro(e.to_string()))?;
        let mut out = Vec::with_capacity(10 + datum.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&datum);
        Ok(out)
    }

    /// Decodes a record written with any known schema version into the current shape.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        if bytes.len() < 10 || bytes[..2] != MAGIC {
            return Err(CodecError::BadMagic);
        }
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&bytes[2..10]);
        let writer = self.writers.get(&fp).ok_or_else(|| CodecError::UnknownSchema(hex::encode(fp)))?;
        let mut body = &bytes[10..];
        #[allow(deprecated)] // the replacement's builder API is still settling; same behaviour
        apache_avro::from_avro_datum(writer, &mut body, Some(&self.current)).map_err(|e| CodecError::Avro(e.to_string()))
    }
}

pub static EVENT_CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(EVENT_HISTORY));
pub static RAW_ENVELOPE_CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(RAW_ENVELOPE_HISTORY));
pub static DEAD_LETTER_CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(DEAD_LETTER_HISTORY));

/// The writer fingerprint and the datum of a single-object encoded record.
fn split_header(bytes: &[u8]) -> Result<([u8; 8], &[u8]), CodecError> {
    match bytes.split_first_chunk::<2>() {
        Some((magic, rest)) if *magic == MAGIC => match rest.split_first_chunk::<8>() {
            Some((fp, datum)) => Ok((*fp, datum)),
            None => Err(CodecError::BadMagic),
        },
        _ => Err(CodecError::BadMagic),
    }
}

/// The event as one single-object encoded record.
///
/// `Err(Field("cost"))` for a cost beyond `decimal(38, 10)`.
pub fn encode_event(e: &Event) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(10 + event::size_hint(e));
    encode_event_into(e, &mut out)?;
    Ok(out)
}

/// [`encode_event`] appended to `out` (e.g. a buffer reused across events); on an error
/// nothing is appended.
pub fn encode_event_into(e: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    if e.cost.as_ref().is_some_and(|c| c.checked_mantissa_at_scale().is_none()) {
        return Err(CodecError::Field("cost"));
    }
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&EVENT_CODEC.fingerprint);
    event::write(e, out);
    Ok(())
}

/// Reads an event written with any known event schema: the current one directly, older ones
/// through apache-avro's schema resolution ([`value_path::decode_event`]).
pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    let (fp, datum) = split_header(bytes)?;
    if fp == EVENT_CODEC.fingerprint {
        event::read(datum)
    } else {
        value_path::decode_event(bytes)
    }
}

/// [`decode_event`] borrowing the text from `bytes` (the aggregator reads its batches so: no
/// allocation per string). A record written with an older schema has no current-schema text to
/// borrow: `Err(OlderSchema)`, and [`upgrade_event`] rewrites it in the current one (the same
/// event; the aggregator keeps the rewritten bytes for its batch).
pub fn decode_event_ref(bytes: &[u8]) -> Result<EventRef<'_>, CodecError> {
    event::read(current_event_datum(bytes)?)
}

/// [`decode_event_ref`] onto the end of `out`, as `(at, event)`: a decoded event is 416 bytes,
/// and returned, then moved into a pair, then pushed, it was copied three times (~260
/// instructions per event, BENCHMARKS.md §1b); read here, where it is pushed, once. Nothing is
/// pushed on an error. Read into the slot past the end, room for it made first: pushed, the
/// event was built on the stack and copied in (a `memcpy` of 416 bytes, ~76 instructions per
/// event; BENCHMARKS.md §1b, 2026-12-06, night).
pub fn decode_event_ref_onto<'a>(bytes: &'a [u8], at: i64, out: &mut Vec<(i64, EventRef<'a>)>) -> Result<(), CodecError> {
    let datum = current_event_datum(bytes)?;
    out.reserve(1);
    let len = out.len();
    let Some(slot) = out.spare_capacity_mut().first_mut() else {
        unreachable!("room for one was reserved");
    };
    let e = event::read(datum)?;
    slot.write((at, e));
    // SAFETY: the element at `len` was just written (`slot`), within the capacity reserved.
    unsafe { out.set_len(len + 1) };
    Ok(())
}

/// A record of any known event schema rewritten in the current one (an older one through
/// apache-avro's schema resolution, [`decode_event`]).
pub fn upgrade_event(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    encode_event(&decode_event(bytes)?)
}

/// The datum of a record written with the current event schema; for one of an older schema
/// `OlderSchema`, of no known schema `UnknownSchema`.
#[inline(always)]
fn current_event_datum(bytes: &[u8]) -> Result<&[u8], CodecError> {
    let (fp, datum) = split_header(bytes)?;
    if fp == EVENT_CODEC.fingerprint {
        Ok(datum)
    } else if EVENT_CODEC.writers.contains_key(&fp) {
        Err(CodecError::OlderSchema)
    } else {
        Err(CodecError::UnknownSchema(hex::encode(fp)))
    }
}

/// `e` written with the first event schema (`event.v1.avsc`, before `origin`), as a producer
/// of that time wrote it: for tests of the paths that read older records.
#[cfg(any(test, feature = "testkit"))]
pub fn encode_event_v1(e: &Event) -> Result<Vec<u8>, CodecError> {
    let Value::Record(fields) = value_path::event_to_value(e) else { unreachable!("an event is a record") };
    Codec::new(&[EVENT_HISTORY[0]]).encode(Value::Record(fields.into_iter().filter(|(k, _)| k != "origin").collect()))
}

/// The envelope as one single-object encoded record.
///
/// `Err(Field("route"))` for a route that could not be read back (an empty or multi-segment
/// variant; ingest never builds one).
pub fn encode_raw(r: &RawEnvelope) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(10 + raw::size_hint(r));
    encode_raw_into(r, &mut out)?;
    Ok(out)
}

/// [`encode_raw`] appended to `out`; on an error nothing is appended.
pub fn encode_raw_into(r: &RawEnvelope, out: &mut Vec<u8>) -> Result<(), CodecError> {
    if !r.route.is_valid() {
        return Err(CodecError::Field("route"));
    }
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&RAW_ENVELOPE_CODEC.fingerprint);
    raw::write(r, out);
    Ok(())
}

/// Reads an envelope written with any known envelope schema (the current one directly).
pub fn decode_raw(bytes: &[u8]) -> Result<RawEnvelope, CodecError> {
    let (fp, datum) = split_header(bytes)?;
    if fp == RAW_ENVELOPE_CODEC.fingerprint {
        raw::read(datum).map(|r| r.to_envelope())
    } else {
        value_path::decode_raw(bytes)
    }
}

/// [`decode_raw`] without copying: strings and body borrow `bytes`.
pub fn decode_raw_ref(bytes: &[u8]) -> Result<RawEnvelopeRef<'_>, CodecError> {
    let (fp, datum) = split_header(bytes)?;
    if fp == RAW_ENVELOPE_CODEC.fingerprint {
        raw::read(datum)
    } else {
        // The current schema is the only one (`RAW_ENVELOPE_HISTORY`, guarded by a test):
        // any other fingerprint is unknown.
        Err(CodecError::UnknownSchema(hex::encode(fp)))
    }
}

#[cfg(test)]
mod tests {
    use super::value_path::{decimal_bytes, decimal_from_bytes, dead_letter_to_value, opt_str, record};
    use super::*;
    use crate::event::{BounceClass, Channel, EventType, MessageClass, Origin, TimeSource};
    use crate::money::Money;
    use crate::raw::DeadLetter;
    use std::collections::BTreeMap;
    use apache_avro::schema_compatibility::SchemaCompatibility;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    pub(crate) fn sample_event() -> Event {
        Event {
            event_id: "e1".into(),
            tenant: "acme".into(),
            channel: Channel::Sms,
            provider: "twilio".into(),
            provider_message_id: "SM1".into(),
            provider_event_id: None,
            provider_event_name: "delivered".into(),
            delivery_key: "dk".into(),
            recipient: "+15550001111".into(),
            broadcast_id: Some("b".into()),
            sequence_id: None,
            contact_id: None,
            template_key: Some("t".into()),
            message_class: Some(MessageClass::Marketing),
            labels: vec!["x".into()],
            metadata: [("k".to_string(), "v".to_string())].into(),
            event_type: EventType::Delivered,
            bounce_class: Some(BounceClass::Soft),
            occurred_at: 1_700_000_000_123,
            received_at: 1_700_000_000_456,
            time_source: TimeSource::Received,
            click_url: None,
            user_agent: None,
            ip: None,
            error_code: Some("30003".into()),
            error_reason: None,
            cost: Some(Money::new(Decimal::from_str("-0.0075").unwrap(), "USD")),
            raw_topic: "raw".into(),
            raw_partition: 3,
            raw_offset: 42,
            origin: Origin::Provider,
        }
    }

    #[test]
    fn event_round_trips_through_avro() {
        let e = sample_event();
        let bytes = encode_event(&e).unwrap();
        assert_eq!(&bytes[..2], &MAGIC);
        assert_eq!(decode_event(&bytes).unwrap(), e);
    }

    #[test]
    fn raw_and_dead_letter_round_trip() {
        let r = RawEnvelope {
            request_id: "r".into(),
            tenant: "t".into(),
            provider: crate::ProviderId::Ses,
            route: crate::raw::Route::WebhookVariant("eventbridge".into()),
            url: "/webhooks/ses/t/eventbridge".into(),
            content_type: "text/plain".into(),
            received_at: 5,
            headers: [("x-amz-sns-message-type".to_string(), "Notification".to_string())].into(),
            body: vec![0, 159, 146, 150, 255],
        };
        assert_eq!(decode_raw(&encode_raw(&r).unwrap()).unwrap(), r);
        // A route that could not be read back is refused at encoding (found by fuzzing: `webhook/`).
        for bad in ["", "a/b"] {
            let r = RawEnvelope { route: crate::raw::Route::WebhookVariant(bad.to_string().into()), ..r.clone() };
            assert_eq!(encode_raw(&r).unwrap_err().code(), "invalid_field");
        }
        for route in [crate::raw::Route::Webhook, crate::raw::Route::Sends, crate::raw::Route::Events, crate::raw::Route::PushResults] {
            let r = RawEnvelope { route, ..r.clone() };
            assert_eq!(decode_raw(&encode_raw(&r).unwrap()).unwrap(), r);
        }
        let d = DeadLetter {
            reason_code: "invalid_json".into(),
            reason: "expected value".into(),
            stage: "normalizer".into(),
            raw_topic: "raw".into(),
            raw_partition: 0,
            raw_offset: 9,
            tenant: None,
            provider: Some("ses".into()),
            failed_at: 1,
            ..Default::default()
        }
        .with_raw(&[1, 2, 3], 2);
        assert_eq!((d.raw.as_slice(), d.raw_size, d.raw_truncated), (&[1u8, 2][..], 3, true));
        assert_eq!(decode_dead_letter(&encode_dead_letter(&d).unwrap()).unwrap(), d);
        let d = DeadLetter { item: Some(7), request_id: Some("2f1c9c1e-request".into()), ..d };
        assert_eq!(decode_dead_letter(&encode_dead_letter(&d).unwrap()).unwrap(), d);
        // a dead letter written before `request_id` existed reads with none
        let v2 = Codec::new(&[DEAD_LETTER_HISTORY[1]]);
        let Value::Record(fields) = dead_letter_to_value(&d) else { unreachable!() };
        let old = v2.encode(Value::Record(fields.into_iter().filter(|(k, _)| k != "request_id").collect())).unwrap();
        assert_eq!(decode_dead_letter(&old).unwrap(), DeadLetter { request_id: None, ..d });
    }

    /// A dead letter written before `item`/`raw_size`/`raw_truncated` existed still reads.
    #[test]
    fn dead_letter_v1_reads_with_defaults() {
        let v1 = Codec::new(&[DEAD_LETTER_HISTORY[0]]);
        let bytes = v1
            .encode(record(vec![
                ("reason_code", Value::String("invalid_json".into())),
                ("reason", Value::String("r".into())),
                ("stage", Value::String("normalizer".into())),
                ("raw_topic", Value::String("raw".into())),
                ("raw_partition", Value::Int(1)),
                ("raw_offset", Value::Long(2)),
                ("tenant", opt_str(&None)),
                ("provider", opt_str(&None)),
                ("failed_at", Value::TimestampMillis(3)),
                ("raw", Value::Bytes(vec![9])),
            ]))
            .unwrap();
        let d = decode_dead_letter(&bytes).unwrap();
        assert_eq!((d.item, d.raw_size, d.raw_truncated, d.raw), (None, 0, false, vec![9]));
    }

    /// An event written before `origin` existed reads as a send record when it named itself
    /// `send_record` (the old contract), else as the provider's; current events round-trip.
    #[test]
    fn event_v1_reads_its_origin_from_the_old_contract() {
        let encode_v1 = |e: &Event| encode_event_v1(e).unwrap();
        let mut e = sample_event();
        e.origin = Origin::AppEvent;
        assert_eq!(decode_event(&encode_v1(&e)).unwrap().origin, Origin::Provider);
        e.provider_event_name = "send_record".into();
        assert_eq!(decode_event(&encode_v1(&e)).unwrap().origin, Origin::SendRecord);
        for origin in [Origin::Provider, Origin::SendRecord, Origin::AppEvent] {
            let e = Event { origin, ..sample_event() };
            assert_eq!(decode_event(&encode_event(&e).unwrap()).unwrap(), e);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode_event(b"{}"), Err(CodecError::BadMagic)));
        let mut bytes = encode_event(&sample_event()).unwrap();
        bytes[5] ^= 0xFF;
        assert!(matches!(decode_event(&bytes), Err(CodecError::UnknownSchema(_))));
        let good = encode_event(&sample_event()).unwrap();
        assert!(decode_event(&good[..good.len() / 2]).is_err());
    }

    #[test]
    fn large_costs_round_trip_exactly_and_unrepresentable_ones_are_refused() {
        // Found by fuzzing (fuzz/ target `avro`): a cost of 25755351112402482227 came back ten times smaller.
        let mut e = sample_event();
        e.cost = Some(Money::new(Decimal::from_str("25755351112402482227").unwrap(), "USD"));
        assert_eq!(decode_event(&encode_event(&e).unwrap()).unwrap(), e);
        e.cost = Some(Money::new(Decimal::from_str("10000000000000000000000000000").unwrap(), "USD"));
        assert_eq!(encode_event(&e).unwrap_err().code(), "invalid_field");
    }

    #[test]
    fn a_length_beyond_the_record_never_allocates_more_than_the_bound() {
        // Found by fuzzing (fuzz/ target `avro`): a raw envelope whose first string claims
        // 100 MiB made the decoder allocate 100 MiB before finding the bytes missing.
        let mut bytes = encode_raw(&RawEnvelope {
            request_id: String::new(),
            tenant: String::new(),
            provider: crate::ProviderId::Ses,
            route: crate::raw::Route::Webhook,
            url: String::new(),
            content_type: String::new(),
            received_at: 0,
            headers: BTreeMap::new(),
            body: Vec::new(),
        })
        .unwrap();
        bytes.truncate(10);
        let mut zigzag = 2 * 100 * 1024 * 1024u64;
        while zigzag >= 0x80 {
            bytes.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        bytes.push(zigzag as u8);
        let err = decode_raw(&bytes).unwrap_err();
        assert_eq!(err.code(), "invalid_avro");
        assert!(err.to_string().contains("allocate"), "refused before allocating: {err}");
        assert_eq!(apache_avro::util::max_allocation_bytes(0), MAX_DECODE_ALLOCATION_BYTES);
    }

    #[test]
    fn decimal_bytes_round_trip() {
        for m in [0i128, 1, -1, 127, 128, -128, -129, 75_000_000, i64::MAX as i128 * 1000, -(i64::MAX as i128) * 1000] {
            assert_eq!(decimal_from_bytes(&decimal_bytes(m)), Some(m), "{m}");
        }
    }

    /// The evolution rule: every historic writer schema must be readable by the
    /// current schema (backward) and the current one by every historic reader (forward).
    #[test]
    fn schema_history_is_fully_compatible() {
        for history in [EVENT_HISTORY, RAW_ENVELOPE_HISTORY, DEAD_LETTER_HISTORY] {
            let current = Schema::parse_str(history.last().unwrap()).unwrap();
            for old in history.iter() {
                let old = Schema::parse_str(old).unwrap();
                SchemaCompatibility::can_read(&old, &current).expect("current reads old");
                SchemaCompatibility::can_read(&current, &old).expect("old reads current");
            }
        }
    }

    /// `decode_raw_ref` reads only the current envelope schema (an envelope resolved from an
    /// older one is owned, it cannot be borrowed): a second schema in the history needs a
    /// fallback there first.
    #[test]
    fn the_raw_envelope_has_one_schema() {
        assert_eq!(RAW_ENVELOPE_HISTORY.len(), 1, "give decode_raw_ref a fallback for older envelope schemas");
    }

    /// Guards the Rust enums against drifting from the Avro enums.
    #[test]
    fn rust_symbols_match_avro_symbols() {
        let json: serde_json::Value = serde_json::from_str(EVENT_SCHEMA).unwrap();
        let fields = json["fields"].as_array().unwrap();
        let symbols = |field: &str| -> Vec<String> {
            let f = fields.iter().find(|f| f["name"] == field).unwrap();
            let ty = if f["type"].is_array() { f["type"][1].clone() } else { f["type"].clone() };
            ty["symbols"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
        };
        assert_eq!(symbols("event_type"), EventType::SYMBOLS);
        assert_eq!(symbols("channel"), Channel::SYMBOLS);
        assert_eq!(symbols("bounce_class"), BounceClass::SYMBOLS);
        assert_eq!(symbols("message_class"), MessageClass::SYMBOLS);
        assert_eq!(symbols("time_source"), TimeSource::SYMBOLS);
        assert_eq!(symbols("origin"), Origin::SYMBOLS);
    }
}
