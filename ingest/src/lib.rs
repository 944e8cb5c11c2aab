//! ingest: the HTTP edge. A request is verified as coming from its provider,
//! wrapped unchanged in a raw envelope and written to Kafka; 2xx only after
//! Kafka acknowledged it (acks=all), so the provider retries anything not stored.
//!
//! # Layout
//! * `certificates`: where SNS signing certificates come from.
//! * `config`: the service configuration (listen address, topics, tenants' secrets).
//! * `kafka`: the raw-record sink (an idempotent producer, replaced if it turns fatal).
//! * `error`: why a request is refused, as HTTP status and reason.
//! * `routes`: `webhooks` (provider callbacks), `sender` (the sender's own records and push results), `accept` (the shared verify → store flow).

pub mod certificates;
pub mod config;
pub mod error;
pub mod kafka;
pub mod routes;

pub use routes::{app, AppState};
