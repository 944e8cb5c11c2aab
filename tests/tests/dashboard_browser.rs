//! The web dashboard in a real browser: a generated stream of known truth goes through the
//! aggregator into ClickHouse (counters in UTC and a reporting zone), the api serves the
//! dashboard, and `tests/browser/dashboard.test.mjs` drives headless Chromium (playwright-core)
//! through every page like a person would. It asserts what the page shows against the truth
//! computed here and against the API's own answers, and saves screenshots of every page under
//! `target/dashboard-screenshots/`.
//!
//! Needs `/usr/bin/chromium` (or `SENDTRACE_CHROMIUM`) and node; `devstack/setup.sh` installs
//! Chromium and the test's npm packages. Without a Chromium the test is skipped with a loud
//! message (the only skip).

use e2e::generate::{stream, Stream};
use e2e::{wait_until, Pipeline, Stack};
use schemas::{BounceClass, Event, EventType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The reporting zone: far from UTC, so many events fall on another day there.
const ZONE: &str = "Asia/Tokyo";

const KEY: &str = "dash-browser-key";
/// A key of tenant `acme` without the `messages` scope (the error states).
const STATS_KEY: &str = "dash-stats-key";
/// A key of a tenant without any data (the empty states).
const EMPTY_KEY: &str = "dash-empty-key";

fn api_config() -> String {
    format!(
        r#"reporting_time_zones = ["{ZONE}"]

[tenants.acme.keys.browser]
key = "{KEY}"
scopes = ["stats", "messages", "suppressions:write"]

[tenants.acme.keys.stats-only]
key = "{STATS_KEY}"
scopes = ["stats"]

[tenants.nobody.keys.browser]
key = "{EMPTY_KEY}"
scopes = ["stats", "messages"]
"#
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> Option<PathBuf> {
    let p = std::env::var("SENDTRACE_CHROMIUM").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

/// day → event type → count, days in `zone`.
fn days(s: &Stream, zone: chrono_tz::Tz) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (day, ty, _bounce, n) in s.expected_day_counts(zone) {
        *out.entry(day).or_default().entry(ty).or_default() += n;
    }
    out
}

/// What the pages must show, brute force from the generated events.
fn truth(s: &Stream) -> Value {
    let distinct = s.distinct();
    let machine = s.is_machine();
    let count = |f: &dyn Fn(&Event) -> bool| distinct.values().filter(|e| f(e)).count();
    let of = |t: EventType| count(&|e: &Event| e.event_type == t);
    let status = s.expected_status();
    let by_status = |wanted: &[&str]| -> Vec<&String> { status.iter().filter(|(_, st)| wanted.contains(&st.as_str())).map(|(k, _)| k).collect() };

    // the delivery with the longest chronology, its events in time order
    let mut by_delivery: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in distinct.values() {
        by_delivery.entry(e.delivery_key.as_str()).or_default().push(e);
    }
    let (key, mut events) = by_delivery.iter().max_by_key(|(k, v)| (v.len(), std::cmp::Reverse(*k))).map(|(k, v)| (k.to_string(), v.clone())).expect("deliveries");
    events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
    let recipient = events[0].recipient.to_ascii_lowercase();

    // deliveries per broadcast (the send record's)
    let mut broadcasts: BTreeMap<String, u64> = BTreeMap::new();
    for e in distinct.values().filter(|e| e.provider_event_name == "send_record") {
        if let Some(b) = &e.broadcast_id {
            *broadcasts.entry(b.clone()).or_default() += 1;
        }
    }
    let recipient_events: BTreeSet<&String> = distinct.values().filter(|e| e.recipient.to_ascii_lowercase() == recipient).map(|e| &e.event_id).collect();

    json!({
        "zone": ZONE,
        "kpi": {
            "sent": of(EventType::Sent),
            "delivered": of(EventType::Delivered),
            "hard_bounces": count(&|e: &Event| e.event_type == EventType::Bounced && e.bounce_class == Some(BounceClass::Hard)),
            "complained": of(EventType::Complained),
            "unsubscribed": of(EventType::Unsubscribed),
            "human_opens": count(&|e: &Event| matches!(e.event_type, EventType::Opened | EventType::Read) && !machine[&e.event_id]),
            "human_clicks": count(&|e: &Event| e.event_type == EventType::Clicked && !machine[&e.event_id]),
        },
        "days_utc": days(s, chrono_tz::UTC),
        "days_zone": days(s, ZONE.parse().expect("zone")),
        "deliveries": status.keys().collect::<Vec<_>>(),
        "bounced": by_status(&["bounced"]),
        "problems": by_status(&["failed", "bounced", "complained"]),
        "bounce_events": count(&|e: &Event| matches!(e.event_type, EventType::Bounced | EventType::Failed)),
        "chronology": { "delivery": key, "recipient": recipient, "events": events.iter().map(|e| &e.event_id).collect::<Vec<_>>() },
        "broadcasts": broadcasts,
        "recipient": { "address": recipient, "events": recipient_events },
        "suppress": "dashboard-browser-test@example.org",
    })
}

/// `npm ci` in tests/browser when playwright-core is missing (devstack/setup.sh does it too).
fn npm_ci(dir: &Path) {
    if dir.join("node_modules/playwright-core/package.json").exists() {
        return;
    }
    let out = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).output().expect("npm runs (node and npm are needed)");
    assert!(out.status.success(), "npm ci in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_truth_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        eprintln!("\n!!!!!!!! SKIPPED dashboard_browser: no Chromium at /usr/bin/chromium (SENDTRACE_CHROMIUM); devstack/setup.sh installs it with apt-get !!!!!!!!\n");
        return;
    };
    let browser_dir = root().join("tests/browser");
    npm_ci(&browser_dir);

    let stack = Stack::from_env();
    let mut p = Pipeline::with_aggregator_env(&stack, "dash-browser", vec![("SENDTRACE_REPORTING_TIME_ZONE".into(), ZONE.into())]).await;
    // sender health judged over the whole stream (a week, from 10 sends), so its complaint rate
    // flags the sender and the overview must show the banner
    let health_topic = format!("{}.health", p.events_topic);
    for (k, v) in [("SENDTRACE_HEALTH__INTERVAL_SECS", "1"), ("SENDTRACE_HEALTH__WINDOW_HOURS", "168"), ("SENDTRACE_HEALTH__MIN_SENT", "10"), ("SENDTRACE_HEALTH__TOPIC", &health_topic)] {
        p.aggregator_env.push((k.into(), v.into()));
    }
    let s = stream(61, 60);
    s.produce(&stack.brokers, &p.events_topic, 0..s.events.len()).await;
    p.start_aggregator().await;
    let (distinct, deliveries) = (s.distinct().len() as u64, s.expected_status().len() as u64);
    wait_until("the stream applied", Duration::from_secs(240), || async {
        (p.number("SELECT count() FROM events FINAL").await >= distinct && p.number("SELECT count() FROM deliveries FINAL").await >= deliveries).then_some(())
    })
    .await;
    wait_until("a flagged sender", Duration::from_secs(120), || async { (p.number("SELECT count() FROM sender_health FINAL WHERE flagged = 1").await >= 1).then_some(()) }).await;
    let (url, _api) = p.start_api(&api_config()).await;

    let truth = truth(&s);
    // the zone switch must be able to show something: some day differs between UTC and the zone
    assert_ne!(truth["days_utc"], truth["days_zone"], "the generated events fall on other days in {ZONE}");
    let dir = tempfile::tempdir().expect("tempdir");
    let truth_file = dir.path().join("truth.json");
    std::fs::write(&truth_file, serde_json::to_vec_pretty(&truth).expect("json")).expect("write truth");
    let shots = root().join("target/dashboard-screenshots");
    std::fs::remove_dir_all(&shots).ok(); // no stale screenshot passes for a new one
    std::fs::create_dir_all(&shots).expect("screenshot dir");

    let script = browser_dir.join("dashboard.test.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .env("DASHBOARD_URL", &url)
            .env("DASHBOARD_KEY", KEY)
            .env("DASHBOARD_STATS_KEY", STATS_KEY)
            .env("DASHBOARD_EMPTY_KEY", EMPTY_KEY)
            .env("DASHBOARD_TRUTH", &truth_file)
            .env("DASHBOARD_SCREENSHOTS", &shots)
            .env("CHROMIUM", &chromium)
            .output()
            .expect("node runs")
    })
    .await
    .expect("browser test ran");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "the browser test failed:\n{text}");
    assert!(text.contains("dashboard browser test: all"), "the browser test ran to its end:\n{text}");
    for page in ["overview", "overview-zone", "messages-filtered", "messages-drawer", "funnels", "broadcast-report", "issues", "suppressions", "recipient", "empty-overview", "empty-messages", "forbidden-messages"] {
        assert!(root().join(format!("target/dashboard-screenshots/{page}.png")).exists(), "screenshot of {page}");
    }
}
