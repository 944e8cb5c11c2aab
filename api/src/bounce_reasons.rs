//! Bounce and failure reasons normalised across providers: one class per (provider, error
//! code, reason text), for `/v1/stats/bounces`.
//!
//! The rules, first match wins:
//! 1. the provider's own code, where it names the cause (SES / Resend `bounceSubType`,
//!    Postmark `Type`, Twilio error codes, FCM `errorCode`, APNs `reason`, Mailgun's own 6xx);
//! 2. an RFC 3463 enhanced status code (`5.1.1`) in the code or the text;
//! 3. a basic SMTP reply code (`552`) in the code or at the start of the text;
//! 4. words in the text (`mailbox full`, `blocklisted`, `NXDOMAIN`, ..);
//! 5. a hard-bounced push token → `invalid_token`; anything else → `other`.
//!
//! Sources: RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry; AWS SES
//! "Amazon SES notification contents" (bounce types); Postmark "Bounce webhook" (bounce
//! types); Twilio "Error and Warning Dictionary" (30001–30008, 21211, 21610, 63016); Firebase
//! "FCM error codes" (`UNREGISTERED`, `INVALID_ARGUMENT`, `SENDER_ID_MISMATCH`,
//! `QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL`, `THIRD_PARTY_AUTH_ERROR`); Apple "Handling
//! notification responses from APNs" (reason strings); Mailgun "Event types" (`605`, `607`).

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// The address, number or mailbox does not exist or is disabled.
    BadMailbox,
    /// The mailbox is over quota.
    MailboxFull,
    /// Refused as spam, by a blocklist, by reputation or a carrier filter.
    Blocked,
    /// The recipient's domain or mail host could not be found or reached.
    Dns,
    /// Refused by policy: authentication (SPF, DKIM, DMARC), size, content, suppression lists,
    /// consent (unsubscribed, outside the messaging window), account state.
    Policy,
    /// A push token that is no longer valid for the app.
    InvalidToken,
    /// Rate limits and queue overflows: retry later.
    Throttled,
    /// The provider failed or is misconfigured (5xx, credentials, topics).
    ProviderError,
    /// None of the above could be told.
    Other,
}

impl ReasonClass {
    pub const ALL: [ReasonClass; 9] = [
        ReasonClass::BadMailbox,
        ReasonClass::MailboxFull,
        ReasonClass::Blocked,
        ReasonClass::Dns,
        ReasonClass::Policy,
        ReasonClass::InvalidToken,
        ReasonClass::Throttled,
        ReasonClass::ProviderError,
        ReasonClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::BadMailbox => "bad_mailbox",
            ReasonClass::MailboxFull => "mailbox_full",
            ReasonClass::Blocked => "blocked",
            ReasonClass::Dns => "dns",
            ReasonClass::Policy => "policy",
            ReasonClass::InvalidToken => "invalid_token",
            ReasonClass::Throttled => "throttled",
            ReasonClass::ProviderError => "provider_error",
            ReasonClass::Other => "other",
        }
    }
}

/// What one bounce or failure said.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub provider: &'a str,
    pub channel: &'a str,
    /// `hard`, `soft`, `undetermined` or empty.
    pub bounce_class: &'a str,
    pub code: &'a str,
    pub text: &'a str,
}

pub fn classify(f: &Failure) -> ReasonClass {
    provider_code(f)
        .or_else(|| enhanced(f.code).or_else(|| enhanced(f.text)).and_then(by_enhanced))
        .or_else(|| basic(f.code).or_else(|| basic(f.text)).and_then(by_basic))
        .or_else(|| by_words(f.text))
        .unwrap_or(if f.channel == "push" && f.bounce_class == "hard" { ReasonClass::InvalidToken } else { ReasonClass::Other })
}

fn provider_code(f: &Failure) -> Option<ReasonClass> {
    use ReasonClass::*;
    let code = f.code.trim();
    Some(match f.provider {
        "ses" | "resend" => match code {
            "NoEmail" => BadMailbox,
            "MailboxFull" => MailboxFull,
            "Suppressed" | "OnAccountSuppressionList" | "MessageTooLarge" | "ContentRejected" | "AttachmentRejected" | "rendering_failure" => Policy,
            _ => return None,
        },
        "postmark" => match code {
            "HardBounce" | "BadEmailAddress" | "AddressChange" => BadMailbox,
            "DnsError" => Dns,
            "SpamNotification" | "Blocked" | "SpamComplaint" => Blocked,
            "DMARCPolicy" | "ManuallyDeactivated" | "Unsubscribe" | "VirusNotification" | "ContentRelated" => Policy,
            "SMTPApiError" | "TemplateRenderingFailed" | "InboundError" => ProviderError,
            _ => return None,
        },
        "twilio" => match code {
            "30003" | "30005" | "30006" | "21211" | "21614" => BadMailbox,
            "30004" | "30007" => Blocked,
            "30001" | "30022" => Throttled,
            "30002" | "21610" | "63016" | "30034" | "30032" => Policy,
            "30008" => Other,
            _ => return None,
        },
        "fcm" => match code {
            "UNREGISTERED" | "INVALID_ARGUMENT" | "SENDER_ID_MISMATCH" => InvalidToken,
            "QUOTA_EXCEEDED" => Throttled,
            "UNAVAILABLE" | "INTERNAL" | "THIRD_PARTY_AUTH_ERROR" => ProviderError,
            c if c.starts_with("http_5") => ProviderError,
            _ => return None,
        },
        "apns" => match code {
            "BadDeviceToken" | "Unregistered" | "DeviceTokenNotForTopic" | "ExpiredToken" => InvalidToken,
            "TooManyRequests" | "TooManyProviderTokenUpdates" => Throttled,
            "PayloadTooLarge" | "PayloadEmpty" => Policy,
            "InternalServerError" | "ServiceUnavailable" | "Shutdown" | "BadTopic" | "TopicDisallowed" | "InvalidProviderToken" | "ExpiredProviderToken"
            | "MissingProviderToken" | "BadCertificate" | "BadCertificateEnvironment" | "Forbidden" => ProviderError,
            _ => return None,
        },
        "mailgun" => match code {
            "605" | "607" => Policy,
            _ => return None,
        },
        _ => return None,
    })
}

/// The first `class.subject.detail` code in `s` (class 4 or 5).
fn enhanced(s: &str) -> Option<(u8, u16, u16)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if (b[i] == b'4' || b[i] == b'5') && i + 1 < b.len() && b[i + 1] == b'.' && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.') {
            let rest = &s[i + 2..];
            let mut parts = rest.splitn(2, '.');
            let subject = parts.next().unwrap_or("");
            let detail: String = parts.next().unwrap_or("").chars().take_while(|c| c.is_ascii_digit()).collect();
            if (1..=3).contains(&subject.len()) && subject.bytes().all(|c| c.is_ascii_digit()) && (1..=3).contains(&detail.len()) {
                return Some((b[i] - b'0', subject.parse().ok()?, detail.parse().ok()?));
            }
        }
        i += 1;
    }
    None
}

fn by_enhanced((_, subject, detail): (u8, u16, u16)) -> Option<ReasonClass> {
    use ReasonClass::*;
    Some(match (subject, detail) {
        (1, 2) | (4, 4) | (4, 3) => Dns,
        (1, _) => BadMailbox,
        (2, 1) => BadMailbox,
        (2, 2) => MailboxFull,
        (2, 3) | (3, 4) | (6, _) => Policy,
        (4, 6) | (4, 1) | (4, 2) | (4, 7) => Other,
        (7, 1) => Blocked,
        (7, 23..=27) => Policy,
        (7, _) => Blocked,
        (4, 5) | (3, 2) => Throttled,
        _ => return None,
    })
}

/// A three-digit SMTP reply code: the whole code, or the text's first word.
fn basic(s: &str) -> Option<u16> {
    let w = s.trim_start().trim_start_matches("smtp;").trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
    (w.len() == 3).then(|| w.parse().ok()).flatten().filter(|c| (400..600).contains(c))
}

fn by_basic(code: u16) -> Option<ReasonClass> {
    use ReasonClass::*;
    Some(match code {
        550 | 551 | 553 => BadMailbox,
        552 => MailboxFull,
        554 => Blocked,
        421 | 450 | 451 | 452 => Throttled,
        _ => return None,
    })
}

fn by_words(text: &str) -> Option<ReasonClass> {
    use ReasonClass::*;
    let t = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    Some(if has(&["mailbox full", "over quota", "quota exceeded", "insufficient storage", "mailbox is full"]) {
        MailboxFull
    } else if has(&["spam", "blocklist", "blacklist", "blocked", "reputation", "junk"]) {
        Blocked
    } else if has(&["nxdomain", "domain not found", "no mx", "host not found", "dns", "unrouteable", "unroutable"]) {
        Dns
    } else if has(&["user unknown", "unknown user", "no such user", "does not exist", "invalid recipient", "recipient rejected", "mailbox unavailable", "address rejected", "not found"]) {
        BadMailbox
    } else if has(&["dmarc", "spf", "dkim", "policy", "too large", "size limit", "unsubscribed", "suppress"]) {
        Policy
    } else if has(&["rate limit", "too many", "throttl", "try again later"]) {
        Throttled
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReasonClass::*;

    fn c(provider: &str, channel: &str, bounce: &str, code: &str, text: &str) -> ReasonClass {
        classify(&Failure { provider, channel, bounce_class: bounce, code, text })
    }

    #[test]
    fn provider_codes() {
        assert_eq!(c("ses", "email", "hard", "NoEmail", "smtp; 550 5.1.1 user unknown"), BadMailbox);
        assert_eq!(c("ses", "email", "soft", "MailboxFull", ""), MailboxFull);
        assert_eq!(c("ses", "email", "hard", "Suppressed", "Amazon SES has suppressed sending"), Policy);
        assert_eq!(c("postmark", "email", "hard", "DnsError", ""), Dns);
        assert_eq!(c("postmark", "email", "hard", "SpamNotification", ""), Blocked);
        assert_eq!(c("twilio", "sms", "hard", "30003", "Unreachable destination handset"), BadMailbox);
        assert_eq!(c("twilio", "sms", "", "30007", "Carrier violation"), Blocked);
        assert_eq!(c("twilio", "whatsapp", "", "63016", "outside the allowed window"), Policy);
        assert_eq!(c("fcm", "push", "hard", "UNREGISTERED", ""), InvalidToken);
        assert_eq!(c("fcm", "push", "", "QUOTA_EXCEEDED", ""), Throttled);
        assert_eq!(c("fcm", "push", "", "http_503", ""), ProviderError);
        assert_eq!(c("apns", "push", "hard", "BadDeviceToken", ""), InvalidToken);
        assert_eq!(c("apns", "push", "", "InvalidProviderToken", ""), ProviderError);
        assert_eq!(c("mailgun", "email", "hard", "605", "Not delivering to previously bounced address"), Policy);
    }

    #[test]
    fn smtp_codes_and_words() {
        // SES "General" falls through to the diagnostic code.
        assert_eq!(c("ses", "email", "hard", "General", "smtp; 550 5.1.1 <a@x.com>... User unknown"), BadMailbox);
        assert_eq!(c("sendgrid", "email", "hard", "5.2.2", "mailbox full"), MailboxFull);
        assert_eq!(c("sendgrid", "email", "hard", "5.7.1", "Message rejected"), Blocked);
        assert_eq!(c("sendgrid", "email", "hard", "5.7.26", "DMARC policy"), Policy);
        assert_eq!(c("mailgun", "email", "hard", "550", "5.4.4 Unable to route"), Dns);
        assert_eq!(c("mailgun", "email", "hard", "552", "Requested action aborted"), MailboxFull);
        assert_eq!(c("mailgun", "email", "hard", "554", "Transaction failed"), Blocked);
        assert_eq!(c("resend", "email", "hard", "", "The recipient's mailbox is full"), MailboxFull);
        assert_eq!(c("resend", "email", "hard", "", "Listed on a blocklist"), Blocked);
        assert_eq!(c("other", "email", "hard", "", "Host not found (NXDOMAIN)"), Dns);
        assert_eq!(c("other", "email", "hard", "", "something odd"), Other);
        assert_eq!(c("other", "push", "hard", "", ""), InvalidToken);
        // a version number or an IP is not a status code
        assert_eq!(enhanced("client 10.4.5.1 says v5.1"), None);
        assert_eq!(enhanced("status=5.1.10"), Some((5, 1, 10)));
        assert_eq!(basic("smtp; 550 rejected"), Some(550));
        assert_eq!(basic("5501"), None);
    }
}
