//! The suppression list: who must not be sent to again, and why.
//!
//! Rules (one row per tenant and address; the strongest suppression wins and is never lowered):
//!
//! | event | address | scope | reason | severity |
//! |---|---|---|---|---|
//! | complaint (any channel) | recipient | `all` (every channel) | `complaint` | 5 |
//! | hard bounce, email | address | `email` (all mail) | `hard_bounce` | 4 |
//! | hard bounce, push | device token | `push` (token inactive) | `push_token_invalid` | 4 |
//! | hard bounce, sms / whatsapp | phone | that channel | `hard_bounce` | 4 |
//! | unsubscribe | recipient | that channel | `unsubscribe` | 3 |
//! | `soft_bounce_threshold` soft bounces within `soft_bounce_window_days`, email | address | `email_marketing` | `soft_bounces` | 1 |
//!
//! A later hard bounce upgrades a soft-bounce entry; re-importing contacts cannot lower an
//! entry, since nothing but a stronger event writes here.

use crate::batch::BatchRows;
use crate::config::Config;
use crate::store::{insert_rows, load_suppressions, soft_bounce_history};
use crate::store::retry::retry;
use clickhouse::Row;
use runtime::backoff::Backoff;
use runtime::kafka::ReplaceableProducer;
use runtime::shutdown::CancellationToken;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::warn;
use schemas::{BounceClass, Channel, EventRef, EventType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct SuppressionRow {
    pub tenant: String,
    pub address: String,
    pub scope: String,
    pub reason: String,
    pub severity: u8,
    pub channel: String,
    pub event_id: String,
    pub occurred_at: i64,
    /// severity first, then time: ReplacingMergeTree keeps the strongest, latest entry.
    pub version: u64,
}

impl SuppressionRow {
    pub fn new(e: &EventRef<'_>, scope: &str, reason: &str, severity: u8) -> Self {
        SuppressionRow {
            tenant: e.tenant.to_string(),
            address: e.recipient.to_ascii_lowercase(),
            scope: scope.into(),
            reason: reason.into(),
            severity,
            channel: e.channel.as_str().into(),
            event_id: e.event_id.to_string(),
            occurred_at: e.occurred_at,
            version: ((severity as u64) << 56) | (e.occurred_at.max(0) as u64 & ((1 << 56) - 1)),
        }
    }

    /// The record senders read from the compacted topic (key: `tenant/address`).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "tenant": self.tenant, "address": self.address, "scope": self.scope, "reason": self.reason,
            "channel": self.channel, "event_id": self.event_id,
            "occurred_at": schemas::event::rfc3339_millis::format(self.occurred_at),
        }))
        .unwrap_or_default()
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.address)
    }
}

/// A batch's suppression step, after its events are stored: the batch's entries (its immediate
/// ones plus soft-bounce thresholds crossed, counted with the batch's own bounces) inserted with
/// the batch's deduplication `token`, then what the table now holds for these addresses
/// published, not the batch's entries: a weaker entry (an unsubscribe after a complaint) must
/// not become the topic's latest. Returns the entries inserted; `None` on shutdown.
pub async fn apply(client: &clickhouse::Client, producer: &ReplaceableProducer, cfg: &Config, rows: &BatchRows<'_>, token: &str, shutdown: &CancellationToken) -> Option<usize> {
    let mb = cfg.max_retry_backoff_ms;
    let mut entries = rows.suppressions.clone();
    let window_ms = cfg.soft_bounce_window_days.saturating_mul(86_400_000);
    for (tenant, addresses) in addresses_by_tenant(rows.soft_bounces.iter().map(|e| (e.tenant, e.recipient.to_ascii_lowercase()))) {
        let candidates: Vec<&EventRef<'_>> = rows.soft_bounces.iter().filter(|e| e.tenant == tenant).copied().collect();
        let span = history_span(&candidates, window_ms);
        let history = retry("soft_bounce_history", mb, shutdown, || soft_bounce_history(client, tenant, &addresses, span)).await?;
        entries.extend(soft_bounce_entries(&candidates, &history, cfg.soft_bounce_threshold, window_ms));
    }
    let entries = strongest(entries);
    retry("insert_suppressions", mb, shutdown, || insert_rows(client, "suppressions", token, &entries)).await?;
    let mut current = Vec::new();
    for (tenant, addresses) in &addresses_by_tenant(entries.iter().map(|r| (r.tenant.as_str(), r.address.clone()))) {
        current.extend(retry("load_suppressions", mb, shutdown, || load_suppressions(client, tenant, addresses)).await?);
    }
    publish(producer, cfg, &strongest(current), shutdown).await?;
    Some(entries.len())
}

/// Publishes entries on the compacted topic senders read before they send (at least once; keyed).
/// All at once, then again only those that failed: one broker round trip per batch, not one per
/// entry (sent one by one, a batch with 160 hard bounces waited ~2 s on the local broker; see
/// BENCHMARKS.md §9). Entries have distinct keys (`strongest`), so their order does not matter.
async fn publish(producer: &ReplaceableProducer, cfg: &Config, entries: &[SuppressionRow], shutdown: &CancellationToken) -> Option<()> {
    let timeout = Duration::from_millis(cfg.kafka.message_timeout_ms as u64 + 1000);
    let mut backoff = Backoff::new(Duration::from_millis(cfg.max_retry_backoff_ms));
    let mut pending: Vec<(&SuppressionRow, String, Vec<u8>)> = entries.iter().map(|e| (e, e.key(), e.to_json())).collect();
    while !pending.is_empty() {
        let sends = pending.iter().map(|(_, key, json)| producer.send(&cfg.suppressions_topic, key, json, timeout));
        let results = futures::future::join_all(sends).await;
        let mut failed = Vec::new();
        for (entry, result) in pending.into_iter().zip(results) {
            match result {
                Ok(()) => metrics::counter!("sendtrace_aggregator_suppressions_total", "reason" => entry.0.reason.clone()).increment(1),
                Err(error) => {
                    warn!(message = "Publishing a suppression failed; retrying.", %error);
                    failed.push(entry);
                }
            }
        }
        if !failed.is_empty() && !backoff.wait(shutdown).await {
            return None;
        }
        pending = failed;
    }
    Some(())
}

/// Addresses grouped by tenant, each list sorted without repeats (one query per tenant).
fn addresses_by_tenant<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> BTreeMap<&'a str, Vec<String>> {
    let mut by_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (tenant, address) in pairs {
        by_tenant.entry(tenant).or_default().push(address);
    }
    for addresses in by_tenant.values_mut() {
        addresses.sort();
        addresses.dedup();
    }
    by_tenant
}

/// The suppression an event causes by itself (every rule but the soft-bounce count).
/// Called for every event of a batch, nearly all of which cause none: `batch::apply_reusing`
/// pushes only a `Some` (extending by the 168-byte `Option` copied it whole, `None` too).
#[inline]
pub fn immediate(e: &EventRef<'_>) -> Option<SuppressionRow> {
    let channel = e.channel.as_str();
    match (e.event_type, e.bounce_class, e.channel) {
        (EventType::Complained, _, _) => Some(SuppressionRow::new(e, "all", "complaint", 5)),
        (EventType::Bounced, Some(BounceClass::Hard), Channel::Push) => Some(SuppressionRow::new(e, "push", "push_token_invalid", 4)),
        (EventType::Bounced, Some(BounceClass::Hard), _) => Some(SuppressionRow::new(e, channel, "hard_bounce", 4)),
        (EventType::Unsubscribed, _, _) => Some(SuppressionRow::new(e, channel, "unsubscribe", 3)),
        _ => None,
    }
}

/// Whether the event is a soft bounce that counts towards the marketing-mail rule.
pub fn is_soft_email_bounce(e: &EventRef<'_>) -> bool {
    e.event_type == EventType::Bounced && e.bounce_class == Some(BounceClass::Soft) && e.channel == Channel::Email
}

/// The strongest entry per (tenant, address) among `rows`.
pub fn strongest(rows: Vec<SuppressionRow>) -> Vec<SuppressionRow> {
    let mut best: std::collections::BTreeMap<(String, String), SuppressionRow> = Default::default();
    for r in rows {
        let k = (r.tenant.clone(), r.address.clone());
        match best.get(&k) {
            Some(cur) if cur.version >= r.version => {}
            _ => {
                best.insert(k, r);
            }
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::event;

    #[test]
    fn rules_and_upgrade() {
        let soft = SuppressionRow::new(&event("1", EventType::Bounced, Some(BounceClass::Soft), 10), "email_marketing", "soft_bounces", 1);
        let hard = immediate(&event("2", EventType::Bounced, Some(BounceClass::Hard), 5)).unwrap();
        assert_eq!((hard.scope.as_str(), hard.reason.as_str()), ("email", "hard_bounce"));
        let won = strongest(vec![soft.clone(), hard.clone()]);
        assert_eq!(won, vec![hard.clone()], "a hard bounce upgrades a soft-bounce entry, even if earlier");
        let complaint = immediate(&event("3", EventType::Complained, None, 1)).unwrap();
        assert_eq!(complaint.scope, "all");
        assert_eq!(strongest(vec![hard, complaint.clone()]), vec![complaint]);
        assert!(immediate(&event("4", EventType::Bounced, Some(BounceClass::Soft), 1)).is_none());
        assert!(immediate(&event("5", EventType::Opened, None, 1)).is_none());
        let mut push = event("6", EventType::Bounced, Some(BounceClass::Hard), 1);
        push.channel = Channel::Push;
        assert_eq!(immediate(&push).unwrap().reason, "push_token_invalid");
        let mut unsub = event("7", EventType::Unsubscribed, None, 1);
        unsub.channel = Channel::Sms;
        assert_eq!(immediate(&unsub).unwrap().scope, "sms");
    }
}

/// The times `soft_bounce_entries` can look at for `candidates`: each candidate only counts
/// bounces within `window_ms` of its own time, so the history read is bounded by the earliest
/// candidate minus the window and the latest plus it (UTC ms, inclusive).
pub fn history_span(candidates: &[&EventRef<'_>], window_ms: i64) -> (i64, i64) {
    let from = candidates.iter().map(|e| e.occurred_at).min().unwrap_or(0);
    let to = candidates.iter().map(|e| e.occurred_at).max().unwrap_or(0);
    (from.saturating_sub(window_ms), to.saturating_add(window_ms))
}

/// Soft-bounce entries: a candidate whose address has at least `threshold` soft bounces in
/// some window of `window_ms` that contains the candidate's time (its own included; `history`
/// holds every known soft-bounce time per address). Any window holding it, not only the one
/// ending at it: the bounces of an address may be applied in any order, and the candidate
/// applied last may be the earliest of them.
pub fn soft_bounce_entries(
    candidates: &[&EventRef<'_>],
    history: &std::collections::HashMap<String, Vec<i64>>,
    threshold: usize,
    window_ms: i64,
) -> Vec<SuppressionRow> {
    // (saturating: times come from providers; sorted, so each window is counted by bisection
    // and an address with many bounces costs n log n, not n²)
    candidates
        .iter()
        .filter(|e| {
            let times = history.get(&e.recipient.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or(&[]);
            let t = e.occurred_at;
            let mut near: Vec<i64> = times.iter().copied().filter(|x| (t.saturating_sub(window_ms)..=t.saturating_add(window_ms)).contains(x)).collect();
            near.sort_unstable();
            // windows [s, s + window] starting at a bounce and holding t
            near.iter().filter(|s| **s <= t && t <= s.saturating_add(window_ms)).any(|s| {
                let (from, to) = (near.partition_point(|x| x < s), near.partition_point(|x| *x <= s.saturating_add(window_ms)));
                to.saturating_sub(from) >= threshold
            })
        })
        .map(|e| SuppressionRow::new(e, "email_marketing", "soft_bounces", 1))
        .collect()
}

#[cfg(test)]
mod soft_tests {
    use super::*;
    use crate::state::tests::event;

    #[test]
    fn threshold_within_window() {
        let day = 86_400_000;
        let e = event("1", EventType::Bounced, Some(BounceClass::Soft), 10 * day);
        let h = |ts: Vec<i64>| std::collections::HashMap::from([("a@x.io".to_string(), ts)]);
        assert_eq!(soft_bounce_entries(&[&e], &h(vec![9 * day, 9 * day + 1, 10 * day]), 3, 7 * day).len(), 1);
        assert!(soft_bounce_entries(&[&e], &h(vec![day, 9 * day, 10 * day]), 3, 7 * day).is_empty(), "one is outside the window");
        assert!(soft_bounce_entries(&[&e], &h(vec![9 * day, 10 * day]), 3, 7 * day).is_empty());
        // applied last but the earliest of the three: the window after it counts
        assert_eq!(soft_bounce_entries(&[&e], &h(vec![10 * day, 11 * day, 16 * day]), 3, 7 * day).len(), 1);
        assert!(soft_bounce_entries(&[&e], &h(vec![10 * day, 11 * day, 18 * day]), 3, 7 * day).is_empty(), "no 7-day window holds all three");
        // the extremes of i64: no overflow
        let far = event("2", EventType::Bounced, Some(BounceClass::Soft), i64::MAX);
        assert_eq!(soft_bounce_entries(&[&far], &h(vec![i64::MAX, i64::MAX - 1, i64::MAX]), 3, i64::MAX).len(), 1);
        let early = event("3", EventType::Bounced, Some(BounceClass::Soft), i64::MIN);
        assert!(soft_bounce_entries(&[&early], &h(vec![i64::MIN, i64::MAX]), 2, i64::MAX).is_empty());
    }

    /// The rule by brute force, in i128 (no overflow possible).
    fn brute(t: i64, times: &[i64], threshold: usize, window: i64) -> bool {
        let (t, w) = (t as i128, window as i128);
        times.iter().map(|s| *s as i128).filter(|s| *s <= t && t <= s + w).any(|s| times.iter().filter(|x| (s..=s + w).contains(&(**x as i128))).count() >= threshold)
    }

    proptest::proptest! {
        /// Any times, window and threshold: no panic, and the brute-force answer (where
        /// saturation cannot matter: windows of at most i64::MAX / 2 around times of at most i64::MAX / 4).
        #[test]
        fn soft_bounce_rule_on_any_times(t in proptest::prelude::any::<i64>(), times in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..8), window in proptest::prelude::any::<i64>(), threshold in 1usize..4) {
            let e = event("1", EventType::Bounced, Some(BounceClass::Soft), t);
            let h = std::collections::HashMap::from([("a@x.io".to_string(), times.clone())]);
            let got = !soft_bounce_entries(&[&e], &h, threshold, window).is_empty();
            let _ = SuppressionRow::new(&e, "email_marketing", "soft_bounces", 1);
            let (t2, w2) = (t / 4, (window / 2).max(0));
            let times2: Vec<i64> = times.iter().map(|x| x / 4).collect();
            let e2 = event("1", EventType::Bounced, Some(BounceClass::Soft), t2);
            let h2 = std::collections::HashMap::from([("a@x.io".to_string(), times2.clone())]);
            proptest::prop_assert_eq!(!soft_bounce_entries(&[&e2], &h2, threshold, w2).is_empty(), brute(t2, &times2, threshold, w2));
            let _ = got;
        }

        /// The history read bounded by `history_span` decides every candidate as the whole
        /// history does: a bounce outside the span is outside every window a candidate can use.
        #[test]
        fn history_outside_the_span_never_matters(
            cands in proptest::collection::vec((0i64..4, -1_000i64..1_000), 1..6),
            times in proptest::collection::vec((0i64..4, -3_000i64..3_000), 0..24),
            window in 0i64..400,
            threshold in 1usize..4,
        ) {
            let address = |a: i64| format!("a{a}@x.io");
            let owned: Vec<EventRef<'static>> = cands.iter().enumerate().map(|(i, (a, t))| {
                let mut e = event(&i.to_string(), EventType::Bounced, Some(BounceClass::Soft), *t);
                e.recipient = schemas::testkit::leak(address(*a).to_ascii_uppercase());
                e
            }).collect();
            let candidates: Vec<&EventRef<'_>> = owned.iter().collect();
            let mut all: std::collections::HashMap<String, Vec<i64>> = Default::default();
            for (a, t) in times.iter().chain(cands.iter()) {
                all.entry(address(*a)).or_default().push(*t);
            }
            let (from, to) = history_span(&candidates, window);
            let bounded: std::collections::HashMap<String, Vec<i64>> =
                all.iter().map(|(a, ts)| (a.clone(), ts.iter().copied().filter(|t| (from..=to).contains(t)).collect())).collect();
            let ids = |rows: Vec<SuppressionRow>| rows.into_iter().map(|r| r.event_id).collect::<Vec<_>>();
            proptest::prop_assert_eq!(
                ids(soft_bounce_entries(&candidates, &bounded, threshold, window)),
                ids(soft_bounce_entries(&candidates, &all, threshold, window))
            );
        }
    }
}
