//! deploy/grafana on the real stack, so the dashboard cannot rot: every panel's SQL and every
//! template variable's query of deploy/grafana/dashboards/sendtrace.json is expanded as the
//! ClickHouse data source plugin (grafana-clickhouse-datasource v4) expands it, run against
//! ClickHouse fed with a generated stream, and must succeed and return rows; every panel's answer
//! is compared with a brute-force computation over the generated events. A panel without a check
//! here fails the test.
//!
//! The expansion, in the plugin's order: `$__conditionalAll(condition, $var)` becomes `1=1`
//! when the variable is All (or empty), else the condition (the plugin's front end,
//! `applyConditionalAll`); then the template variables (`${var}`, `$var`: a multi-value variable
//! as `'a','b'`; `${var:singlequote}` always quoted); then the back end's macros
//! (`pkg/macros/macros.go`): `$__timeFilter(c)` = `c >= toDateTime(from) AND c <= toDateTime(to)`
//! (seconds), `$__timeFilter_ms(c)` with `fromUnixTimestamp64Milli`, `$__dateFilter(c)` =
//! `c >= toDate('from day') AND c <= toDate('to day')`, `$__fromTime`, `$__toTime` (`_ms`),
//! `$__timeInterval(c)` = `toStartOfInterval(toDateTime(c), INTERVAL <interval> second)`,
//! `$__timeInterval_ms(c)`, `$__interval_s`. Anything left starting with `$` fails the test.

use chrono::{DateTime, Utc};
use e2e::analysts::{expected_flagged, expected_suppressions, feed, machine_of, reading_rule_broken, run_sql, utc_day, ZONE};
use e2e::generate::Stream;
use e2e::wait_until;
use rust_decimal::Decimal;
use schemas::{BounceClass, Event, EventType};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Every panel with a check below; the dashboard must have exactly these.
const CHECKED: &[&str] = &[
    "Events per day by type",
    "Unique human openers",
    "Delivery, bounce and complaint rates",
    "Cost by currency",
    "Top bounce reasons",
    "Sender health flags",
    "Suppressions added",
];

fn dashboard() -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/grafana/dashboards/sendtrace.json")).expect("dashboard JSON");
    serde_json::from_str(&text).expect("valid JSON")
}

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Panels, rows' nested panels included: (title, rawSql of each target).
fn panels(d: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().expect("panels").iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let sql = p["targets"].as_array().map(|t| t.iter().map(|t| t["rawSql"].as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default();
        out.push((p["title"].as_str().unwrap_or_default().to_string(), sql));
    }
    out.reverse();
    out
}

/// The dashboard variables' values for one run.
#[derive(Clone)]
struct Vars {
    tenant: String,
    period: String,
    /// `None`: All.
    provider: Option<Vec<String>>,
    /// The provider variable's options (what All stands for).
    all_providers: Vec<String>,
}

impl Vars {
    /// (is All or empty, values).
    fn get(&self, name: &str) -> (bool, Vec<String>) {
        match name {
            "tenant" => (self.tenant.is_empty(), vec![self.tenant.clone()]),
            "period" => (self.period.is_empty(), vec![self.period.clone()]),
            "provider" => match &self.provider {
                None => (true, self.all_providers.clone()),
                Some(v) => (v.is_empty(), v.clone()),
            },
            other => panic!("the dashboard uses variable `{other}`, which this test does not know"),
        }
    }

    fn multi(name: &str) -> bool {
        name == "provider"
    }
}

#[derive(Clone, Copy)]
struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval_secs: i64,
}

/// The arguments of a macro call whose `(` is at `open`, split at top-level commas, and the end (after `)`).
fn macro_args(sql: &str, open: usize) -> (Vec<String>, usize) {
    let mut depth = 0;
    let mut args = Vec::new();
    let mut start = open + 1;
    for (i, c) in sql[open..].char_indices() {
        let i = open + i;
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(sql[start..i].to_string());
                    return (args, i + 1);
                }
            }
            ',' if depth == 1 => {
                args.push(sql[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    panic!("unclosed macro call in {sql}")
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `sql` as the plugin sends it to ClickHouse.
fn expand(sql: &str, vars: &Vars, range: &Range) -> String {
    // 1. $__conditionalAll(condition, $var), last first (the plugin's applyConditionalAll)
    let mut s = sql.to_string();
    while let Some(at) = s.rfind("$__conditionalAll(") {
        let (args, end) = macro_args(&s, at + "$__conditionalAll".len());
        assert_eq!(args.len(), 2, "$__conditionalAll takes a condition and a variable: {sql}");
        let var = args[1].trim().trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
        let (all, _) = vars.get(var);
        let phrase = if all { "1=1".to_string() } else { args[0].clone() };
        s.replace_range(at..end, &phrase);
    }
    // 2. template variables
    for name in ["tenant", "period", "provider"] {
        let (_, values) = vars.get(name);
        let quoted = values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(",");
        let plain = if Vars::multi(name) { quoted.clone() } else { values.join(",") };
        s = s.replace(&format!("${{{name}:singlequote}}"), &quoted).replace(&format!("${{{name}}}"), &plain);
        // `$name` not followed by more of an identifier
        let bare = format!("${name}");
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(&bare) {
            let after = &rest[i + bare.len()..];
            out.push_str(&rest[..i]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&bare);
            } else {
                out.push_str(&plain);
            }
            rest = after;
        }
        out.push_str(rest);
        s = out;
    }
    // 3. the back end's macros
    let (from_s, to_s) = (range.from.timestamp(), range.to.timestamp());
    let (from_ms, to_ms) = (range.from.timestamp_millis(), range.to.timestamp_millis());
    let (from_day, to_day) = (range.from.date_naive(), range.to.date_naive());
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        let (arg, next) = if after[name_len..].starts_with('(') {
            let close = after[name_len..].find(')').expect("closing parenthesis") + name_len;
            (after[name_len + 1..close].trim().to_string(), &after[close + 1..])
        } else {
            (String::new(), &after[name_len..])
        };
        let c = &arg;
        out.push_str(&match name {
            "fromTime" => format!("toDateTime({from_s})"),
            "toTime" => format!("toDateTime({to_s})"),
            "fromTime_ms" => format!("fromUnixTimestamp64Milli({from_ms})"),
            "toTime_ms" => format!("fromUnixTimestamp64Milli({to_ms})"),
            "timeFilter" => format!("{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})"),
            "timeFilter_ms" => format!("{c} >= fromUnixTimestamp64Milli({from_ms}) AND {c} <= fromUnixTimestamp64Milli({to_ms})"),
            "dateFilter" => format!("{c} >= toDate('{from_day}') AND {c} <= toDate('{to_day}')"),
            "timeInterval" => format!("toStartOfInterval(toDateTime({c}), INTERVAL {} second)", range.interval_secs.max(1)),
            "timeInterval_ms" => format!("toStartOfInterval(toDateTime64({c}, 3), INTERVAL {} millisecond)", (range.interval_secs * 1000).max(1)),
            "interval_s" => range.interval_secs.max(1).to_string(),
            other => panic!("macro $__{other} is not one the plugin expands (or this test does not know it): {sql}"),
        });
        rest = next;
    }
    out.push_str(rest);
    assert!(!out.contains('$'), "unexpanded reference left in\n{out}\n(from {sql})");
    out
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_else(|| panic!("an integer: {v}")),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("an integer: {v}")),
        _ => panic!("an integer: {v}"),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_string()
}

fn local_day(ms: i64, period: &str) -> String {
    use chrono::TimeZone;
    match period.strip_prefix("day:") {
        Some(zone) => {
            let tz: chrono_tz::Tz = zone.parse().expect("zone");
            let utc = DateTime::from_timestamp_millis(ms).unwrap_or_default();
            tz.from_utc_datetime(&utc.naive_utc()).date_naive().to_string()
        }
        None => utc_day(ms),
    }
}

struct Ctx {
    url: String,
    database: String,
    s: Stream,
    events: Vec<Event>,
    machine: BTreeMap<String, &'static str>,
    range: Range,
}

impl Ctx {
    async fn run(&self, sql: &str, vars: &Vars) -> Vec<Value> {
        run_sql(&self.url, &self.database, &expand(sql, vars, &self.range), &[]).await
    }

    /// Distinct events of the tenant whose bucket (of `period`) is in the dashboard's date range
    /// and whose provider is selected.
    fn in_days<'a>(&'a self, vars: &'a Vars) -> impl Iterator<Item = &'a Event> + 'a {
        let (from, to) = (self.range.from.date_naive().to_string(), self.range.to.date_naive().to_string());
        let (_, providers) = vars.get("provider");
        self.events.iter().filter(move |e| {
            let d = local_day(e.occurred_at, &vars.period);
            d >= from && d <= to && providers.contains(&e.provider)
        })
    }

    /// Distinct events within the dashboard's time range (second precision, both ends included).
    fn in_time(&self, ms: i64) -> bool {
        ms >= self.range.from.timestamp() * 1000 && ms <= self.range.to.timestamp() * 1000
    }
}

async fn check(ctx: &Ctx, title: &str, sql: &str, base: &Vars) {
    let ses = Vars { provider: Some(vec!["ses".into()]), ..base.clone() };
    let zoned = Vars { period: format!("day:{ZONE}"), ..base.clone() };
    let zoned_two = Vars { provider: Some(vec!["ses".into(), "twilio".into()]), ..zoned.clone() };
    match title {
        "Events per day by type" => {
            for vars in [base, &ses, &zoned, &zoned_two] {
                let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
                for e in ctx.in_days(vars) {
                    *want.entry((local_day(e.occurred_at, &vars.period), e.event_type.as_str().to_string())).or_default() += 1;
                }
                let got: BTreeMap<(String, String), i64> = ctx.run(sql, vars).await.iter().map(|r| ((text(&r["time"])[..10].to_string(), text(&r["event_type"])), int(&r["events"]))).collect();
                assert_eq!(got, want, "{title}, period {}, providers {:?}", vars.period, vars.provider);
            }
        }
        "Unique human openers" => {
            for vars in [base, &ses, &zoned] {
                let want: BTreeSet<String> = ctx
                    .in_days(vars)
                    .filter(|e| matches!(e.event_type, EventType::Opened | EventType::Read) && ctx.machine[&e.event_id].is_empty())
                    .map(|e| e.recipient.to_ascii_lowercase())
                    .collect();
                let rows = ctx.run(sql, vars).await;
                assert_eq!(int(&rows[0]["human_openers"]), want.len() as i64, "{title}, period {}, providers {:?}", vars.period, vars.provider);
            }
        }
        "Delivery, bounce and complaint rates" => {
            for vars in [base, &ses] {
                let mut counts: BTreeMap<String, [i64; 4]> = BTreeMap::new();
                for e in ctx.in_days(vars) {
                    let c = counts.entry(local_day(e.occurred_at, &vars.period)).or_default();
                    match (e.event_type, e.bounce_class) {
                        (EventType::Sent, _) => c[0] += 1,
                        (EventType::Delivered, _) => c[1] += 1,
                        (EventType::Bounced, Some(BounceClass::Hard)) => c[2] += 1,
                        (EventType::Complained, _) => c[3] += 1,
                        _ => {}
                    }
                }
                let ratio = |n: i64, d: i64| (d != 0).then(|| n as f64 / d as f64);
                let want: BTreeMap<String, [Option<f64>; 3]> = counts.into_iter().map(|(day, [s, d, b, c])| (day, [ratio(d, s), ratio(b, s), ratio(c, d)])).collect();
                let rows = ctx.run(sql, vars).await;
                let got: BTreeMap<String, [Option<f64>; 3]> = rows
                    .iter()
                    .map(|r| (text(&r["time"])[..10].to_string(), ["delivery_rate", "hard_bounce_rate", "complaint_rate"].map(|c| r[c].as_f64())))
                    .collect();
                assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{title}: days");
                for (day, w) in &want {
                    for (i, (g, w)) in got[day].iter().zip(w).enumerate() {
                        assert!(g.zip(*w).is_some_and(|(g, w)| (g - w).abs() < 1e-9) || (g.is_none() && w.is_none()), "{title} {day} #{i}: {g:?} != {w:?}");
                    }
                }
            }
        }
        "Cost by currency" => {
            for vars in [base, &ses] {
                let mut want: BTreeMap<String, (Decimal, i64)> = BTreeMap::new();
                for e in ctx.in_days(vars) {
                    if let Some(c) = &e.cost {
                        let w = want.entry(c.unit.clone()).or_default();
                        w.0 += c.amount;
                        w.1 += 1;
                    }
                }
                let got: BTreeMap<String, (Decimal, i64)> = ctx
                    .run(sql, vars)
                    .await
                    .iter()
                    .map(|r| (text(&r["currency"]), (Decimal::from_str(&text(&r["cost"])).expect("decimal"), int(&r["charged_events"]))))
                    .collect();
                assert_eq!(got, want, "{title}, providers {:?}", vars.provider);
            }
        }
        "Top bounce reasons" => {
            for vars in [base, &ses] {
                let (_, providers) = vars.get("provider");
                let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
                for e in ctx.events.iter().filter(|e| e.event_type == EventType::Bounced && ctx.in_time(e.occurred_at) && providers.contains(&e.provider)) {
                    let reason = e.error_reason.clone().or(e.error_code.clone()).unwrap_or_default();
                    *counts.entry((reason, e.bounce_class.map(|b| b.as_str()).unwrap_or_default().to_string())).or_default() += 1;
                }
                let mut want: Vec<(String, String, i64)> = counts.into_iter().map(|((r, b), n)| (r, b, n)).collect();
                want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
                want.truncate(10);
                let got: Vec<(String, String, i64)> = ctx.run(sql, vars).await.iter().map(|r| (text(&r["reason"]), text(&r["bounce_class"]), int(&r["bounces"]))).collect();
                assert_eq!(got, want, "{title}, providers {:?}", vars.provider);
            }
        }
        "Sender health flags" => {
            let truth: BTreeSet<(String, String, String)> = expected_flagged(&ctx.s);
            assert!(!truth.is_empty(), "the stream has a flagged sender");
            wait_until("the flags panel shows the truth", Duration::from_secs(90), || async {
                let rows = ctx.run(sql, base).await;
                let flagged: BTreeSet<(String, String, String)> = rows
                    .iter()
                    .filter(|r| r["state"] == "flagged")
                    .map(|r| (text(&r["provider"]), text(&r["sending_domain"]), text(&r["sending_account"])))
                    .collect();
                (flagged == truth).then_some(())
            })
            .await;
        }
        "Suppressions added" => {
            for interval_secs in [86_400, 3_600] {
                let range = Range { interval_secs, ..ctx.range };
                let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
                for s in expected_suppressions(&ctx.s).values().filter(|s| ctx.in_time(s.occurred_at)) {
                    let bucket = s.occurred_at.div_euclid(interval_secs * 1000) * interval_secs;
                    let t = DateTime::from_timestamp(bucket, 0).unwrap_or_default().format("%Y-%m-%d %H:%M:%S").to_string();
                    *want.entry((t, s.reason.to_string())).or_default() += 1;
                }
                let rows = run_sql(&ctx.url, &ctx.database, &expand(sql, base, &range), &[]).await;
                let got: BTreeMap<(String, String), i64> = rows.iter().map(|r| ((text(&r["time"]), text(&r["reason"])), int(&r["addresses"]))).collect();
                assert_eq!(got, want, "{title} per {interval_secs} s and reason");
            }
        }
        other => panic!("dashboard panel `{other}` has no check in tests/tests/grafana_panels.rs"),
    }
}

/// The provisioning files agree with each other, with the read-only ClickHouse user and with the
/// dashboard; every panel is a SQL query of the provisioned data source and has a check here.
#[test]
fn provisioning_and_dashboard_are_consistent() {
    let ds = yaml("deploy/grafana/provisioning/datasources/clickhouse.yaml");
    let ds = &ds["datasources"][0];
    assert_eq!(ds["type"].as_str(), Some("grafana-clickhouse-datasource"));
    let uid = ds["uid"].as_str().expect("a fixed uid the dashboard names");
    let user = ds["jsonData"]["username"].as_str().expect("username");
    let users = std::fs::read_to_string(format!("{ROOT}/deploy/grafana/clickhouse-reader.xml")).expect("clickhouse-reader.xml");
    assert!(users.contains(&format!("<{user}>")) && users.contains("<readonly>2</readonly>"), "the data source reads as the read-only user {user}");
    let grants: Vec<&str> = users.lines().filter_map(|l| l.trim().strip_prefix("<query>")).collect();
    assert_eq!(grants, ["GRANT SELECT ON sendtrace.*</query>"], "the reader may only SELECT");
    assert_eq!((ds["jsonData"]["host"].as_str(), ds["jsonData"]["port"].as_u64(), ds["jsonData"]["protocol"].as_str()), (Some("clickhouse"), Some(8123), Some("http")));
    assert_eq!(ds["jsonData"]["defaultDatabase"].as_str(), Some("sendtrace"));
    assert!(ds["secureJsonData"]["password"].as_str().is_some_and(|p| p.starts_with('$')), "the password comes from the environment");

    let provider = yaml("deploy/grafana/provisioning/dashboards/sendtrace.yaml");
    let path = provider["providers"][0]["options"]["path"].as_str().expect("dashboards path");
    assert_eq!(path, "/etc/grafana/dashboards", "where docker-compose.yml mounts deploy/grafana/dashboards");

    let d = dashboard();
    assert!(d["uid"].is_string() && d["title"].is_string() && d["schemaVersion"].is_u64());
    let mut ids = BTreeSet::new();
    let mut titles = Vec::new();
    let mut all: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    all.extend(d["templating"]["list"].as_array().expect("variables"));
    for p in all {
        assert_eq!(p["datasource"]["uid"].as_str(), Some(uid), "{}: the provisioned data source", p["title"]);
        assert_eq!(p["datasource"]["type"].as_str(), Some("grafana-clickhouse-datasource"));
        if let Some(targets) = p["targets"].as_array() {
            assert!(ids.insert(p["id"].as_u64().expect("panel id")), "unique panel ids");
            assert!(p["gridPos"]["w"].is_u64() && p["gridPos"]["h"].is_u64(), "{}: placed", p["title"]);
            titles.push(p["title"].as_str().unwrap().to_string());
            for t in targets {
                assert_eq!(t["editorType"].as_str(), Some("sql"), "{}: raw SQL", p["title"]);
                assert_eq!(t["datasource"]["uid"].as_str(), Some(uid));
                let sql = t["rawSql"].as_str().unwrap_or_default();
                assert!(!sql.trim().is_empty());
                assert_eq!(reading_rule_broken(sql), None, "{}: reads a table as docs/analysts.md says not to", p["title"]);
            }
        }
    }
    let mut want: Vec<String> = CHECKED.iter().map(|s| s.to_string()).collect();
    want.sort();
    titles.sort();
    assert_eq!(titles, want, "every panel has a check in tests/tests/grafana_panels.rs and every check a panel");
}

/// The expansion itself, against the plugin's documented forms.
#[test]
fn macros_expand_as_the_plugin_does() {
    let range = Range {
        from: DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap(),
        to: DateTime::from_timestamp(1_700_086_400, 0).unwrap(),
        interval_secs: 60,
    };
    let all = Vars { tenant: "acme".into(), period: "day".into(), provider: None, all_providers: vec!["ses".into(), "twilio".into()] };
    let two = Vars { provider: Some(vec!["ses".into(), "o'x".into()]), ..all.clone() };
    let sql = "SELECT $__timeInterval(t) FROM x WHERE tenant = '${tenant}' AND $__timeFilter(t) AND $__dateFilter(d) AND a >= $__fromTime_ms AND $__conditionalAll(p IN (${provider:singlequote}), $provider) AND $__interval_s > 0";
    assert_eq!(
        expand(sql, &all, &range),
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 60 second) FROM x WHERE tenant = 'acme' AND t >= toDateTime(1700000000) AND t <= toDateTime(1700086400) \
         AND d >= toDate('2023-11-14') AND d <= toDate('2023-11-15') AND a >= fromUnixTimestamp64Milli(1700000000123) AND 1=1 AND 60 > 0"
    );
    assert!(expand(sql, &two, &range).contains("AND p IN ('ses','o\\'x') AND 60"), "{}", expand(sql, &two, &range));
    assert!(std::panic::catch_unwind(|| expand("SELECT $__unknownMacro(x)", &all, &range)).is_err(), "an unknown macro fails");
    assert!(std::panic::catch_unwind(|| expand("SELECT '$other'", &all, &range)).is_err(), "an unknown variable is left and fails");
    assert_eq!(reading_rule_broken("SELECT count() FROM events WHERE 1"), Some("`events` without FINAL".into()));
    assert_eq!(reading_rule_broken("SELECT events FROM counters"), Some("`counters` without sum()".into()));
    assert_eq!(reading_rule_broken("SELECT count() FROM events FINAL"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_runs_and_shows_the_truth() {
    let d = dashboard();
    let stack = e2e::Stack::from_env();
    let (p, acme, _beta) = feed(&stack, "grafana", 400).await;
    let now = Utc::now();
    // three days: part of the five-day stream is outside the range, so the time filters must work
    let range = Range { from: now - chrono::Duration::days(3), to: now, interval_secs: 86_400 };
    let events: Vec<Event> = acme.distinct().into_values().cloned().collect();
    let machine = machine_of(&acme);
    let ctx = Ctx { url: stack.clickhouse_url.clone(), database: p.database.clone(), s: acme, events, machine, range };
    assert!(ctx.events.iter().any(|e| !ctx.in_time(e.occurred_at)), "some events fall before the range");

    // template variables: each query runs (with the variables it depends on) and lists the options
    let mut vars = Vars { tenant: "acme".into(), period: "day".into(), provider: None, all_providers: Vec::new() };
    let mut options: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in d["templating"]["list"].as_array().expect("variables") {
        let name = v["name"].as_str().expect("name").to_string();
        let rows = ctx.run(v["query"].as_str().expect("a SQL variable query"), &vars).await;
        let values: Vec<String> = rows.iter().map(|r| r.as_object().and_then(|o| o.values().next()).map(text).unwrap_or_default()).collect();
        if name == "provider" {
            vars.all_providers = values.clone();
        }
        options.insert(name, values);
    }
    assert_eq!(options["tenant"], ["acme", "beta"]);
    assert_eq!(options["period"], ["day".to_string(), format!("day:{ZONE}")]);
    assert_eq!(options["provider"], ["sendgrid", "ses", "twilio"]);

    for (title, sqls) in panels(&d) {
        for sql in &sqls {
            // every panel runs and returns rows, with All and with one provider
            for v in [&vars, &Vars { provider: Some(vec!["ses".into()]), ..vars.clone() }] {
                let rows = ctx.run(sql, v).await;
                assert!(!rows.is_empty(), "panel `{title}` returned no rows (providers {:?})", v.provider);
            }
            // and at the hourly interval Grafana would pick for a shorter range
            let hourly = Range { interval_secs: 3_600, ..ctx.range };
            assert!(!run_sql(&ctx.url, &ctx.database, &expand(sql, &vars, &hourly), &[]).await.is_empty(), "panel `{title}` at a 1 h interval");
            check(&ctx, &title, sql, &vars).await;
            eprintln!("panel {title} shows the truth");
        }
    }
}
