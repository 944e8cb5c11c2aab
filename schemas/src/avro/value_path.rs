//! The apache-avro `Value` codec: the reference implementation the schema-specific codecs
//! (`event`, `raw`) are checked against byte for byte, the benchmark baseline
//! (`benches/codec.rs`), and the path for what they do not cover: records written with an
//! older schema (resolved against the current one) and dead letters (rare, not hot).
//!
//! Every record is turned into a `Value` tree (each string copied, each field name allocated,
//! schema names resolved per call) and back; `encode_*`/`decode_*` here behave exactly as the
//! codec did before the schema-specific paths existed.

use super::{CodecError, DEAD_LETTER_CODEC, EVENT_CODEC, RAW_ENVELOPE_CODEC};
use crate::event::{BounceClass, Channel, Event, EventType, MessageClass, Origin, TimeSource};
use crate::money::Money;
use crate::raw::{DeadLetter, RawEnvelope};
use apache_avro::types::Value;
use std::collections::{BTreeMap, HashMap};

pub(super) fn opt_str(v: &Option<String>) -> Value {
    match v {
        Some(s) => Value::Union(1, Box::new(Value::String(s.clone()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn opt_enum(v: Option<(u32, &str)>) -> Value {
    match v {
        Some((i, s)) => Value::Union(1, Box::new(Value::Enum(i, s.to_string()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn str_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

pub(super) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Big-endian two's complement, as Avro's `decimal` wants. Always 16 bytes: the
/// Avro library checks that the byte length can hold the declared precision (38).
pub(super) fn decimal_bytes(mantissa: i128) -> Vec<u8> {
    mantissa.to_be_bytes().to_vec()
}

pub(super) fn decimal_from_bytes(b: &[u8]) -> Option<i128> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let fill = if b[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut buf = [fill; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(buf))
}

pub fn event_to_value(e: &Event) -> Value {
    let cost = match &e.cost {
        Some(m) => Value::Union(
            1,
            Box::new(record(vec![
                ("amount", Value::Decimal(apache_avro::Decimal::from(decimal_bytes(m.mantissa_at_scale())))),
                ("unit", Value::String(m.unit.clone())),
            ])),
        ),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    record(vec![
        ("event_id", Value::String(e.event_id.clone())),
        ("tenant", Value::String(e.tenant.clone())),
        ("channel", Value::Enum(e.channel.index(), e.channel.as_str().into())),
        ("provider", Value::String(e.provider.clone())),
        ("provider_message_id", Value::String(e.provider_message_id.clone())),
        ("provider_event_id", opt_str(&e.provider_event_id)),
        ("provider_event_name", Value::String(e.provider_event_name.clone())),
        ("delivery_key", Value::String(e.delivery_key.clone())),
        ("recipient", Value::String(e.recipient.clone())),
        ("broadcast_id", opt_str(&e.broadcast_id)),
        ("sequence_id", opt_str(&e.sequence_id)),
        ("contact_id", opt_str(&e.contact_id)),
        ("template_key", opt_str(&e.template_key)),
        ("message_class", opt_enum(e.message_class.map(|c| (c.index(), c.as_str())))),
        ("labels", Value::Array(e.labels.iter().map(|l| Value::String(l.clone())).collect())),
        ("metadata", str_map(&e.metadata)),
        ("event_type", Value::Enum(e.event_type.index(), e.event_type.as_str().into())),
        ("bounce_class", opt_enum(e.bounce_class.map(|c| (c.index(), c.as_str())))),
        ("occurred_at", Value::TimestampMillis(e.occurred_at)),
        ("received_at", Value::TimestampMillis(e.received_at)),
        ("time_source", Value::Enum(e.time_source.index(), e.time_source.as_str().into())),
        ("click_url", opt_str(&e.click_url)),
        ("user_agent", opt_str(&e.user_agent)),
        ("ip", opt_str(&e.ip)),
        ("error_code", opt_str(&e.error_code)),
        ("error_reason", opt_str(&e.error_reason)),
        ("cost", cost),
        ("raw_topic", Value::String(e.raw_topic.clone())),
        ("raw_partition", Value::Int(e.raw_partition)),
        ("raw_offset", Value::Long(e.raw_offset)),
        ("origin", Value::Union(1, Box::new(Value::Enum(e.origin.index(), e.origin.as_str().into())))),
    ])
}

// ---- Value reading --------------------------------------------------------

struct Fields(HashMap<String, Value>);

fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

impl Fields {
    fn of(v: Value) -> Result<Fields, CodecError> {
        match v {
            Value::Record(fs) => Ok(Fields(fs.into_iter().map(|(k, v)| (k, unwrap_union(v))).collect())),
            _ => Err(CodecError::Field("<record>")),
        }
    }
    fn take(&mut self, k: &'static str) -> Result<Value, CodecError> {
        self.0.remove(k).ok_or(CodecError::Field(k))
    }
    fn string(&mut self, k: &'static str) -> Result<String, CodecError> {
        match self.take(k)? {
            Value::String(s) => Ok(s),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn opt_string(&mut self, k: &'static str) -> Result<Option<String>, CodecError> {
        match self.take(k)? {
            Value::String(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn symbol(&mut self, k: &'static str) -> Result<Option<String>, CodecError> {
        match self.take(k)? {
            Value::Enum(_, s) => Ok(Some(s)),
            Value::Null => Ok(None),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn long(&mut self, k: &'static str) -> Result<i64, CodecError> {
        match self.take(k)? {
            Value::Long(n) | Value::TimestampMillis(n) => Ok(n),
            Value::Int(n) => Ok(n as i64),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn int(&mut self, k: &'static str) -> Result<i32, CodecError> {
        match self.take(k)? {
            Value::Int(n) => Ok(n),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn opt_int(&mut self, k: &'static str) -> Result<Option<i32>, CodecError> {
        match self.take(k)? {
            Value::Int(n) => Ok(Some(n)),
            Value::Null => Ok(None),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn boolean(&mut self, k: &'static str) -> Result<bool, CodecError> {
        match self.take(k)? {
            Value::Boolean(b) => Ok(b),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn bytes(&mut self, k: &'static str) -> Result<Vec<u8>, CodecError> {
        match self.take(k)? {
            Value::Bytes(b) => Ok(b),
            _ => Err(CodecError::Field(k)),
        }
    }
    fn str_map(&mut self, k: &'static str) -> Result<BTreeMap<String, String>, CodecError> {
        match self.take(k)? {
            Value::Map(m) => m
                .into_iter()
                .map(|(k2, v)| match v {
                    Value::String(s) => Ok((k2, s)),
                    _ => Err(CodecError::Field(k)),
                })
                .collect(),
            _ => Err(CodecError::Field(k)),
        }
    }
}

fn parse_sym<T>(s: Option<String>, parse: fn(&str) -> Option<T>, k: &'static str) -> Result<Option<T>, CodecError> {
    match s {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).ok_or(CodecError::Field(k)),
    }
}

pub fn event_from_value(v: Value) -> Result<Event, CodecError> {
    let mut f = Fields::of(v)?;
    let cost = match f.take("cost")? {
        Value::Null => None,
        rec => {
            let mut c = Fields::of(rec)?;
            let amount = match c.take("amount")? {
                Value::Decimal(d) => {
                    let b: Vec<u8> = Vec::try_from(d).map_err(|_| CodecError::Field("cost"))?;
                    decimal_from_bytes(&b).ok_or(CodecError::Field("cost"))?
                }
                _ => return Err(CodecError::Field("cost")),
            };
            Some(Money::from_mantissa(amount, c.string("unit")?).ok_or(CodecError::Field("cost"))?)
        }
    };
    let labels = match f.take("labels")? {
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(CodecError::Field("labels")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(CodecError::Field("labels")),
    };
    let provider_event_name = f.string("provider_event_name")?;
    // Events written before `origin` existed: a send record named itself `send_record`.
    let origin = parse_sym(f.symbol("origin")?, Origin::parse, "origin")?.unwrap_or(match provider_event_name.as_str() {
        "send_record" => Origin::SendRecord,
        _ => Origin::Provider,
    });
    Ok(Event {
        event_id: f.string("event_id")?,
        tenant: f.string("tenant")?,
        channel: parse_sym(f.symbol("channel")?, Channel::parse, "channel")?.ok_or(CodecError::Field("channel"))?,
        provider: f.string("provider")?,
        provider_message_id: f.string("provider_message_id")?,
        provider_event_id: f.opt_string("provider_event_id")?,
        provider_event_name,
        delivery_key: f.string("delivery_key")?,
        recipient: f.string("recipient")?,
        broadcast_id: f.opt_string("broadcast_id")?,
        sequence_id: f.opt_string("sequence_id")?,
        contact_id: f.opt_string("contact_id")?,
        template_key: f.opt_string("template_key")?,
        message_class: parse_sym(f.symbol("message_class")?, MessageClass::parse, "message_class")?,
        labels,
        metadata: f.str_map("metadata")?,
        event_type: parse_sym(f.symbol("event_type")?, EventType::parse, "event_type")?.unwrap_or(EventType::Unknown),
        bounce_class: parse_sym(f.symbol("bounce_class")?, BounceClass::parse, "bounce_class")?,
        occurred_at: f.long("occurred_at")?,
        received_at: f.long("received_at")?,
        time_source: parse_sym(f.symbol("time_source")?, TimeSource::parse, "time_source")?
            .ok_or(CodecError::Field("time_source"))?,
        click_url: f.opt_string("click_url")?,
        user_agent: f.opt_string("user_agent")?,
        ip: f.opt_string("ip")?,
        error_code: f.opt_string("error_code")?,
        error_reason: f.opt_string("error_reason")?,
        cost,
        raw_topic: f.string("raw_topic")?,
        raw_partition: f.int("raw_partition")?,
        raw_offset: f.long("raw_offset")?,
        origin,
    })
}

pub fn encode_event(e: &Event) -> Result<Vec<u8>, CodecError> {
    if e.cost.as_ref().is_some_and(|c| c.checked_mantissa_at_scale().is_none()) {
        return Err(CodecError::Field("cost"));
    }
    EVENT_CODEC.encode(event_to_value(e))
}

pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    event_from_value(EVENT_CODEC.decode(bytes)?)
}

/// `Err(Field("route"))` for a route that could not be read back (an empty or multi-segment
/// variant; ingest never builds one).
pub fn encode_raw(r: &RawEnvelope) -> Result<Vec<u8>, CodecError> {
    if !r.route.is_valid() {
        return Err(CodecError::Field("route"));
    }
    RAW_ENVELOPE_CODEC.encode(record(vec![
        ("request_id", Value::String(r.request_id.clone())),
        ("tenant", Value::String(r.tenant.clone())),
        ("provider", Value::String(r.provider.as_str().to_string())),
        ("route", Value::String(r.route.as_str().into_owned())),
        ("url", Value::String(r.url.clone())),
        ("content_type", Value::String(r.content_type.clone())),
        ("received_at", Value::TimestampMillis(r.received_at)),
        ("headers", str_map(&r.headers)),
        ("body", Value::Bytes(r.body.clone())),
    ]))
}

pub fn decode_raw(bytes: &[u8]) -> Result<RawEnvelope, CodecError> {
    let mut f = Fields::of(RAW_ENVELOPE_CODEC.decode(bytes)?)?;
    let (provider, route, url) = (f.string("provider")?, f.string("route")?, f.string("url")?);
    Ok(RawEnvelope {
        request_id: f.string("request_id")?,
        tenant: f.string("tenant")?,
        provider: provider.parse().map_err(|_| CodecError::UnknownProvider(provider))?,
        route: crate::raw::Route::parse(&route, &url).ok_or(CodecError::UnknownRoute(route))?,
        url,
        content_type: f.string("content_type")?,
        received_at: f.long("received_at")?,
        headers: f.str_map("headers")?,
        body: f.bytes("body")?,
    })
}

pub fn encode_dead_letter(d: &DeadLetter) -> Result<Vec<u8>, CodecError> {
    DEAD_LETTER_CODEC.encode(dead_letter_to_value(d))
}

pub(super) fn dead_letter_to_value(d: &DeadLetter) -> Value {
    record(vec![
        ("reason_code", Value::String(d.reason_code.clone())),
        ("reason", Value::String(d.reason.clone())),
        ("stage", Value::String(d.stage.clone())),
        ("raw_topic", Value::String(d.raw_topic.clone())),
        ("raw_partition", Value::Int(d.raw_partition)),
        ("raw_offset", Value::Long(d.raw_offset)),
        ("tenant", opt_str(&d.tenant)),
        ("provider", opt_str(&d.provider)),
        ("failed_at", Value::TimestampMillis(d.failed_at)),
        ("raw", Value::Bytes(d.raw.clone())),
        ("item", match d.item {
            Some(i) => Value::Union(1, Box::new(Value::Int(i))),
            None => Value::Union(0, Box::new(Value::Null)),
        }),
        ("raw_size", Value::Long(d.raw_size)),
        ("raw_truncated", Value::Boolean(d.raw_truncated)),
        ("request_id", opt_str(&d.request_id)),
    ])
}

pub fn decode_dead_letter(bytes: &[u8]) -> Result<DeadLetter, CodecError> {
    let mut f = Fields::of(DEAD_LETTER_CODEC.decode(bytes)?)?;
    Ok(DeadLetter {
        reason_code: f.string("reason_code")?,
        reason: f.string("reason")?,
        stage: f.string("stage")?,
        raw_topic: f.string("raw_topic")?,
        raw_partition: f.int("raw_partition")?,
        raw_offset: f.long("raw_offset")?,
        tenant: f.opt_string("tenant")?,
        provider: f.opt_string("provider")?,
        failed_at: f.long("failed_at")?,
        raw: f.bytes("raw")?,
        item: f.opt_int("item")?,
        raw_size: f.long("raw_size")?,
        raw_truncated: f.boolean("raw_truncated")?,
        request_id: f.opt_string("request_id")?,
    })
}

