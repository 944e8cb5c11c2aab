//! The schema-specific codecs against the apache-avro `Value` codec (`value_path`), on
//! arbitrary events and envelopes: the same bytes out, the same values (or error codes) in.

use super::*;
use crate::event::{BounceClass, Channel, EventType, MessageClass, Origin, TimeSource};
use crate::money::{Money, MONEY_SCALE};
use crate::raw::Route;
use crate::ProviderId;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;

/// Empty, short ASCII, or any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9_.@+-]{1,40}", any::<String>()]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

/// Any `Decimal` (96-bit mantissa, scale 0..=28): tiny, huge (beyond `decimal(38, 10)` too),
/// negative, and amounts finer than the wire's scale.
fn money() -> impl Strategy<Value = Option<Money>> {
    let amount = prop_oneof![
        (any::<i64>(), 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28).prop_map(|(lo, mid, hi, neg, s)| Decimal::from_parts(lo, mid, hi, neg, s)),
        select(vec![Decimal::MAX, Decimal::MIN, Decimal::ZERO, Decimal::new(1, 28), Decimal::new(75, 4)]),
    ];
    option::of((amount, prop_oneof![Just("USD".to_string()), text()]).prop_map(|(a, u)| Money::new(a, u)))
}

prop_compose! {
    fn identity()(event_id in text(), tenant in text(), channel in select(Channel::VALUES), provider in text(),
                  provider_message_id in text(), provider_event_id in opt_text(), provider_event_name in prop_oneof![Just("send_record".to_string()), text()],
                  delivery_key in text(), recipient in text())
                  -> (String, String, Channel, String, String, Option<String>, String, String, String) {
        (event_id, tenant, channel, provider, provider_message_id, provider_event_id, provider_event_name, delivery_key, recipient)
    }
}

prop_compose! {
    fn attribution()(broadcast_id in opt_text(), sequence_id in opt_text(), contact_id in opt_text(), template_key in opt_text(),
                     message_class in option::of(select(MessageClass::VALUES)), labels in vec(text(), 0..4),
                     metadata in btree_map(text(), text(), 0..4))
                     -> (Option<String>, Option<String>, Option<String>, Option<String>, Option<MessageClass>, Vec<String>, std::collections::BTreeMap<String, String>) {
        (broadcast_id, sequence_id, contact_id, template_key, message_class, labels, metadata)
    }
}

prop_compose! {
    fn arb_event()(id in identity(), at in attribution(), event_type in select(EventType::VALUES),
                   bounce_class in option::of(select(BounceClass::VALUES)), occurred_at in any::<i64>(), received_at in any::<i64>(),
                   time_source in select(TimeSource::VALUES), details in (opt_text(), opt_text(), opt_text(), opt_text(), opt_text()),
                   cost in money(), raw in (text(), any::<i32>(), any::<i64>()), origin in select(Origin::VALUES)) -> Event {
        let (event_id, tenant, channel, provider, provider_message_id, provider_event_id, provider_event_name, delivery_key, recipient) = id;
        let (broadcast_id, sequence_id, contact_id, template_key, message_class, labels, metadata) = at;
        let (click_url, user_agent, ip, error_code, error_reason) = details;
        Event {
            event_id, tenant, channel, provider, provider_message_id, provider_event_id, provider_event_name, delivery_key, recipient,
            broadcast_id, sequence_id, contact_id, template_key, message_class, labels, metadata, event_type, bounce_class,
            occurred_at, received_at, time_source, click_url, user_agent, ip, error_code, error_reason, cost,
            raw_topic: raw.0, raw_partition: raw.1, raw_offset: raw.2, origin,
        }
    }
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![
        Just(Route::Webhook),
        Just(Route::Sends),
        Just(Route::Events),
        Just(Route::PushResults),
        // valid variants, and now and then an invalid one (`""`, `a/b`), refused by both paths
        text().prop_map(|v| Route::WebhookVariant(v.into())),
    ]
}

prop_compose! {
    fn arb_raw()(request_id in text(), tenant in text(), provider in select(ProviderId::ALL.to_vec()), route in route(),
                 url in text(), content_type in text(), received_at in any::<i64>(),
                 headers in btree_map(text(), text(), 0..8), body in vec(any::<u8>(), 0..2048)) -> RawEnvelope {
        RawEnvelope { request_id, tenant, provider, route, url, content_type, received_at, headers, body }
    }
}

/// apache-avro writes a map in its `HashMap`'s order, which varies from run to run: bytes can
/// only be compared one to one when every map has at most one entry.
fn comparable(maps: &[usize]) -> bool {
    maps.iter().all(|&n| n <= 1)
}

/// `bytes` with `origin`'s union index, cut short at the end, made whole as null: what
/// apache-avro read such a record as (see `an_event_cut_in_origin_is_refused`).
pub(super) fn with_null_origin(bytes: &[u8]) -> Vec<u8> {
    // `raw_offset` ends with a byte below 0x80; what follows is the cut index's first bytes
    let end = bytes.iter().rposition(|&b| b < 0x80).map_or(0, |i| i + 1);
    [&bytes[..end], &[0]].concat()
}

/// Both decoders on the same bytes: equal values, or errors with the same code. The one
/// allowed difference: apache-avro reads an event that ends before or inside `origin`'s union
/// index as origin null; ours refuses it, and reads it once the null index is whole. The
/// borrowing decoder reads exactly what the owning one reads.
fn same_event_decoding(bytes: &[u8]) -> Result<(), TestCaseError> {
    same_as_borrowed(bytes)?;
    match (decode_event(bytes), value_path::decode_event(bytes)) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        // the same leniency, then a bad cost: `invalid_field` there, `invalid_avro` here
        (Err(a), Err(b)) if a.code() != b.code() => {
            prop_assert_eq!(decode_event(&with_null_origin(bytes)).err().map(|e| e.code()), Some(b.code()), "{} vs {}", a, b)
        }
        (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code(), "{} vs {}", a, b),
        (Err(a), Ok(b)) => {
            prop_assert_eq!(decode_event(&with_null_origin(bytes)).ok(), Some(b), "refused ({}) what the Value path reads", a);
        }
        (Ok(a), Err(b)) => prop_assert!(false, "read {:?}, which the Value path refuses ({})", a, b),
    }
    Ok(())
}

/// [`decode_event_ref`] against [`decode_event`]: the same event, or an error with the same code.
/// A record of an older schema is refused with `OlderSchema`, and read once [`upgrade_event`]
/// rewrote it: the same event.
fn same_as_borrowed(bytes: &[u8]) -> Result<(), TestCaseError> {
    let upgraded = match decode_event_ref(bytes) {
        Err(CodecError::OlderSchema) => match upgrade_event(bytes) {
            Ok(b) => b,
            Err(b) => {
                prop_assert_eq!(decode_event(bytes).err().map(|a| a.code()), Some(b.code()));
                return Ok(());
            }
        },
        _ => bytes.to_vec(),
    };
    match (decode_event(bytes), decode_event_ref(&upgraded)) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b.to_owned_event()),
        (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code()),
        (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|_| ()), b.map(|_| ())),
    }
    // and onto the end of a vector: the same event after what was there, or nothing and the
    // same error
    let first = crate::testkit::event("e-0", "d-0", EventType::Delivered, 1);
    let mut onto = vec![(7, first.as_event_ref())];
    match (decode_event_ref(bytes), decode_event_ref_onto(bytes, 42, &mut onto)) {
        (Ok(a), Ok(())) => {
            prop_assert_eq!(onto.len(), 2);
            prop_assert_eq!(onto.last().map(|(at, e)| (*at, e.to_owned_event())), Some((42, a.to_owned_event())));
        }
        (Err(a), Err(b)) => prop_assert_eq!((a.code(), onto.len()), (b.code(), 1)),
        (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|_| ()), b),
    }
    Ok(())
}

fn same_raw_decoding(bytes: &[u8]) -> Result<(), TestCaseError> {
    match (decode_raw(bytes), value_path::decode_raw(bytes)) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(decode_raw_ref(bytes).map(|r| r.to_envelope()).ok(), Some(a.clone()));
            prop_assert_eq!(a, b)
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(decode_raw_ref(bytes).err().map(|e| e.code()), Some(a.code()));
            prop_assert_eq!(a.code(), b.code(), "{} vs {}", a, b)
        }
        (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|_| ()), b.map(|_| ())),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn events_encode_as_apache_avro_and_decode_back(e in arb_event()) {
        let (fast, slow) = (encode_event(&e), value_path::encode_event(&e));
        match (&fast, &slow) {
            (Ok(fast), Ok(slow)) => {
                if comparable(&[e.metadata.len()]) {
                    prop_assert_eq!(fast, slow);
                } else {
                    prop_assert_eq!(fast.len(), slow.len());
                }
                // Amounts travel at MONEY_SCALE, rounded half-even: expect exactly that.
                let mut want = e.clone();
                if let Some(c) = &mut want.cost {
                    c.amount = c.amount.round_dp(MONEY_SCALE);
                }
                prop_assert_eq!(&decode_event(fast)?, &want);
                prop_assert_eq!(&decode_event_ref(fast)?.to_owned_event(), &want);
                let read = decode_event_ref(fast)?;
                prop_assert!(read.event_id.is_empty() || fast.as_ptr_range().contains(&read.event_id.as_ptr()), "text copied");
                prop_assert_eq!(e.as_event_ref().to_owned_event(), e.clone());
                prop_assert_eq!(&decode_event(slow)?, &want);
                prop_assert_eq!(&value_path::decode_event(fast)?, &want);
                let mut reused = b"previous".to_vec();
                encode_event_into(&e, &mut reused)?;
                prop_assert_eq!(&reused[8..], &fast[..]);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code()),
            _ => prop_assert!(false, "{:?} vs {:?}", fast, slow),
        }
    }

    #[test]
    fn envelopes_encode_as_apache_avro_and_decode_back(r in arb_raw()) {
        let (fast, slow) = (encode_raw(&r), value_path::encode_raw(&r));
        match (&fast, &slow) {
            (Ok(fast), Ok(slow)) => {
                if comparable(&[r.headers.len()]) {
                    prop_assert_eq!(fast, slow);
                } else {
                    prop_assert_eq!(fast.len(), slow.len());
                }
                prop_assert_eq!(&decode_raw(fast)?, &r);
                prop_assert_eq!(&decode_raw(slow)?, &r);
                prop_assert_eq!(&value_path::decode_raw(fast)?, &r);
                let borrowed = decode_raw_ref(slow)?;
                prop_assert_eq!(borrowed.body, &r.body[..]);
                for (k, v) in &r.headers {
                    prop_assert_eq!(borrowed.header(k), Some(v.as_str()));
                }
                prop_assert_eq!(borrowed.to_envelope(), r);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code()),
            _ => prop_assert!(false, "{:?} vs {:?}", fast, slow),
        }
    }

    /// Events written with the first schema (no `origin`) read as before, via the Value path.
    #[test]
    fn v1_events_read_as_before(e in arb_event()) {
        if e.cost.as_ref().is_some_and(|c| c.checked_mantissa_at_scale().is_none()) {
            return Ok(()); // never written: refused by every encoder
        }
        let bytes = encode_event_v1(&e)?;
        let read = decode_event(&bytes)?;
        prop_assert_eq!(read.origin, if e.provider_event_name == "send_record" { Origin::SendRecord } else { Origin::Provider });
        prop_assert_eq!(decode_event_ref(&bytes).err().map(|e| e.code()), Some("older_schema"));
        let upgraded = upgrade_event(&bytes)?;
        prop_assert_eq!(&upgraded, &encode_event(&read)?, "not the event in the current schema");
        prop_assert_eq!(&decode_event_ref(&upgraded)?.to_owned_event(), &read);
        prop_assert_eq!(read, value_path::decode_event(&bytes)?);
    }

    /// Every proper prefix of a valid record is an error (never a panic), with the Value
    /// path's code.
    #[test]
    fn truncated_records_are_errors(e in arb_event(), r in arb_raw()) {
        if let Ok(bytes) = encode_event(&e) {
            for n in 0..bytes.len() {
                prop_assert!(decode_event(&bytes[..n]).is_err(), "prefix {} of {}", n, bytes.len());
                same_event_decoding(&bytes[..n])?;
            }
        }
        if let Ok(bytes) = encode_raw(&r) {
            for n in (0..bytes.len()).step_by(1 + bytes.len() / 200) {
                prop_assert!(decode_raw(&bytes[..n]).is_err(), "prefix {} of {}", n, bytes.len());
                same_raw_decoding(&bytes[..n])?;
            }
        }
    }

    /// Valid records with a few bytes changed: the same answers as the Value path.
    #[test]
    fn corrupted_records_read_as_the_value_path_reads_them(e in arb_event(), r in arb_raw(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        for mut bytes in [encode_event(&e).ok(), encode_raw(&r).ok()].into_iter().flatten() {
            let is_event = bytes[2..10] == EVENT_CODEC.fingerprint;
            for (at, b) in &edits {
                let i = 10 + at.index(bytes.len() - 10);
                bytes[i] = *b;
            }
            if is_event { same_event_decoding(&bytes)? } else { same_raw_decoding(&bytes)? }
        }
    }

    /// Random datums behind each current header.
    #[test]
    fn random_datums_read_as_the_value_path_reads_them(datum in vec(any::<u8>(), 0..256)) {
        for fp in [EVENT_CODEC.fingerprint, RAW_ENVELOPE_CODEC.fingerprint] {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&fp);
            bytes.extend_from_slice(&datum);
            same_event_decoding(&bytes)?;
            same_raw_decoding(&bytes)?;
        }
        same_event_decoding(&datum)?;
        same_raw_decoding(&datum)?;
    }
}

/// The case `same_event_decoding` allows: apache-avro read a union index the datum ends
/// before or inside (`ReadVariableIntegerBytes` at end of input) as null, so it accepted an
/// event whose `origin` was missing or cut (found by the `avro` fuzz target: `.. 80 00 FA`,
/// a `raw_offset` then one byte of a longer index).
#[test]
fn an_event_cut_in_origin_is_refused() {
    let e = super::tests::sample_event();
    let bytes = encode_event(&e).unwrap();
    let before = bytes[..bytes.len() - 2].to_vec();
    let inside = [&before[..], &[0xFA]].concat();
    for cut in [&before, &inside] {
        assert!(value_path::decode_event(cut).is_ok(), "the Value path's leniency");
        assert_eq!(decode_event(cut).unwrap_err().code(), "invalid_avro");
        assert_eq!(decode_event(&with_null_origin(cut)).unwrap(), value_path::decode_event(cut).unwrap());
    }
    // The same with a 26-byte decimal (fuzz seed `event-cut-in-origin-after-bad-cost`): the
    // Value path got to the cost, `invalid_field`; we stop at the cut, `invalid_avro`.
    let datum = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x34, 0x02, 0x3E, 0x41, 0x3E, 0x3E, 0x3E, 0x3E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x05];
    let bytes = [&MAGIC[..], &EVENT_CODEC.fingerprint, &datum].concat();
    assert_eq!(value_path::decode_event(&bytes).unwrap_err().code(), "invalid_field");
    assert_eq!(decode_event(&bytes).unwrap_err().code(), "invalid_avro");
    assert_eq!(decode_event(&with_null_origin(&bytes)).unwrap_err().code(), "invalid_field");
}

/// Lengths and counts far beyond the record: refused before allocating (each datum is a
/// few bytes: strings of 1 GiB, a billion labels or headers, a negative count).
#[test]
fn huge_claims_are_refused_with_the_value_paths_code() {
    let mut claims = Vec::new();
    for n in [1i64 << 30, 1 << 40, i64::MAX, -(1 << 30), i64::MIN] {
        let mut b = Vec::new();
        binary::put_long(&mut b, n);
        claims.push(b);
    }
    let event_prefix = {
        // everything up to `labels`, all empty
        let e = crate::testkit::event("", "", EventType::Sent, 0);
        let bytes = encode_event(&Event { tenant: String::new(), provider: String::new(), provider_message_id: String::new(), provider_event_name: String::new(), recipient: String::new(), ..e }).unwrap();
        bytes[..10 + 14].to_vec() // 14 one-byte fields: empty strings, enum 0, nulls
    };
    let raw_prefix = {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&RAW_ENVELOPE_CODEC.fingerprint);
        b.extend_from_slice(&[0; 7]); // six empty strings, received_at 0
        b
    };
    for claim in &claims {
        let mut string = MAGIC.to_vec();
        string.extend_from_slice(&EVENT_CODEC.fingerprint);
        string.extend_from_slice(claim);
        let labels = [event_prefix.clone(), claim.clone()].concat();
        let headers = [raw_prefix.clone(), claim.clone()].concat();
        for bytes in [&string, &labels] {
            let err = decode_event(bytes).unwrap_err();
            assert_eq!(err.code(), value_path::decode_event(bytes).unwrap_err().code(), "{err}");
        }
        let err = decode_raw(&headers).unwrap_err();
        assert_eq!(err.code(), value_path::decode_raw(&headers).unwrap_err().code(), "{err}");
    }
    let mut gib = MAGIC.to_vec();
    gib.extend_from_slice(&EVENT_CODEC.fingerprint);
    gib.extend_from_slice(&claims[0]);
    assert!(decode_event(&gib).unwrap_err().to_string().contains("allocate"));
}
