//! `aggregator migrate`: applies the ClickHouse migrations in `schemas/clickhouse/`,
//! recording each applied version. Running it again is harmless.

use crate::config::ClickHouseConfig;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Row, Serialize, Deserialize)]
struct Applied {
    version: u32,
    name: String,
    applied_at: i64,
}

/// Creates the database and applies missing migrations. Returns the versions applied now.
pub async fn migrate(cfg: &ClickHouseConfig) -> anyhow::Result<Vec<u32>> {
    let server = clickhouse::Client::default().with_url(&cfg.url).with_user(&cfg.user).with_password(&cfg.password);
    server.query(&format!("CREATE DATABASE IF NOT EXISTS `{}`", cfg.database.replace('`', ""))).execute().await?;
    let db = cfg.client();
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) \
         ENGINE = ReplacingMergeTree ORDER BY version",
    )
    .execute()
    .await?;
    let done: Vec<u32> = db.query("SELECT version FROM schema_migrations FINAL").fetch_all::<u32>().await?;
    let mut applied = Vec::new();
    for (version, name, sql) in schemas::ddl::MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        for stmt in schemas::ddl::statements(sql) {
            let w = &cfg.engagement;
            let stmt = [
                ("{events_ttl_days}", cfg.events_ttl_days),
                ("{open_weight}", w.open_weight),
                ("{third_open_bonus}", w.third_open_bonus),
                ("{click_weight}", w.click_weight),
                ("{reply_weight}", w.reply_weight),
                ("{score_reset_days}", w.score_reset_days),
            ]
            .iter()
            .fold(stmt, |s, (k, v)| s.replace(k, &v.to_string()));
            // `?` is the crate's bind marker; DDL has none, so take the text as is.
            db.query(&stmt).execute().await?;
        }
        let mut ins = db.insert::<Applied>("schema_migrations").await?;
        ins.write(&Applied { version: *version, name: name.to_string(), applied_at: chrono::Utc::now().timestamp_millis() }).await?;
        ins.end().await?;
        tracing::info!(message = "Migration applied.", version, name);
        applied.push(*version);
    }
    Ok(applied)
}
