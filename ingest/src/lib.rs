//! ingest: the HTTP edge. A request is verified as coming from its provider,
//! wrapped unchanged in a raw envelope and written to Kafka; 2xx only after
//! Kafka acknowledged it (acks=all), so the provider retries anything not stored.
//!
//! # Layout
//! * `certificates`: where SNS signing certificates come from.
//! * `config`: the service configuration (listen and admin addresses, limits, topics, tenants' secrets).
//! * `kafka`: the raw-record sink (acks=all, not idempotent: `kafka::producer_settings`; replaced if it turns fatal).
//! * `http_metrics`: requests by route, provider and status, and their latency.
//! * `error`: why a request is refused, as a bounded code and the reply the caller sees.
//! * `problem`: error replies as RFC 9457 problem details.
//! * `server`: the public listener (header-read timeout, connection cap, draining).
//! * `routes`: `webhooks` (provider callbacks), `sender` (the sender's own records and push results), `accept` (the shared verify → store flow).

pub mod certificates;
pub mod config;
pub mod error;
pub mod http_metrics;
pub mod kafka;
pub mod problem;
pub mod routes;
pub mod server;

pub use routes::{app, AppState};
