//! Where aggregates go.

pub mod clickhouse;
pub mod retry;
