//! Every row the aggregator writes to or reads from ClickHouse, one struct per table (the
//! columns in the table's order); conversions from canonical events beside them. The
//! conversion between a delivery's state and its row lives with the state (`state/row.rs`).

use clickhouse::Row;
use schemas::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub tenant: String,
    pub channel: String,
    pub provider: String,
    pub provider_message_id: String,
    pub provider_event_id: Option<String>,
    pub provider_event_name: String,
    pub delivery_key: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub contact_id: Option<String>,
    pub template_key: Option<String>,
    pub message_class: String,
    pub labels: Vec<String>,
    pub metadata: String,
    pub event_type: String,
    pub bounce_class: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub time_source: String,
    pub click_url: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub cost_amount: i128,
    pub cost_unit: String,
    pub raw_topic: String,
    pub raw_partition: i32,
    pub raw_offset: i64,
    pub events_partition: i32,
    pub events_offset: i64,
    /// '' for people; else why it is a machine open/click (see `machine`).
    pub machine: String,
    /// 1 when written again because a later send record changed the delivery's attribution.
    pub reattributed: u8,
    /// Who reported it: `provider`, `send_record`, `app_event`.
    pub origin: String,
}

impl EventRow {
    pub fn from_event(e: &Event, partition: i32, offset: i64) -> Self {
        EventRow {
            event_id: e.event_id.clone(),
            tenant: e.tenant.clone(),
            channel: e.channel.as_str().into(),
            provider: e.provider.clone(),
            provider_message_id: e.provider_message_id.clone(),
            provider_event_id: e.provider_event_id.clone(),
            provider_event_name: e.provider_event_name.clone(),
            delivery_key: e.delivery_key.clone(),
            recipient: e.recipient.clone(),
            broadcast_id: e.broadcast_id.clone(),
            sequence_id: e.sequence_id.clone(),
            contact_id: e.contact_id.clone(),
            template_key: e.template_key.clone(),
            message_class: e.message_class.map(|m| m.as_str()).unwrap_or_default().into(),
            labels: e.labels.clone(),
            metadata: serde_json::to_string(&e.metadata).unwrap_or_else(|_| "{}".into()),
            event_type: e.event_type.as_str().into(),
            bounce_class: e.bounce_class.map(|b| b.as_str()).unwrap_or_default().into(),
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            time_source: e.time_source.as_str().into(),
            click_url: e.click_url.clone(),
            user_agent: e.user_agent.clone(),
            ip: e.ip.clone(),
            error_code: e.error_code.clone(),
            error_reason: e.error_reason.clone(),
            cost_amount: e.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0),
            cost_unit: e.cost.as_ref().map(|c| c.unit.clone()).unwrap_or_default(),
            raw_topic: e.raw_topic.clone(),
            raw_partition: e.raw_partition,
            raw_offset: e.raw_offset,
            events_partition: partition,
            events_offset: offset,
            machine: String::new(),
            reattributed: 0,
            origin: e.origin.as_str().into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub tenant: String,
    pub delivery_key: String,
    pub channel: String,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub broadcast_id: Option<String>,
    pub sequence_id: Option<String>,
    pub contact_id: Option<String>,
    pub template_key: Option<String>,
    pub message_class: String,
    pub labels: Vec<String>,
    pub status: String,
    pub status_at: i64,
    pub bounce_class: String,
    pub first_queued_at: Option<i64>,
    pub first_sent_at: Option<i64>,
    pub first_delivered_at: Option<i64>,
    pub last_delivered_at: Option<i64>,
    pub first_opened_at: Option<i64>,
    pub last_opened_at: Option<i64>,
    pub first_clicked_at: Option<i64>,
    pub last_clicked_at: Option<i64>,
    pub first_bounced_at: Option<i64>,
    pub first_complained_at: Option<i64>,
    pub first_failed_at: Option<i64>,
    pub first_unsubscribed_at: Option<i64>,
    pub first_read_at: Option<i64>,
    pub first_replied_at: Option<i64>,
    pub open_count: u32,
    pub click_count: u32,
    pub machine_open_count: u32,
    pub machine_click_count: u32,
    pub soft_bounce_count: u32,
    pub deferral_count: u32,
    pub event_count: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub cost_amount: i128,
    pub cost_unit: String,
    pub seen_event_hashes: Vec<u64>,
    /// The priorities the attribution values were chosen with (`DeliveryState::prio_bits`).
    pub attribution_prio: u16,
    pub version: u64,
    pub updated_at: i64,
}

/// Deliveries by first-known quarter hour and status (signed: a delivery whose status or
/// first known time changes moves from the old pair, -1, to the new one, +1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct StatusCountRow {
    pub tenant: String,
    /// UTC ms of the quarter hour.
    pub bucket: i64,
    pub status: String,
    pub deliveries: i64,
}

/// Removes a delivery from its old place in `delivery_order` (its first known time changed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct OrderTombstone {
    pub tenant: String,
    pub sort_at: i64,
    pub delivery_key: String,
    /// The batch's version: newer than the entry it removes.
    pub version: u64,
    pub is_deleted: u8,
}

/// A quarter hour (the bucket of `delivery_status_counts`).
pub const STATUS_BUCKET_MS: i64 = 900_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct CounterRow {
    pub tenant: String,
    pub period: String,
    /// Days since the epoch (ClickHouse `Date`).
    pub bucket_start: u16,
    pub channel: String,
    pub provider: String,
    pub event_type: String,
    pub bounce_class: String,
    pub cost_unit: String,
    pub machine: String,
    pub events: u64,
    pub cost_amount: i128,
}

/// `attributed_counters`: counts and cost by broadcast, sequence and template. Signed: when a
/// send record arrives after its delivery's provider events, those move from the old
/// attribution (-1) to the new one (+1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct AttributedCounterRow {
    pub tenant: String,
    pub period: String,
    /// Days since the epoch (ClickHouse `Date`).
    pub bucket_start: u16,
    pub broadcast_id: String,
    pub sequence_id: String,
    pub template_key: String,
    pub channel: String,
    pub provider: String,
    pub event_type: String,
    pub bounce_class: String,
    pub machine: String,
    pub cost_unit: String,
    pub events: i64,
    pub cost_amount: i128,
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct OffsetRow {
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub state: String,
    pub written_at: i64,
}

/// A sender's counts over the health window (`queries::sender_stats`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SenderStats {
    pub tenant: String,
    pub provider: String,
    pub sending_domain: String,
    pub sending_account: String,
    pub sent: u64,
    pub hard_bounces: u64,
    pub complaints: u64,
}
