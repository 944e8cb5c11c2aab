//! docker-compose.yml and docker-compose.cluster.yml cannot run here (no Docker engine); this
//! keeps them valid: they parse, every service has an image, a health check (long-running
//! ones), dependencies name real services with valid conditions, and the services get
//! configuration keys their config structs accept. The cluster file's topology is checked
//! against its config files (brokers, Keeper, shards and replicas, macros). Where `docker compose`
//! is installed, `docker compose config` must accept both files too.

use std::collections::{BTreeMap, BTreeSet};

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(file: &str) -> serde_yaml::Value {
    let mut v: serde_yaml::Value = serde_yaml::from_str(&read(file)).expect("valid YAML");
    v.apply_merge().expect("merge keys resolve");
    v
}

fn compose() -> serde_yaml::Value {
    load("docker-compose.yml")
}

fn cluster() -> serde_yaml::Value {
    load("docker-compose.cluster.yml")
}

#[test]
fn compose_file_is_consistent() {
    let v = compose();
    let services = v["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
    for expected in ["kafka", "clickhouse", "migrate", "ingest", "normalizer", "aggregator", "api", "grafana"] {
        assert!(names.contains(expected), "service {expected}");
    }
    services_are_consistent(&v);
    assert_eq!(v["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].as_str(), Some("broker,controller"), "KRaft");
}

/// What holds for the services of either compose file.
fn services_are_consistent(v: &serde_yaml::Value) {
    let services = v["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        assert!(svc.get("image").is_some() || svc.get("build").is_some(), "{name}: image or build");
        if name != "migrate" {
            assert!(svc["healthcheck"]["test"].is_sequence(), "{name}: health check");
        }
        if let Some(deps) = svc.get("depends_on").and_then(|d| d.as_mapping()) {
            for (dep, cond) in deps {
                let dep = dep.as_str().unwrap();
                assert!(names.contains(dep), "{name} depends on unknown {dep}");
                let c = cond["condition"].as_str().unwrap_or("service_started");
                assert!(["service_started", "service_healthy", "service_completed_successfully"].contains(&c), "{name}: {c}");
            }
        }
    }
    // environment keys must be ones the services accept (they refuse unknown keys)
    for svc in ["ingest", "normalizer", "aggregator", "migrate", "api"] {
        let env = services[svc]["environment"].as_mapping().expect("environment");
        for k in env.keys().filter_map(|k| k.as_str()) {
            if let Some(key) = k.strip_prefix("SENDTRACE_") {
                let top = key.split("__").next().unwrap().to_ascii_lowercase();
                let allowed: &[&str] = match svc {
                    "ingest" => &["kafka", "listen_addr", "admin_addr", "raw_topic", "tenants", "log_json"],
                    "normalizer" => &["kafka", "admin_addr", "raw_topic", "events_topic", "mapping", "log_json"],
                    "api" => &["listen_addr", "clickhouse", "kafka", "suppressions_topic", "events_topic", "log_json"],
                    _ => &["kafka", "clickhouse", "admin_addr", "events_topic", "log_json"],
                };
                assert!(allowed.contains(&top.as_str()), "{svc}: {k}");
            }
        }
    }
    // bind-mounted files of the repository exist
    for (name, svc) in services {
        for m in svc.get("volumes").and_then(|v| v.as_sequence()).into_iter().flatten().filter_map(|m| m.as_str()) {
            if let Some(file) = m.strip_prefix("./").and_then(|m| m.split(':').next()) {
                let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
                assert!(std::path::Path::new(&path).exists(), "{}: mounts missing {file}", name.as_str().unwrap_or_default());
            }
        }
    }
    // third-party images are pinned; `sendtrace:latest` is built from this repository
    for (name, svc) in services {
        let image = svc["image"].as_str().unwrap_or("sendtrace:latest");
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(image.starts_with("sendtrace:") || (!tag.is_empty() && tag != "latest"), "{name:?}: image {image} not pinned");
    }
}

/// Secrets come from the environment, never from defaults in the file: ClickHouse has a
/// password (required), publishes no port, and ingest's API key is required from the environment.
#[test]
fn compose_file_has_no_default_secrets_and_no_published_database() {
    let v = compose();
    let services = &v["services"];
    let required = |value: &serde_yaml::Value, var: &str| {
        let s = value.as_str().unwrap_or_default();
        assert!(s.starts_with(&format!("${{{var}:?")), "`{s}` must require ${var} from the environment");
    };
    required(&services["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"], "CLICKHOUSE_PASSWORD");
    for svc in ["migrate", "aggregator"] {
        required(&services[svc]["environment"]["SENDTRACE_CLICKHOUSE__PASSWORD"], "CLICKHOUSE_PASSWORD");
    }
    assert!(services["clickhouse"].get("ports").is_none(), "ClickHouse publishes no port by default");
    let ingest_env = services["ingest"]["environment"].as_mapping().unwrap();
    let key = ingest_env.iter().find(|(k, _)| k.as_str().is_some_and(|k| k.ends_with("__API_KEY"))).expect("an API key from the environment");
    assert!(key.1.as_str().unwrap().starts_with("${") && key.1.as_str().unwrap().contains(":?"), "{:?}", key.1);
    required(&services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"], "GRAFANA_ADMIN_PASSWORD");
    for svc in ["clickhouse", "grafana"] {
        required(&services[svc]["environment"]["CLICKHOUSE_READER_PASSWORD"], "CLICKHOUSE_READER_PASSWORD");
    }
    let ports: Vec<String> = services["ingest"]["ports"].as_sequence().unwrap().iter().filter_map(|p| p.as_str().map(str::to_string)).collect();
    assert!(ports.iter().all(|p| !p.contains("9100")), "the admin listener is not published: {ports:?}");

    // deploy/ingest.toml: no secret set in the file (no `change-me`), and it parses as ingest's config.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/ingest.toml")).unwrap();
    let cfg: toml::Value = toml::from_str(&text).expect("valid TOML");
    for (tenant, creds) in cfg["tenants"].as_table().unwrap() {
        assert!(creds.as_table().unwrap().is_empty(), "tenants.{tenant}: secrets belong in the environment");
    }
    assert!(!text.contains("change-me"));
}

/// The grafana service installs the ClickHouse plugin, mounts the provisioning files where Grafana
/// reads them and the dashboards where the dashboard provider looks; the data source's user is the
/// read-only one ClickHouse loads (deploy/grafana/clickhouse-reader.xml, mounted into users.d),
/// and both services take its password from the same environment variable.
#[test]
fn compose_grafana_is_provisioned_with_the_read_only_user() {
    let v = compose();
    let g = &v["services"]["grafana"];
    assert!(g["environment"]["GF_INSTALL_PLUGINS"].as_str().unwrap_or_default().contains("grafana-clickhouse-datasource"));
    let mounts: Vec<&str> = g["volumes"].as_sequence().expect("volumes").iter().filter_map(|m| m.as_str()).collect();
    assert!(mounts.contains(&"./deploy/grafana/provisioning:/etc/grafana/provisioning:ro"), "{mounts:?}");
    let read = |p: &str| std::fs::read_to_string(format!("{}/../{p}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{p}: {e}"));
    let provider: serde_yaml::Value = serde_yaml::from_str(&read("deploy/grafana/provisioning/dashboards/sendtrace.yaml")).expect("YAML");
    let path = provider["providers"][0]["options"]["path"].as_str().expect("path");
    assert!(mounts.contains(&format!("./deploy/grafana/dashboards:{path}:ro").as_str()), "dashboards mounted at {path}: {mounts:?}");
    assert!(g["ports"].as_sequence().expect("ports").iter().any(|p| p.as_str() == Some("3000:3000")));
    let deps = g["depends_on"].as_mapping().expect("depends_on");
    assert!(deps.keys().any(|k| k.as_str() == Some("clickhouse")) && deps.keys().any(|k| k.as_str() == Some("migrate")));

    let ds: serde_yaml::Value = serde_yaml::from_str(&read("deploy/grafana/provisioning/datasources/clickhouse.yaml")).expect("YAML");
    let ds = &ds["datasources"][0];
    assert_eq!(ds["jsonData"]["host"].as_str(), Some("clickhouse"), "the compose service's name");
    let user = ds["jsonData"]["username"].as_str().expect("username");
    let ch_mounts: Vec<&str> = v["services"]["clickhouse"]["volumes"].as_sequence().expect("volumes").iter().filter_map(|m| m.as_str()).collect();
    assert!(ch_mounts.iter().any(|m| m.starts_with("./deploy/grafana/clickhouse-reader.xml:/etc/clickhouse-server/users.d/")), "{ch_mounts:?}");
    let users = read("deploy/grafana/clickhouse-reader.xml");
    assert!(users.contains(&format!("<{user}>")), "ClickHouse knows the data source's user {user}");
    let var = ds["secureJsonData"]["password"].as_str().and_then(|p| p.strip_prefix('$')).expect("password from the environment");
    let var = var.trim_matches(|c| c == '{' || c == '}');
    assert!(users.contains(&format!("<password from_env=\"{var}\"/>")), "ClickHouse reads the password from {var}");
    for svc in ["clickhouse", "grafana"] {
        assert!(v["services"][svc]["environment"][var].as_str().is_some_and(|p| p.starts_with(&format!("${{{var}:?"))), "{svc} takes {var} from the environment");
    }
}

/// Inner texts of every `<tag …>…</tag>` in `xml` (comments removed; `tag` not nested in itself).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        if !after.starts_with(['>', ' ']) {
            rest = after; // a longer tag name
            continue;
        }
        let body = &after[after.find('>').unwrap() + 1..];
        let end = body.find(&close).unwrap_or_else(|| panic!("<{tag}> not closed"));
        out.push(body[..end].trim());
        rest = &body[end + close.len()..];
    }
    out
}

fn without_comments(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<!--") {
        out.push_str(&rest[..at]);
        rest = &rest[at + rest[at..].find("-->").expect("comment closed") + 3..];
    }
    out + rest
}

fn str_of(v: &serde_yaml::Value) -> String {
    v.as_str().map(str::to_string).or_else(|| v.as_i64().map(|n| n.to_string())).unwrap_or_default()
}

/// The services of the cluster file whose image starts with `prefix`, by name.
fn by_image<'a>(v: &'a serde_yaml::Value, prefix: &str) -> BTreeMap<String, &'a serde_yaml::Value> {
    v["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with(prefix)))
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s))
        .collect()
}

fn mounts(svc: &serde_yaml::Value) -> Vec<(String, String)> {
    svc["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .filter_map(|m| m.strip_prefix("./"))
        .map(|m| {
            let mut p = m.split(':');
            (p.next().unwrap().to_string(), p.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// The cluster profile: every service is in it, the general rules hold, and the topology agrees
/// with its config files: 3 KRaft brokers and replication factor 3, 2 shards × 2 replicas whose
/// macros name their place in `remote_servers`, 3 Keeper nodes, the migration with the cluster's
/// name, more than one normalizer and aggregator.
#[test]
fn cluster_file_is_consistent_with_its_config_files() {
    let v = cluster();
    let services = v["services"].as_mapping().expect("services");
    services_are_consistent(&v);
    for (name, svc) in services {
        let profiles: Vec<&str> = svc["profiles"].as_sequence().into_iter().flatten().filter_map(|p| p.as_str()).collect();
        assert_eq!(profiles, ["cluster"], "{name:?}: in the cluster profile");
    }

    // Kafka: 3 brokers in KRaft, every one a voter, replication factor 3 for the services' topics
    let brokers = by_image(&v, "apache/kafka:");
    assert_eq!(brokers.len(), 3, "{:?}", brokers.keys());
    let mut voters = Vec::new();
    let cluster_ids: BTreeSet<String> = brokers.values().map(|b| str_of(&b["environment"]["CLUSTER_ID"])).collect();
    assert!(cluster_ids.len() == 1 && !cluster_ids.iter().next().unwrap().is_empty(), "one KRaft cluster id: {cluster_ids:?}");
    for (name, b) in &brokers {
        let env = &b["environment"];
        assert_eq!(str_of(&env["KAFKA_PROCESS_ROLES"]), "broker,controller", "{name}");
        assert_eq!(b["hostname"].as_str(), Some(name.as_str()));
        assert_eq!(str_of(&env["KAFKA_ADVERTISED_LISTENERS"]), format!("PLAINTEXT://{name}:9092"));
        assert_eq!(str_of(&env["KAFKA_DEFAULT_REPLICATION_FACTOR"]), "3", "{name}");
        assert_eq!(str_of(&env["KAFKA_MIN_INSYNC_REPLICAS"]), "2", "{name}: acks=all survives one broker down");
        assert_eq!(str_of(&env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]), "3", "{name}");
        voters.push(format!("{}@{name}:9093", str_of(&env["KAFKA_NODE_ID"])));
    }
    for (name, b) in &brokers {
        let mut listed: Vec<String> = str_of(&b["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]).split(',').map(str::to_string).collect();
        listed.sort();
        voters.sort();
        assert_eq!(listed, voters, "{name}: the voters are the brokers");
    }
    let all_brokers: BTreeSet<String> = brokers.keys().map(|b| format!("{b}:9092")).collect();
    for svc in ["migrate", "ingest", "normalizer", "aggregator", "api"] {
        let env = &services[svc]["environment"];
        let listed: BTreeSet<String> = str_of(&env["SENDTRACE_KAFKA__BROKERS"]).split(',').map(str::to_string).collect();
        assert_eq!(listed, all_brokers, "{svc}: every broker to bootstrap from");
        if svc != "api" {
            assert_eq!(str_of(&env["SENDTRACE_KAFKA__REPLICATION"]), "3", "{svc}: topics it creates get 3 replicas");
        }
    }
    let partitions: u64 = str_of(&services["normalizer"]["environment"]["SENDTRACE_KAFKA__PARTITIONS"]).parse().unwrap();
    for (svc, at_least) in [("normalizer", 2), ("aggregator", 2)] {
        let n = services[svc]["deploy"]["replicas"].as_u64().unwrap_or(1);
        assert!(n >= at_least && n <= partitions, "{svc}: {n} replicas for {partitions} partitions");
    }

    // ClickHouse: the nodes are remote_servers' replicas, each with its own macros
    let cluster_xml = without_comments(&read("deploy/clickhouse-cluster/cluster.xml"));
    let remote = elements(&cluster_xml, "remote_servers")[0];
    let name = remote.trim_start_matches('<').split('>').next().unwrap().to_string();
    let shards: Vec<Vec<&str>> = elements(remote, "shard")
        .iter()
        .map(|s| {
            assert_eq!(elements(s, "internal_replication"), ["true"], "a write to one replica, replicated by the table");
            elements(s, "replica").iter().map(|r| elements(r, "host")[0]).collect()
        })
        .collect();
    assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2], "2 shards × 2 replicas: {shards:?}");
    let nodes = by_image(&v, "clickhouse/clickhouse-server:");
    let hosts: BTreeSet<&str> = shards.iter().flatten().copied().collect();
    assert_eq!(nodes.keys().map(String::as_str).collect::<BTreeSet<_>>(), hosts, "compose nodes = remote_servers replicas");
    let profiles = without_comments(&read("deploy/clickhouse-cluster/profiles.xml"));
    for (shard_no, shard) in shards.iter().enumerate() {
        for host in shard {
            let node = nodes[*host];
            assert_eq!(node["hostname"].as_str(), Some(*host), "{host}: announces the name the others know it by");
            let m = mounts(node);
            let target = |t: &str| m.iter().find(|(_, to)| to == t).map(|(from, _)| from.clone()).unwrap_or_else(|| panic!("{host}: nothing at {t}"));
            assert_eq!(target("/etc/clickhouse-server/config.d/cluster.xml"), "deploy/clickhouse-cluster/cluster.xml");
            assert_eq!(target("/etc/clickhouse-server/users.d/cluster-profiles.xml"), "deploy/clickhouse-cluster/profiles.xml");
            let macros = without_comments(&read(&target("/etc/clickhouse-server/config.d/macros.xml")));
            assert_eq!(elements(&macros, "cluster"), [name.as_str()], "{host}");
            assert_eq!(elements(&macros, "shard"), [(shard_no + 1).to_string()], "{host}: its shard in remote_servers");
            assert_eq!(elements(&macros, "replica"), [*host], "{host}: replica names differ within a shard");
            for users in ["deploy/clickhouse/api-user.xml", "deploy/grafana/clickhouse-reader.xml"] {
                assert!(m.iter().any(|(from, _)| from == users), "{host}: the same users as the single node ({users})");
            }
            let aliases = node["networks"]["default"]["aliases"].as_sequence().expect("aliases");
            assert!(aliases.iter().any(|a| a.as_str() == Some("clickhouse")), "{host}: reachable as `clickhouse`");
        }
    }
    // every replica of a shard acknowledges an insert (read-your-writes on any replica)
    for profile in elements(&profiles, "default").into_iter().chain(elements(&profiles, "api_narrow")) {
        assert_eq!(elements(profile, "insert_quorum"), [shards[0].len().to_string()]);
        assert_eq!(elements(profile, "distributed_foreground_insert"), ["1"]);
        assert_eq!(elements(profile, "distributed_product_mode"), ["global"]);
    }
    for (file, profile) in [("deploy/clickhouse/api-user.xml", "api_narrow"), ("deploy/grafana/clickhouse-reader.xml", "analyst_readonly")] {
        assert!(read(file).contains(&format!("<profile>{profile}</profile>")), "{file} uses profile {profile}, which profiles.xml extends");
        assert!(profiles.contains(&format!("<{profile}>")), "profiles.xml extends {profile}");
    }
    let secret = elements(remote, &name)[0];
    assert!(secret.contains("<secret from_env=\"CLICKHOUSE_CLUSTER_SECRET\"/>"), "the nodes authenticate each other");
    for node in nodes.values() {
        assert!(str_of(&node["environment"]["CLICKHOUSE_CLUSTER_SECRET"]).starts_with("${CLICKHOUSE_CLUSTER_SECRET:?"));
        assert!(str_of(&node["environment"]["CLICKHOUSE_PASSWORD"]).starts_with("${CLICKHOUSE_PASSWORD:?"));
        assert!(node.get("ports").is_none(), "no ClickHouse node publishes a port");
    }

    // Keeper: 3 nodes, the servers' <zookeeper> and the Raft configuration name the same ones
    let keepers = by_image(&v, "clickhouse/clickhouse-keeper:");
    assert_eq!(keepers.len(), 3);
    let zk: BTreeSet<&str> = elements(elements(&cluster_xml, "zookeeper")[0], "node").iter().map(|n| elements(n, "host")[0]).collect();
    assert_eq!(keepers.keys().map(String::as_str).collect::<BTreeSet<_>>(), zk);
    let keeper_xml = without_comments(&read("deploy/clickhouse-cluster/keeper.xml"));
    let raft: BTreeMap<&str, &str> = elements(&keeper_xml, "server").iter().map(|s| (elements(s, "hostname")[0], elements(s, "id")[0])).collect();
    for (k, svc) in &keepers {
        assert_eq!(raft.get(k.as_str()).copied(), Some(str_of(&svc["environment"]["KEEPER_SERVER_ID"]).as_str()), "{k}: its Raft id");
        assert!(mounts(svc).contains(&("deploy/clickhouse-cluster/keeper.xml".into(), "/etc/clickhouse-keeper/keeper_config.xml".into())));
    }

    // the migration creates the cluster's tables; the services write through the Distributed ones
    let cmd: Vec<&str> = services["migrate"]["command"].as_sequence().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert_eq!(cmd, ["aggregator", "migrate", "--cluster", name.as_str()]);
    for svc in ["migrate", "aggregator", "api"] {
        assert_eq!(str_of(&services[svc]["environment"]["SENDTRACE_CLICKHOUSE__URL"]), "http://clickhouse:8123", "{svc}");
    }
}

/// Production runs the ClickHouse the tests run: the chdb engine of the devstack endpoint
/// (devstack/clickhouse/requirements.txt) and the compose images share major.minor.
#[test]
fn compose_files_run_the_tested_clickhouse_version() {
    let req = read("devstack/clickhouse/requirements.txt");
    let chdb = req.lines().find_map(|l| l.strip_prefix("chdb-core==")).expect("chdb-core pinned");
    let tested: Vec<&str> = chdb.trim().split('.').take(2).collect();
    let tested = tested.join(".");
    let mut seen = 0;
    for v in [compose(), cluster()] {
        for (name, svc) in v["services"].as_mapping().unwrap() {
            let image = svc["image"].as_str().unwrap_or_default();
            if let Some(tag) = image.strip_prefix("clickhouse/clickhouse-server:").or_else(|| image.strip_prefix("clickhouse/clickhouse-keeper:")) {
                assert_eq!(tag, tested, "{name:?}: {image}, tests run chdb-core {chdb}");
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 1 + 4 + 3, "the single node, 4 cluster nodes, 3 Keeper nodes");
}

/// Where the `docker compose` plugin exists, it must accept both files (with dummy secrets).
#[test]
fn docker_compose_accepts_both_files_when_installed() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let has_compose = std::process::Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success());
    if !has_compose {
        eprintln!("docker compose not installed: skipped (the static checks above still ran)");
        return;
    }
    for args in [&["-f", "docker-compose.yml", "config", "-q"][..], &["-f", "docker-compose.cluster.yml", "--profile", "cluster", "config", "-q"][..]] {
        let out = std::process::Command::new("docker")
            .arg("compose")
            .args(args)
            .current_dir(root)
            .envs(
                ["CLICKHOUSE_PASSWORD", "EXAMPLE_TENANT_API_KEY", "GRAFANA_ADMIN_PASSWORD", "CLICKHOUSE_READER_PASSWORD", "CLICKHOUSE_CLUSTER_SECRET"]
                    .map(|k| (k, "x")),
            )
            .output()
            .expect("docker runs");
        assert!(out.status.success(), "docker compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
