//! Heap bytes per active delivery in the `StateStore` (target: ≤ 256 bytes).
//!
//! `cargo run --release -p aggregator --example state_memory [-- <deliveries>]`
//!
//! A counting global allocator (live bytes requested, not counting malloc's own
//! per-chunk overhead) measures the store after N deliveries of ~6 applied events
//! each, and, as a baseline, a `HashMap<String, [u8; 0]>` of the same delivery keys
//! alone (the least any keyed store must hold). RSS growth is printed as a cross-check.

#[path = "../benches/support/mod.rs"]
mod support;

use aggregator::machine::{self, DEFAULT_SCANNER_WINDOW_SECS};
use aggregator::state::{Attributed, DeliveryState, StateStore};
use schemas::EventType;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// Wraps the system allocator and counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size() as isize, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, l, new_size);
        if !q.is_null() {
            LIVE.fetch_add(new_size as isize - l.size() as isize, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

/// Resident set size in bytes (Linux), 0 if unknown.
fn rss() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn attributed_heap(a: &Attributed) -> usize {
    a.0.as_ref().map_or(0, |(_, v)| v.capacity())
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    println!("deliveries: {n}");
    println!("size_of::<DeliveryState>() = {} bytes (of which first_at + last_at: {} bytes)", std::mem::size_of::<DeliveryState>(), 2 * std::mem::size_of::<aggregator::state::Times>());
    println!("size_of::<(String, DeliveryState)>() = {} bytes (one DashMap slot, before load factor)", std::mem::size_of::<(String, DeliveryState)>());

    // The store: events generated one delivery at a time and dropped, so only the store stays live.
    let store = StateStore::new(usize::MAX);
    let mut keys: Vec<String> = Vec::with_capacity(n);
    let mut rng = support::Rng::new(42);
    let mut events_applied = 0usize;
    let (live0, rss0) = (live(), rss());
    for d in 0..n {
        let evs = support::delivery_events(&mut rng, d);
        for (i, e) in evs.iter().enumerate() {
            let mut entry = store.map.entry(e.delivery_key.clone()).or_insert_with(|| DeliveryState::new(e));
            entry.touched = 1;
            let machine = machine::classify(e, entry.first(EventType::Delivered), DEFAULT_SCANNER_WINDOW_SECS);
            events_applied += entry.apply(e, (d * 8 + i) as u64, machine) as usize;
        }
        // Keys for the baseline, kept outside the measured window's growth below.
        keys.push(evs[0].delivery_key.clone());
    }
    let keys_bytes = keys.capacity() * std::mem::size_of::<String>() + keys.iter().map(|k| k.capacity()).sum::<usize>();
    let store_live = live() - live0 - keys_bytes as isize;
    let store_rss = rss() - rss0 - keys_bytes as isize;
    assert_eq!(store.map.len(), n);

    // Where the bytes go (from the states themselves).
    let mut strings = 0usize;
    let mut seen = 0usize;
    let mut labels = 0usize;
    let mut key_heap = 0usize;
    for r in store.map.iter() {
        let s = r.value();
        key_heap += r.key().capacity();
        strings += s.tenant.capacity() + s.provider.capacity();
        strings += s.provider_message_id.capacity() + s.recipient.capacity();
        strings += [&s.broadcast_id, &s.sequence_id, &s.contact_id, &s.template_key, &s.message_class].iter().map(|a| attributed_heap(a)).sum::<usize>();
        strings += s.last_error.as_ref().map_or(0, |(_, r)| r.capacity()) + s.cost.as_ref().map_or(0, |(_, u)| u.capacity());
        labels += s.labels.capacity() * std::mem::size_of::<String>() + s.labels.iter().map(|l| l.capacity()).sum::<usize>();
        seen += s.seen.capacity() * 8;
    }
    let slots = store_live as usize - strings - seen - labels - key_heap;
    let per = |b: usize| b as f64 / n as f64;

    // Baseline: the keys alone in a HashMap.
    let live1 = live();
    let mut baseline: HashMap<String, [u8; 0]> = HashMap::new();
    for k in &keys {
        baseline.insert(k.clone(), []);
    }
    let baseline_live = live() - live1;
    assert_eq!(baseline.len(), n);

    let store_per = per(store_live as usize);
    let base_per = per(baseline_live as usize);
    println!("events applied: {events_applied} ({:.2} per delivery)", events_applied as f64 / n as f64);
    println!();
    println!("StateStore live heap:            {:>12} bytes = {:>7.1} bytes/delivery", store_live, store_per);
    println!("  map slots (key + state inline, incl. spare capacity): {:>7.1} bytes/delivery", per(slots));
    println!("  key String heap:                                       {:>7.1} bytes/delivery", per(key_heap));
    println!("  state Strings heap (ids, tenant, recipient, attribution, error, cost unit): {:>7.1} bytes/delivery", per(strings));
    println!("  seen hashes (Vec<u64> capacity):                        {:>7.1} bytes/delivery", per(seen));
    println!("  labels:                                                 {:>7.1} bytes/delivery", per(labels));
    println!("  RSS growth while filling (cross-check, incl. malloc overhead): {:.1} bytes/delivery", per(store_rss.max(0) as usize));
    println!("Baseline HashMap<String, [u8; 0]> of the keys: {:>12} bytes = {:>7.1} bytes/delivery", baseline_live, base_per);
    println!();
    println!("ratio store / baseline: {:.2}x", store_per / base_per);
    println!("target 256 bytes/delivery: {} ({:.2}x the target)", if store_per <= 256.0 { "met" } else { "MISSED" }, store_per / 256.0);
    std::hint::black_box(&baseline);
}
