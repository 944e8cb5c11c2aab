//! Provider identities. `FromStr for ProviderId` is the only place a provider
//! name is matched; everything else works with the enum.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    Ses,
    Sendgrid,
    Mailgun,
    Resend,
    Postmark,
    Twilio,
    Fcm,
    Apns,
    /// The sender's own records (send records and app-side events).
    Sender,
}

impl ProviderId {
    pub const ALL: [ProviderId; 9] = [
        ProviderId::Ses,
        ProviderId::Sendgrid,
        ProviderId::Mailgun,
        ProviderId::Resend,
        ProviderId::Postmark,
        ProviderId::Twilio,
        ProviderId::Fcm,
        ProviderId::Apns,
        ProviderId::Sender,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Ses => "ses",
            ProviderId::Sendgrid => "sendgrid",
            ProviderId::Mailgun => "mailgun",
            ProviderId::Resend => "resend",
            ProviderId::Postmark => "postmark",
            ProviderId::Twilio => "twilio",
            ProviderId::Fcm => "fcm",
            ProviderId::Apns => "apns",
            ProviderId::Sender => "sender",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown provider `{0}`")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderId {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderId::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}
