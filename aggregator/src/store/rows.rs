//! Every row the aggregator writes to or reads from ClickHouse, one struct per table (the
//! columns in the table's order); conversions from canonical events beside them. The
//! conversion between a delivery's state and its row lives with the state (`state/row.rs`).
//!
//! The rows a batch writes are generic over their text type `T`: a batch builds them with
//! `Text<'a>`, borrowing from its events (no copy per row), and a row read back from
//! ClickHouse is the default, `Text<'static>`, holding its own. Both are the same columns and
//! bytes; `EventRow` alone names the owned row (what `load_events` reads, tests compare).
//! The largest tables are written without their structs (`write_event_row` here,
//! `state::row::write_delivery_row`, `counters::CounterTables`): the same bytes, which
//! `tests/batch_rows.rs` compares with the structs' serialized.

use super::text::Text;
use clickhouse::Row;
use schemas::EventRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow<T = Text<'static>> {
    pub event_id: T,
    pub tenant: T,
    pub channel: T,
    pub provider: T,
    pub provider_message_id: T,
    pub provider_event_id: Option<T>,
    pub provider_event_name: T,
    pub delivery_key: T,
    pub recipient: T,
    pub broadcast_id: Option<T>,
    pub sequence_id: Option<T>,
    pub contact_id: Option<T>,
    pub template_key: Option<T>,
    pub message_class: T,
    pub labels: Vec<T>,
    pub metadata: T,
    pub event_type: T,
    pub bounce_class: T,
    pub occurred_at: i64,
    pub received_at: i64,
    pub time_source: T,
    pub click_url: Option<T>,
    pub user_agent: Option<T>,
    pub ip: Option<T>,
    pub error_code: Option<T>,
    pub error_reason: Option<T>,
    pub cost_amount: i128,
    pub cost_unit: T,
    pub raw_topic: T,
    pub raw_partition: i32,
    pub raw_offset: i64,
    pub events_partition: i32,
    pub events_offset: i64,
    /// '' for people; else why it is a machine open/click (see `machine`).
    pub machine: T,
    /// 1 when written again because a later send record changed the delivery's attribution.
    pub reattributed: u8,
    /// Who reported it: `provider`, `send_record`, `app_event`.
    pub origin: T,
}

impl<T> EventRow<T> {
    /// The same row with each text column mapped by `f` (e.g. a batch's borrowed row into one
    /// holding its own, as `load_events` would read it back).
    pub fn map_text<U>(self, mut f: impl FnMut(T) -> U) -> EventRow<U> {
        EventRow {
            event_id: f(self.event_id),
            tenant: f(self.tenant),
            channel: f(self.channel),
            provider: f(self.provider),
            provider_message_id: f(self.provider_message_id),
            provider_event_id: self.provider_event_id.map(&mut f),
            provider_event_name: f(self.provider_event_name),
            delivery_key: f(self.delivery_key),
            recipient: f(self.recipient),
            broadcast_id: self.broadcast_id.map(&mut f),
            sequence_id: self.sequence_id.map(&mut f),
            contact_id: self.contact_id.map(&mut f),
            template_key: self.template_key.map(&mut f),
            message_class: f(self.message_class),
            labels: self.labels.into_iter().map(&mut f).collect(),
            metadata: f(self.metadata),
            event_type: f(self.event_type),
            bounce_class: f(self.bounce_class),
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            time_source: f(self.time_source),
            click_url: self.click_url.map(&mut f),
            user_agent: self.user_agent.map(&mut f),
            ip: self.ip.map(&mut f),
            error_code: self.error_code.map(&mut f),
            error_reason: self.error_reason.map(&mut f),
            cost_amount: self.cost_amount,
            cost_unit: f(self.cost_unit),
            raw_topic: f(self.raw_topic),
            raw_partition: self.raw_partition,
            raw_offset: self.raw_offset,
            events_partition: self.events_partition,
            events_offset: self.events_offset,
            machine: f(self.machine),
            reattributed: self.reattributed,
            origin: f(self.origin),
        }
    }
}

impl<'a> EventRow<Text<'a>> {
    /// The row of `e`, borrowing its strings. Attribution, `machine` and `reattributed` are the
    /// batch's to set (`batch::apply`); the metadata map is the one column written as JSON.
    pub fn from_event(e: &'a EventRef<'a>, partition: i32, offset: i64) -> Self {
        let b = |s: &&'a str| Text::Borrowed(s);
        let ob = |s: &Option<&'a str>| s.map(Text::Borrowed);
        EventRow {
            event_id: b(&e.event_id),
            tenant: b(&e.tenant),
            channel: Text::Borrowed(e.channel.as_str()),
            provider: b(&e.provider),
            provider_message_id: b(&e.provider_message_id),
            provider_event_id: ob(&e.provider_event_id),
            provider_event_name: b(&e.provider_event_name),
            delivery_key: b(&e.delivery_key),
            recipient: b(&e.recipient),
            broadcast_id: ob(&e.broadcast_id),
            sequence_id: ob(&e.sequence_id),
            contact_id: ob(&e.contact_id),
            template_key: ob(&e.template_key),
            message_class: Text::Borrowed(e.message_class.map(|m| m.as_str()).unwrap_or_default()),
            labels: e.labels.iter().map(b).collect(),
            metadata: if e.metadata.is_empty() { Text::Borrowed("{}") } else { Text::Owned(serde_json::to_string(&e.metadata).unwrap_or_else(|_| "{}".into())) },
            event_type: Text::Borrowed(e.event_type.as_str()),
            bounce_class: Text::Borrowed(e.bounce_class.map(|b| b.as_str()).unwrap_or_default()),
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            time_source: Text::Borrowed(e.time_source.as_str()),
            click_url: ob(&e.click_url),
            user_agent: ob(&e.user_agent),
            ip: ob(&e.ip),
            error_code: ob(&e.error_code),
            error_reason: ob(&e.error_reason),
            cost_amount: e.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0),
            cost_unit: Text::Borrowed(e.cost.as_ref().map(|c| c.unit.as_str()).unwrap_or_default()),
            raw_topic: b(&e.raw_topic),
            raw_partition: e.raw_partition,
            raw_offset: e.raw_offset,
            events_partition: partition,
            events_offset: offset,
            machine: Text::Borrowed(""),
            reattributed: 0,
            origin: Text::Borrowed(e.origin.as_str()),
        }
    }
}

/// A `String` column holding `value` as JSON, serialized straight into `b` (no string of its
/// own): after a one-byte length, moved along when the text turns out 128 bytes or longer.
fn put_json<T: Serialize + ?Sized>(b: &mut Vec<u8>, value: &T) {
    let at = b.len();
    b.push(0);
    if serde_json::to_writer(&mut *b, value).is_err() {
        // (a map of strings always serializes; kept as the row's "no metadata" in any case)
        b.truncate(at);
        return super::rowbinary::put_str(b, "{}");
    }
    let n = b.len() - at - 1;
    if n < 0x80 {
        b[at] = n as u8;
    } else {
        let mut len = Vec::new();
        super::rowbinary::leb128(&mut len, n as u64);
        b.splice(at..at + 1, len);
    }
}

/// The enum columns' words, encoded once (`rowbinary::Words`), by discriminant; a table for
/// an optional enum starts with `""`. The discriminants are the symbols' places
/// (`tests::the_words_are_the_enums_names`).
pub mod words {
    use crate::store::rowbinary::Words;
    use schemas::{BounceClass, Channel, EventType, MessageClass, Origin, TimeSource};

    pub static CHANNEL: Words<{ Channel::SYMBOLS.len() }> = Words::of(false, Channel::SYMBOLS);
    pub static EVENT_TYPE: Words<{ EventType::SYMBOLS.len() }> = Words::of(false, EventType::SYMBOLS);
    pub static TIME_SOURCE: Words<{ TimeSource::SYMBOLS.len() }> = Words::of(false, TimeSource::SYMBOLS);
    pub static ORIGIN: Words<{ Origin::SYMBOLS.len() }> = Words::of(false, Origin::SYMBOLS);
    pub static BOUNCE_CLASS: Words<{ BounceClass::SYMBOLS.len() + 1 }> = Words::of(true, BounceClass::SYMBOLS);
    pub static MESSAGE_CLASS: Words<{ MessageClass::SYMBOLS.len() + 1 }> = Words::of(true, MessageClass::SYMBOLS);

    /// An optional enum's entry: `""` for none, else after it.
    #[inline(always)]
    pub fn opt(i: Option<usize>) -> usize {
        i.map_or(0, |i| i + 1)
    }
}

/// Appends the `RowBinary` of `EventRow::from_event(e, partition, offset)` with `machine` and
/// the attribution (broadcast, sequence, template) set, without building the row: the bytes
/// `rowbinary::write` gives for that row (`tests/batch_rows.rs` compares them).
pub fn write_event_row(b: &mut Vec<u8>, e: &EventRef<'_>, partition: i32, offset: i64, machine: &str, [broadcast, sequence, template]: [Option<&str>; 3]) {
    use super::rowbinary::Room;
    let mut b = super::rowbinary::Cursor::new(b);
    // (in two rooms, each one test of the capacity: the labels and metadata between them are as
    // many as the event has)
    let mut r = b.room_for(7 * Room::STR + 2 * Room::WORD + 5 * Room::OPT_STR + Room::LEB128);
    r.str(e.event_id);
    r.str(e.tenant);
    r.word(words::CHANNEL.get(e.channel as usize));
    r.str(e.provider);
    r.str(e.provider_message_id);
    r.opt_str(e.provider_event_id);
    r.str(e.provider_event_name);
    r.str(e.delivery_key);
    r.str(e.recipient);
    r.opt_str(broadcast);
    r.opt_str(sequence);
    r.opt_str(e.contact_id);
    r.opt_str(template);
    r.word(words::MESSAGE_CLASS.get(words::opt(e.message_class.map(|m| m as usize))));
    r.leb128(e.labels.len() as u64);
    for l in &e.labels {
        b.str(l);
    }
    if e.metadata.is_empty() {
        b.str("{}");
    } else {
        b.with_vec(|v| put_json(v, &e.metadata));
    }
    let mut r = b.room_for(4 * Room::WORD + 5 * Room::OPT_STR + 3 * Room::STR + 8 + 8 + 16 + 4 + 8 + 4 + 8 + 1);
    r.word(words::EVENT_TYPE.get(e.event_type as usize));
    r.word(words::BOUNCE_CLASS.get(words::opt(e.bounce_class.map(|x| x as usize))));
    r.put(e.occurred_at.to_le_bytes());
    r.put(e.received_at.to_le_bytes());
    r.word(words::TIME_SOURCE.get(e.time_source as usize));
    r.opt_str(e.click_url);
    r.opt_str(e.user_agent);
    r.opt_str(e.ip);
    r.opt_str(e.error_code);
    r.opt_str(e.error_reason);
    r.put(e.cost.as_ref().map(|c| c.mantissa_at_scale()).unwrap_or(0).to_le_bytes());
    r.str(e.cost.as_ref().map(|c| c.unit.as_str()).unwrap_or_default());
    r.str(e.raw_topic);
    r.put(e.raw_partition.to_le_bytes());
    r.put(e.raw_offset.to_le_bytes());
    r.put(partition.to_le_bytes());
    r.put(offset.to_le_bytes());
    r.str(machine);
    r.byte(0); // reattributed
    r.word(words::ORIGIN.get(e.origin as usize));
}

impl EventRow {
    /// The next row of `r`, as `write_event_row` or `rowbinary::write` wrote it (`recent` keeps
    /// rows as these bytes, a third of the row structs' memory); `None` past the end.
    pub fn read_rowbinary(r: &mut super::rowbinary::Reader<'_>) -> Option<EventRow> {
        let s = |r: &mut super::rowbinary::Reader<'_>| r.str().map(|s| Text::Owned(s.to_string()));
        let o = |r: &mut super::rowbinary::Reader<'_>| r.opt_str().map(|o| o.map(|s| Text::Owned(s.to_string())));
        // (a struct expression's fields are evaluated in the order written: the columns' order)
        Some(EventRow {
            event_id: s(r)?,
            tenant: s(r)?,
            channel: s(r)?,
            provider: s(r)?,
            provider_message_id: s(r)?,
            provider_event_id: o(r)?,
            provider_event_name: s(r)?,
            delivery_key: s(r)?,
            recipient: s(r)?,
            broadcast_id: o(r)?,
            sequence_id: o(r)?,
            contact_id: o(r)?,
            template_key: o(r)?,
            message_class: s(r)?,
            labels: {
                let n = r.array_len()?;
                (0..n).map(|_| s(r)).collect::<Option<Vec<_>>>()?
            },
            metadata: s(r)?,
            event_type: s(r)?,
            bounce_class: s(r)?,
            occurred_at: i64::from_le_bytes(r.le()?),
            received_at: i64::from_le_bytes(r.le()?),
            time_source: s(r)?,
            click_url: o(r)?,
            user_agent: o(r)?,
            ip: o(r)?,
            error_code: o(r)?,
            error_reason: o(r)?,
            cost_amount: i128::from_le_bytes(r.le()?),
            cost_unit: s(r)?,
            raw_topic: s(r)?,
            raw_partition: i32::from_le_bytes(r.le()?),
            raw_offset: i64::from_le_bytes(r.le()?),
            events_partition: i32::from_le_bytes(r.le()?),
            events_offset: i64::from_le_bytes(r.le()?),
            machine: s(r)?,
            reattributed: u8::from_le_bytes(r.le()?),
            origin: s(r)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct DeliveryRow<T = Text<'static>> {
    pub tenant: T,
    pub delivery_key: T,
    pub channel: T,
    pub provider: T,
    pub provider_message_id: T,
    pub recipient: T,
    pub broadcast_id: Option<T>,
    pub sequence_id: Option<T>,
    pub contact_id: Option<T>,
    pub template_key: Option<T>,
    pub message_class: T,
    pub labels: Vec<T>,
    pub status: T,
    pub status_at: i64,
    pub bounce_class: T,
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
    pub last_error: Option<T>,
    pub last_error_at: Option<i64>,
    pub cost_amount: i128,
    pub cost_unit: T,
    pub seen_event_hashes: Vec<u64>,
    /// The priorities the attribution values were chosen with (`DeliveryState::prio_bits`).
    pub attribution_prio: u16,
    pub version: u64,
    pub updated_at: i64,
}

impl<T> DeliveryRow<T> {
    /// The same row with each text column mapped by `f` (e.g. into one holding its own).
    pub fn map_text<U>(self, mut f: impl FnMut(T) -> U) -> DeliveryRow<U> {
        DeliveryRow {
            tenant: f(self.tenant),
            delivery_key: f(self.delivery_key),
            channel: f(self.channel),
            provider: f(self.provider),
            provider_message_id: f(self.provider_message_id),
            recipient: f(self.recipient),
            broadcast_id: self.broadcast_id.map(&mut f),
            sequence_id: self.sequence_id.map(&mut f),
            contact_id: self.contact_id.map(&mut f),
            template_key: self.template_key.map(&mut f),
            message_class: f(self.message_class),
            labels: self.labels.into_iter().map(&mut f).collect(),
            status: f(self.status),
            status_at: self.status_at,
            bounce_class: f(self.bounce_class),
            first_queued_at: self.first_queued_at,
            first_sent_at: self.first_sent_at,
            first_delivered_at: self.first_delivered_at,
            last_delivered_at: self.last_delivered_at,
            first_opened_at: self.first_opened_at,
            last_opened_at: self.last_opened_at,
            first_clicked_at: self.first_clicked_at,
            last_clicked_at: self.last_clicked_at,
            first_bounced_at: self.first_bounced_at,
            first_complained_at: self.first_complained_at,
            first_failed_at: self.first_failed_at,
            first_unsubscribed_at: self.first_unsubscribed_at,
            first_read_at: self.first_read_at,
            first_replied_at: self.first_replied_at,
            open_count: self.open_count,
            click_count: self.click_count,
            machine_open_count: self.machine_open_count,
            machine_click_count: self.machine_click_count,
            soft_bounce_count: self.soft_bounce_count,
            deferral_count: self.deferral_count,
            event_count: self.event_count,
            last_error: self.last_error.map(&mut f),
            last_error_at: self.last_error_at,
            cost_amount: self.cost_amount,
            cost_unit: f(self.cost_unit),
            seen_event_hashes: self.seen_event_hashes,
            attribution_prio: self.attribution_prio,
            version: self.version,
            updated_at: self.updated_at,
        }
    }
}

/// Deliveries by first-known quarter hour and status (signed: a delivery whose status or
/// first known time changes moves from the old pair, -1, to the new one, +1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct StatusCountRow<T = Text<'static>> {
    pub tenant: T,
    /// UTC ms of the quarter hour.
    pub bucket: i64,
    pub status: T,
    pub deliveries: i64,
}

/// Removes a delivery from its old place in `delivery_order` (its first known time changed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct OrderTombstone<T = Text<'static>> {
    pub tenant: T,
    pub sort_at: i64,
    pub delivery_key: T,
    /// The batch's version: newer than the entry it removes.
    pub version: u64,
    pub is_deleted: u8,
}

/// A quarter hour (the bucket of `delivery_status_counts`).
pub const STATUS_BUCKET_MS: i64 = 900_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct CounterRow<T = Text<'static>> {
    pub tenant: T,
    pub period: T,
    /// Days since the epoch (ClickHouse `Date`).
    pub bucket_start: u16,
    pub channel: T,
    pub provider: T,
    pub event_type: T,
    pub bounce_class: T,
    pub cost_unit: T,
    pub machine: T,
    pub events: u64,
    pub cost_amount: i128,
}

/// `attributed_counters`: counts and cost by broadcast, sequence and template. Signed: when a
/// send record arrives after its delivery's provider events, those move from the old
/// attribution (-1) to the new one (+1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Serialize, Deserialize)]
pub struct AttributedCounterRow<T = Text<'static>> {
    pub tenant: T,
    pub period: T,
    /// Days since the epoch (ClickHouse `Date`).
    pub bucket_start: u16,
    pub broadcast_id: T,
    pub sequence_id: T,
    pub template_key: T,
    pub channel: T,
    pub provider: T,
    pub event_type: T,
    pub bounce_class: T,
    pub machine: T,
    pub cost_unit: T,
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

/// A writer's claim on a partition (`aggregator_claims`, `offsets::claim`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ClaimRow {
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub epoch: u64,
    pub writer: String,
    pub claimed_at: i64,
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

#[cfg(test)]
mod tests {
    use crate::store::rowbinary::{put_str, Words};

    /// Each table's entry for each value is `put_str` of its name, at the value's discriminant
    /// (after `""` for an optional enum's): the words written are the names.
    #[test]
    fn the_words_are_the_enums_names() {
        fn check<const N: usize, T: Copy>(table: &Words<N>, values: &[T], index: impl Fn(Option<T>) -> usize, name: impl Fn(T) -> &'static str, optional: bool) {
            let entry = |i: usize| {
                let w = table.get(i);
                w[..1 + usize::from(w[0])].to_vec()
            };
            let encoded = |s: &str| {
                let mut b = Vec::new();
                put_str(&mut b, s);
                b
            };
            assert_eq!(N, values.len() + usize::from(optional));
            for v in values {
                assert_eq!(entry(index(Some(*v))), encoded(name(*v)));
            }
            if optional {
                assert_eq!(entry(index(None)), encoded(""));
            }
        }
        use schemas::{BounceClass, Channel, EventType, MessageClass, Origin, TimeSource};
        check(&words::CHANNEL, Channel::VALUES, |v| v.map_or(99, |v| v as usize), Channel::as_str, false);
        check(&words::EVENT_TYPE, EventType::VALUES, |v| v.map_or(99, |v| v as usize), EventType::as_str, false);
        check(&words::TIME_SOURCE, TimeSource::VALUES, |v| v.map_or(99, |v| v as usize), TimeSource::as_str, false);
        check(&words::ORIGIN, Origin::VALUES, |v| v.map_or(99, |v| v as usize), Origin::as_str, false);
        check(&words::BOUNCE_CLASS, BounceClass::VALUES, |v| words::opt(v.map(|v| v as usize)), BounceClass::as_str, true);
        check(&words::MESSAGE_CLASS, MessageClass::VALUES, |v| words::opt(v.map(|v| v as usize)), MessageClass::as_str, true);
    }

    use super::*;

    proptest::proptest! {
        /// Metadata of any size, around the one-byte length (127/128 bytes of JSON) and past
        /// it, with characters JSON escapes: the bytes `put_str` writes for the JSON string.
        #[test]
        fn json_is_written_as_its_string(
            before in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
            map in proptest::collection::btree_map("[a-z\\\\\"é\n]{0,12}", "[ -~é\u{1}]{0,60}", 0..6),
        ) {
            let mut want = before.clone();
            super::super::rowbinary::put_str(&mut want, &serde_json::to_string(&map).unwrap());
            let mut got = before;
            put_json(&mut got, &map);
            proptest::prop_assert_eq!(got, want);
        }
    }
}
