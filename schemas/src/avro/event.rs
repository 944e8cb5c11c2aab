//! The canonical event's schema-specific codec for the CURRENT `avro/event.avsc`: fields in
//! schema order, written and read directly from an [`Event`], no `Value` tree.
//!
//! A change to `event.avsc` must change this file in step: the tests in `avro/proptests.rs`
//! compare every byte with apache-avro's encoding of the same schema, so a drift fails there.

use super::binary::{bytes_hint, decimal, put_block, put_bytes, put_long, put_opt_str, put_str, ReadError, Reader};
use super::CodecError;
use crate::event::{BounceClass, Channel, Event, EventType, MessageClass, Origin, TimeSource};
use crate::money::Money;
use std::collections::BTreeMap;

/// An upper bound of the datum's size, so the output is allocated once.
pub(super) fn size_hint(e: &Event) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(1, |s| 1 + bytes_hint(s.len()));
    let strings = [&e.event_id, &e.tenant, &e.provider, &e.provider_message_id, &e.provider_event_name, &e.delivery_key, &e.recipient, &e.raw_topic];
    let optionals = [&e.provider_event_id, &e.broadcast_id, &e.sequence_id, &e.contact_id, &e.template_key, &e.click_url, &e.user_agent, &e.ip, &e.error_code, &e.error_reason];
    strings.iter().map(|s| bytes_hint(s.len())).sum::<usize>()
        + optionals.iter().map(|s| opt(s)).sum::<usize>()
        + e.labels.iter().map(|l| bytes_hint(l.len())).sum::<usize>()
        + e.metadata.iter().map(|(k, v)| bytes_hint(k.len()) + bytes_hint(v.len())).sum::<usize>()
        + e.cost.as_ref().map_or(0, |c| 18 + bytes_hint(c.unit.len()))
        // collection counts and ends, enums, unions, two timestamps, partition, offset
        + 2 * 11 + 12 + 3 * 10 + 5 + 10
}

/// Appends the datum. The caller has checked that the cost fits `decimal(38, 10)`.
pub(super) fn write(e: &Event, buf: &mut Vec<u8>) {
    put_str(buf, &e.event_id);
    put_str(buf, &e.tenant);
    put_long(buf, e.channel.index().into());
    put_str(buf, &e.provider);
    put_str(buf, &e.provider_message_id);
    put_opt_str(buf, e.provider_event_id.as_deref());
    put_str(buf, &e.provider_event_name);
    put_str(buf, &e.delivery_key);
    put_str(buf, &e.recipient);
    put_opt_str(buf, e.broadcast_id.as_deref());
    put_opt_str(buf, e.sequence_id.as_deref());
    put_opt_str(buf, e.contact_id.as_deref());
    put_opt_str(buf, e.template_key.as_deref());
    put_opt_enum(buf, e.message_class.map(MessageClass::index));
    put_block(buf, e.labels.iter().map(String::as_str));
    put_map(buf, &e.metadata);
    put_long(buf, e.event_type.index().into());
    put_opt_enum(buf, e.bounce_class.map(BounceClass::index));
    put_long(buf, e.occurred_at);
    put_long(buf, e.received_at);
    put_long(buf, e.time_source.index().into());
    put_opt_str(buf, e.click_url.as_deref());
    put_opt_str(buf, e.user_agent.as_deref());
    put_opt_str(buf, e.ip.as_deref());
    put_opt_str(buf, e.error_code.as_deref());
    put_opt_str(buf, e.error_reason.as_deref());
    match &e.cost {
        None => buf.push(0),
        Some(m) => {
            buf.push(2);
            // Always 16 bytes, big-endian two's complement, as the Value path writes it.
            put_bytes(buf, &m.mantissa_at_scale().to_be_bytes());
            put_str(buf, &m.unit);
        }
    }
    put_str(buf, &e.raw_topic);
    put_long(buf, e.raw_partition.into());
    put_long(buf, e.raw_offset);
    // `origin` is nullable only for events written before it existed; we always write it.
    put_opt_enum(buf, Some(e.origin.index()));
}

fn put_opt_enum(buf: &mut Vec<u8>, index: Option<u32>) {
    match index {
        None => buf.push(0),
        Some(i) => {
            buf.push(2);
            put_long(buf, i.into());
        }
    }
}

/// A map of strings as one block in key order. apache-avro writes its `HashMap` in whatever
/// order it iterates, so our order is one of the orders it may produce.
pub(super) fn put_map(buf: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    if !m.is_empty() {
        put_long(buf, m.len() as i64);
        for (k, v) in m {
            put_str(buf, k);
            put_str(buf, v);
        }
    }
    buf.push(0);
}

/// Reads a datum written with the current schema. Trailing bytes are ignored, as apache-avro
/// ignores them. The cost is checked after the whole datum is read, so a record that is also
/// broken further on is `invalid_avro`, as on the Value path.
///
/// The text is `S`: `String` copies it, `Cow<str>` borrows it from `datum` (no allocation but
/// for labels, metadata and a cost's unit).
///
/// Inlined where it is called, so that the event is built where it is pushed, not copied
/// there (`decode_event_ref_onto`).
#[inline(always)]
pub(super) fn read<'a, S: From<&'a str> + AsRef<str> + Ord>(
    datum: &'a [u8],
) -> Result<Event<S>, CodecError> {
    let mut r = Reader::new(datum);
    let r = &mut r;
    let event_id = r.str()?.into();
    let tenant = r.str()?.into();
    let channel = Channel::VALUES[r.index("Channel", Channel::VALUES.len())?];
    let provider = r.str()?.into();
    let provider_message_id = r.str()?.into();
    let provider_event_id = r.opt_str()?.map(S::from);
    let provider_event_name: S = r.str()?.into();
    let delivery_key = r.str()?.into();
    let recipient = r.str()?.into();
    let broadcast_id = r.opt_str()?.map(S::from);
    let sequence_id = r.opt_str()?.map(S::from);
    let contact_id = r.opt_str()?.map(S::from);
    let template_key = r.opt_str()?.map(S::from);
    let message_class = opt_enum(r, "MessageClass", MessageClass::VALUES)?;
    // (most events have neither: one byte each, read inline; ~110 instructions a call each
    // otherwise, BENCHMARKS.md §1b)
    let labels = if r.empty_collection() { Vec::new() } else { read_labels(r)? };
    let metadata = if r.empty_collection() { BTreeMap::new() } else { read_map(r)? };
    let event_type = EventType::VALUES[r.index("EventType", EventType::VALUES.len())?];
    let bounce_class = opt_enum(r, "BounceClass", BounceClass::VALUES)?;
    let occurred_at = r.long()?;
    let received_at = r.long()?;
    let time_source = TimeSource::VALUES[r.index("TimeSource", TimeSource::VALUES.len())?];
    let click_url = r.opt_str()?.map(S::from);
    let user_agent = r.opt_str()?.map(S::from);
    let ip = r.opt_str()?.map(S::from);
    let error_code = r.opt_str()?.map(S::from);
    let error_reason = r.opt_str()?.map(S::from);
    let cost = match r.index("union index", 2)? {
        0 => None,
        _ => Some((r.bytes()?, r.str()?)),
    };
    let raw_topic = r.str()?.into();
    let raw_partition = r.int()?;
    let raw_offset = r.long()?;
    // Stricter than the Value path in one case: apache-avro reads a union index that the
    // datum ends before or inside as null, so a record cut in `origin` was accepted.
    let origin = opt_enum(r, "Origin", Origin::VALUES)?.unwrap_or(match provider_event_name.as_ref() {
        // Events written before `origin` existed: a send record named itself `send_record`.
        "send_record" => Origin::SendRecord,
        _ => Origin::Provider,
    });
    let cost = match cost {
        None => None,
        Some((amount, unit)) => Some(
            decimal(amount)?.and_then(|m| Money::from_mantissa(m, unit)).ok_or(CodecError::Field("cost"))?,
        ),
    };
    Ok(Event {
        event_id,
        tenant,
        channel,
        provider,
        provider_message_id,
        provider_event_id,
        provider_event_name,
        delivery_key,
        recipient,
        broadcast_id,
        sequence_id,
        contact_id,
        template_key,
        message_class,
        labels,
        metadata,
        event_type,
        bounce_class,
        occurred_at,
        received_at,
        time_source,
        click_url,
        user_agent,
        ip,
        error_code,
        error_reason,
        cost,
        raw_topic,
        raw_partition,
        raw_offset,
        origin,
    })
}

#[inline(always)]
fn opt_enum<T: Copy>(r: &mut Reader<'_>, what: &'static str, values: &[T]) -> Result<Option<T>, ReadError> {
    match r.index("union index", 2)? {
        0 => Ok(None),
        _ => Ok(Some(values[r.index(what, values.len())?])),
    }
}

fn read_labels<'a, S: From<&'a str>>(r: &mut Reader<'a>) -> Result<Vec<S>, ReadError> {
    let mut labels = Vec::new();
    loop {
        let n = r.block(labels.len(), false)?;
        if n == 0 {
            return Ok(labels);
        }
        labels.reserve_exact(n);
        for _ in 0..n {
            labels.push(r.str()?.into());
        }
    }
}

/// A map of strings; a key written twice keeps its last value (as the Value path's `HashMap`).
pub(super) fn read_map<'a, S: From<&'a str> + Ord>(
    r: &mut Reader<'a>,
) -> Result<BTreeMap<S, S>, ReadError> {
    let mut map = BTreeMap::new();
    loop {
        // bounded by the entries held, as apache-avro bounds its map
        let n = r.block(map.len(), true)?;
        if n == 0 {
            return Ok(map);
        }
        for _ in 0..n {
            let k = r.str()?.into();
            map.insert(k, r.str()?.into());
        }
    }
}
