//! Events per second through the per-delivery state (target: 1 M events/s per core).
//!
//! `cargo bench -p aggregator --bench state_update -- --warm-up-time 1 --measurement-time 3`
//!
//! One thread, so every figure is per core, and timed as the thread's CPU time
//! (`support/cpu_time.rs`: wall time swung 2–3× on the shared machine). Still read each
//! line as a ratio against `baseline_hashmap_insert_ids`, measured in the same run on the
//! same events (one `HashMap<String, u64>` insert of the event id).
//!
//! * `delivery_state_apply`: `DeliveryState::apply` alone (no machine classification),
//!   states pre-created.
//! * `state_store_apply`: `StateStore::apply`, what `batch::apply` does per event before
//!   building rows: `DashMap` entry by delivery key (new state on first sight), `touched`,
//!   `machine::classify`, `apply`.
//! * `batch_apply_rows`: `batch::apply` on batches of `BATCH` (2000, a partition's share of the
//!   pipeline's batch): state + event rows + counter rows + delivery rows + suppression rows,
//!   rows dropped after.
//!
//! From Avro bytes (issue 14, goal 4: the whole batch ≥ 1 M events/s per core), the same
//! events encoded once with `schemas::avro::encode_event` before timing:
//! * `decode_event`: `schemas::avro::decode_event` alone, every event (owned text: what the
//!   aggregator did before `decode_event_ref`).
//! * `decode_event_ref`: `schemas::avro::decode_event_ref`, the text borrowed from the bytes, as
//!   the aggregator decodes its batches.
//! * `batch_rows_serialized`: `batch::apply` on 2000-event batches of decoded events (all
//!   in memory, borrowed: `batch::refs`), every
//!   row serialized as the inserts send it (`BatchRows::write_rowbinary` into the table
//!   buffers the pipeline reuses, and the delivery rows' buffer handed from batch to batch as the
//!   pipeline does, `batch::apply_reusing`; `store/rowbinary.rs`, the bytes the sink sends).
//! * `batch_from_avro`: the whole: per batch, decode its 2000 events (`decode_event_ref_onto`),
//!   then the above. Its time ≈ `decode_event_ref` + `batch_rows_serialized`.
//! * `batch_from_avro_campaign`: the same whole batch on a campaign as a live topic carries it
//!   (`support::campaign`: as many deliveries, all in flight at once, their events in the order
//!   received). The shuffled 90-day stream above is the worst case: each batch spans all 90
//!   days; no topic is read that way.
//! * `pipeline_batch_campaign`: the campaign's batches with the look at the state the
//!   pipeline makes before each (`StateStore::look_up`).
//! * `pipeline_unit_campaign_20k`: the same in units of the pipeline's whole batch
//!   (`batch_max_events`, 20,000: one partition with a backlog). Larger than the cache, so
//!   slower per event than 2,000 (BENCHMARKS.md §1b).

/// The service's allocator (`src/main.rs`), so the figures are the service's (and its memory
/// settings, below).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/mod.rs"]
mod support;

use aggregator::batch;
use aggregator::machine::DEFAULT_SCANNER_WINDOW_SECS;
use aggregator::state::{DeliveryState, Facts, Names, StateStore};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use support::cpu_time::CpuTime;
use std::collections::HashMap;

/// The deliveries of the stream and the campaign: 100,000, or `BENCH_DELIVERIES` (to see how
/// the time per event grows with the states and text a batch reaches into: BENCHMARKS.md §1b).
fn deliveries() -> usize {
    std::env::var("BENCH_DELIVERIES").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(100_000)
}
/// A partition's share of a batch: the pipeline reads up to `Config::default().batch_max_events`
/// (20,000) from all its partitions together and writes each one's share as one unit (with
/// ten partitions, ~2,000 each). `pipeline_unit_campaign_20k` times the whole batch as one
/// unit (one partition, a backlog).
const BATCH: usize = 2000;

fn state_update(c: &mut Criterion<CpuTime>) {
    // The service's memory settings (`aggregator::memory`): transparent huge pages off, unless
    // `BENCH_THP=1` (to compare).
    if std::env::var("BENCH_THP").as_deref() != Ok("1") {
        if let Err(e) = aggregator::memory::disable_transparent_huge_pages() {
            println!("transparent huge pages stay as the kernel sets them: {e}");
        }
    }
    let deliveries = deliveries();
    let owned = support::stream(42, deliveries);
    // as the aggregator holds them: borrowing their text (from the records' bytes in the service)
    let events = batch::refs(&owned);
    let n = events.len();
    println!("{n} events for {deliveries} deliveries ({:.2} per delivery)", n as f64 / deliveries as f64);

    // Index of each event's delivery, and one fresh state per delivery (outside the timed loop).
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut first: Vec<usize> = Vec::new();
    let slot: Vec<usize> = events
        .iter()
        .enumerate()
        .map(|(i, (_, e))| {
            *index.entry(e.delivery_key.as_ref()).or_insert_with(|| {
                first.push(i);
                first.len() - 1
            })
        })
        .collect();
    let fresh_states = || -> (Vec<DeliveryState>, Names) { (first.iter().map(|&i| DeliveryState::new(events[i].1.channel)).collect(), Names::default()) };

    // Sanity (untimed): every event applies once, a replay applies none.
    let (mut states, mut names) = fresh_states();
    let applied = events.iter().zip(&slot).filter(|((_, e), &s)| states[s].apply(&mut names, e, None)).count();
    assert_eq!(applied, n);
    assert!(!events.iter().zip(&slot).any(|((_, e), &s)| states[s].apply(&mut names, e, None)));
    drop(states);

    let mut group = c.benchmark_group("state_update");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);

    group.bench_function("baseline_hashmap_insert_ids", |b| {
        b.iter_batched(
            || HashMap::<String, u64>::with_capacity(n),
            |mut m| {
                for (o, e) in &events {
                    m.insert(e.event_id.to_string(), *o as u64);
                }
                m
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("delivery_state_apply", |b| {
        b.iter_batched(
            fresh_states,
            |(mut states, mut names)| {
                for ((_, e), &s) in events.iter().zip(&slot) {
                    black_box(states[s].apply(&mut names, e, None));
                }
                states
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("state_store_apply", |b| {
        b.iter_batched(
            || StateStore::new(1_000_000),
            |store| {
                let mut names = store.names();
                for (_, e) in &events {
                    black_box(store.apply(&mut names, e, 0, 1, DEFAULT_SCANNER_WINDOW_SECS));
                }
                drop(names);
                store
            },
            BatchSize::PerIteration,
        )
    });

    let batch_cfg = batch::BatchConfig::default();
    let no_history = batch::History::new();
    group.bench_function("batch_apply_rows", |b| {
        b.iter_batched(
            || StateStore::new(1_000_000),
            |store| {
                for (seq, chunk) in events.chunks(BATCH).enumerate() {
                    let rows = batch::apply(&store, 0, chunk, &no_history, seq as u64 + 1, 1_767_225_600_000, &batch_cfg);
                    black_box(rows.event_rows() + rows.counter_tables.counter_rows() + rows.delivery_table.rows);
                }
                store
            },
            BatchSize::PerIteration,
        )
    });

    let encoded: Vec<(i64, Vec<u8>)> = owned.iter().map(|(o, e)| (*o, schemas::avro::encode_event(e).expect("bench events encode"))).collect();
    let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
    println!("{n} events encoded: {:.0} bytes each on average", bytes as f64 / n as f64);
    // Sanity (untimed): the decoded events are the events.
    assert!(encoded.iter().zip(&owned).all(|((_, b), (_, e))| schemas::avro::decode_event(b).ok().as_ref() == Some(e) && schemas::avro::decode_event_ref(b).ok().as_ref() == Some(&e.as_event_ref())));

    group.bench_function("decode_event", |b| {
        b.iter(|| {
            for (_, bytes) in &encoded {
                black_box(schemas::avro::decode_event(bytes).ok());
            }
        })
    });

    group.bench_function("decode_event_ref", |b| {
        b.iter(|| {
            for (_, bytes) in &encoded {
                black_box(schemas::avro::decode_event_ref(bytes).ok());
            }
        })
    });

    group.bench_function("batch_rows_serialized", |b| {
        b.iter_batched(
            || (StateStore::new(1_000_000), batch::TableBuffers::default()),
            |(store, mut tables)| {
                for (seq, chunk) in events.chunks(BATCH).enumerate() {
                    let spare = std::mem::take(&mut tables.spare);
                    let mut rows = batch::apply_reusing(&store, 0, &batch::Keyed::new(chunk), &no_history, seq as u64 + 1, 1_767_225_600_000, &batch_cfg, spare);
                    rows.write_rowbinary(&mut tables).expect("rows serialize");
                    black_box(tables.events.bytes.len());
                    tables.spare = rows.into_delivery_buffer();
                }
                store
            },
            BatchSize::PerIteration,
        )
    });

    // A campaign as a live topic carries it (`support::campaign`): the same number of
    // deliveries, all in flight at once, their events in the order received.
    let live: Vec<(i64, Vec<u8>)> = support::campaign(42, deliveries).iter().map(|(o, e)| (*o, schemas::avro::encode_event(e).expect("bench events encode"))).collect();
    println!("campaign: {} events for {deliveries} deliveries", live.len());
    // `pipeline_batch_campaign`: with the look at the state the pipeline makes before each
    // batch (`pipeline.rs`): which deliveries are not held (reloaded from ClickHouse first; here
    // none is stored, so nothing is reloaded) and which may change attribution.
    let whole = aggregator::config::Config::default().batch_max_events;
    for (name, stream, pipeline_reads, size) in [
        ("batch_from_avro", &encoded, false, BATCH),
        ("batch_from_avro_campaign", &live, false, BATCH),
        ("pipeline_batch_campaign", &live, true, BATCH),
        ("pipeline_unit_campaign_20k", &live, true, whole),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || (StateStore::new(1_000_000), batch::TableBuffers::default(), Vec::with_capacity(size), Vec::with_capacity(size)),
                |(store, mut tables, mut decoded, mut facts)| {
                    batches_from_avro(&store, &mut tables, &mut decoded, &mut facts, stream, size, &no_history, &batch_cfg, pipeline_reads);
                    store
                },
                BatchSize::PerIteration,
            )
        });
    }

    group.finish();
}

/// What `batch_from_avro`, `batch_from_avro_campaign`, `pipeline_batch_campaign` and
/// `pipeline_unit_campaign_20k` time: the
/// stream in batches of `size`, each decoded (`decode_event_ref_onto`) onto the reused `decoded`
/// with each event's facts (`state::Facts`) taken as it is decoded (as `pipeline.rs`' `admit`),
/// applied and serialized (`batch::apply_reusing`, `write_rowbinary`), the delivery rows'
/// buffer handed to the next batch, as `pipeline.rs` does. With `pipeline_reads`, first the
/// pipeline's look at the state before each batch (`StateStore::look_up`: which deliveries to
/// reload, which to read earlier event rows of).
///
/// Never inlined, so that callgrind's `--toggle-collect='state_update::batches_from_avro*'`
/// finds it in any build (a fat-LTO build inlined it into criterion's routine).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn batches_from_avro<'a>(
    store: &StateStore,
    tables: &mut batch::TableBuffers,
    decoded: &mut Vec<(i64, schemas::EventRef<'a>)>,
    facts: &mut Vec<Facts>,
    stream: &'a [(i64, Vec<u8>)],
    size: usize,
    history: &batch::History,
    cfg: &batch::BatchConfig,
    pipeline_reads: bool,
) {
    for (seq, chunk) in stream.chunks(size).enumerate() {
        // decoded, and each event's facts taken as it is, as the pipeline's `admit` does
        decoded.clear();
        facts.clear();
        for (o, b) in chunk {
            if schemas::avro::decode_event_ref_onto(b, *o, decoded).is_ok() {
                if let Some((_, e)) = decoded.last() {
                    facts.push(Facts::of(e));
                }
            }
        }
        let keyed = batch::Keyed::with_facts(decoded, facts).expect("one fact per event");
        if pipeline_reads {
            black_box(store.look_up(keyed.places()));
        }
        let spare = std::mem::take(&mut tables.spare);
        let mut rows = batch::apply_reusing(store, 0, &keyed, history, seq as u64 + 1, 1_767_225_600_000, cfg, spare);
        rows.write_rowbinary(tables).expect("rows serialize");
        black_box(tables.events.bytes.len());
        tables.spare = rows.into_delivery_buffer();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = state_update
}
criterion_main!(benches);
