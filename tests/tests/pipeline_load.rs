//! `pipeline-load`'s machinery (issue 14, goal 3), small: a few seconds of the open-loop load
//! through a real pipeline, every accepted event in ClickHouse exactly once, the events by
//! provider and type equal to what was generated, and freshness read from ClickHouse's clocks.
//! The measuring run is `scripts/load.sh` (release builds; BENCHMARKS.md §10).

use e2e::load::{self, Plan};
use e2e::observe::{self, CpuMeter};
use e2e::{Pipeline, Stack};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_short_open_loop_load_lands_exactly_with_its_freshness() {
    let stack = Stack::from_env();
    let mut p = Pipeline::new(&stack, "pipeline-load").await;
    p.start_all().await;
    let plan = Plan {
        ingest_url: p.ingest_url.clone(),
        tenant: "acme".into(),
        run: "t".into(),
        rate: 300.0,
        seconds: 3.0,
        max_in_flight: 64,
        sendgrid_batch: 20,
        records_batch: 40,
    };
    let (reqs, truth) = load::requests_with_truth(&plan);
    let expected: usize = truth.values().sum();
    assert!(expected >= 900, "{expected} events planned");
    // the CPU budget's meter (pipeline-load prints it per event): each service's CPU time
    // during the run, read from /proc, grows with the work it did
    let services: Vec<(String, u32)> = [("ingest", &p.ingest), ("normalizer", &p.normalizer), ("aggregator", &p.aggregator)]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s.as_ref().expect("started").pid()))
        .collect();
    let meter = CpuMeter::start(&services);
    let posted = load::post(&plan, reqs).await;
    assert_eq!(posted.refused, 0, "every request accepted in the end");
    assert_eq!(posted.accepted_events, expected);
    let landed = load::wait_landed(&stack.clickhouse_url, &p.database, "acme", "t", expected, Duration::from_secs(120)).await.expect("ClickHouse");
    assert_eq!(landed.events as usize, expected, "every accepted event landed");
    let (wall, spent) = meter.stop("load client");
    assert_eq!(spent.len(), 4, "{spent:?}");
    for s in &spent {
        let cpu = s.cpu.unwrap_or_else(|| panic!("{} not readable", s.name));
        assert!(cpu > Duration::ZERO && cpu <= wall * observe::cores() as u32, "{} spent {cpu:?} in {wall:?}", s.name);
    }
    // rows can exceed events until a merge (an event re-attributed by a late send record is
    // written again, same id); the table's own view of them holds each once
    assert!(landed.rows as usize >= expected);
    // an event written again (re-attributed by a late send record, or replayed) has a row more
    assert!(landed.rewritten <= landed.rows - landed.events, "{landed:?}");
    assert_eq!(p.number("SELECT count() FROM events FINAL WHERE startsWith(provider_message_id, 'ld-t-')").await as usize, expected, "none twice");
    assert!(0.0 <= landed.p50_ms && landed.p50_ms <= landed.p99_ms && landed.p99_ms <= landed.max_ms, "{landed:?}");
    assert!(landed.max_ms < 120_000.0 && landed.span_s > 0.0 && landed.rate() > 0.0, "{landed:?}");

    let rows = p.rows("SELECT provider, event_type, count() AS n FROM events FINAL WHERE startsWith(provider_message_id, 'ld-t-') GROUP BY provider, event_type").await;
    let found: BTreeMap<(String, String), usize> = rows
        .iter()
        .map(|r| ((r["provider"].as_str().unwrap_or_default().to_string(), r["event_type"].as_str().unwrap_or_default().to_string()), r["n"].as_str().and_then(|n| n.parse().ok()).or(r["n"].as_u64().map(|n| n as usize)).unwrap_or(0)))
        .collect();
    let truth: BTreeMap<(String, String), usize> = truth.into_iter().map(|((p, t), n)| ((p.to_string(), t.to_string()), n)).collect();
    assert_eq!(found, truth, "events by provider and type");

    // The stand-in alone (scripts/load.sh prints it beside each run): one aggregator unit's
    // ClickHouse calls replayed with this run's rows, timed, and its scratch tables dropped.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clickhouse-alone"))
        .args(["--clickhouse-url", &stack.clickhouse_url, "--database", &p.database, "--unit-events", "300", "--repeat", "1"])
        .output()
        .expect("clickhouse-alone runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("one aggregator unit = 300 events") && text.contains("events/s through one partition's units in series"), "{text}");
    let scratch = p.number(&format!("SELECT count() FROM system.tables WHERE database = '{}' AND endsWith(name, '__alone')", p.database)).await;
    assert_eq!(scratch, 0, "scratch tables dropped");
}
