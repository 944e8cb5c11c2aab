//! Everything the aggregator says to ClickHouse, in one place, at the edge of the domain:
//! * `rows`: one struct per table;
//! * `text`: their text columns, borrowed from a batch's events or shared with the interned names;
//! * `rowbinary`: the bytes every insert sends, written by us (straight from a batch, or
//!   any row struct through serde), in per-table buffers reused across batches;
//! * `write`: inserts of those bytes with the batch's deduplication token (`SinkError`);
//! * `queries`: every read (stored deliveries, event rows, suppressions, soft-bounce history,
//!   offset manifests, sender-health flags and counts);
//! * `failure`: transient vs permanent errors, by exception code;
//! * `retry`: waiting out an unavailable ClickHouse.
//!
//! The domain modules compute rows and decide (`offsets::cursor_of`, `sender_health::evaluate`);
//! this module moves them.

pub mod failure;
pub mod queries;
pub mod retry;
pub mod rowbinary;
pub mod rows;
pub mod text;
pub mod write;

#[cfg(test)]
mod mock_tests;

pub use queries::*;
pub use rowbinary::RowBuffer;
pub use rows::*;
pub use text::Text;
pub use write::*;
