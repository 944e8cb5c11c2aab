//! The normalizer: raw provider payloads in, canonical Avro events out.
//!
//! # Layout
//! * `providers`: one folder per provider behind the [`providers::Provider`] trait; `providers/mod.rs` is the list.
//! * `normalize`: the single entry point used by the pipeline and by `normalizer check`.
//! * `check`: the `normalizer check` command.
//! * `pipeline`: Kafka raw topic → events topic, failures → dead-letter topic.
//! * `dead_letter`: building dead-letter records.
//! * `config`: the service configuration.
//! * `counters`: the per-record and per-event counters, resolved once.
//! * `mix` (feature `samples`): a realistic mix of raw records for the benchmark and its baselines.

pub mod check;
pub mod config;
pub mod counters;
pub mod dead_letter;
#[cfg(any(test, feature = "samples"))]
pub mod mix;
pub mod normalize;
pub mod pipeline;
pub mod providers;
