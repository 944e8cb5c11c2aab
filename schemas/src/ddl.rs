//! ClickHouse migrations, in order. `aggregator migrate` applies the ones not yet
//! recorded in `schema_migrations`; each statement is idempotent on its own
//! (`IF NOT EXISTS`), so a migration interrupted half-way can be re-run.

/// (version, name, SQL). Never edit an applied migration: add a new one.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "init", include_str!("../clickhouse/0001_init.sql")),
    (2, "machine_suppression_engagement", include_str!("../clickhouse/0002_machine_suppression_engagement.sql")),
    (3, "sender_health", include_str!("../clickhouse/0003_sender_health.sql")),
    (4, "broadcast_stats_sequence_cost", include_str!("../clickhouse/0004_broadcast_stats_sequence_cost.sql")),
    (5, "unique_recipients", include_str!("../clickhouse/0005_unique_recipients.sql")),
    (6, "attributed_counters", include_str!("../clickhouse/0006_attributed_counters.sql")),
    (7, "suppression_changes", include_str!("../clickhouse/0007_suppression_changes.sql")),
    (8, "read_side_indexes", include_str!("../clickhouse/0008_read_side_indexes.sql")),
    (9, "delivery_order", include_str!("../clickhouse/0009_delivery_order.sql")),
    (10, "origin_and_attribution_priority", include_str!("../clickhouse/0010_origin_and_attribution_priority.sql")),
    (11, "events_inserted_at", include_str!("../clickhouse/0011_events_inserted_at.sql")),
    (12, "deliveries_key_filter", include_str!("../clickhouse/0012_deliveries_key_filter.sql")),
    (13, "history_reads", include_str!("../clickhouse/0013_history_reads.sql")),
    (14, "partition_claims", include_str!("../clickhouse/0014_partition_claims.sql")),
    (15, "failures", include_str!("../clickhouse/0015_failures.sql")),
    (16, "recipient_days", include_str!("../clickhouse/0016_recipient_days.sql")),
    (17, "funnels", include_str!("../clickhouse/0017_funnels.sql")),
    (18, "delivery_latency", include_str!("../clickhouse/0018_delivery_latency.sql")),
    (19, "funnel_statuses", include_str!("../clickhouse/0019_funnel_statuses.sql")),
    (20, "events_by_time", include_str!("../clickhouse/0020_events_by_time.sql")),
    (21, "attributed_failures", include_str!("../clickhouse/0021_attributed_failures.sql")),
    (22, "events_delivery_key_filter", include_str!("../clickhouse/0022_events_delivery_key_filter.sql")),
];

/// The statements of a migration: separated by a line holding only `;`.
pub fn statements(sql: &str) -> Vec<String> {
    sql.split("\n;")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_split() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        let stmts = statements(MIGRATIONS[0].2);
        assert_eq!(stmts.len(), 4);
        assert!(stmts.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")));
        let v2 = statements(MIGRATIONS[1].2);
        assert_eq!(v2.len(), 7);
        assert!(v2.iter().all(|s| s.contains("IF NOT EXISTS")), "every statement can be re-run");
        assert!(statements(MIGRATIONS[3].2).iter().all(|s| s.starts_with("CREATE OR REPLACE VIEW")));
    }

    #[test]
    fn unique_recipients_view_and_backfill_agree() {
        let v5 = statements(MIGRATIONS[4].2);
        assert_eq!(MIGRATIONS[4].0, 5);
        assert_eq!(v5.len(), 3);
        assert!(v5[0].starts_with("CREATE TABLE IF NOT EXISTS unique_recipients"));
        assert!(!v5[0].contains("TTL"), "the sets outlive the event rows");
        assert!(v5[1].starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS unique_recipients_mv TO unique_recipients AS"));
        // the backfill is re-runnable because uniqExact states are idempotent, not by IF NOT EXISTS
        assert!(v5[2].starts_with("INSERT INTO unique_recipients"));
        // the backfill computes exactly what the view computes
        let select = |s: &str| s[s.find("\nSELECT").expect("a SELECT")..].to_string();
        assert_eq!(select(&v5[1]), select(&v5[2]));
        assert!(select(&v5[1]).contains("uniqExactState(lower(recipient))"));
        assert!(v5[1].contains("{reporting_time_zone}"), "the zone is substituted at migration");
    }

    #[test]
    fn recipient_days_view_and_backfill_agree_and_record_their_reach() {
        let (version, _, sql) = MIGRATIONS[15];
        assert_eq!(version, 16);
        let v16 = statements(sql);
        assert_eq!(v16.len(), 5);
        assert!(v16[0].starts_with("CREATE TABLE IF NOT EXISTS recipient_days"));
        assert!(!v16[0].contains("TTL"), "the rows outlive the event rows, as unique_recipients' sets");
        assert!(v16[1].starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS recipient_days_mv TO recipient_days AS"));
        assert!(v16[2].starts_with("INSERT INTO recipient_days"));
        let select = |s: &str| s[s.find("\nSELECT").expect("a SELECT")..].to_string();
        assert_eq!(select(&v16[1]), select(&v16[2]), "the backfill computes what the view computes");
        // the same people and days as the sets the summary read before
        let v5 = statements(MIGRATIONS[4].2);
        assert!(select(&v16[1]).contains("sipHash128(lower(recipient))") && select(&v5[1]).contains("uniqExactState(lower(recipient))"));
        for day in ["('day', toDate(occurred_at, 'UTC'))", "('day:{reporting_time_zone}', toDate(occurred_at, '{reporting_time_zone}'))"] {
            assert!(v16[1].contains(day) && v5[1].contains(day), "{day}");
        }
        assert!(v16[3].starts_with("CREATE TABLE IF NOT EXISTS backfills"));
        assert!(v16[4].starts_with("INSERT INTO backfills") && v16[4].contains("{events_ttl_days}"), "the reach of the backfill is recorded last");
    }
}
