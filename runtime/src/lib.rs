//! Plumbing shared by the services.
//!
//! # Layout
//! * `backoff`: the one retry wait (capped exponential, yields to shutdown).
//! * `clock`: the one wall clock (`now_ms`).
//! * `kafka`: client settings, producers, consumers and topic creation.
//! * `shutdown`: SIGINT/SIGTERM → one cancellation token.
//! * `telemetry`: tracing setup, the Prometheus recorder, `/metrics` and `/healthz`.
//! * `config`: loading a service config from file → `SENDTRACE_*` environment.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod kafka;
pub mod shutdown;
pub mod telemetry;
