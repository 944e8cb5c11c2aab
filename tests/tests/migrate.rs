//! `aggregator migrate` is versioned and idempotent: every version is recorded once,
//! and a second run applies nothing and changes nothing.

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
    for t in ["events", "deliveries", "counters", "suppressions", "sender_health", "engagement", "broadcast_stats", "aggregator_offsets"] {
        assert!(tables.lines().any(|l| l == t), "table {t}: {tables}");
    }
}
