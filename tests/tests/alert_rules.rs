//! `deploy/prometheus/alerts.yml` refers only to metrics the services export.
//!
//! The rules file is parsed (serde_yaml, unknown keys refused), the metric names of every
//! `expr` are extracted, and each must appear in the `/metrics` of the running services
//! (ingest, normalizer, aggregator, api on the real stack) after traffic that exercises the
//! paths those metrics count: webhooks stored and applied, a raw record and an event record
//! that become dead letters, an api request, and a ClickHouse outage under the aggregator (its
//! retries). A renamed metric, or a rule about a metric nothing exports, fails the test.
//!
//! Limitation: `promtool` is not used (not installed here). Metric names are taken from each
//! expression by a small PromQL tokenizer ([`metric_names`]): string literals, label matchers
//! `{..}`, ranges and subqueries `[..]` and the label lists of `by`/`without`/`on`/`ignoring`/
//! `group_left`/`group_right` are dropped; an identifier followed by `(` is a function or an
//! aggregation; keywords and aggregation operators are dropped; the rest are metric names. It does not check that an
//! expression is valid PromQL beyond that (balanced brackets are checked).

use e2e::kafka::produce_in_order;
use e2e::proxy::Proxy;
use e2e::{ses, wait_until, Pipeline, Stack};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

const CLAUSES: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Binary operators and modifiers, and the aggregation operators (which may be followed by a
/// `by`/`without` clause instead of `(`).
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
];

/// The metric names an expression refers to (see the module doc for the rules).
fn metric_names(expr: &str) -> BTreeSet<String> {
    // 1. blank out strings, `{..}` and `[..]`
    let mut clean = String::with_capacity(expr.len());
    let (mut quote, mut braces, mut brackets) = (None::<char>, 0i32, 0i32);
    let mut escaped = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            clean.push(' ');
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces > 0 || brackets > 0 => {}
            _ => {
                clean.push(c);
                continue;
            }
        }
        assert!(braces >= 0 && brackets >= 0, "unbalanced brackets in {expr:?}");
        clean.push(' ');
    }
    assert!(quote.is_none() && braces == 0 && brackets == 0, "unbalanced quotes or brackets in {expr:?}");
    // 2. tokens: identifiers, numbers (a digit first), single characters
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = clean.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == ':' || c == '.' {
            let mut t = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_' || **c == ':' || **c == '.') {
                t.push(c);
                chars.next();
            }
            tokens.push(t);
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            chars.next();
        }
    }
    // 3. walk: skip clause label lists, functions, keywords and numbers
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let next_is_paren = tokens.get(i + 1).is_some_and(|n| n == "(");
        let is_ident = t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
        if is_ident && CLAUSES.contains(&t.to_lowercase().as_str()) {
            i += 1;
            if next_is_paren {
                let mut depth = 0;
                while i < tokens.len() {
                    match tokens[i].as_str() {
                        "(" => depth += 1,
                        ")" => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            continue;
        }
        if is_ident && !next_is_paren && !KEYWORDS.contains(&t.to_lowercase().as_str()) {
            names.insert(t.clone());
        }
        i += 1;
    }
    names
}

#[test]
fn the_tokenizer_finds_metric_names_only() {
    let got = metric_names(
        r#"sum by (job, le) (rate(a_total{status=~"5..", x="}{[" }[5m])) / on (job) group_left (team) sum without (instance) (b_bucket[10m:1m] offset 5m) > 0.05 and bool c unless histogram_quantile(0.99, d) > 1e3"#,
    );
    assert_eq!(got, ["a_total", "b_bucket", "c", "d"].into_iter().map(String::from).collect());
    assert_eq!(metric_names("max by (instance, condition) (sendtrace_readiness_failing) == 1"), BTreeSet::from(["sendtrace_readiness_failing".to_string()]));
}

/// Metric names in a Prometheus text exposition (histograms as `_bucket`, `_sum`, `_count`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(String::from))
        .collect()
}

fn rules() -> RuleFile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus/alerts.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("alerts.yml")).expect("alerts.yml is a Prometheus rule file")
}

/// The file is well formed: unique alert names, a severity, a summary, valid `for`, and at
/// least one `sendtrace_` metric per expression; it covers what a platform team alerts on.
#[test]
fn the_rule_file_is_well_formed_and_covers_the_obvious_conditions() {
    let file = rules();
    let mut alerts = BTreeSet::new();
    let mut all = BTreeSet::new();
    for g in &file.groups {
        assert!(!g.name.is_empty() && !g.rules.is_empty(), "group {g:?}");
        for r in &g.rules {
            assert!(alerts.insert(r.alert.clone()), "alert {} defined twice", r.alert);
            assert!(["critical", "warning"].contains(&r.labels.get("severity").map(String::as_str).unwrap_or_default()), "{}: severity", r.alert);
            assert!(r.annotations.get("summary").is_some_and(|s| !s.is_empty()), "{}: summary", r.alert);
            if let Some(f) = &r.for_ {
                let (n, unit) = f.split_at(f.len() - 1);
                assert!(n.parse::<u32>().is_ok() && ["s", "m", "h"].contains(&unit), "{}: for {f:?}", r.alert);
            }
            let names = metric_names(&r.expr);
            assert!(!names.is_empty(), "{}: no metric in {}", r.alert, r.expr);
            for n in &names {
                assert!(n.starts_with("sendtrace_"), "{}: {n} is not a sendtrace metric", r.alert);
            }
            all.extend(names);
        }
    }
    for must in [
        "sendtrace_readiness_failing",
        "sendtrace_normalizer_consumer_lag_records",
        "sendtrace_aggregator_consumer_lag_records",
        "sendtrace_normalizer_dead_letters_total",
        "sendtrace_aggregator_dead_letters_total",
        "sendtrace_ingest_http_requests_total",
        "sendtrace_api_requests_total",
        "sendtrace_aggregator_sink_retries_total",
    ] {
        assert!(all.contains(must), "no alert on {must}");
    }
}

async fn scrape(url: &str) -> String {
    reqwest::get(url).await.expect("metrics reachable").text().await.expect("metrics text")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_an_alert_refers_to_is_exported() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "alerts").await;
    let proxy = Proxy::start(stack.clickhouse_url.trim_start_matches("http://").to_string()).await;
    p.aggregator_env.push(("SENDTRACE_CLICKHOUSE__URL".into(), format!("http://127.0.0.1:{}", proxy.port)));
    p.aggregator_env.push(("SENDTRACE_MAX_RETRY_BACKOFF_MS".into(), "500".into()));
    p.start_all().await;
    let (api_url, _api) = p.start_api("[tenants.acme.keys.dash]\nkey = \"acme-key\"\nscopes = [\"stats\"]\n").await;
    let (n, a) = p.admin_ports();
    let urls = [
        format!("http://127.0.0.1:{}/metrics", p.ingest_admin_port()),
        format!("http://127.0.0.1:{n}/metrics"),
        format!("http://127.0.0.1:{a}/metrics"),
        format!("{api_url}/metrics"),
    ];

    // traffic: a webhook stored and applied
    let (status, text) = p.post_sns("acme", &ses::body("event_delivery.json", "alerts-1", None)).await;
    assert_eq!(status, 200, "{text}");
    wait_until("the first event in ClickHouse", Duration::from_secs(90), || async {
        (p.number("SELECT count() FROM events FINAL WHERE provider_message_id = 'alerts-1'").await >= 1).then_some(())
    })
    .await;
    // an api request (counted whatever its answer)
    let resp = reqwest::Client::new().get(format!("{api_url}/v1/stats?granularity=day")).bearer_auth("acme-key").send().await.unwrap();
    assert!(!resp.status().is_server_error(), "{}", resp.status());
    // a raw record and an event record nobody can read: one dead letter each
    produce_in_order(&stack.brokers, &p.raw_topic, 0, &[Some(b"not an envelope".to_vec())]).await;
    produce_in_order(&stack.brokers, &p.events_topic, 0, &[Some(b"not an event".to_vec())]).await;
    for (url, metric) in [(&urls[1], "sendtrace_normalizer_dead_letters_total"), (&urls[2], "sendtrace_aggregator_dead_letters_total")] {
        wait_until(metric, Duration::from_secs(60), || async { exported(&scrape(url).await).contains(metric).then_some(()) }).await;
    }
    // ClickHouse away under the aggregator while a webhook arrives: it retries, then applies it
    proxy.set_up(false);
    let (status, text) = p.post_sns("acme", &ses::body("event_delivery.json", "alerts-2", None)).await;
    assert_eq!(status, 200, "{text}");
    wait_until("aggregator retries counted", Duration::from_secs(60), || async {
        exported(&scrape(&urls[2]).await).contains("sendtrace_aggregator_sink_retries_total").then_some(())
    })
    .await;
    proxy.set_up(true);
    wait_until("the second event in ClickHouse after the outage", Duration::from_secs(90), || async {
        (p.number("SELECT count() FROM events FINAL WHERE provider_message_id = 'alerts-2'").await >= 1).then_some(())
    })
    .await;
    // lag is measured on a timer (probe_interval_ms): wait for one measurement of each consumer
    for (url, metric) in [(&urls[1], "sendtrace_normalizer_consumer_lag_records"), (&urls[2], "sendtrace_aggregator_consumer_lag_records")] {
        wait_until(metric, Duration::from_secs(30), || async { exported(&scrape(url).await).contains(metric).then_some(()) }).await;
    }

    let mut names = BTreeSet::new();
    for url in &urls {
        names.extend(exported(&scrape(url).await));
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for g in rules().groups {
        for r in g.rules {
            for m in metric_names(&r.expr) {
                checked += 1;
                if !names.contains(&m) {
                    missing.push(format!("{}: {m}", r.alert));
                }
            }
        }
    }
    println!("{checked} metric references checked against {} exported metric names", names.len());
    assert!(missing.is_empty(), "alert rules refer to metrics no service exports: {missing:#?}");
}
