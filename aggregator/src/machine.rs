//! Machine opens and clicks: fired by privacy proxies or security scanners, not people.
//! They are kept (event rows, `machine_open_count`) but flagged, counted apart in
//! `counters` (`machine` column) and left out of status and engagement.
//!
//! Rules, first match wins (only `opened`, `read` and `clicked` events):
//! 1. `scanner_ua`: the user agent names a known link scanner or a non-browser client
//!    (Barracuda, Mimecast, Proofpoint, Symantec, Trend Micro, Microsoft Office
//!    Existence Discovery, BingPreview, python-requests, curl, Go-http-client, ...).
//! 2. `apple_mpp`: Apple Mail Privacy Protection prefetches through Apple's proxy with the
//!    bare user agent `Mozilla/5.0` (no platform), from Apple's 17.0.0.0/8 range or with
//!    no other signal; a bare `Mozilla/5.0` from 17.x is always MPP.
//! 3. `too_fast`: an open or click within `scanner_window_secs` (default 10 s) of the
//!    delivery, when the delivery time is already known: people do not read that fast,
//!    scanners do. A batch applies each delivery's events in time order, so a delivery event
//!    in the same batch counts even if it arrived after the open; an open applied in an earlier batch than
//!    its delivery stays human (classification is not revisited).

use schemas::{EventRef, EventType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineReason {
    ScannerUa,
    AppleMpp,
    TooFast,
}

impl MachineReason {
    /// Every reason.
    pub const ALL: [MachineReason; 3] = [MachineReason::ScannerUa, MachineReason::AppleMpp, MachineReason::TooFast];

    pub fn as_str(self) -> &'static str {
        match self {
            MachineReason::ScannerUa => "scanner_ua",
            MachineReason::AppleMpp => "apple_mpp",
            MachineReason::TooFast => "too_fast",
        }
    }
    pub fn parse(s: &str) -> Option<MachineReason> {
        MachineReason::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

const SCANNER_UA: &[&str] = &[
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "ms-office existence discovery",
    "microsoft office existence discovery",
    "bingpreview",
    "python-requests",
    "curl/",
    "go-http-client",
    "wget/",
    "headlesschrome",
    "phantomjs",
    "cisco ironport",
];

/// `SCANNER_UA` (lower case) as one packed searcher (Teddy, SIMD, where the CPU has SSSE3 or
/// AVX2; Rabin-Karp otherwise), built once, run over the user agent in ASCII lower case.
/// Why: lower-casing each user agent into a new string and searching it for every name was
/// ~3 % of a batch; then one ASCII-case-insensitive automaton (a DFA, byte by byte) was ~80 ns
/// and ~1,000 instructions per engagement event; lower-casing onto the stack and this
/// searcher take ~17 ns (BENCHMARKS.md §1b).
static SCANNER_UA_SEARCHER: std::sync::LazyLock<Option<aho_corasick::packed::Searcher>> =
    std::sync::LazyLock::new(|| aho_corasick::packed::Config::new().builder().extend(SCANNER_UA).build());

/// User agents up to this long are lower-cased on the stack; a longer one (rare: browsers
/// send ~60–150 bytes) into a new string.
const UA_ON_STACK: usize = 256;

/// Whether `ua`, ASCII case ignored, contains a name of `SCANNER_UA`.
fn names_a_scanner(ua: &str) -> bool {
    let ua = ua.as_bytes();
    let mut stack = [0u8; UA_ON_STACK];
    let heap;
    let lower: &[u8] = match stack.get_mut(..ua.len()) {
        Some(buf) => {
            for (l, b) in buf.iter_mut().zip(ua) {
                *l = b.to_ascii_lowercase();
            }
            buf
        }
        None => {
            heap = ua.to_ascii_lowercase();
            &heap
        }
    };
    match SCANNER_UA_SEARCHER.as_ref() {
        Some(s) => s.find(lower).is_some(),
        // (the patterns are constants: the build does not fail; kept equal in any case)
        None => SCANNER_UA.iter().any(|s| lower.windows(s.len()).any(|w| w == s.as_bytes())),
    }
}

/// Default window for the timing rule.
pub const DEFAULT_SCANNER_WINDOW_SECS: i64 = 10;

/// Classifies an engagement event; `delivered_at` is the delivery's first delivery time if known.
pub fn classify(e: &EventRef<'_>, delivered_at: Option<i64>, scanner_window_secs: i64) -> Option<MachineReason> {
    classify_by(by_agent(e), e, delivered_at, scanner_window_secs)
}

/// The rules that read the event alone (a scanner's user agent, Apple's privacy proxy), for an
/// engagement event: computed once per event as it is decoded (`state::Facts`), while its
/// text is in cache (read later, in a large batch, it was a cache miss per event).
pub fn by_agent(e: &EventRef<'_>) -> Option<MachineReason> {
    if !matches!(e.event_type, EventType::Opened | EventType::Read | EventType::Clicked) {
        return None;
    }
    let ua = e.user_agent.unwrap_or("").trim();
    if names_a_scanner(ua) {
        return Some(MachineReason::ScannerUa);
    }
    let from_apple = e.ip.is_some_and(|ip| ip.starts_with("17."));
    if e.event_type == EventType::Opened && ua == "Mozilla/5.0" && (from_apple || e.ip.is_none()) {
        return Some(MachineReason::AppleMpp);
    }
    None
}

/// [`classify`] with the event's [`by_agent`] verdict already known: it, else the timing rule.
pub fn classify_by(agent: Option<MachineReason>, e: &EventRef<'_>, delivered_at: Option<i64>, scanner_window_secs: i64) -> Option<MachineReason> {
    if agent.is_some() || !matches!(e.event_type, EventType::Opened | EventType::Read | EventType::Clicked) {
        return agent;
    }
    // checked: both times come from providers (a difference that overflows is not "soon")
    if let Some(dt) = delivered_at.and_then(|d| e.occurred_at.checked_sub(d)) {
        if (0..scanner_window_secs.saturating_mul(1000)).contains(&dt) {
            return Some(MachineReason::TooFast);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: EventType, ua: Option<&str>, ip: Option<&str>, t: i64) -> EventRef<'static> {
        let mut e = crate::state::tests::event("1", ty, None, t);
        e.user_agent = ua.map(schemas::testkit::leak);
        e.ip = ip.map(schemas::testkit::leak);
        e
    }

    #[test]
    fn rules() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
        assert_eq!(classify(&ev(EventType::Opened, Some("Mozilla/5.0"), Some("17.58.1.2"), 100_000), None, 10), Some(MachineReason::AppleMpp));
        assert_eq!(classify(&ev(EventType::Clicked, Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"), None, 100_000), None, 10), Some(MachineReason::ScannerUa));
        assert_eq!(classify(&ev(EventType::Clicked, Some(chrome), Some("203.0.113.9"), 105_000), Some(100_000), 10), Some(MachineReason::TooFast));
        assert_eq!(classify(&ev(EventType::Clicked, Some(chrome), Some("203.0.113.9"), 200_000), Some(100_000), 10), None);
        assert_eq!(classify(&ev(EventType::Opened, Some(chrome), Some("17.1.1.1"), 200_000), Some(100_000), 10), None, "a real browser on Apple's network");
        assert_eq!(classify(&ev(EventType::Delivered, Some("curl/8"), None, 0), None, 10), None, "only engagement is classified");
        let long = format!("{}CURL/8", "a".repeat(UA_ON_STACK));
        assert_eq!(classify(&ev(EventType::Clicked, Some(&long), None, 0), None, 10), Some(MachineReason::ScannerUa), "past the stack buffer");
        assert_eq!(classify(&ev(EventType::Clicked, Some(&long[6..]), None, 0), None, 10), Some(MachineReason::ScannerUa), "filling it");
        assert_eq!(classify(&ev(EventType::Clicked, Some(chrome), None, i64::MAX), Some(i64::MIN), 10), None, "no overflow");
        assert_eq!(classify(&ev(EventType::Clicked, Some(chrome), None, i64::MIN), Some(i64::MAX), i64::MAX), None);
    }

    proptest::proptest! {
        /// The searcher finds a scanner name exactly where the lower-cased string contains one,
        /// at every length, on the stack and past it (up to ~400 bytes).
        #[test]
        fn scanner_names_as_lower_case_contains(ua in "([A-Za-z /.-]{0,40}(BarraCuda|CURL/|Trend Micro|go-http-Client|ms-office existence discovery|Mozilla/5.0|\u{e9}|\u{130})?){0,8}") {
            let lower = ua.to_ascii_lowercase();
            proptest::prop_assert_eq!(names_a_scanner(&ua), SCANNER_UA.iter().any(|s| lower.contains(s)));
        }

        /// Any times and window: no panic, and `too_fast` exactly when 0 <= t - d < window (in i128).
        #[test]
        fn timing_rule_on_any_times(t in proptest::prelude::any::<i64>(), d in proptest::prelude::any::<i64>(), w in proptest::prelude::any::<i64>()) {
            let got = classify(&ev(EventType::Opened, Some("Mozilla/5.0 (X11; Linux) Firefox/120"), Some("203.0.113.9"), t), Some(d), w);
            let dt = t as i128 - d as i128;
            let want = dt >= 0 && dt < (w as i128 * 1000).clamp(i64::MIN as i128, i64::MAX as i128) && dt <= i64::MAX as i128;
            proptest::prop_assert_eq!(got == Some(MachineReason::TooFast), want);
        }
    }
}
