//! `aggregator migrate`: applies the ClickHouse migrations in `schemas/clickhouse/`,
//! recording each applied version. Running it again is harmless.
//!
//! Placeholders in the SQL (`{events_ttl_days}`, the engagement weights, `{reporting_time_zone}`)
//! are filled from the configuration when a migration is applied; see [`render`].
//!
//! With `clickhouse.cluster` set, every statement runs in its cluster form ([`in_cluster`],
//! `schemas::cluster`): `ON CLUSTER`, replicated local tables, `Distributed` tables under the
//! usual names. Every migration is translated before anything is changed.

use crate::buckets::Periods;
use crate::config::ClickHouseConfig;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Row, Serialize, Deserialize)]
struct Applied {
    version: u32,
    name: String,
    applied_at: i64,
}

/// The table of applied versions.
pub const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) \
     ENGINE = ReplacingMergeTree ORDER BY version";

/// Creates the database and applies missing migrations. Returns the versions applied now.
/// `reporting_time_zone` is the aggregator's (`Config::reporting_time_zone`): the
/// `unique_recipients_mv` view counts its day/week/month too. An invalid zone is refused
/// before anything is changed.
pub async fn migrate(cfg: &ClickHouseConfig, reporting_time_zone: &str) -> anyhow::Result<Vec<u32>> {
    let zone = sql_time_zone(reporting_time_zone)?;
    for (version, _, sql) in schemas::ddl::MIGRATIONS {
        for stmt in schemas::ddl::statements(sql) {
            in_cluster(&render(&stmt, cfg, &zone), cfg).map_err(|e| anyhow::anyhow!("migration {version}: {e}"))?;
        }
    }
    let server = clickhouse::Client::default().with_url(&cfg.url).with_user(&cfg.user).with_password(&cfg.password);
    for stmt in in_cluster(&format!("CREATE DATABASE IF NOT EXISTS `{}`", cfg.database.replace('`', "")), cfg)? {
        server.query(&stmt).execute().await?;
    }
    let db = cfg.client();
    for stmt in in_cluster(SCHEMA_MIGRATIONS, cfg)? {
        db.query(&stmt).execute().await?;
    }
    let done: Vec<u32> = db.query("SELECT version FROM schema_migrations FINAL").fetch_all::<u32>().await?;
    let mut applied = Vec::new();
    for (version, name, sql) in schemas::ddl::MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        for stmt in schemas::ddl::statements(sql) {
            for stmt in in_cluster(&render(&stmt, cfg, &zone), cfg)? {
                // `?` is the crate's bind marker; DDL has none, so take the text as is.
                db.query(&stmt).execute().await?;
            }
        }
        let mut ins = db.insert::<Applied>("schema_migrations").await?;
        ins.write(&Applied { version: *version, name: name.to_string(), applied_at: chrono::Utc::now().timestamp_millis() }).await?;
        ins.end().await?;
        tracing::info!(message = "Migration applied.", version, name);
        applied.push(*version);
    }
    warn_on_zone_change(&db, &zone).await?;
    Ok(applied)
}

/// The view keeps the zone it was created with; say so if the configuration moved on.
async fn warn_on_zone_change(db: &clickhouse::Client, zone: &str) -> anyhow::Result<()> {
    let created: Vec<String> = db
        .query("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'unique_recipients_mv'")
        .fetch_all::<String>()
        .await?;
    for query in &created {
        let built = view_zone(query);
        if built != zone {
            tracing::warn!(
                message = "unique_recipients_mv counts another reporting zone; recreate it in a new migration to count this one.",
                reporting_time_zone = zone,
                view_zone = built
            );
        }
    }
    Ok(())
}

/// The zone a `unique_recipients_mv` definition counts: its `'day:<zone>'` period other than the
/// `'day:UTC'` it filters out, `UTC` if none.
fn view_zone(create_query: &str) -> &str {
    create_query
        .split("'day:")
        .skip(1)
        .filter_map(|rest| rest.split_once('\'').map(|(z, _)| z))
        .find(|z| *z != "UTC")
        .unwrap_or("UTC")
}

/// The zone as the SQL gets it: validated as `buckets` does (the counters' periods use the same
/// name), `UTC` when empty. A valid IANA name holds no quote, so it can sit in a string literal.
pub fn sql_time_zone(reporting_time_zone: &str) -> anyhow::Result<String> {
    Periods::new(reporting_time_zone).map_err(anyhow::Error::msg)?;
    let zone = if reporting_time_zone.is_empty() { "UTC" } else { reporting_time_zone };
    anyhow::ensure!(
        zone.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)),
        "reporting_time_zone `{zone}`: not an IANA zone name"
    );
    Ok(zone.to_string())
}

/// One migration statement with its placeholders filled in; `zone` from [`sql_time_zone`].
pub fn render(stmt: &str, cfg: &ClickHouseConfig, zone: &str) -> String {
    let w = &cfg.engagement;
    [
        ("{events_ttl_days}", cfg.events_ttl_days),
        ("{open_weight}", w.open_weight),
        ("{third_open_bonus}", w.third_open_bonus),
        ("{click_weight}", w.click_weight),
        ("{reply_weight}", w.reply_weight),
        ("{score_reset_days}", w.score_reset_days),
    ]
    .iter()
    .fold(stmt.to_string(), |s, (k, v)| s.replace(k, &v.to_string()))
    .replace("{reporting_time_zone}", zone)
}

/// A rendered statement as `cfg` runs it: itself on one server, its cluster form when
/// `clickhouse.cluster` names a cluster (`schemas::cluster::statements`).
pub fn in_cluster(stmt: &str, cfg: &ClickHouseConfig) -> Result<Vec<String>, schemas::cluster::ClusterError> {
    if cfg.cluster.is_empty() {
        return Ok(vec![stmt.to_string()]);
    }
    schemas::cluster::statements(stmt, &schemas::cluster::Cluster { name: &cfg.cluster, database: &cfg.database })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_is_validated_like_the_counters_zone() {
        assert_eq!(sql_time_zone("").unwrap(), "UTC");
        assert_eq!(sql_time_zone("UTC").unwrap(), "UTC");
        assert_eq!(sql_time_zone("America/New_York").unwrap(), "America/New_York");
        let err = sql_time_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("reporting_time_zone `Mars/Olympus`"), "{err}");
        assert!(sql_time_zone("UTC'; DROP TABLE events; --").is_err());
    }

    #[test]
    fn every_placeholder_is_filled() {
        let cfg = ClickHouseConfig::default();
        for (version, _, sql) in schemas::ddl::MIGRATIONS {
            for stmt in schemas::ddl::statements(sql) {
                let out = render(&stmt, &cfg, "Europe/Berlin");
                let left: Vec<&str> = ["{events_ttl_days}", "{open_weight}", "{reporting_time_zone}", "{score_reset_days}"]
                    .into_iter()
                    .filter(|p| out.contains(p))
                    .collect();
                assert!(left.is_empty(), "migration {version}: {left:?} left in {out}");
            }
        }
        let mv = render(&schemas::ddl::statements(schemas::ddl::MIGRATIONS[4].2)[1], &cfg, "Europe/Berlin");
        assert!(mv.contains("('day:Europe/Berlin', toDate(occurred_at, 'Europe/Berlin'))"), "{mv}");
        assert_eq!(view_zone(&mv), "Europe/Berlin");
        assert_eq!(view_zone(&render(&schemas::ddl::statements(schemas::ddl::MIGRATIONS[4].2)[1], &cfg, "UTC")), "UTC");
    }

    #[test]
    fn single_node_is_unchanged_and_a_cluster_gets_the_cluster_form() {
        let mut cfg = ClickHouseConfig::default();
        assert_eq!(in_cluster(SCHEMA_MIGRATIONS, &cfg).unwrap(), vec![SCHEMA_MIGRATIONS.to_string()]);
        cfg.cluster = "sendtrace".into();
        let out = in_cluster(SCHEMA_MIGRATIONS, &cfg).unwrap();
        assert_eq!(out.len(), 1, "schema_migrations is on every node, not sharded");
        assert!(out[0].starts_with("CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER 'sendtrace' (version UInt32"), "{}", out[0]);
        assert!(out[0].contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}') ORDER BY version"), "{}", out[0]);
        // the zone is filled in before the translation; the replica macros are left to the server
        let mv = &in_cluster(&render(&schemas::ddl::statements(schemas::ddl::MIGRATIONS[4].2)[1], &cfg, "Europe/Berlin"), &cfg).unwrap()[0];
        assert!(mv.contains("ON CLUSTER 'sendtrace' TO `unique_recipients_local`") && mv.contains("FROM `events_local`") && mv.contains("'day:Europe/Berlin'"), "{mv}");
        cfg.cluster = "a'b".into();
        assert_eq!(in_cluster("CREATE DATABASE d", &cfg).unwrap_err().code(), "invalid_name");
    }
}
