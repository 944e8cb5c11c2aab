//! Canonical sendtrace types: the one place where events, envelopes and their
//! wire formats are defined.
//!
//! # Layout
//! * `event`: [`Event`] and its vocabulary ([`EventType`], [`BounceClass`], [`Channel`], ..).
//! * `ids`: deterministic event ids and delivery keys.
//! * `money`: [`Money`], a decimal amount with its unit (never a float).
//! * `raw`: [`RawEnvelope`], a provider request as ingest stored it, and [`DeadLetter`].
//! * `avro`: the Avro schemas (from `avro/*.avsc`) and the single-object codec.
//! * `ddl`: the ClickHouse migrations (from `clickhouse/*.sql`).
//! * `cluster`: the same migrations for a ClickHouse cluster (`ON CLUSTER`, `Replicated*`, `Distributed`).
//! * `provider`: [`ProviderId`], the one place provider names are parsed.
//! * `ascii`: word-at-a-time ASCII checks of short text (the decoder's, the aggregator's rows').

pub mod ascii;
pub mod avro;
pub mod cluster;
pub mod ddl;
pub mod event;
pub mod ids;
pub mod money;
pub mod provider;
pub mod raw;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use event::{
    BounceClass, Channel, Event, EventRef, EventType, MessageClass, Origin, TimeSource,
};
pub use money::Money;
pub use provider::ProviderId;
pub use raw::{DeadLetter, RawEnvelope, Route};

/// Default topic names. Services take them from configuration.
pub mod topics {
    pub const RAW: &str = "sendtrace.raw.v1";
    pub const EVENTS: &str = "sendtrace.events.v1";
    pub const DEAD_LETTER: &str = "sendtrace.deadletter.v1";
}
