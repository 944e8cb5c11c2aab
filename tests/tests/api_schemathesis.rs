//! schemathesis (PyPI, installed into the devstack venv by devstack/setup.sh) against the API's
//! own `/openapi.json` on the real stack: a bounded number of generated requests per operation
//! (valid and invalid parameters, foreign values, odd characters). Every answer must be a
//! documented status with the documented content type and schema, and none a 5xx. The key holds
//! every scope, so the suppression changes are exercised too (`/v1/stream` is left out: it never ends).

use e2e::{Pipeline, Stack};
use std::process::Command;

const KEYS: &str = r#"
[tenants.acme.keys.dash]
key = "acme-key"
scopes = ["stats", "messages", "suppressions:write"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_5xx_and_no_undocumented_answer() {
    let stack = Stack::from_env();
    let p = Pipeline::new(&stack, "api-schema").await;
    // suppression changes are published there (the aggregator, not running here, creates it otherwise)
    stack.create_topics(&[&p.suppressions_topic], 1).await;
    let (url, _api) = p.start_api(KEYS).await;
    let bin = std::env::var("SENDTRACE_SCHEMATHESIS").unwrap_or_else(|_| format!("{}/.cache/sendtrace/chvenv/bin/schemathesis", std::env::var("HOME").unwrap_or_default()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&bin)
            .args(["run", &format!("{url}/openapi.json"), "-H", "Authorization: Bearer acme-key"])
            .args(["-c", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
            .args(["-n", "15", "--generation-deterministic", "--phases", "coverage,fuzzing"])
            // an SSE stream never ends by itself; tests/tests/api_live.rs covers it
            .args(["--exclude-path", "/v1/stream"])
            .env("NO_COLOR", "1")
            // its example database and reports go to a scratch folder, not the checkout
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap_or_else(|e| panic!("running {bin} (devstack/setup.sh installs it): {e}"))
    })
    .await
    .expect("schemathesis ran");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found issues:\n{text}");
    assert!(text.contains("18 selected / 19 total"), "every operation but the stream tested:\n{text}");
}
