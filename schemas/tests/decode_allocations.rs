//! The decoders never allocate for what a record claims, only for what it holds: hostile
//! records of a few bytes claiming a 1 GiB string, a billion labels or headers, and every
//! prefix of valid records, decoded under an allocator that records the largest request.
//! (Its own test binary: the counting allocator is process-wide.)

use schemas::avro::{decode_event, decode_raw, decode_raw_ref, encode_event, encode_raw};
use schemas::{Channel, Event, EventType, ProviderId, RawEnvelope, Route, TimeSource};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Largest;

thread_local! {
    /// The largest allocation this thread requested since the last reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The largest allocation `f` makes.
fn largest<T>(f: impl FnOnce() -> T) -> usize {
    LARGEST.with(|l| l.set(0));
    drop(f());
    LARGEST.with(|l| l.get())
}

fn varint(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    while z > 0x7F {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    out
}

fn event() -> Event {
    Event {
        event_id: "9f86d081884c7d659a2feaa0c55ad015".into(),
        tenant: "acme".into(),
        channel: Channel::Email,
        provider: "ses".into(),
        provider_message_id: "0100018c5b0e7f0a-2f1c9c1e-9a0b-4c7e-8d2f-1b3a5c7e9d0f-000000".into(),
        provider_event_id: None,
        provider_event_name: "Delivery".into(),
        delivery_key: "2c26b46b68ffc68ff99b453c1d304134".into(),
        recipient: "someone@example.com".into(),
        broadcast_id: Some("b-42".into()),
        sequence_id: None,
        contact_id: None,
        template_key: None,
        message_class: None,
        labels: vec!["a".into(), "b".into()],
        metadata: [("k".to_string(), "v".to_string())].into(),
        event_type: EventType::Delivered,
        bounce_class: None,
        occurred_at: 1_700_000_000_000,
        received_at: 1_700_000_000_100,
        time_source: TimeSource::Provider,
        click_url: None,
        user_agent: None,
        ip: None,
        error_code: None,
        error_reason: None,
        cost: None,
        raw_topic: "sendtrace.raw.v1".into(),
        raw_partition: 1,
        raw_offset: 2,
        origin: Default::default(),
    }
}

#[test]
fn hostile_claims_allocate_nothing_near_what_they_claim() {
    let event = encode_event(&event()).unwrap();
    let raw = encode_raw(&RawEnvelope {
        request_id: String::new(),
        tenant: String::new(),
        provider: ProviderId::Ses,
        route: Route::Webhook,
        url: String::new(),
        content_type: String::new(),
        received_at: 0,
        headers: Default::default(),
        body: Vec::new(),
    })
    .unwrap();
    let (event_header, raw_header) = (&event[..10], &raw[..10]);
    // where the labels' count starts: header, then the fields before `labels`
    let labels_at = 10 + 1 + 32 + 1 + 4 + 1 + 1 + 3 + 1 + 60 + 1 + 1 + 8 + 1 + 32 + 1 + 19 + 1 + 1 + 4 + 1 + 1 + 1 + 1;
    assert_eq!(event[labels_at], 4, "labels' count (2) where expected");
    for claim in [1i64 << 30, 1 << 40, i64::MAX, -(1 << 30)] {
        let claim = varint(claim);
        let records = [
            [event_header, &claim].concat(),                      // event_id of 1 GiB
            [&event[..labels_at], &claim].concat(),              // a billion labels
            [raw_header, &claim].concat(),                        // request_id of 1 GiB
            [raw_header, &[0; 7], &claim].concat(),               // a billion headers
            [raw_header, &[0; 8], &claim].concat(),               // a body of 1 GiB
        ];
        for r in &records {
            let most = largest(|| (decode_event(r).is_err(), decode_raw(r).is_err(), decode_raw_ref(r).is_err()));
            assert!(most < 4096, "{most} bytes allocated for a record of {} bytes", r.len());
            assert!(decode_event(r).is_err() && decode_raw(r).is_err());
        }
    }
    // Every prefix of a valid record: an error, allocating less than the record's size.
    for record in [&event, &raw] {
        for n in 0..record.len() {
            let most = largest(|| (decode_event(&record[..n]), decode_raw(&record[..n])));
            assert!(most <= 4096.max(record.len()), "{most} bytes for a prefix of {n}");
        }
    }
}
