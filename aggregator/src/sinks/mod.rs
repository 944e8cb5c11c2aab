//! Where aggregates go.

pub mod clickhouse;
