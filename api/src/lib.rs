//! api: the read side. Senders, dashboards and tools read stats, messages, events, funnels,
//! suppressions and sender health over HTTP instead of SQL against internal tables.
//!
//! # Layout
//! * `config`: the service configuration (listen address, ClickHouse, limits, tenants' keys).
//! * `auth`: per-tenant bearer keys and scopes → [`auth::Caller`].
//! * `error`: every refusal as RFC 9457 problem+json.
//! * `live`: the Kafka tail behind `/v1/stream`.
//! * `export`: CSV / NDJSON streams of a whole list (`Accept`), resumable.
//! * `params`: query strings parsed against the documented parameters, errors per parameter.
//! * `page_token`: opaque keyset cursors bound to their filters.
//! * `bounce_reasons`: bounce and failure reasons in classes across providers.
//! * `buckets`: day / ISO week / month series in UTC or a reporting zone.
//! * `db`: every ClickHouse query, with its row types.
//! * `routes`: one file per group of endpoints; `routes::app` builds the router and the OpenAPI document.
//! * `metrics`: requests by route and status, latency histogram.

pub mod auth;
pub mod bounce_reasons;
pub mod buckets;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod live;
pub mod metrics;
pub mod page_token;
pub mod params;
pub mod routes;

use std::sync::Arc;

pub use routes::app;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<config::Config>,
    pub keys: Arc<auth::Keys>,
    pub db: db::Db,
    /// Publishes suppression changes.
    pub producer: Arc<runtime::kafka::ReplaceableProducer>,
    /// The live tail of `/v1/stream`.
    pub live: Arc<live::Hub>,
    /// `/healthz` and `/readyz` (its `clickhouse` condition: `routes::health::spawn_clickhouse_probe`).
    pub health: runtime::telemetry::Health,
}

impl AppState {
    pub fn new(config: config::Config) -> AppState {
        let keys = Arc::new(auth::Keys::from_config(&config));
        let db = db::Db::new(&config.clickhouse);
        // librdkafka clients connect lazily: creating them needs no broker.
        let producer = Arc::new(runtime::kafka::ReplaceableProducer::new(config.kafka.clone()).expect("a Kafka producer from a valid configuration"));
        let live = Arc::new(live::Hub::new(config.kafka.clone(), config.events_topic.clone(), config.stream_buffer_events, config.max_streams));
        let health = runtime::telemetry::Health::default();
        health.set_ready(true);
        AppState { config: Arc::new(config), keys, db, producer, live, health }
    }
}
