//! The counters `pipeline::handle` increments for every record and every event, resolved once
//! per (provider, event type) and kept, instead of once per increment.
//!
//! Why: `metrics::counter!` with labels builds its key (a label vector) and looks it up in the
//! recorder's registry on every call; at hundreds of thousands of events per second that was a
//! visible share of the normalizer's CPU (issue 14's profile: per-event metric label strings).
//! A handle resolved here stays bound to the recorder installed when it was first used, so
//! `pipeline::run` installs the Prometheus recorder before it handles any record.

use metrics::Counter;
use schemas::{EventType, ProviderId};
use std::sync::OnceLock;

const PROVIDERS: usize = ProviderId::ALL.len();
const EVENT_TYPES: usize = EventType::VALUES.len();

static RECORDS: [OnceLock<Counter>; PROVIDERS] = [const { OnceLock::new() }; PROVIDERS];
static EVENTS: [[OnceLock<Counter>; EVENT_TYPES]; PROVIDERS] = [const { [const { OnceLock::new() }; EVENT_TYPES] }; PROVIDERS];

fn provider_index(p: ProviderId) -> usize {
    ProviderId::ALL.iter().position(|x| *x == p).unwrap_or(0)
}

/// `sendtrace_normalizer_records_total{provider}`: records read without a whole-record failure.
pub fn records(provider: ProviderId) -> &'static Counter {
    RECORDS[provider_index(provider)].get_or_init(|| metrics::counter!("sendtrace_normalizer_records_total", "provider" => provider.as_str()))
}

/// `sendtrace_normalizer_events_total{provider,event_type}`: events produced.
pub fn events(provider: ProviderId, event_type: EventType) -> &'static Counter {
    let t = event_type.index() as usize;
    EVENTS[provider_index(provider)][t.min(EVENT_TYPES - 1)].get_or_init(|| {
        metrics::counter!("sendtrace_normalizer_events_total", "provider" => provider.as_str(), "event_type" => event_type.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair has its own handle (no two label sets share one).
    #[test]
    fn every_provider_and_event_type_has_a_slot() {
        for p in ProviderId::ALL {
            assert_eq!(ProviderId::ALL[provider_index(p)], p);
            for t in EventType::VALUES {
                assert_eq!(EventType::VALUES[t.index() as usize], *t);
                events(p, *t).increment(1);
            }
            records(p).increment(1);
        }
    }
}
