//! `aggregator migrate` is versioned and idempotent: every version is recorded once,
//! and a second run applies nothing and changes nothing. A database an older release
//! left at version 1 upgrades in place, and the unique-recipient sets are backfilled
//! from its event rows.

use aggregator::config::ClickHouseConfig;
use e2e::{Pipeline, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn migrate_twice_is_harmless() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "migrate").await; // runs migrate once
    let tables = p.query("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name FORMAT TabSeparated").await;
    let versions = p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await;
    let expected: Vec<String> = schemas::ddl::MIGRATIONS.iter().map(|m| m.0.to_string()).collect();
    assert_eq!(versions.split_whitespace().collect::<Vec<_>>(), expected);
    p.migrate().await;
    assert_eq!(p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await, versions);
    assert_eq!(p.number("SELECT count() FROM schema_migrations").await, expected.len() as u64, "no version recorded twice");
    assert_eq!(p.query("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name FORMAT TabSeparated").await, tables);
    for t in ["events", "deliveries", "counters", "suppressions", "sender_health", "engagement", "broadcast_stats", "aggregator_offsets", "unique_recipients", "unique_recipients_mv"] {
        assert!(tables.lines().any(|l| l == t), "table {t}: {tables}");
    }
    let engine = p.query("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'unique_recipients_mv' FORMAT TabSeparated").await;
    assert_eq!(engine.trim(), "MaterializedView");
}

/// Unique recipients of `period` / `bucket` (YYYY-MM-DD) for opens, merged over every other key.
async fn openers(p: &Pipeline, period: &str, bucket: &str, broadcast: Option<&str>) -> u64 {
    let broadcast = broadcast.map(|b| format!(" AND broadcast_id = '{b}'")).unwrap_or_default();
    p.number(&format!(
        "SELECT uniqExactMerge(recipients) FROM unique_recipients \
         WHERE period = '{period}' AND bucket_start = '{bucket}' AND event_type = 'opened' AND machine = ''{broadcast}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_database_upgrades_in_place_with_unique_recipients_backfilled() {
    let stack = Stack::from_env();
    let zone = "Asia/Kolkata"; // +05:30: 23:30 UTC is already tomorrow there
    let mut p = Pipeline::unmigrated(&stack, "upgrade").await;
    p.aggregator_env.push(("SENDTRACE_REPORTING_TIME_ZONE".into(), zone.into()));

    // version 1, as the first release's `aggregator migrate` left it
    stack.query("default", &format!("CREATE DATABASE `{}`", p.database)).await;
    p.query(aggregator::migrate::SCHEMA_MIGRATIONS).await;
    let cfg = ClickHouseConfig::default();
    for stmt in schemas::ddl::statements(schemas::ddl::MIGRATIONS[0].2) {
        p.query(&aggregator::migrate::render(&stmt, &cfg, "UTC")).await;
    }
    p.query("INSERT INTO schema_migrations VALUES (1, 'init', now64(3))").await;
    // v1 event rows (no `machine` column yet): Ann twice, spelled two ways, once late in the UTC day;
    // Bob once from broadcast b1, and his event row twice (a replay that landed physically)
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let at = |hh_mm: &str| format!("{day} {hh_mm}:00.000");
    // (raw_offset differs per insert, so the replayed row is a new block, not dropped by content)
    let insert = |n: usize, id: &str, rcpt: &str, broadcast: &str, t: String| {
        format!(
            "INSERT INTO events (event_id, tenant, channel, provider, delivery_key, recipient, broadcast_id, event_type, occurred_at, raw_offset) \
             VALUES ('{id}', 'acme', 'email', 'ses', 'dk-{id}', '{rcpt}', {broadcast}, 'opened', '{t}', {n})"
        )
    };
    let rows = [("e1", "Ann@Example.com", None, "23:30"), ("e2", "ann@example.com", None, "10:00"), ("e3", "bob@example.com", Some("b1"), "10:00")];
    for (n, (id, rcpt, broadcast, t)) in rows.iter().chain(&rows[2..]).enumerate() {
        p.query(&insert(n, id, rcpt, &broadcast.map(|b| format!("'{b}'")).unwrap_or("NULL".into()), at(t))).await;
    }

    p.migrate().await;
    let versions = p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await;
    let expected: Vec<String> = schemas::ddl::MIGRATIONS.iter().map(|m| m.0.to_string()).collect();
    assert_eq!(versions.split_whitespace().collect::<Vec<_>>(), expected, "upgraded to the latest version");
    assert_eq!(p.number("SELECT count() FROM events WHERE machine = ''").await, 4, "old rows kept, `machine` added");

    // backfilled: per UTC and Kolkata bucket, the brute-force sets of the rows above
    let periods = aggregator::buckets::Periods::new(zone).unwrap();
    let mut truth: std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>> = Default::default();
    for (_, rcpt, _, t) in rows {
        let ms = chrono::NaiveDateTime::parse_from_str(&at(t), "%Y-%m-%d %H:%M:%S%.3f").unwrap().and_utc().timestamp_millis();
        for (period, start) in periods.buckets(ms) {
            truth.entry((period.to_string(), start.to_string())).or_default().insert(rcpt.to_ascii_lowercase());
        }
    }
    assert!(truth.len() >= 7, "UTC and Kolkata days differ for 23:30 UTC: {truth:?}");
    let check = |label: &'static str| {
        let (p, truth) = (&p, &truth);
        async move {
            for ((period, bucket), set) in truth {
                assert_eq!(openers(p, period, bucket, None).await, set.len() as u64, "{label}: {period} {bucket}");
                if period.starts_with("day") {
                    // migration 16's rows per person and day count the same
                    let people = p.number(&format!("SELECT uniqExact(recipient) FROM recipient_days WHERE period = '{period}' AND bucket_start = '{bucket}' AND event_type IN ('opened', 'read')")).await;
                    assert_eq!(people, set.len() as u64, "{label}: recipient_days {period} {bucket}");
                }
            }
        }
    };
    check("backfill").await;
    // the database held events: `recipient_days` is whole only from the oldest day `events` surely still keeps
    let complete_from = p.query("SELECT toString(complete_from) FROM backfills WHERE name = 'recipient_days' ORDER BY recorded_at DESC LIMIT 1 FORMAT TabSeparated").await;
    let ttl_edge = chrono::Utc::now().date_naive() - chrono::Duration::days(cfg.events_ttl_days as i64 - 1);
    assert_eq!(complete_from.trim(), ttl_edge.to_string(), "events older than their TTL may have gone before the backfill");
    assert_eq!(openers(&p, "day", &day.to_string(), None).await, 2, "Ann once in either spelling, Bob once");
    assert_eq!(openers(&p, &format!("day:{zone}"), &(day + chrono::Duration::days(1)).to_string(), None).await, 1, "Ann's 23:30 UTC open");
    assert_eq!(openers(&p, "day", &day.to_string(), Some("b1")).await, 1, "per broadcast");

    // the backfill run again (an interrupted migration re-run) adds rows but changes no count
    let rows_before = p.number("SELECT count() FROM unique_recipients").await;
    for stmt in schemas::ddl::statements(schemas::ddl::MIGRATIONS[4].2) {
        p.query(&aggregator::migrate::render(&stmt, &cfg, zone)).await;
    }
    assert!(p.number("SELECT count() FROM unique_recipients").await > rows_before, "the backfill did run again");
    check("backfill twice").await;
    p.migrate().await;
    check("migrate twice").await;

    // the view fills from new event rows
    p.query(&insert(9, "e4", "carol@example.com", "NULL", at("12:00"))).await;
    assert_eq!(openers(&p, "day", &day.to_string(), None).await, 3, "Carol's open through the view");
    p.query(&insert(10, "e5", "CAROL@example.com", "NULL", at("13:00"))).await;
    assert_eq!(openers(&p, "day", &day.to_string(), None).await, 3, "Carol again, in capitals");
    assert_eq!(openers(&p, &format!("day:{zone}"), &day.to_string(), None).await, 3);
    let people = format!("SELECT uniqExact(recipient) FROM recipient_days WHERE period = 'day' AND bucket_start = '{day}' AND event_type = 'opened'");
    assert_eq!(p.number(&people).await, 3, "Carol through recipient_days_mv, once in either spelling");

    // the view keeps its zone: migrate with another one says so (and changes nothing)
    let (ok, log) = p.try_migrate().await;
    assert!(ok && !std::fs::read_to_string(&log).unwrap_or_default().contains("another reporting zone"), "same zone: no warning");
    p.aggregator_env = vec![("SENDTRACE_REPORTING_TIME_ZONE".into(), "UTC".into())];
    let (ok, log) = p.try_migrate().await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ok && text.contains("another reporting zone") && text.contains("Asia/Kolkata"), "a warning in {log}: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_reporting_zone_is_refused_before_any_change() {
    let stack = Stack::from_env();
    let mut p = Pipeline::unmigrated(&stack, "badzone").await;
    p.aggregator_env.push(("SENDTRACE_REPORTING_TIME_ZONE".into(), "Mars/Olympus".into()));
    let (ok, log) = p.try_migrate().await;
    assert!(!ok, "migrate must fail");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("reporting_time_zone `Mars/Olympus`"), "a clear error in {log}: {text}");
    let db = stack.query("default", &format!("SELECT count() FROM system.databases WHERE name = '{}' FORMAT TabSeparated", p.database)).await;
    assert_eq!(db.trim(), "0", "nothing created");
}

/// Migration 17 on a database that already holds deliveries (several versions of each): its
/// tables are filled from `deliveries FINAL`, the newest version of each delivery counted once,
/// as the brute force over the rows inserted here says.
#[tokio::test(flavor = "multi_thread")]
async fn funnels_are_backfilled_from_the_stored_deliveries() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "funnels-backfill").await;
    // as before migration 17 (and 19, funnel_statuses)
    p.query("DROP TABLE funnels").await;
    p.query("DROP TABLE funnel_recipients").await;
    p.query("DROP TABLE funnel_statuses").await;
    p.forget_migrations(&[17, 19]).await;
    // 60 deliveries, each written twice: version 1 queued under broadcast b{i % 4} without a
    // cost, version 2 (the newest) with its final status, a cost for some, and for every fifth
    // another broadcast (a late send record); two deliveries per person, spelled alike
    let statuses = ["delivered", "opened", "bounced", "complained", "unsubscribed", "failed"];
    let mut values = Vec::new();
    // broadcast -> (deliveries, hard bounces, people)
    let mut truth: std::collections::BTreeMap<String, (u64, u64, std::collections::BTreeSet<String>)> = Default::default();
    for i in 0..60u32 {
        let recipient = format!("p{}@x.io", i / 2);
        let first = format!("b{}", i % 4);
        let last = if i % 5 == 0 { format!("b{}", (i + 1) % 4) } else { first.clone() };
        let status = statuses[i as usize % statuses.len()];
        let (cost, unit) = if i % 3 == 0 { ("0.0075", "USD") } else { ("0", "") };
        values.push(format!("('acme', 'dk{i}', 'email', 'ses', 'm{i}', '{recipient}', '{first}', 'queued', '2026-11-01 10:00:00', 0, 0, 0, 0, '', NULL, 1)"));
        values.push(format!(
            "('acme', 'dk{i}', 'email', 'ses', 'm{i}', '{recipient}', '{last}', '{status}', '2026-11-01 10:{:02}:00', {}, {}, 1, {cost}, '{unit}', toDateTime64('2026-11-01 10:01:00', 3, 'UTC'), 2)",
            i % 60,
            u32::from(status == "opened"),
            i % 2,
        ));
        let t = truth.entry(last).or_default();
        t.0 += 1;
        t.1 += u64::from(status == "bounced");
        t.2.insert(recipient);
    }
    // (each version its own insert: one block's duplicates would be merged as it is written)
    for version in ["1)", "2)"] {
        p.query(&format!(
            "INSERT INTO deliveries (tenant, delivery_key, channel, provider, provider_message_id, recipient, broadcast_id, status, status_at, \
             open_count, machine_open_count, event_count, cost_amount, cost_unit, first_delivered_at, version) VALUES {}",
            values.iter().filter(|v| v.ends_with(version)).cloned().collect::<Vec<_>>().join(", ")
        ))
        .await;
    }
    assert_eq!(p.number("SELECT count() FROM deliveries").await, 120, "two versions of each delivery");

    p.migrate().await;
    let versions = p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await;
    assert!(versions.lines().any(|v| v == "17") && versions.lines().any(|v| v == "19"), "migrations 17 and 19 applied again: {versions}");
    e2e::funnels::assert_funnels_equal_deliveries(&p).await;
    // the newest status of each delivery, once: b0 holds dk0, 4, 8, …, 56 (every fifth moved on)
    let by_status = p.query("SELECT status, sum(funnel_statuses.deliveries) AS n FROM funnel_statuses WHERE id = 'b0' GROUP BY status HAVING n != 0 ORDER BY status FORMAT TabSeparated").await;
    let mut want: std::collections::BTreeMap<&str, u32> = Default::default();
    for i in (0..60u32).filter(|i| (if i % 5 == 0 { (i + 1) % 4 } else { i % 4 }) == 0) {
        *want.entry(statuses[i as usize % statuses.len()]).or_default() += 1;
    }
    let want: String = want.iter().map(|(s, n)| format!("{s}\t{n}\n")).collect();
    assert_eq!(by_status, want, "b0's deliveries by their newest status");
    let got: std::collections::BTreeMap<String, (u64, u64, u64)> = p
        .rows(
            "SELECT f.id AS id, toUInt64(f.n) AS n, toUInt64(f.b) AS b, toUInt64(r.people) AS people \
             FROM (SELECT id, sum(deliveries) AS n, sum(hard_bounces) AS b FROM funnels WHERE dimension = 'broadcast' GROUP BY id HAVING n != 0) AS f \
             JOIN (SELECT id, countIf(n > 0) AS people FROM (SELECT id, recipient, sum(deliveries) AS n FROM funnel_recipients \
               WHERE dimension = 'broadcast' GROUP BY id, recipient) GROUP BY id) AS r ON r.id = f.id",
        )
        .await
        .iter()
        .map(|r| {
            let n = |c: &str| r[c].as_u64().or_else(|| r[c].as_str()?.parse().ok()).expect("a number");
            (r["id"].as_str().expect("id").to_string(), (n("n"), n("b"), n("people")))
        })
        .collect();
    let want: std::collections::BTreeMap<String, (u64, u64, u64)> = truth.into_iter().map(|(b, (n, hb, people))| (b, (n, hb, people.len() as u64))).collect();
    assert_eq!(got, want, "per broadcast (deliveries, hard bounces, people): the newest versions only");
    // a second run adds nothing
    p.forget_migrations(&[17, 19]).await;
    p.migrate().await;
    e2e::funnels::assert_funnels_equal_deliveries(&p).await;
}

/// Migration 18 on a database that already holds deliveries (two versions of each, the newest
/// first known earlier: a queued time learned late): `delivery_latency` is filled from
/// `deliveries FINAL`, each delivery once at its current first known time, and
/// `delivery_send_lag` bounds every send; the views keep both right for what comes after (a
/// delivery moved by a newer version, with the aggregator's tombstone at its old place); a
/// second run changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn delivery_latency_is_backfilled_and_kept_by_its_views() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "latency-backfill").await;
    // as before migration 18
    for view in ["delivery_latency_mv", "delivery_latency_tombstones_mv", "delivery_send_lag_mv"] {
        p.query(&format!("DROP VIEW {view}")).await;
    }
    for table in ["delivery_latency", "delivery_send_lag"] {
        p.query(&format!("DROP TABLE {table}")).await;
    }
    p.forget_migrations(&[18]).await;
    // 40 deliveries: version 1 sent at 10:{i}, delivered 3 s later; version 2 also opened, and
    // for every fourth a queued time (i + 1) days before the send: first known then
    let insert = |rows: Vec<String>| {
        let p = &p;
        async move {
            p.query(&format!(
                "INSERT INTO deliveries (tenant, delivery_key, channel, provider, recipient, status, status_at, first_queued_at, first_sent_at, \
                 first_delivered_at, first_opened_at, version) VALUES {}",
                rows.join(", ")
            ))
            .await
        }
    };
    let sent = |i: u32| format!("toDateTime64('2026-11-20 10:{:02}:00', 3, 'UTC')", i % 60);
    let mut lag = 0i64;
    let (mut v1, mut v2) = (Vec::new(), Vec::new());
    for i in 0..40u32 {
        let s = sent(i);
        v1.push(format!("('acme', 'dk{i}', 'email', 'ses', 'p{i}@x.io', 'delivered', {s} + INTERVAL 3 SECOND, NULL, {s}, {s} + INTERVAL 3 SECOND, NULL, 1)"));
        let queued = if i % 4 == 0 {
            lag = lag.max(i64::from(i + 1) * 86_400_000);
            format!("{s} - INTERVAL {} DAY", i + 1)
        } else {
            "NULL".into()
        };
        v2.push(format!("('acme', 'dk{i}', 'email', 'ses', 'p{i}@x.io', 'opened', {s} + INTERVAL 60 SECOND, {queued}, {s}, {s} + INTERVAL 3 SECOND, {s} + INTERVAL 60 SECOND, 2)"));
    }
    // (each version its own insert: one block's duplicates would be merged as it is written)
    insert(v1).await;
    insert(v2).await;

    p.migrate().await;
    let versions = p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await;
    assert!(versions.lines().any(|v| v == "18"), "migration 18 applied again: {versions}");
    assert_eq!(e2e::latency::assert_latency_equals_deliveries(&p).await, 40);
    assert_eq!(p.number("SELECT max(lag) FROM delivery_send_lag WHERE tenant = 'acme'").await, lag as u64, "the longest send lag: 37 days");
    assert_eq!(p.number("SELECT countIf(to_delivered = 3000 AND to_open = 57000) FROM delivery_latency FINAL").await, 40, "both latencies of each");

    // later versions through the views: dk1 learns a queued time two days before its send, so
    // the aggregator tombstones its old place in `delivery_order`
    let s = sent(1);
    insert(vec![format!("('acme', 'dk1', 'email', 'ses', 'p1@x.io', 'opened', {s} + INTERVAL 60 SECOND, {s} - INTERVAL 2 DAY, {s}, {s} + INTERVAL 3 SECOND, {s} + INTERVAL 60 SECOND, 3)")]).await;
    p.query(&format!("INSERT INTO delivery_order (tenant, sort_at, delivery_key, version, is_deleted) VALUES ('acme', toUnixTimestamp64Milli({s}), 'dk1', 3, 1)"))
        .await;
    assert_eq!(e2e::latency::assert_latency_equals_deliveries(&p).await, 40, "moved by a view's row and the tombstone's copy");

    // a second run changes nothing
    p.forget_migrations(&[18]).await;
    p.migrate().await;
    assert_eq!(e2e::latency::assert_latency_equals_deliveries(&p).await, 40);
}

/// `attributed_failures` (migration 21) copies `events FINAL`'s bounced and failed rows at
/// version 0, and a row its view writes (version: the event row's write time) outranks a
/// backfill row that lands after it, as a backfill reading an older snapshot would.
#[tokio::test(flavor = "multi_thread")]
async fn attributed_failures_are_backfilled_and_a_later_event_row_outranks_the_backfill() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "failures-backfill").await;
    // as before migration 21
    p.query("DROP VIEW attributed_failures_mv").await;
    p.query("DROP TABLE attributed_failures").await;
    p.forget_migrations(&[21]).await;
    // e1 bounced, written twice (moved from b-a to b-b), e2 failed without attribution, e3 opened
    let insert = |n: u32, id: &str, event_type: &str, broadcast: &str| {
        format!(
            "INSERT INTO events (event_id, tenant, channel, provider, delivery_key, recipient, broadcast_id, event_type, occurred_at, error_reason, raw_offset) \
             VALUES ('{id}', 'acme', 'email', 'ses', 'dk-{id}', '{id}@example.com', {broadcast}, '{event_type}', '2026-11-20 10:00:00.000', 'mailbox unknown', {n})"
        )
    };
    for (n, (id, event_type, broadcast)) in [("e1", "bounced", "'b-a'"), ("e1", "bounced", "'b-b'"), ("e2", "failed", "NULL"), ("e3", "opened", "'b-a'")].into_iter().enumerate() {
        p.query(&insert(n as u32, id, event_type, broadcast)).await;
    }
    p.migrate().await;
    let versions = p.query("SELECT version FROM schema_migrations FINAL ORDER BY version FORMAT TabSeparated").await;
    assert!(versions.lines().any(|v| v == "21"), "migration 21 applied again: {versions}");
    assert_eq!(e2e::failures::assert_failures_equal_events(&p).await, 2, "e1 at b-b and e2");
    assert_eq!(p.number("SELECT count() FROM attributed_failures WHERE version = 0").await, 2, "the backfill's rows, from FINAL, at version 0");

    // e1 moved on to b-c through the view, then a backfill's copy of it at b-b landing later
    p.query(&insert(4, "e1", "bounced", "'b-c'")).await;
    assert!(p.number("SELECT max(version) FROM attributed_failures WHERE event_id = 'e1'").await > 0, "the view's row carries its write time");
    p.query(
        "INSERT INTO attributed_failures (tenant, occurred_at, event_id, delivery_key, channel, provider, event_type, bounce_class, recipient, error_reason, broadcast_id, version) \
         VALUES ('acme', '2026-11-20 10:00:00.000', 'e1', 'dk-e1', 'email', 'ses', 'bounced', '', 'e1@example.com', 'mailbox unknown', 'b-b', 0)",
    )
    .await;
    assert_eq!(e2e::failures::assert_failures_equal_events(&p).await, 2, "e1 at b-c, the latest");
    assert_eq!(p.number("SELECT count() FROM attributed_failures FINAL WHERE broadcast_id = 'b-c'").await, 1);
}
