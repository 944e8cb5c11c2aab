//! ClickHouse rows and writes. Every write of a batch carries an
//! `insert_deduplication_token` derived from the batch's offsets, so a batch
//! written again after a crash is ignored by ClickHouse instead of counted twice.

use crate::state::{DeliveryState, Names, Slot};
use clickhouse::{Client, Row};
use schemas::{Event, EventType};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

impl SinkError {
    pub fn code(&self) -> &'static str {
        "clickhouse"
    }
}

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
    pub version: u64,
    pub updated_at: i64,
}

/// Attribution priority recorded in ClickHouse is not kept; a reloaded value counts as a send record's
/// only if the delivery has a `queued` event (send records are the only source of `queued`).
fn reloaded_prio(row: &DeliveryRow) -> u8 {
    if row.first_queued_at.is_some() {
        2
    } else {
        1
    }
}

impl DeliveryRow {
    /// The row of a delivery: identity from `identity` (any event of it: the delivery key is
    /// a hash of tenant, provider, message id and recipient), the rest from the state.
    pub fn from_state(identity: &Event, s: &DeliveryState, names: &Names, version: u64, now_ms: i64) -> Self {
        let status = s.status.unwrap_or(EventType::Unknown);
        DeliveryRow {
            tenant: identity.tenant.clone(),
            delivery_key: identity.delivery_key.clone(),
            channel: s.channel.as_str().into(),
            provider: identity.provider.clone(),
            provider_message_id: identity.provider_message_id.clone(),
            recipient: identity.recipient.to_ascii_lowercase(),
            broadcast_id: names.value(s.broadcast_id),
            sequence_id: names.value(s.sequence_id),
            contact_id: s.ids.contact().map(str::to_string),
            template_key: names.value(s.template_key),
            message_class: s.message_class.map(|m| m.as_str()).unwrap_or_default().into(),
            labels: names.labels(s.labels),
            status: s.status.map(|x| x.as_str()).unwrap_or("unknown").into(),
            status_at: s.first(status).unwrap_or_default(),
            bounce_class: s.bounce_class.map(|b| b.as_str()).unwrap_or_default().into(),
            first_queued_at: s.time(Slot::FirstQueued),
            first_sent_at: s.time(Slot::FirstSent),
            first_delivered_at: s.time(Slot::FirstDelivered),
            last_delivered_at: s.time(Slot::LastDelivered),
            first_opened_at: s.time(Slot::FirstOpened),
            last_opened_at: s.time(Slot::LastOpened),
            first_clicked_at: s.time(Slot::FirstClicked),
            last_clicked_at: s.time(Slot::LastClicked),
            first_bounced_at: s.time(Slot::FirstBounced),
            first_complained_at: s.time(Slot::FirstComplained),
            first_failed_at: s.time(Slot::FirstFailed),
            first_unsubscribed_at: s.time(Slot::FirstUnsubscribed),
            first_read_at: s.time(Slot::FirstRead),
            first_replied_at: s.time(Slot::FirstReplied),
            open_count: s.open_count,
            click_count: s.click_count,
            machine_open_count: s.machine_open_count,
            machine_click_count: s.machine_click_count,
            soft_bounce_count: s.soft_bounce_count,
            deferral_count: s.deferral_count,
            event_count: s.event_count(),
            last_error: s.last_error().map(|(_, r)| r.to_string()),
            last_error_at: s.last_error().map(|(t, _)| t),
            cost_amount: s.cost_amount(),
            cost_unit: names.get(s.cost_unit).to_string(),
            seen_event_hashes: s.ids.to_vec(),
            version,
            updated_at: now_ms,
        }
    }

    /// Rebuilds the in-memory state from a stored row (identity is not held in memory;
    /// the events of the next batch carry it).
    pub fn into_state(self, names: &mut Names) -> DeliveryState {
        use crate::state::Attr;
        let prio = reloaded_prio(&self);
        let mut s = DeliveryState::new(schemas::Channel::parse(&self.channel).unwrap_or(schemas::Channel::Email));
        let mut attr = |s: &mut DeliveryState, a: Attr, v: Option<&str>| -> u32 {
            match v.filter(|v| !v.is_empty()) {
                Some(v) => {
                    s.set_prio(a, prio);
                    names.id(v)
                }
                None => 0,
            }
        };
        s.broadcast_id = attr(&mut s, Attr::Broadcast, self.broadcast_id.as_deref());
        s.sequence_id = attr(&mut s, Attr::Sequence, self.sequence_id.as_deref());
        s.template_key = attr(&mut s, Attr::Template, self.template_key.as_deref());
        if self.contact_id.as_deref().is_some_and(|c| !c.is_empty()) {
            s.set_prio(Attr::Contact, prio);
        }
        if let Some(m) = schemas::MessageClass::parse(&self.message_class) {
            s.set_prio(Attr::MessageClass, prio);
            s.message_class = Some(m);
        }
        s.labels = names.add_labels(0, &self.labels);
        s.status = EventType::parse(&self.status).filter(|s| *s != EventType::Unknown);
        s.bounce_class = schemas::BounceClass::parse(&self.bounce_class);
        s.open_count = self.open_count;
        s.click_count = self.click_count;
        s.machine_open_count = self.machine_open_count;
        s.machine_click_count = self.machine_click_count;
        s.soft_bounce_count = self.soft_bounce_count;
        s.deferral_count = self.deferral_count;
        s.set_last_error(self.last_error.zip(self.last_error_at).map(|(r, t)| (t, r)));
        if !self.cost_unit.is_empty() {
            s.cost_unit = names.id(&self.cost_unit);
            s.set_cost_amount(self.cost_amount);
        }
        s.ids = crate::state::Ids::from_stored(self.contact_id.as_deref(), self.seen_event_hashes);
        for (slot, t) in [
            (Slot::FirstQueued, self.first_queued_at),
            (Slot::FirstSent, self.first_sent_at),
            (Slot::FirstDelivered, self.first_delivered_at),
            (Slot::LastDelivered, self.last_delivered_at.or(self.first_delivered_at)),
            (Slot::FirstOpened, self.first_opened_at),
            (Slot::LastOpened, self.last_opened_at.or(self.first_opened_at)),
            (Slot::FirstClicked, self.first_clicked_at),
            (Slot::LastClicked, self.last_clicked_at.or(self.first_clicked_at)),
            (Slot::FirstRead, self.first_read_at),
            (Slot::FirstBounced, self.first_bounced_at),
            (Slot::FirstComplained, self.first_complained_at),
            (Slot::FirstFailed, self.first_failed_at),
            (Slot::FirstUnsubscribed, self.first_unsubscribed_at),
            (Slot::FirstReplied, self.first_replied_at),
        ] {
            s.set_time(slot, t);
        }
        s
    }
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

impl DeliveryRow {
    /// The delivery's first known time: the earliest of its status, queued, sent, delivered,
    /// bounced and failed times (the order of the API's message list).
    pub fn first_seen(&self) -> i64 {
        [self.first_queued_at, self.first_sent_at, self.first_delivered_at, self.first_bounced_at, self.first_failed_at].into_iter().flatten().fold(self.status_at, i64::min)
    }

}

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

/// Inserts `rows` into `table` as one INSERT with a dedup token. Nothing is sent for no rows.
pub async fn insert_rows<T>(client: &Client, table: &str, token: &str, rows: &[T]) -> Result<(), SinkError>
where
    T: Row + Serialize + clickhouse::RowWrite,
    for<'a> T: clickhouse::Row<Value<'a> = T>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let client = client.clone().with_option("insert_deduplication_token", token);
    let mut insert = client.insert::<T>(table).await?;
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await?;
    Ok(())
}

/// Most keys in one `IN ?` list.
pub const MAX_IN_LIST_KEYS: usize = 1000;
/// Most bytes one `IN ?` list may take in the statement, counting each key as if every byte
/// were escaped, plus quotes and comma. ClickHouse refuses statements over `max_query_size`
/// (256 KiB by default; a permanent `SYNTAX_ERROR`), so a batch's keys are sent in chunks of
/// at most this size. Keys themselves are bounded before they enter a batch (`admission`).
pub const MAX_IN_LIST_BYTES: usize = 64 * 1024;

/// `keys` in consecutive chunks of at most `max_keys` keys and `max_bytes` bytes (worst-case
/// escaped; a single longer key forms a chunk of its own).
pub fn in_list_chunks<S: AsRef<str>>(keys: &[S], max_keys: usize, max_bytes: usize) -> Vec<&[S]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, k) in keys.iter().enumerate() {
        let cost = k.as_ref().len().saturating_mul(2).saturating_add(3);
        if i > start && (i - start >= max_keys.max(1) || bytes.saturating_add(cost) > max_bytes) {
            out.extend(keys.get(start..i));
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(cost);
    }
    if start < keys.len() {
        out.extend(keys.get(start..));
    }
    out
}

fn chunks<S: AsRef<str>>(keys: &[S]) -> Vec<&[S]> {
    in_list_chunks(keys, MAX_IN_LIST_KEYS, MAX_IN_LIST_BYTES)
}

/// Reads the stored state of `keys` (FINAL: the latest version of each).
pub async fn load_deliveries(client: &Client, keys: &[String]) -> Result<Vec<DeliveryRow>, SinkError> {
    let mut out = Vec::new();
    for chunk in chunks(keys) {
        out.extend(client.query("SELECT ?fields FROM deliveries FINAL WHERE delivery_key IN ?").bind(chunk).fetch_all::<DeliveryRow>().await?);
    }
    Ok(out)
}

/// The stored event rows of `keys` (FINAL: one per event id), by delivery key.
pub async fn load_events(client: &Client, keys: &[String]) -> Result<std::collections::HashMap<String, Vec<EventRow>>, SinkError> {
    let mut out: std::collections::HashMap<String, Vec<EventRow>> = Default::default();
    for chunk in chunks(keys) {
        let rows = client.query("SELECT ?fields FROM events FINAL WHERE delivery_key IN ?").bind(chunk).fetch_all::<EventRow>().await?;
        for r in rows {
            out.entry(r.delivery_key.clone()).or_default().push(r);
        }
    }
    Ok(out)
}

/// The current (strongest) suppression entries of `addresses` of `tenant`.
pub async fn load_suppressions(client: &Client, tenant: &str, addresses: &[String]) -> Result<Vec<crate::suppression::SuppressionRow>, SinkError> {
    let mut out = Vec::new();
    for chunk in chunks(addresses) {
        out.extend(
            client
                .query("SELECT ?fields FROM suppressions FINAL WHERE tenant = ? AND address IN ?")
                .bind(tenant)
                .bind(chunk)
                .fetch_all::<crate::suppression::SuppressionRow>()
                .await?,
        );
    }
    Ok(out)
}

#[derive(Debug, Row, Deserialize)]
struct SoftBounceTimes {
    address: String,
    times: Vec<i64>,
}

/// Every stored soft email bounce time per address (lower-case) of `tenant` among `addresses`.
pub async fn soft_bounce_history(
    client: &Client,
    tenant: &str,
    addresses: &[String],
) -> Result<std::collections::HashMap<String, Vec<i64>>, SinkError> {
    let mut out = std::collections::HashMap::new();
    for chunk in chunks(addresses) {
        let rows = client
            .query(
                "SELECT lower(recipient) AS address, groupArray(toUnixTimestamp64Milli(occurred_at)) AS times \
                 FROM events FINAL WHERE tenant = ? AND channel = 'email' AND event_type = 'bounced' \
                 AND bounce_class = 'soft' AND lower(recipient) IN ? GROUP BY address",
            )
            .bind(tenant)
            .bind(chunk)
            .fetch_all::<SoftBounceTimes>()
            .await?;
        out.extend(rows.into_iter().map(|r| (r.address, r.times)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_chunked_by_count_and_bytes() {
        let keys: Vec<String> = (0..2500).map(|i| format!("{i:0>300}@example.com")).collect();
        let chunks = in_list_chunks(&keys, MAX_IN_LIST_KEYS, MAX_IN_LIST_BYTES);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), keys.len(), "every key once");
        assert_eq!(chunks.concat(), keys, "in order");
        for c in &chunks {
            let worst: usize = c.iter().map(|k| 2 * k.len() + 3).sum();
            assert!(c.len() <= MAX_IN_LIST_KEYS && worst <= MAX_IN_LIST_BYTES, "{} keys, {worst} bytes", c.len());
        }
        let short: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        assert_eq!(in_list_chunks(&short, 1000, MAX_IN_LIST_BYTES).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        // a key longer than the budget still goes, alone
        let long = vec!["a".to_string(), "b".repeat(100), "c".to_string()];
        assert_eq!(in_list_chunks(&long, 10, 50).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(in_list_chunks::<String>(&[], 10, 50).is_empty(), "no keys, no query");
    }
}
