//! The official `clickhouse` crate, with its defaults (LZ4 compression, row validation),
//! inserts and selects through the ClickHouse endpoint of the stack.

use clickhouse::Row;
use e2e::Stack;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Sample {
    id: u64,
    name: String,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    amount: i128,
    at: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_crate_inserts_and_selects_with_lz4() {
    let stack = Stack::from_env();
    let db = format!("t_crate_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let server = clickhouse::Client::default().with_url(&stack.clickhouse_url);
    server.query(&format!("CREATE DATABASE {db}")).execute().await.unwrap();
    let client = clickhouse::Client::default().with_url(&stack.clickhouse_url).with_database(&db);
    client
        .query("CREATE TABLE t (id UInt64, name String, blob String, amount Decimal(38, 10), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id")
        .execute()
        .await
        .unwrap();
    let rows: Vec<Sample> = (0..5000u64)
        .map(|i| Sample { id: i, name: format!("n{i}"), blob: vec![0, 0xff, (i % 256) as u8, 0x80], amount: -(i as i128) * 75_000_000, at: 1_700_000_000_000 + i as i64 })
        .collect();
    let mut ins = client.insert::<Sample>("t").await.unwrap();
    for r in &rows {
        ins.write(r).await.unwrap();
    }
    ins.end().await.unwrap();
    let back = client.query("SELECT ?fields FROM t ORDER BY id").fetch_all::<Sample>().await.unwrap();
    assert_eq!(back, rows, "binary columns and decimals survive the round trip");
    let n: u64 = client.query("SELECT count() FROM t WHERE amount < ?").bind(0).fetch_one().await.unwrap();
    assert_eq!(n, 4999);
    // a server error surfaces as an error, not a panic or a silent success
    let err = client.query("SELECT * FROM no_such_table").fetch_all::<Sample>().await.unwrap_err();
    assert!(err.to_string().contains("no_such_table") || err.to_string().contains("UNKNOWN_TABLE"), "{err}");
}
