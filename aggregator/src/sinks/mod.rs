//! Where aggregates go.

pub mod clickhouse;
pub mod failure;
pub mod retry;
