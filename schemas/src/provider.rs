//! Provider identities. The provider list is declared once, in [`for_each_provider!`]:
//! [`ProviderId`], its names and `ALL` are generated from it here, and the normalizer
//! generates its provider modules, registry and per-provider credentials from the same list.
//! `FromStr for ProviderId` is the only place a provider name is matched.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The provider list: one line per provider, `Variant module`. The module is the provider's
/// folder under `normalizer/src/providers/`, its name on the wire (URLs, Avro, ClickHouse) and
/// its credentials table (`[tenants.<tenant>.<module>]`). Adding a provider is a folder and
/// one line here (see `normalizer/src/providers/README.md`).
///
/// `for_each_provider!(callback)` expands to `callback! { Variant module, ... }`.
#[macro_export]
macro_rules! for_each_provider {
    ($callback:ident) => {
        $callback! {
            Ses ses,
            Sendgrid sendgrid,
            Mailgun mailgun,
            Resend resend,
            Postmark postmark,
            Twilio twilio,
            Fcm fcm,
            Apns apns,
            Sender sender,
            Brevo brevo,
        }
    };
}

macro_rules! provider_id {
    ($($variant:ident $module:ident,)*) => {
        /// One provider (see [`for_each_provider!`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum ProviderId {
            $($variant,)*
        }

        impl ProviderId {
            /// Every provider, in declaration order.
            pub const ALL: [ProviderId; <[&str]>::len(&[$(stringify!($module)),*])] = [$(ProviderId::$variant),*];

            /// The provider's name: its folder, URL segment and wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProviderId::$variant => stringify!($module),)*
                }
            }
        }
    };
}

for_each_provider!(provider_id);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip through `FromStr` and serde; serde's lower-case rename matches the module name.
    #[test]
    fn names_round_trip() {
        for p in ProviderId::ALL {
            assert_eq!(p.as_str().parse::<ProviderId>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
        }
        assert!("nope".parse::<ProviderId>().is_err());
    }
}
