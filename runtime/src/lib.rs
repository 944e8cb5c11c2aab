//! Plumbing shared by the services.
//!
//! # Layout
//! * `backoff`: the one retry wait (capped exponential, yields to shutdown).
//! * `batch`: the one batch reader over a consumer (max records, max bytes, linger, shutdown).
//! * `clock`: the one wall clock (`now_ms`).
//! * `kafka`: client settings, producers, consumers and topic creation.
//! * `shutdown`: SIGINT/SIGTERM → one cancellation token.
//! * `readiness`: named readiness conditions, the probes that set them, the `/readyz` answer.
//! * `telemetry`: tracing setup, the Prometheus recorder, `/metrics`, `/healthz` and `/readyz`.
//! * `consumer_lag`: consumer lag per partition on a timer, which is also the consumer's broker probe.
//! * `config`: loading a service config from file → `SENDTRACE_*` environment.
//! * `in_list`: `IN ?` lists of keys chunked to statements ClickHouse accepts.

pub mod backoff;
pub mod batch;
pub mod clock;
pub mod config;
pub mod consumer_lag;
pub mod in_list;
pub mod kafka;
pub mod readiness;
pub mod shutdown;
pub mod telemetry;
