//! Starting the services of one test against the shared broker and ClickHouse.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The infrastructure every test shares.
#[derive(Debug, Clone)]
pub struct Stack {
    pub brokers: String,
    pub clickhouse_url: String,
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Stack {
    /// From `SENDTRACE_TEST_KAFKA`, `SENDTRACE_TEST_CLICKHOUSE`, `SENDTRACE_BIN_DIR` (defaults: the devstack ports, target/debug).
    pub fn from_env() -> Stack {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        Stack {
            brokers: std::env::var("SENDTRACE_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            clickhouse_url: std::env::var("SENDTRACE_TEST_CLICKHOUSE").unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
            bin_dir: std::env::var("SENDTRACE_BIN_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target/debug")),
            log_dir: std::env::var("SENDTRACE_TEST_LOGS").map(PathBuf::from).unwrap_or_else(|_| root.join("target/e2e-logs")),
        }
    }

    /// Runs a SQL query on the ClickHouse HTTP interface; returns the body (JSONEachRow by default).
    pub async fn query(&self, database: &str, sql: &str) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/?database={database}&default_format=JSONEachRow", self.clickhouse_url))
            .body(sql.to_string())
            .send()
            .await
            .expect("ClickHouse reachable");
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "query failed ({status}): {body}\n{sql}");
        body
    }

    /// Rows of a query as JSON values.
    pub async fn rows(&self, database: &str, sql: &str) -> Vec<serde_json::Value> {
        self.query(database, sql)
            .await
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("JSON row"))
            .collect()
    }

    /// Creates topics with the admin API (tansu does not auto-create).
    pub async fn create_topics(&self, topics: &[&str], partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &self.brokers).create().expect("admin");
        let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
        for r in admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics") {
            if let Err((t, e)) = r {
                assert_eq!(e, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists, "topic {t}");
            }
        }
    }
}

/// A port for a service a test starts, free now and reserved for this process. Taken at random
/// below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768–60999 by default):
/// a port the kernel handed out for `bind(0)` is released before the child binds it, and
/// meanwhile any outgoing connection of the parallel tests may take it as its local port (a CI
/// run lost an aggregator's admin port so). Below the range only another test's pick can
/// collide: nextest runs each test in its own process, and two of them could pick the same port
/// before either child bound it (a CI run lost `hostile_edge`'s aggregator port so). So a pick is
/// also reserved across processes: an exclusive lock on a file named after the port in
/// `$TMPDIR/sendtrace-test-ports`, held until the process exits. The devstacks' own ports
/// (28000–29999 for `scripts/load.sh`) are left out too.
pub fn free_port() -> u16 {
    const LOW: u32 = 15_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(28_000);
    let dir = std::env::temp_dir().join("sendtrace-test-ports");
    std::fs::create_dir_all(&dir).expect("port reservation directory");
    for _ in 0..256 {
        let port = (LOW + (uuid::Uuid::new_v4().as_u128() % u128::from(high.saturating_sub(LOW).max(1))) as u32) as u16;
        if reserve_port(&dir, port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {high} after 256 tries");
}

/// Reserves `port` for this process (see [`free_port`]): true when this process holds it now.
/// The reservation is an exclusive `flock` on the port's file, kept open until the process
/// exits; the kernel drops it then, even after a crash, so nothing goes stale. A second pick of
/// the same port in this process opens the file again and fails the lock as well.
fn reserve_port(dir: &std::path::Path, port: u16) -> bool {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let Ok(file) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(port.to_string())) else {
        return false;
    };
    if file.try_lock().is_err() {
        return false;
    }
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push(file);
    true
}

/// A child process, killed (SIGKILL) when dropped unless stopped before.
pub struct Service {
    pub name: String,
    child: Option<Child>,
}

impl Service {
    pub fn spawn(stack: &Stack, name: &str, bin: &str, args: &[&str], env: &[(String, String)]) -> Service {
        std::fs::create_dir_all(&stack.log_dir).ok();
        // (appended: a service restarted by a test keeps its predecessor's lines above its own)
        let log = std::fs::OpenOptions::new().create(true).append(true).open(stack.log_dir.join(format!("{name}.log"))).expect("log file");
        let mut cmd = Command::new(stack.bin_dir.join(bin));
        cmd.args(args).stdout(Stdio::null()).stderr(log);
        for (k, _) in std::env::vars() {
            if k.starts_with("SENDTRACE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info,aggregator=debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {bin}: {e} (run `cargo build --bins` first)"));
        Service { name: name.to_string(), child: Some(child) }
    }

    /// Resident memory in KiB (Linux), 0 if unknown.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
            .unwrap_or(0)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: the crash case.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits at most `within` for the exit (SIGKILL after that). Returns the exit
    /// status (None: it had not exited within `within`) and how long the exit took.
    pub fn terminate(&mut self, within: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let t0 = std::time::Instant::now();
        let Some(mut c) = self.child.take() else { return (None, Duration::ZERO) };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        while t0.elapsed() < within {
            if let Ok(Some(status)) = c.try_wait() {
                return (Some(status), t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        (None, t0.elapsed())
    }

    /// SIGTERM and wait: the orderly case.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The three services of one test, on their own topics, groups, database and ports.
pub struct Pipeline {
    pub stack: Stack,
    pub name: String,
    pub raw_topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
    pub suppressions_topic: String,
    pub database: String,
    pub ingest_url: String,
    pub ingest: Option<Service>,
    pub normalizer: Option<Service>,
    pub aggregator: Option<Service>,
    pub ingest_config: PathBuf,
    /// Extra environment for the aggregator (e.g. a ClickHouse URL through a proxy, batch sizes).
    pub aggregator_env: Vec<(String, String)>,
    /// Extra environment for every service this pipeline starts (e.g. `SENDTRACE_LOG_JSON`, `RUST_LOG`).
    pub service_env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
    /// ingest, normalizer admin, aggregator admin, ingest admin.
    ports: (u16, u16, u16, u16),
}

impl Pipeline {
    /// Unique names for `name`, topics created, database migrated; services not started yet.
    /// ingest's config holds tenant `acme` with every provider's secret
    /// ([`crate::samples::ingest_toml`]) and the SNS test certificate.
    pub async fn new(stack: &Stack, name: &str) -> Pipeline {
        Pipeline::with_aggregator_env(stack, name, Vec::new()).await
    }

    /// As [`Pipeline::new`], with extra aggregator environment that migrate must see too
    /// (e.g. `SENDTRACE_REPORTING_TIME_ZONE`, which the `unique_recipients_mv` view is built with).
    pub async fn with_aggregator_env(stack: &Stack, name: &str, aggregator_env: Vec<(String, String)>) -> Pipeline {
        let mut p = Pipeline::unmigrated(stack, name).await;
        p.aggregator_env = aggregator_env;
        p.migrate().await;
        p
    }

    /// As [`Pipeline::new`] but the database is neither created nor migrated (upgrade tests).
    pub async fn unmigrated(stack: &Stack, name: &str) -> Pipeline {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let ingest_config = dir.path().join("ingest.toml");
        let p = Pipeline {
            stack: stack.clone(),
            name: format!("{name}-{id}"),
            raw_topic: format!("t.{name}.{id}.raw"),
            events_topic: format!("t.{name}.{id}.events"),
            dead_letter_topic: format!("t.{name}.{id}.dlq"),
            suppressions_topic: format!("t.{name}.{id}.suppressions"),
            database: format!("t_{}_{id}", name.replace('-', "_")),
            ingest_url: String::new(),
            ingest: None,
            normalizer: None,
            aggregator: None,
            ingest_config,
            aggregator_env: Vec::new(),
            service_env: Vec::new(),
            _dir: dir,
            ports: (free_port(), free_port(), free_port(), free_port()),
        };
        let mut p = p;
        p.ingest_url = format!("http://127.0.0.1:{}", p.ports.0);
        let toml = crate::samples::ingest_toml("acme", &p.ingest_url);
        std::fs::write(&p.ingest_config, toml).expect("write config");
        stack.create_topics(&[&p.raw_topic, &p.events_topic, &p.dead_letter_topic], 4).await;
        p
    }

    fn common_env(&self, brokers: &str) -> Vec<(String, String)> {
        vec![
            ("SENDTRACE_KAFKA__BROKERS".into(), brokers.into()),
            ("SENDTRACE_KAFKA__SESSION_TIMEOUT_MS".into(), "3000".into()),
            ("SENDTRACE_KAFKA__PARTITIONS".into(), "4".into()),
            // (as the devstack: tansu sleeps after every fetch, 250 ms at librdkafka's default
            // wait; `runtime::kafka::KafkaConfig::fetch_wait_max_ms`)
            ("SENDTRACE_KAFKA__FETCH_WAIT_MAX_MS".into(), "100".into()),
            ("SENDTRACE_RAW_TOPIC".into(), self.raw_topic.clone()),
            ("SENDTRACE_EVENTS_TOPIC".into(), self.events_topic.clone()),
            ("SENDTRACE_DEAD_LETTER_TOPIC".into(), self.dead_letter_topic.clone()),
            ("SENDTRACE_CLICKHOUSE__URL".into(), self.stack.clickhouse_url.clone()),
            ("SENDTRACE_CLICKHOUSE__DATABASE".into(), self.database.clone()),
            ("SENDTRACE_SUPPRESSIONS_TOPIC".into(), self.suppressions_topic.clone()),
        ]
    }

    fn env_for(&self, service: &str, brokers: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .common_env(brokers)
            .into_iter()
            .filter(|(k, _)| match service {
                "ingest" => k.starts_with("SENDTRACE_KAFKA") || k == "SENDTRACE_RAW_TOPIC",
                "normalizer" => !k.starts_with("SENDTRACE_CLICKHOUSE") && k != "SENDTRACE_SUPPRESSIONS_TOPIC",
                _ => {
                    k.starts_with("SENDTRACE_KAFKA")
                        || k.starts_with("SENDTRACE_CLICKHOUSE")
                        || ["SENDTRACE_EVENTS_TOPIC", "SENDTRACE_SUPPRESSIONS_TOPIC", "SENDTRACE_DEAD_LETTER_TOPIC"].contains(&k.as_str())
                }
            })
            .collect();
        // One consumer group per service, as deployed (`sendtrace-normalizer`,
        // `sendtrace-aggregator`): in one group, each service's restart rebalanced the other's
        // partitions mid-batch.
        if service != "ingest" {
            env.push(("SENDTRACE_GROUP_ID".into(), format!("g-{}-{service}", self.name)));
        }
        match service {
            "ingest" => {
                env.push(("SENDTRACE_LISTEN_ADDR".into(), format!("127.0.0.1:{}", self.ports.0)));
                env.push(("SENDTRACE_ADMIN_ADDR".into(), format!("127.0.0.1:{}", self.ports.3)));
            }
            "normalizer" => env.push(("SENDTRACE_ADMIN_ADDR".into(), format!("127.0.0.1:{}", self.ports.1))),
            _ => env.push(("SENDTRACE_ADMIN_ADDR".into(), format!("127.0.0.1:{}", self.ports.2))),
        }
        env.extend(self.service_env.iter().cloned());
        env
    }

    /// Admin port (`/metrics`, `/healthz`) of ingest.
    pub fn ingest_admin_port(&self) -> u16 {
        self.ports.3
    }

    /// Admin ports (`/metrics`, `/healthz`) of the normalizer and the aggregator.
    pub fn admin_ports(&self) -> (u16, u16) {
        (self.ports.1, self.ports.2)
    }

    /// The aggregator's environment: the common one, with [`Pipeline::aggregator_env`] overriding it.
    fn aggregator_process_env(&self) -> Vec<(String, String)> {
        let mut env = self.env_for("aggregator", &self.stack.brokers);
        for (k, v) in &self.aggregator_env {
            env.retain(|(k2, _)| k2 != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// Runs `aggregator migrate` with the aggregator's environment ([`Pipeline::aggregator_env`] included).
    pub async fn migrate(&self) {
        let (ok, log) = self.try_migrate().await;
        assert!(ok, "migrate failed; see {log}");
    }

    /// Forgets that `versions` were applied, so the next [`Pipeline::migrate`] runs them again
    /// (a migration's backfill on a database as it stood before it, or a second run).
    pub async fn forget_migrations(&self, versions: &[u32]) {
        let list = versions.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        self.query(&format!("ALTER TABLE schema_migrations DELETE WHERE version IN ({list}) SETTINGS mutations_sync = 1")).await;
    }

    /// Runs `aggregator migrate`; returns whether it succeeded and its log file.
    pub async fn try_migrate(&self) -> (bool, String) {
        let env = self.aggregator_process_env();
        let name = format!("{}-migrate", self.name);
        let mut svc = Service::spawn(&self.stack, &name, "aggregator", &["migrate"], &env);
        let status = svc.child.take().map(|mut c| c.wait().expect("migrate ran"));
        (status.is_some_and(|s| s.success()), self.stack.log_dir.join(format!("{name}.log")).display().to_string())
    }

    pub async fn start_ingest_with(&mut self, brokers: &str) {
        let env = self.env_for("ingest", brokers);
        let cfg = self.ingest_config.to_string_lossy().to_string();
        self.ingest = Some(Service::spawn(&self.stack, &format!("{}-ingest", self.name), "ingest", &["--config", &cfg], &env));
        self.wait_healthy(&format!("{}/healthz", self.ingest_url), "ingest").await;
    }

    pub async fn start_ingest(&mut self) {
        let brokers = self.stack.brokers.clone();
        self.start_ingest_with(&brokers).await;
    }

    pub async fn start_normalizer(&mut self) {
        let env = self.env_for("normalizer", &self.stack.brokers);
        self.normalizer = Some(Service::spawn(&self.stack, &format!("{}-normalizer", self.name), "normalizer", &["run"], &env));
        self.wait_healthy(&format!("http://127.0.0.1:{}/healthz", self.ports.1), "normalizer").await;
    }

    pub async fn start_aggregator(&mut self) {
        let env = self.aggregator_process_env();
        self.aggregator = Some(Service::spawn(&self.stack, &format!("{}-aggregator", self.name), "aggregator", &["run"], &env));
        self.wait_healthy(&format!("http://127.0.0.1:{}/healthz", self.ports.2), "aggregator").await;
    }

    /// Another aggregator of the same consumer group (its own admin port), e.g. to force rebalances.
    pub async fn spawn_second_aggregator(&self, tag: &str) -> Service {
        let mut env = self.aggregator_process_env();
        let port = free_port();
        env.retain(|(k, _)| k != "SENDTRACE_ADMIN_ADDR");
        env.push(("SENDTRACE_ADMIN_ADDR".into(), format!("127.0.0.1:{port}")));
        let svc = Service::spawn(&self.stack, &format!("{}-aggregator-{tag}", self.name), "aggregator", &["run"], &env);
        self.wait_healthy(&format!("http://127.0.0.1:{port}/healthz"), "second aggregator").await;
        svc
    }

    /// Another normalizer of the same consumer group (its own admin port).
    pub async fn spawn_second_normalizer(&self, tag: &str) -> Service {
        let mut env = self.env_for("normalizer", &self.stack.brokers);
        let port = free_port();
        env.retain(|(k, _)| k != "SENDTRACE_ADMIN_ADDR");
        env.push(("SENDTRACE_ADMIN_ADDR".into(), format!("127.0.0.1:{port}")));
        let svc = Service::spawn(&self.stack, &format!("{}-normalizer-{tag}", self.name), "normalizer", &["run"], &env);
        self.wait_healthy(&format!("http://127.0.0.1:{port}/healthz"), "second normalizer").await;
        svc
    }

    /// Starts the read API on this pipeline's database; `keys_toml` holds its `[tenants.*]` keys.
    /// Returns the API's base URL and the process.
    pub async fn start_api(&self, keys_toml: &str) -> (String, Service) {
        let port = free_port();
        let config = self._dir.path().join(format!("api-{port}.toml"));
        std::fs::write(&config, keys_toml).expect("write api config");
        let env = vec![
            ("SENDTRACE_LISTEN_ADDR".to_string(), format!("127.0.0.1:{port}")),
            ("SENDTRACE_CLICKHOUSE__URL".to_string(), self.stack.clickhouse_url.clone()),
            ("SENDTRACE_CLICKHOUSE__DATABASE".to_string(), self.database.clone()),
            ("SENDTRACE_KAFKA__BROKERS".to_string(), self.stack.brokers.clone()),
            ("SENDTRACE_SUPPRESSIONS_TOPIC".to_string(), self.suppressions_topic.clone()),
            ("SENDTRACE_EVENTS_TOPIC".to_string(), self.events_topic.clone()),
        ];
        let cfg = config.to_string_lossy().to_string();
        let svc = Service::spawn(&self.stack, &format!("{}-api", self.name), "api", &["--config", &cfg], &env);
        let url = format!("http://127.0.0.1:{port}");
        self.wait_healthy(&format!("{url}/readyz"), "api").await;
        (url, svc)
    }

    /// The log file of service `suffix` (`aggregator`, `aggregator-b`, ..) of this pipeline.
    pub fn log_of(&self, suffix: &str) -> std::path::PathBuf {
        self.stack.log_dir.join(format!("{}-{suffix}.log", self.name))
    }

    pub async fn start_all(&mut self) {
        self.start_ingest().await;
        self.start_normalizer().await;
        self.start_aggregator().await;
    }

    async fn wait_healthy(&self, url: &str, what: &str) {
        let client = reqwest::Client::new();
        crate::wait_until(&format!("{what} healthy ({url})"), Duration::from_secs(60), || {
            let c = client.clone();
            let url = url.to_string();
            async move { c.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    /// POSTs `body` to `path` on ingest; returns status and body text.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
        let mut req = reqwest::Client::new().post(format!("{}{path}", self.ingest_url)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    /// POSTs an SNS body to the SES route with headers that match it.
    pub async fn post_sns(&self, tenant: &str, body: &[u8]) -> (u16, String) {
        let v: serde_json::Value = serde_json::from_slice(body).expect("SNS JSON");
        let kind = v["Type"].as_str().unwrap_or_default().to_string();
        let id = v["MessageId"].as_str().unwrap_or_default().to_string();
        self.post(
            &format!("/webhooks/ses/{tenant}"),
            &[("content-type", "text/plain; charset=UTF-8"), ("x-amz-sns-message-type", &kind), ("x-amz-sns-message-id", &id)],
            body.to_vec(),
        )
        .await
    }

    pub async fn query(&self, sql: &str) -> String {
        self.stack.query(&self.database, sql).await
    }

    pub async fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        self.stack.rows(&self.database, sql).await
    }

    /// A cell of a `rows` row as text: a string as it is, anything else as JSON.
    pub fn cell(row: &serde_json::Value, column: &str) -> String {
        match &row[column] {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }

    /// A single number from a query such as `SELECT count() FROM events FINAL`.
    pub async fn number(&self, sql: &str) -> u64 {
        let body = self.stack.query(&self.database, &format!("{sql} FORMAT TabSeparated")).await;
        body.trim().parse().unwrap_or_else(|_| panic!("not a number: {body:?} from {sql}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reserved port is refused to a second pick in this process and to another process
    /// (`flock(1)` from util-linux, the same kind of lock) until the holder lets go.
    #[test]
    fn a_reserved_port_is_held_against_other_picks_and_processes() {
        let dir =
            std::env::temp_dir().join(format!("sendtrace-port-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(reserve_port(&dir, 20_001));
        assert!(
            !reserve_port(&dir, 20_001),
            "the same process picked a held port twice"
        );
        assert!(reserve_port(&dir, 20_002));
        let other = |port: u16| {
            Command::new("flock")
                .args(["-n", "-E", "7"])
                .arg(dir.join(port.to_string()))
                .arg("true")
                .status()
                .expect("flock(1)")
                .code()
        };
        assert_eq!(other(20_001), Some(7), "another process took a held port");
        assert_eq!(
            other(20_003),
            Some(0),
            "an unreserved port is free for another process"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
