//! The one wall clock of the services: UTC milliseconds since the Unix epoch (event and
//! manifest times, received-at stamps, dead-letter times).

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
