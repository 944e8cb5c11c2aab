//! docker-compose.yml cannot run here (no Docker engine); this keeps it valid:
//! it parses, every service has an image, a health check (long-running ones),
//! dependencies name real services with valid conditions, and the services get
//! configuration keys their config structs accept.

use std::collections::BTreeSet;

fn compose() -> serde_yaml::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml")).unwrap();
    let mut v: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    v.apply_merge().expect("merge keys resolve");
    v
}

#[test]
fn compose_file_is_consistent() {
    let v = compose();
    let services = v["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
    for expected in ["kafka", "clickhouse", "migrate", "ingest", "normalizer", "aggregator", "api", "grafana"] {
        assert!(names.contains(expected), "service {expected}");
    }
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
    assert_eq!(v["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].as_str(), Some("broker,controller"), "KRaft");
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
