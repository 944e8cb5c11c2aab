//! A delivery's state ↔ its `deliveries` row (written after each batch, read back when a
//! delivery is not in memory).

use super::{DeliveryState, Names, Slot};
use crate::store::rows::DeliveryRow;
use crate::store::Text;
use schemas::{EventRef, EventType};

/// For rows written before `attribution_prio` existed (0): a reloaded value counts as a send
/// record's only if the delivery has a `queued` event (send records are the only source of `queued`).
fn legacy_prio(row: &DeliveryRow<Text<'_>>) -> u8 {
    if row.first_queued_at.is_some() {
        2
    } else {
        1
    }
}

/// `s` in ASCII lower case, borrowed when it already is (as recipients usually are; checked
/// a word at a time, `schemas::ascii::has_uppercase`: a byte at a time it was ~12 % of writing
/// a delivery row, then ~94 instructions a row with its tail byte by byte; BENCHMARKS.md §1b).
pub fn lowercase(s: &str) -> Text<'_> {
    if schemas::ascii::has_uppercase(s.as_bytes()) {
        Text::Owned(s.to_ascii_lowercase())
    } else {
        Text::Borrowed(s)
    }
}

impl<'a> DeliveryRow<Text<'a>> {
    /// The row of a delivery: identity from `identity` (any event of it: the delivery key is
    /// a hash of tenant, provider, message id and recipient, borrowed from it), the rest from
    /// the state (names shared with `names`).
    pub fn from_state(identity: &'a EventRef<'a>, s: &DeliveryState, names: &Names, version: u64, now_ms: i64) -> Self {
        let status = s.status.unwrap_or(EventType::Unknown);
        DeliveryRow {
            tenant: Text::Borrowed(identity.tenant),
            delivery_key: Text::Borrowed(identity.delivery_key),
            channel: Text::Borrowed(s.channel.as_str()),
            provider: Text::Borrowed(identity.provider),
            provider_message_id: Text::Borrowed(identity.provider_message_id),
            recipient: lowercase(identity.recipient),
            broadcast_id: names.value(s.broadcast_id),
            sequence_id: names.value(s.sequence_id),
            contact_id: s.ids.contact().map(|c| Text::Owned(c.to_string())),
            template_key: names.value(s.template_key),
            message_class: Text::Borrowed(s.message_class.map(|m| m.as_str()).unwrap_or_default()),
            labels: names.labels(s.labels),
            status: Text::Borrowed(s.status.map(|x| x.as_str()).unwrap_or("unknown")),
            status_at: s.first(status).unwrap_or_default(),
            bounce_class: Text::Borrowed(s.bounce_class.map(|b| b.as_str()).unwrap_or_default()),
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
            last_error: s.last_error().map(|(_, r)| Text::Owned(r.to_string())),
            last_error_at: s.last_error().map(|(t, _)| t),
            cost_amount: s.cost_amount(),
            cost_unit: names.text(s.cost_unit),
            seen_event_hashes: s.ids.to_vec(),
            attribution_prio: s.prio_bits(),
            version,
            updated_at: now_ms,
        }
    }
}

/// Appends the `RowBinary` of `DeliveryRow::from_state(identity, s, names, version, now_ms)`
/// without building the row (no label, hash or error vectors; BENCHMARKS.md §1b):
/// `tests/batch_rows.rs` compares the bytes with the row's.
pub fn write_delivery_row(b: &mut Vec<u8>, identity: &EventRef<'_>, s: &DeliveryState, names: &Names, version: u64, now_ms: i64) {
    use crate::store::rowbinary::Room;
    use crate::store::words;
    let mut b = crate::store::rowbinary::Cursor::new(b);
    let status = s.status.unwrap_or(EventType::Unknown);
    let name = |id: u32| (id != 0).then(|| names.get(id));
    // (in three rooms, each one test of the capacity: the labels and the ids' hashes between
    // them are as many as the delivery has)
    let mut r = b.room_for(5 * Room::STR + 2 * Room::WORD + 4 * Room::OPT_STR + Room::LEB128);
    r.str(identity.tenant);
    r.str(identity.delivery_key);
    r.word(words::CHANNEL.get(s.channel as usize));
    r.str(identity.provider);
    r.str(identity.provider_message_id);
    r.str(&lowercase(identity.recipient));
    r.opt_str(name(s.broadcast_id));
    r.opt_str(name(s.sequence_id));
    r.opt_str(s.ids.contact());
    r.opt_str(name(s.template_key));
    r.word(words::MESSAGE_CLASS.get(words::opt(s.message_class.map(|m| m as usize))));
    let labels = names.label_texts(s.labels);
    r.leb128(labels.len() as u64);
    for l in labels {
        b.str(l);
    }
    const SLOTS: [Slot; 14] = [
        Slot::FirstQueued,
        Slot::FirstSent,
        Slot::FirstDelivered,
        Slot::LastDelivered,
        Slot::FirstOpened,
        Slot::LastOpened,
        Slot::FirstClicked,
        Slot::LastClicked,
        Slot::FirstBounced,
        Slot::FirstComplained,
        Slot::FirstFailed,
        Slot::FirstUnsubscribed,
        Slot::FirstRead,
        Slot::FirstReplied,
    ];
    let counts = [s.open_count, s.click_count, s.machine_open_count, s.machine_click_count, s.soft_bounce_count, s.deferral_count, s.event_count()];
    let mut r = b.room_for(2 * Room::WORD + 8 + SLOTS.len() * Room::OPT_I64 + 4 * counts.len() + Room::OPT_STR + Room::OPT_I64 + 16 + Room::STR + Room::LEB128);
    r.word(words::EVENT_TYPE.get(status as usize));
    r.put(s.first(status).unwrap_or_default().to_le_bytes());
    r.word(words::BOUNCE_CLASS.get(words::opt(s.bounce_class.map(|x| x as usize))));
    let times = s.all_times();
    for slot in SLOTS {
        r.opt_i64(times.get(slot as usize).copied().flatten());
    }
    for n in counts {
        r.put(n.to_le_bytes());
    }
    r.opt_str(s.last_error().map(|(_, r)| r));
    r.opt_i64(s.last_error().map(|(t, _)| t));
    r.put(s.cost_amount().to_le_bytes());
    r.str(names.get(s.cost_unit));
    let hashes = s.ids.hashes();
    r.leb128(hashes.len() as u64);
    let mut r = b.room_for(8 * hashes.len() + 2 + 8 + 8);
    for h in hashes {
        r.put(h.to_le_bytes());
    }
    r.put(s.prio_bits().to_le_bytes());
    r.put(version.to_le_bytes());
    r.put(now_ms.to_le_bytes());
}

impl DeliveryRow<Text<'_>> {

    /// Rebuilds the in-memory state from a stored row (identity is not held in memory;
    /// the events of the next batch carry it).
    pub fn into_state(self, names: &mut Names) -> DeliveryState {
        use crate::state::Attr;
        let prio = legacy_prio(&self);
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
        if self.attribution_prio != 0 {
            // Written with the priorities: restore them exactly.
            s.set_prio_bits(self.attribution_prio);
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
        s.set_last_error(self.last_error.zip(self.last_error_at).map(|(r, t)| (t, r.to_string())));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_borrows_what_already_is() {
        assert!(matches!(lowercase("ann@example.com"), Text::Borrowed(_)));
        assert_eq!(&*lowercase("ann.Lee@Example.com"), "ann.lee@example.com");
        assert_eq!(&*lowercase("@[`{AZ"), "@[`{az");
        assert!(matches!(lowercase("@[`{ÄÖ-ü-0123456789"), Text::Borrowed(_)), "non-ASCII letters are kept");
    }
}
