//! The Avro decoders (`decode_raw`, `decode_event` and the aggregator's borrowing
//! `decode_event_ref`, `decode_dead_letter`) on arbitrary bytes,
//! and the encoders on arbitrary values. First byte (mod 9):
//! 0-2  decode raw / event / dead letter from the rest as is;
//! 3-5  the same with the current schema's header (magic + fingerprint) prepended, so the
//!      fuzzer works on the datum itself;
//! 6-8  an arbitrary envelope / event / dead letter built from the rest, encoded.
//! Whatever decodes must re-encode and decode to the same value; nothing panics.
//! Differential: the schema-specific codec (`schemas::avro::*`) must answer as the apache-avro
//! `Value` codec (`schemas::avro::value_path::*`): the same value or the same error code (one
//! allowed difference: an event that ends before or inside `origin`'s union index, which only
//! the Value path reads), and
//! the same bytes when encoding (maps of at most one entry: apache-avro's map order is random).
#![no_main]
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use schemas::avro::{decode_dead_letter, decode_event, decode_event_ref, decode_event_ref_onto, decode_raw, decode_raw_ref, encode_dead_letter, encode_event, encode_raw, upgrade_event, value_path};
use schemas::{DeadLetter, ProviderId, RawEnvelope, Route};
use sendtrace_fuzz::values::event;
use std::sync::LazyLock;

fn raw_envelope(u: &mut Unstructured) -> arbitrary::Result<RawEnvelope> {
    Ok(RawEnvelope {
        request_id: u.arbitrary()?,
        tenant: u.arbitrary()?,
        provider: *u.choose(&ProviderId::ALL)?,
        route: match u.int_in_range(0..=4u8)? {
            0 => Route::Webhook,
            1 => Route::WebhookVariant(u.arbitrary::<String>()?.replace('/', "").into()),
            2 => Route::Sends,
            3 => Route::Events,
            _ => Route::PushResults,
        },
        url: u.arbitrary()?,
        content_type: u.arbitrary()?,
        received_at: u.arbitrary()?,
        headers: u.arbitrary()?,
        body: u.arbitrary()?,
    })
}

fn dead_letter(u: &mut Unstructured) -> arbitrary::Result<DeadLetter> {
    Ok(DeadLetter {
        reason_code: u.arbitrary()?,
        reason: u.arbitrary()?,
        stage: u.arbitrary()?,
        raw_topic: u.arbitrary()?,
        raw_partition: u.arbitrary()?,
        raw_offset: u.arbitrary()?,
        tenant: u.arbitrary()?,
        provider: u.arbitrary()?,
        failed_at: u.arbitrary()?,
        raw: u.arbitrary()?,
        item: u.arbitrary()?,
        raw_size: u.arbitrary()?,
        raw_truncated: u.arbitrary()?,
        request_id: u.arbitrary()?,
    })
}

/// Magic + fingerprint of each current schema, taken from an encoded empty value.
static HEADERS: LazyLock<[Vec<u8>; 3]> = LazyLock::new(|| {
    let mut empty = Unstructured::new(&[]);
    let header = |bytes: Vec<u8>| bytes[..10].to_vec();
    [
        header(encode_raw(&raw_envelope(&mut empty).unwrap()).unwrap()),
        header(encode_event(&event(&mut empty).unwrap()).unwrap()),
        header(encode_dead_letter(&dead_letter(&mut empty).unwrap()).unwrap()),
    ]
});

fn decode(kind: u8, bytes: &[u8]) {
    match kind {
        0 => {
            let fast = decode_raw(bytes);
            match (&fast, value_path::decode_raw(bytes)) {
                (Ok(a), Ok(b)) => assert_eq!(*a, b, "the Value path reads another envelope"),
                (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a} vs {b}"),
                (a, b) => panic!("fast {:?} vs Value path {:?}", a.as_ref().err(), b.err()),
            }
            assert_eq!(decode_raw_ref(bytes).map(|r| r.to_envelope()).ok(), fast.as_ref().ok().cloned());
            if let Ok(v) = fast {
                assert_eq!(decode_raw(&encode_raw(&v).expect("decoded envelope re-encodes")).unwrap(), v);
            }
        }
        1 => {
            let fast = decode_event(bytes);
            // the aggregator's borrowing decoder reads exactly the same; a record of an older
            // schema once `upgrade_event` rewrote it in the current one
            let borrowed = match decode_event_ref(bytes) {
                Err(e) if e.code() == "older_schema" => upgrade_event(bytes).and_then(|b| decode_event_ref(&b).map(|e| e.to_owned_event())),
                r => r.map(|e| e.to_owned_event()),
            };
            match (&fast, borrowed) {
                (Ok(a), Ok(b)) => assert_eq!(*a, b, "the borrowing decoder reads another event"),
                (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
                (a, b) => panic!("owned {:?}, borrowed {:?}", a.as_ref().map(|_| ()), b.map(|_| ())),
            }
            // and decoded onto a vector's end: what `decode_event_ref` reads, or nothing
            let mut onto = Vec::new();
            match (decode_event_ref(bytes), decode_event_ref_onto(bytes, 1, &mut onto)) {
                (Ok(a), Ok(())) => assert_eq!(onto.iter().map(|(at, e)| (*at, e.to_owned_event())).collect::<Vec<_>>(), vec![(1, a.to_owned_event())]),
                (Err(a), Err(b)) => assert_eq!((a.code(), onto.len()), (b.code(), 0)),
                (a, b) => panic!("borrowed {:?}, onto {:?}", a.map(|_| ()), b),
            }
            // The one allowed difference: an event that ends before or inside `origin`'s union
            // index, which apache-avro read as null; with that index whole, it reads the same.
            let with_null_origin = || {
                let end = bytes.iter().rposition(|&x| x < 0x80).map_or(0, |i| i + 1);
                decode_event(&[&bytes[..end], &[0]].concat())
            };
            match (&fast, value_path::decode_event(bytes)) {
                (Ok(a), Ok(b)) => assert_eq!(*a, b, "the Value path reads another event"),
                // the same leniency, then a bad cost: `invalid_field` there, `invalid_avro` here
                (Err(a), Err(b)) if a.code() != b.code() => assert_eq!(with_null_origin().err().map(|e| e.code()), Some(b.code()), "{a} vs {b}"),
                (Err(_), Err(_)) => {}
                (Err(_), Ok(b)) => assert_eq!(with_null_origin().ok(), Some(b), "refused what the Value path reads"),
                (Ok(a), Err(b)) => panic!("read {a:?}, which the Value path refuses ({b})"),
            }
            if let Ok(v) = fast {
                assert_eq!(decode_event(&encode_event(&v).expect("decoded event re-encodes")).unwrap(), v);
            }
        }
        _ => {
            if let Ok(v) = decode_dead_letter(bytes) {
                assert_eq!(decode_dead_letter(&encode_dead_letter(&v).expect("decoded dead letter re-encodes")).unwrap(), v);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mode = mode % 9;
    match mode {
        0..=2 => decode(mode, rest),
        3..=5 => {
            let mut bytes = HEADERS[(mode - 3) as usize].clone();
            bytes.extend_from_slice(rest);
            decode(mode - 3, &bytes);
        }
        _ => {
            let mut u = Unstructured::new(rest);
            match mode {
                6 => {
                    let Ok(v) = raw_envelope(&mut u) else { return };
                    let slow = value_path::encode_raw(&v);
                    match (encode_raw(&v).as_ref(), slow.as_ref()) {
                        (Ok(a), Ok(b)) if v.headers.len() <= 1 => assert_eq!(a, b, "bytes differ from apache-avro's"),
                        (Ok(a), Ok(b)) => assert_eq!(a.len(), b.len()),
                        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
                        (a, b) => panic!("{a:?} vs {b:?}"),
                    }
                    match encode_raw(&v) {
                        Ok(bytes) => assert_eq!(decode_raw(&bytes).expect("and decodes"), v),
                        // only a route that could not be read back is refused
                        Err(_) => assert!(!v.route.is_valid(), "a valid envelope refused"),
                    }
                }
                7 => {
                    let Ok(v) = event(&mut u) else { return };
                    // Amounts travel at MONEY_SCALE, rounded half-even: expect exactly that.
                    match (encode_event(&v).as_ref(), value_path::encode_event(&v).as_ref()) {
                        (Ok(a), Ok(b)) if v.metadata.len() <= 1 => assert_eq!(a, b, "bytes differ from apache-avro's"),
                        (Ok(a), Ok(b)) => assert_eq!(a.len(), b.len()),
                        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
                        (a, b) => panic!("{a:?} vs {b:?}"),
                    }
                    let mut want = v.clone();
                    if let Some(c) = &mut want.cost {
                        c.amount = c.amount.round_dp(schemas::money::MONEY_SCALE);
                    }
                    match encode_event(&v) {
                        Ok(bytes) => assert_eq!(decode_event(&bytes).expect("and decodes"), want),
                        // Only an amount beyond decimal(38, 10) may refuse to encode.
                        Err(e) => assert!(v.cost.is_some(), "event does not encode: {e}"),
                    }
                }
                _ => {
                    let Ok(v) = dead_letter(&mut u) else { return };
                    assert_eq!(decode_dead_letter(&encode_dead_letter(&v).expect("dead letter encodes")).expect("and decodes"), v);
                }
            }
        }
    }
});
