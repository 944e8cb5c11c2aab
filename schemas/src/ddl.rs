//! ClickHouse migrations, in order. `aggregator migrate` applies the ones not yet
//! recorded in `schema_migrations`; each statement is idempotent on its own
//! (`IF NOT EXISTS`), so a migration interrupted half-way can be re-run.

/// (version, name, SQL). Never edit an applied migration: add a new one.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "init", include_str!("../clickhouse/0001_init.sql")),
    (2, "machine_suppression_engagement", include_str!("../clickhouse/0002_machine_suppression_engagement.sql")),
    (3, "sender_health", include_str!("../clickhouse/0003_sender_health.sql")),
    (4, "broadcast_stats_sequence_cost", include_str!("../clickhouse/0004_broadcast_stats_sequence_cost.sql")),
    (6, "attributed_counters", include_str!("../clickhouse/0006_attributed_counters.sql")),
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
}
