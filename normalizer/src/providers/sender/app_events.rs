//! `POST /v1/events/{tenant}`: events only the sender's app sees (opens in an app,
//! in-app clicks, replies, unsubscribes from a preference page ..).
//! Published schema: `schemas/json/app_events.schema.json`.

use super::items::{self, Item};
use crate::providers::build::IdSource;
use crate::providers::EventDraft;
use schemas::{Channel, EventType};
use serde::Deserialize;

/// One app-side event about a message a provider delivered.
#[derive(Debug, Clone, Deserialize)]
pub struct AppEvent {
    pub event: String,
    pub channel: Channel,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub occurred_at: Option<String>,
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The client's own id for the event; makes retries idempotent.
    pub event_id: Option<String>,
}

impl Item for AppEvent {
    const FIELDS: &'static [&'static str] = &[
        "event", "channel", "provider", "provider_message_id", "recipient", "occurred_at", "url", "user_agent", "ip", "event_id",
    ];

    fn validate(&self) -> Result<(), String> {
        items::required("event", &self.event)?;
        items::provider(&self.provider)?;
        items::required("provider_message_id", &self.provider_message_id)?;
        items::required("recipient", &self.recipient)?;
        items::time("occurred_at", self.occurred_at.as_deref())?;
        if let Some(id) = &self.event_id {
            items::required("event_id", id)?;
        }
        Ok(())
    }
}

impl AppEvent {
    /// The draft for the `index`-th event of a batch: a canonical name maps to its type,
    /// anything else is kept as `unknown` with the original name.
    pub fn draft(&self, index: usize) -> Result<EventDraft, String> {
        let event_type = EventType::parse(self.event.trim()).unwrap_or(EventType::Unknown);
        let mut d = EventDraft::new(self.channel, self.provider_message_id.as_str(), self.event.as_str(), event_type);
        d.origin = schemas::Origin::AppEvent;
        match &self.event_id {
            Some(id) => {
                d.id_source = IdSource::ProviderEventId(id.clone());
                d.provider_event_id = Some(id.clone());
            }
            None => d.id_source = IdSource::BodyItem(index),
        }
        d.occurred_at = items::time("occurred_at", self.occurred_at.as_deref())?;
        d.click_url = self.url.clone();
        d.user_agent = self.user_agent.clone();
        d.ip = self.ip.clone();
        Ok(d)
    }
}
