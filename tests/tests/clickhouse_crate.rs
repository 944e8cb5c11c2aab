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

/// A table of [`Sample`] rows.
async fn create_samples(client: &clickhouse::Client, table: &str) {
    client
        .query(&format!("CREATE TABLE {table} (id UInt64, name String, blob String, amount Decimal(38, 10), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id"))
        .execute()
        .await
        .unwrap();
}

/// `rows` into `table`, one INSERT.
async fn insert_samples(client: &clickhouse::Client, table: &str, rows: &[Sample]) {
    let mut ins = client.insert::<Sample>(table).await.unwrap();
    for r in rows {
        ins.write(r).await.unwrap();
    }
    ins.end().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_crate_inserts_and_selects_with_lz4() {
    let stack = Stack::from_env();
    let db = format!("t_crate_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let server = clickhouse::Client::default().with_url(&stack.clickhouse_url);
    server.query(&format!("CREATE DATABASE {db}")).execute().await.unwrap();
    let client = clickhouse::Client::default().with_url(&stack.clickhouse_url).with_database(&db);
    create_samples(&client, "t").await;
    let rows: Vec<Sample> = (0..5000u64)
        .map(|i| Sample { id: i, name: format!("n{i}"), blob: vec![0, 0xff, (i % 256) as u8, 0x80], amount: -(i as i128) * 75_000_000, at: 1_700_000_000_000 + i as i64 })
        .collect();
    insert_samples(&client, "t", &rows).await;
    let back = client.query("SELECT ?fields FROM t ORDER BY id").fetch_all::<Sample>().await.unwrap();
    assert_eq!(back, rows, "binary columns and decimals survive the round trip");
    let n: u64 = client.query("SELECT count() FROM t WHERE amount < ?").bind(0).fetch_one().await.unwrap();
    assert_eq!(n, 4999);
    // a server error surfaces as an error, not a panic or a silent success
    let err = client.query("SELECT * FROM no_such_table").fetch_all::<Sample>().await.unwrap_err();
    assert!(err.to_string().contains("no_such_table") || err.to_string().contains("UNKNOWN_TABLE"), "{err}");
}

/// The aggregator's client as `clickhouse.compression` configures it (`lz4`, the default, and
/// `none`): both insert and read back the same rows through the endpoint, and the setting is
/// read from a config file, an unknown value refused with the field's name.
#[tokio::test(flavor = "multi_thread")]
async fn the_aggregators_client_round_trips_with_each_compression() {
    use aggregator::config::{ClickHouseConfig, Compression, Config};
    let stack = Stack::from_env();
    let db = format!("t_comp_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let server = clickhouse::Client::default().with_url(&stack.clickhouse_url);
    server.query(&format!("CREATE DATABASE {db}")).execute().await.unwrap();
    for compression in [Compression::Lz4, Compression::None] {
        let cfg = ClickHouseConfig { url: stack.clickhouse_url.clone(), database: db.clone(), compression, ..Default::default() };
        let client = cfg.client();
        let table = format!("t_{compression:?}").to_lowercase();
        create_samples(&client, &table).await;
        // (varied, poorly compressible names: LZ4 framing is exercised on real blocks)
        let rows: Vec<Sample> = (0..20_000u64)
            .map(|i| Sample { id: i, name: format!("{:x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)), blob: vec![(i % 251) as u8; (i % 40) as usize], amount: i as i128 * 3, at: 1_700_000_000_000 + i as i64 })
            .collect();
        insert_samples(&client, &table, &rows).await;
        let back = client.query(&format!("SELECT ?fields FROM {table} ORDER BY id")).fetch_all::<Sample>().await.unwrap();
        assert_eq!(back.len(), rows.len(), "{compression:?}");
        assert!(back == rows, "{compression:?}: rows differ after the round trip");
    }
    // (the file's form; `runtime::config::load` would also read this test's SENDTRACE_* env)
    let cfg: Config = toml::from_str("[clickhouse]\ncompression = \"none\"\n").unwrap();
    assert_eq!(cfg.clickhouse.compression, Compression::None);
    assert_eq!(Config::default().clickhouse.compression, Compression::Lz4, "the default stays LZ4");
    let err = toml::from_str::<Config>("[clickhouse]\ncompression = \"zstd\"\n").unwrap_err().to_string();
    assert!(err.contains("zstd") && err.contains("lz4"), "{err}");
}

/// What `clickhouse.compression` changes on the wire: the aggregator's client asks for
/// compressed bodies (`compress=1`) with `lz4` and not with
/// `none`. (A listener that records the request line and answers an empty 200.)
#[tokio::test(flavor = "multi_thread")]
async fn the_compression_setting_is_what_the_requests_ask_for() {
    use aggregator::config::{ClickHouseConfig, Compression};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (compression, wanted) in [(Compression::Lz4, true), (Compression::None, false)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string()
        });
        let client = ClickHouseConfig { url, compression, ..Default::default() }.client();
        let _ = client.query("SELECT 1").execute().await; // (the answer does not matter here)
        let request_line = server.await.unwrap();
        assert!(request_line.starts_with("POST "), "{request_line}");
        assert_eq!(request_line.contains("compress=1"), wanted, "{compression:?}: {request_line}");
    }
}
