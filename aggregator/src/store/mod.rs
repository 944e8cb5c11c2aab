//! Everything the aggregator says to ClickHouse, in one place, at the edge of the domain:
//! * `rows`: one struct per table;
//! * `write`: inserts with the batch's deduplication token (`SinkError`);
//! * `queries`: reads (stored deliveries, event rows, suppressions, soft-bounce history);
//! * `failure`: transient vs permanent errors, by exception code;
//! * `retry`: waiting out an unavailable ClickHouse.
//!
//! (Manifests are in `offsets`, sender-health SQL in `sender_health`; the domain modules
//! compute rows, this module moves them.)

pub mod failure;
pub mod queries;
pub mod retry;
pub mod rows;
pub mod write;

pub use queries::*;
pub use rows::*;
pub use write::*;
