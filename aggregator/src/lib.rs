//! The aggregator: canonical events → ClickHouse.
//!
//! # Layout
//! * `rules`: status precedence, a pure function (the README repeats its table).
//! * `state`: per-delivery state in a `DashMap`, idempotent and order-independent.
//! * `buckets`: day / ISO week / month buckets.
//! * `sender_health`: sender health (bounce/complaint rates) flags; `sender_health_monitor`: the task that evaluates them.
//! * `machine`: machine opens and clicks (privacy proxies, scanners).
//! * `suppression`: the suppression list rules.
//! * `admission`: the bounds an event must keep to enter a batch; `dead_letter`: what is refused.
//! * `batch`: one partition's batch → rows for every table.
//! * `counters`: a batch's counter sums (interned keys) → counter rows.
//! * `isolate`: bisecting a batch ClickHouse refuses, down to the records it refuses.
//! * `offsets`: batch manifests in ClickHouse, for exactly-once effect.
//! * `store`: everything said to ClickHouse: `rows` (one struct per table), `write` (inserts with
//!   dedup tokens), `queries` (reads), `failure` (which errors are permanent), `retry` (waiting out ClickHouse).
//! * `state/row.rs`: a delivery's state ↔ its `deliveries` row.
//! * `pipeline`: the Kafka consumer loop; `rebalance`: what it keeps across rebalances; `recent`: the
//!   event rows of the deliveries it created, for late send records.
//! * `migrate`: versioned, idempotent DDL.
//! * `memory`: the process's memory settings (transparent huge pages off).

pub mod admission;
pub mod batch;
pub mod buckets;
pub mod config;
pub mod counters;
pub mod dead_letter;
pub mod funnels;
pub mod isolate;
pub mod machine;
pub mod memory;
pub mod migrate;
pub mod offsets;
pub mod pipeline;
pub mod recent;
pub mod rebalance;
pub mod rules;
pub mod sender_health;
pub mod sender_health_monitor;
pub mod state;
pub mod store;
pub mod stored_keys;
pub mod suppression;
