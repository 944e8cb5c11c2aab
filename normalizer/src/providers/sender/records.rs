//! `POST /v1/sends/{tenant}`: the sender's send records, one `queued` event each.
//! Published schema: `schemas/json/send_records.schema.json`.

use super::items::{self, Attrs, CostIn, Item};
use crate::providers::build::IdSource;
use crate::providers::EventDraft;
use schemas::{Channel, EventType};
use serde::Deserialize;

/// The name these events carry in `provider_event_name`.
pub const EVENT_NAME: &str = "send_record";

/// One message handed to a provider, as the sender records it.
#[derive(Debug, Clone, Deserialize)]
pub struct SendRecord {
    pub channel: Channel,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub sent_at: Option<String>,
    pub cost: Option<CostIn>,
    #[serde(flatten)]
    pub attrs: Attrs,
}

impl Item for SendRecord {
    const FIELDS: &'static [&'static str] = &[
        "channel", "provider", "provider_message_id", "recipient", "sent_at", "cost",
        "broadcast", "sequence", "contact", "template", "message_class", "labels", "metadata",
    ];

    fn validate(&self) -> Result<(), String> {
        items::provider(&self.provider)?;
        items::required("provider_message_id", &self.provider_message_id)?;
        items::required("recipient", &self.recipient)?;
        items::time("sent_at", self.sent_at.as_deref())?;
        if let Some(cost) = &self.cost {
            cost.money()?;
        }
        Ok(())
    }
}

impl SendRecord {
    /// The draft for the `index`-th record of a batch. The record was validated when parsed.
    pub fn draft(&self, index: usize) -> Result<EventDraft, String> {
        let mut d = EventDraft::new(self.channel, self.provider_message_id.as_str(), EVENT_NAME, EventType::Queued);
        d.id_source = IdSource::BodyItem(index);
        d.origin = schemas::Origin::SendRecord;
        d.occurred_at = items::time("sent_at", self.sent_at.as_deref())?;
        d.attribution = self.attrs.attribution();
        d.cost = self.cost.as_ref().map(CostIn::money).transpose()?;
        Ok(d)
    }
}
