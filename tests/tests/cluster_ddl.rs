//! The cluster form of the migrations (`schemas::cluster`, `aggregator migrate --cluster`), checked
//! on the real ClickHouse engine of the devstack endpoint. chdb runs no Keeper and has no cluster,
//! so a `Replicated*` or `Distributed` table cannot be created here; instead:
//! 1. ClickHouse parses every generated statement (`formatQuery`), and its own rendering of each
//!    cluster `CREATE TABLE` has the single-node statement's columns, the same engine arguments after
//!    the replica path and name, and the same clauses;
//! 2. the cluster DDL of every migration is run with one shard: `Replicated*` engines without their
//!    Keeper arguments, `Distributed` as a `Merge` table over the local one. Every table then has the
//!    single-node columns (`DESCRIBE`) in its local and its distributed form, after every ALTER, and
//!    the materialized views fill the local tables from the local tables.
//!
//! Both loop over `schemas::ddl::MIGRATIONS`: a new migration is covered without a change here.

use aggregator::config::ClickHouseConfig;
use aggregator::migrate::{in_cluster, render, SCHEMA_MIGRATIONS};
use e2e::Stack;
use schemas::cluster::{Placement, EVERY_NODE_PATH, LOCAL_SUFFIX, REPLICA_PATH, SHARDING};

const CLUSTER: &str = "sendtrace";

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The single-node statements of every migration, rendered as `aggregator migrate` renders them.
fn single_node(cfg: &ClickHouseConfig) -> Vec<(u32, String)> {
    let mut out = vec![(0, SCHEMA_MIGRATIONS.to_string())];
    for (version, _, sql) in schemas::ddl::MIGRATIONS {
        out.extend(schemas::ddl::statements(sql).iter().map(|s| (*version, render(s, cfg, "Europe/Berlin"))));
    }
    out
}

fn cluster_cfg(database: &str) -> ClickHouseConfig {
    ClickHouseConfig { database: database.into(), cluster: CLUSTER.into(), ..Default::default() }
}

async fn format_query(stack: &Stack, sql: &str) -> String {
    let lit = sql.replace('\\', "\\\\").replace('\'', "\\'");
    let rows = stack.rows("default", &format!("SELECT formatQuery('{lit}') AS f")).await;
    rows[0]["f"].as_str().expect("formatted").to_string()
}

/// (column list, ENGINE line, the clauses after it) of ClickHouse's rendering of a CREATE TABLE.
fn parts(formatted: &str) -> (String, String, String) {
    let open = formatted.find("\n(\n").expect("a column list");
    let close = formatted.find("\n)\nENGINE = ").expect("an engine");
    let after = &formatted[close + 3..];
    let (engine, rest) = after.split_once('\n').unwrap_or((after, ""));
    (formatted[open..close].to_string(), engine.to_string(), rest.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_parses_every_cluster_statement_and_sees_the_same_tables() {
    let stack = Stack::from_env();
    let cfg = cluster_cfg("sendtrace");
    let mut parsed = 0;
    let mut tables = 0;
    let db = format!("CREATE DATABASE IF NOT EXISTS `{}`", cfg.database);
    for (version, stmt) in std::iter::once((0, db)).chain(single_node(&cfg)) {
        let out = in_cluster(&stmt, &cfg).unwrap_or_else(|e| panic!("migration {version}: {e}\n{stmt}"));
        let mut formatted = Vec::new();
        for s in &out {
            let f = format_query(&stack, s).await;
            assert_eq!(f.contains(&format!("ON CLUSTER {CLUSTER}")), !s.starts_with("INSERT"), "migration {version}: {f}");
            formatted.push(f);
            parsed += 1;
        }
        if !stmt.starts_with("CREATE TABLE") {
            continue;
        }
        // ClickHouse's own rendering: same columns, the engine replicated with the same arguments,
        // the same ORDER BY / PARTITION BY / TTL / SETTINGS (the dedup window under its replicated name)
        tables += 1;
        let (cols, engine, rest) = parts(&format_query(&stack, &stmt).await);
        let (ccols, cengine, crest) = parts(&formatted[0]);
        assert_eq!(ccols, cols, "migration {version}: columns of {}", out[0]);
        let path = if stmt.contains("schema_migrations") { EVERY_NODE_PATH } else { REPLICA_PATH };
        let name = engine.trim_start_matches("ENGINE = ");
        let expected = match name.split_once('(') {
            None => format!("ENGINE = Replicated{name}('{path}', '{{replica}}')"),
            Some((e, args)) => format!("ENGINE = Replicated{e}('{path}', '{{replica}}', {args}"),
        };
        assert_eq!(cengine, expected, "migration {version}");
        assert_eq!(crest, rest.replace("non_replicated_deduplication_window", "replicated_deduplication_window"), "migration {version}");
        if out.len() == 2 {
            let table = out[1].split('`').nth(1).unwrap();
            let Some(Placement::Sharded(key)) = schemas::cluster::placement(table) else { panic!("{table}: sharded") };
            assert!(
                formatted[1].contains(&format!("ENGINE = Distributed('{CLUSTER}', 'sendtrace', '{table}{LOCAL_SUFFIX}', {key})")),
                "{}",
                formatted[1]
            );
        }
    }
    assert!(tables >= 13 && parsed > tables * 2, "{tables} tables, {parsed} statements");
}

/// A cluster statement as one shard without Keeper runs it: `Replicated*` engines without the
/// Keeper path and replica name, `Distributed` as `Merge` over the local table (which takes no
/// inserts, so a backfill writes the one shard's local table itself).
fn one_shard(stmt: &str) -> String {
    let mut s = stmt.replace(&format!(" ON CLUSTER '{CLUSTER}'"), "");
    for path in [REPLICA_PATH, EVERY_NODE_PATH] {
        s = s.replace(&format!("('{path}', '{{replica}}', "), "(").replace(&format!("('{path}', '{{replica}}')"), "");
    }
    s = s.replace("ENGINE = Replicated", "ENGINE = ");
    if let Some(at) = s.find("ENGINE = Distributed(") {
        let args: Vec<&str> = s[at..].split('\'').collect(); // [.., cluster, .., database, .., local, ..]
        s = format!("{}ENGINE = Merge('{}', '^{}$')", &s[..at], args[3], args[5]);
    }
    if let Some(rest) = s.strip_prefix("INSERT INTO ") {
        let (table, tail) = rest.split_once(char::is_whitespace).unwrap();
        s = format!("INSERT INTO `{table}{LOCAL_SUFFIX}` {tail}");
    }
    s
}

async fn describe(stack: &Stack, db: &str, table: &str) -> Vec<serde_json::Value> {
    stack.rows(db, &format!("SELECT name, type, default_kind, default_expression, comment FROM system.columns WHERE database = currentDatabase() AND table = '{table}' ORDER BY position")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_tables_have_the_single_node_columns_and_the_views_fill_local_tables() {
    let stack = Stack::from_env();
    let single = unique("cluster_single");
    let sharded = unique("cluster_shard");
    let cfg = ClickHouseConfig { url: stack.clickhouse_url.clone(), database: single.clone(), ..Default::default() };
    aggregator::migrate::migrate(&cfg, "Europe/Berlin").await.expect("single-node migrate");

    stack.query("default", &format!("CREATE DATABASE `{sharded}`")).await;
    let ccfg = cluster_cfg(&sharded);
    for (version, stmt) in single_node(&ccfg) {
        for s in in_cluster(&stmt, &ccfg).unwrap_or_else(|e| panic!("migration {version}: {e}")) {
            stack.query(&sharded, &one_shard(&s)).await;
        }
    }

    let names = |db: String| {
        let stack = stack.clone();
        async move {
            stack.query(&db, "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name FORMAT TabSeparated").await
        }
    };
    let single_names: Vec<String> = names(single.clone()).await.lines().map(str::to_string).collect();
    let mut expected: Vec<String> = single_names.clone();
    for t in SHARDING.iter().filter(|t| matches!(t.placement, Placement::Sharded(_))) {
        assert!(single_names.contains(&t.table.to_string()), "{} placed but not created on one node", t.table);
        expected.push(format!("{}{LOCAL_SUFFIX}", t.table));
    }
    expected.sort();
    let cluster_names: Vec<String> = names(sharded.clone()).await.lines().map(str::to_string).collect();
    assert_eq!(cluster_names, expected, "the same tables and views, plus each sharded table's local table");

    for t in &single_names {
        let kind = stack.query(&single, &format!("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = '{t}' FORMAT TabSeparated")).await;
        if kind.contains("View") {
            continue;
        }
        let truth = describe(&stack, &single, t).await;
        assert!(!truth.is_empty(), "{t}");
        assert_eq!(describe(&stack, &sharded, t).await, truth, "{t}: distributed form");
        if matches!(schemas::cluster::placement(t), Some(Placement::Sharded(_))) {
            assert_eq!(describe(&stack, &sharded, &format!("{t}{LOCAL_SUFFIX}")).await, truth, "{t}: local form");
        }
    }

    // the materialized views read the local tables and write the local tables
    stack
        .query(
            &sharded,
            "INSERT INTO events_local (event_id, tenant, channel, provider, delivery_key, recipient, event_type, occurred_at) \
             VALUES ('e1', 'acme', 'email', 'ses', 'dk1', 'Ann@Example.com', 'opened', '2026-11-30 10:00:00'), \
                    ('e2', 'acme', 'email', 'ses', 'dk2', 'ann@example.com', 'opened', '2026-11-30 11:00:00')",
        )
        .await;
    let n = |sql: &'static str| {
        let (stack, db) = (stack.clone(), sharded.clone());
        async move { stack.query(&db, &format!("{sql} FORMAT TabSeparated")).await.trim().to_string() }
    };
    assert_eq!(n("SELECT uniqExactMerge(recipients) FROM unique_recipients_local WHERE period = 'day' AND bucket_start = '2026-11-30'").await, "1");
    assert_eq!(n("SELECT uniqExactMerge(recipients) FROM unique_recipients WHERE period = 'day:Europe/Berlin'").await, "1", "read through the distributed name");
    assert_eq!(n("SELECT toString(max(newest)) FROM event_times_local WHERE tenant = 'acme'").await, "2026-11-30 11:00:00.000");
    stack
        .query(&sharded, "INSERT INTO deliveries_local (tenant, delivery_key, status, status_at, version) VALUES ('acme', 'dk1', 'delivered', '2026-11-30 10:00:00', 1)")
        .await;
    assert_eq!(n("SELECT count() FROM delivery_order_local FINAL WHERE delivery_key = 'dk1' AND status = 'delivered'").await, "1");
    assert_eq!(n("SELECT count() FROM delivery_latency_local FINAL WHERE delivery_key = 'dk1'").await, "1");
    // a tombstone landing in the shard's `delivery_order_local` reaches its `delivery_latency_local`
    stack
        .query(
            &sharded,
            "INSERT INTO delivery_order_local (tenant, sort_at, delivery_key, version, is_deleted) \
             SELECT tenant, sort_at, delivery_key, 2, 1 FROM delivery_order_local WHERE delivery_key = 'dk1'",
        )
        .await;
    assert_eq!(n("SELECT count() FROM delivery_latency_local FINAL WHERE delivery_key = 'dk1'").await, "0");

    for db in [single, sharded] {
        stack.query("default", &format!("DROP DATABASE `{db}`")).await;
    }
}

/// `aggregator migrate --cluster <name>` reaches the cluster form; on a server that does not know
/// the cluster (this endpoint has none) it fails with ClickHouse's reason and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_cluster_on_a_server_without_that_cluster_fails_and_creates_nothing() {
    let stack = Stack::from_env();
    let db = unique("cluster_absent");
    let migrate = |cluster: &str| {
        // the test's own SENDTRACE_* variables are not the aggregator's configuration
        let mut cmd = std::process::Command::new(stack.bin_dir.join("aggregator"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SENDTRACE_")) {
            cmd.env_remove(k);
        }
        cmd.args(["migrate", "--cluster", cluster])
            .env("SENDTRACE_CLICKHOUSE__URL", &stack.clickhouse_url)
            .env("SENDTRACE_CLICKHOUSE__DATABASE", &db)
            .output()
            .expect("the aggregator binary runs")
    };
    let out = migrate("no_such_cluster");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "must fail: {text}");
    assert!(text.contains("no_such_cluster"), "the reason names the cluster: {text}");
    let n = stack.query("default", &format!("SELECT count() FROM system.databases WHERE name = '{db}' FORMAT TabSeparated")).await;
    assert_eq!(n.trim(), "0", "nothing created");

    let bad = migrate("x'; DROP DATABASE default; --");
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("invalid cluster or database name"), "{bad:?}");
}
