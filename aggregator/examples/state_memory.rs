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

use aggregator::machine::DEFAULT_SCANNER_WINDOW_SECS;
use aggregator::state::{DeliveryKey, DeliveryState, Rare, StateStore, Times};
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// Wraps the service's allocator (mimalloc, see `src/main.rs`) and counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = MiMalloc.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = MiMalloc.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        MiMalloc.dealloc(p, l);
        LIVE.fetch_sub(l.size() as isize, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let q = MiMalloc.realloc(p, l, new_size);
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

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let state_size = std::mem::size_of::<DeliveryState>();
    println!("deliveries: {n}");
    println!("size_of::<DeliveryState>() = {state_size} bytes (boxed; of which compact times: {} bytes)", std::mem::size_of::<Times>());
    println!("size_of::<(DeliveryKey, Box<DeliveryState>)>() = {} bytes (one DashMap slot, before load factor)", std::mem::size_of::<(DeliveryKey, Box<DeliveryState>)>());
    println!("size_of::<Rare>() = {} bytes (allocated only for deliveries that need it)", std::mem::size_of::<Rare>());

    // The store: events generated one delivery at a time and dropped, so only the store stays live.
    let store = StateStore::new(usize::MAX);
    let mut keys: Vec<String> = Vec::with_capacity(n);
    let mut rng = support::Rng::new(42);
    let mut events_applied = 0usize;
    let (live0, rss0) = (live(), rss());
    for d in 0..n {
        let evs = support::delivery_events(&mut rng, d);
        let mut names = store.names();
        for e in &evs {
            events_applied += store.apply(&mut names, &e.as_event_ref(), 0, 1, DEFAULT_SCANNER_WINDOW_SECS).is_some() as usize;
        }
        drop(names);
        // Keys for the baseline, kept outside the measured window's growth below.
        keys.push(evs[0].delivery_key.clone());
    }
    // (the Vec's own buffer was allocated before `live0`; only the key strings grew with it)
    let keys_bytes = keys.iter().map(|k| k.capacity()).sum::<usize>();
    let store_live = live() - live0 - keys_bytes as isize;
    let store_rss = rss() - rss0 - keys_bytes as isize;
    assert_eq!(store.map.len(), n);

    // Where the bytes go (from the states themselves).
    let (mut boxes, mut seen, mut contact, mut rare, mut with_rare) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for r in store.map.iter() {
        let s = r.value();
        boxes += state_size;
        seen += s.ids.len() * 6 + 2;
        contact += s.ids.contact().map_or(0, |c| c.len());
        if let Some(x) = &s.rare {
            with_rare += 1;
            rare += std::mem::size_of::<Rare>() + x.last_error.as_ref().map_or(0, |(_, e)| e.len());
        }
    }
    let per = |b: usize| b as f64 / n as f64;
    println!("map capacity: {} slots for {n} deliveries", store.map.capacity());
    let names_len = store.names().len();
    let slots_and_names = store_live as usize - boxes - seen - contact - rare;

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
    println!("  map slots (16-byte key + box pointer, incl. spare capacity) and {names_len} interned names: {:>7.1} bytes/delivery", per(slots_and_names));
    println!("  state boxes (size_of::<DeliveryState>()):               {:>7.1} bytes/delivery", per(boxes));
    println!("  ids: seen event hashes (6 bytes each) + 2-byte prefix:  {:>7.1} bytes/delivery", per(seen));
    println!("  ids: contact id bytes (same allocation):                {:>7.1} bytes/delivery", per(contact));
    println!("  Rare parts ({:.1} % of deliveries):                      {:>7.1} bytes/delivery", 100.0 * with_rare as f64 / n as f64, per(rare));
    println!("  RSS growth while filling (cross-check, incl. malloc overhead): {:.1} bytes/delivery", per(store_rss.max(0) as usize));
    println!("Baseline HashMap<String, [u8; 0]> of the keys: {:>12} bytes = {:>7.1} bytes/delivery", baseline_live, base_per);
    println!();
    println!("ratio store / baseline: {:.2}x", store_per / base_per);
    println!("target 256 bytes/delivery: {} ({:.2}x the target)", if store_per <= 256.0 { "met" } else { "MISSED" }, store_per / 256.0);
    std::hint::black_box(&baseline);
}
