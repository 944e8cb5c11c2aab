//! Deterministic identifiers. Replaying a raw record must give the same ids,
//! so every id here is a hash of stable inputs, never a random value.

use sha2::{Digest, Sha256};

fn hash_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // length-prefix each part so ("ab","c") and ("a","bc") differ
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..16])
}

/// Identity of one delivery: one message to one recipient.
pub fn delivery_key(tenant: &str, provider: &str, provider_message_id: &str, recipient: &str) -> String {
    hash_parts(&[
        tenant.as_bytes(),
        provider.as_bytes(),
        provider_message_id.as_bytes(),
        recipient.to_ascii_lowercase().as_bytes(),
    ])
}

/// What identifies the provider's report an event came from.
#[derive(Debug, Clone, Copy)]
pub enum EventSource<'a> {
    /// The provider gave the event its own id (SNS MessageId, sg_event_id, svix-id ..).
    ProviderEventId(&'a str),
    /// No provider id: the raw body's digest ([`body_digest`], computed once per body,
    /// not once per item: a batch of n items must cost O(body), not O(n × body)) and the
    /// item's index inside it.
    Body { digest: &'a BodyDigest, item: usize },
}

/// SHA-256 of a raw body.
pub type BodyDigest = [u8; 32];

/// The digest [`EventSource::Body`] identifies a body by.
pub fn body_digest(body: &[u8]) -> BodyDigest {
    Sha256::digest(body).into()
}

/// Deterministic event id: tenant, provider, source, event name and recipient.
pub fn event_id(tenant: &str, provider: &str, source: EventSource<'_>, event_name: &str, recipient: &str) -> String {
    let recipient = recipient.to_ascii_lowercase();
    match source {
        EventSource::ProviderEventId(id) => hash_parts(&[
            tenant.as_bytes(),
            provider.as_bytes(),
            b"pe",
            id.as_bytes(),
            event_name.as_bytes(),
            recipient.as_bytes(),
        ]),
        EventSource::Body { digest, item } => hash_parts(&[
                tenant.as_bytes(),
                provider.as_bytes(),
                b"body",
                digest,
                &(item as u64).to_le_bytes(),
                event_name.as_bytes(),
                recipient.as_bytes(),
            ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_inputs() {
        let a = event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "a@x.io");
        assert_eq!(a, event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "A@x.io"));
        assert_ne!(a, event_id("t", "ses", EventSource::ProviderEventId("m1"), "Bounce", "b@x.io"));
        assert_ne!(a, event_id("u", "ses", EventSource::ProviderEventId("m1"), "Bounce", "a@x.io"));
        let d = body_digest(b"[1]");
        let b1 = event_id("t", "sendgrid", EventSource::Body { digest: &d, item: 0 }, "open", "a@x.io");
        let b2 = event_id("t", "sendgrid", EventSource::Body { digest: &d, item: 1 }, "open", "a@x.io");
        assert_ne!(b1, b2);
        assert_ne!(b1, event_id("t", "sendgrid", EventSource::Body { digest: &body_digest(b"[2]"), item: 0 }, "open", "a@x.io"));
        assert_eq!(a.len(), 32);
        assert_eq!(delivery_key("t", "ses", "m", "A@x.io"), delivery_key("t", "ses", "m", "a@x.io"));
    }
}
