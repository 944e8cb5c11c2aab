//! The web dashboard: static HTML, plain ES modules and the vendored uPlot chart library,
//! embedded in the binary from `api/dashboard/` (so the page works offline and a deploy is one
//! file). The page reads only the public `/v1` API with the key the person signs in with (kept
//! in the tab's `sessionStorage`, sent as `Authorization: Bearer`, never in a URL).
//!
//! * `/`, `/messages`, `/funnels`, `/issues`, `/suppressions`, `/recipient`: the page shell
//!   (one `index.html`; `ui/app.js` picks the page from the path).
//! * `/ui/<file>`: the scripts, stylesheet and vendored library.
//! * `/ui/config.json`: what the page needs before sign-in and cannot ask `/v1` for: the zones
//!   `tz=` accepts. Not secret, no key needed.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and connections to this
//! origin only, no inline script), `nosniff` and `no-referrer`.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// One embedded file.
struct Asset {
    /// Path under `/ui/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset { name: $name, content_type: $ct, body: include_bytes!(concat!("../../dashboard/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/ui/` (the test `every_import_is_served` keeps this list complete).
const ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/messages.js", JS),
    asset!("pages/funnels.js", JS),
    asset!("pages/issues.js", JS),
    asset!("pages/suppressions.js", JS),
    asset!("pages/recipient.js", JS),
    asset!("app.css", CSS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
];

const INDEX: &str = include_str!("../../dashboard/index.html");

/// The page paths; each serves the shell.
pub const PAGES: &[&str] = &["/", "/messages", "/funnels", "/issues", "/suppressions", "/recipient"];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's routes (merged into [`super::app`]; not part of the OpenAPI document).
pub fn router() -> Router<AppState> {
    let mut r = Router::new().route("/ui/config.json", get(config)).route("/ui/{*file}", get(file));
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r
}

fn with_headers(mut resp: Response, content_type: &str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // embedded files change only with the binary; revalidating is cheap and avoids stale pages
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn index() -> Response {
    with_headers(INDEX.into_response(), "text/html; charset=utf-8")
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => with_headers(a.body.into_response(), a.content_type),
        None => with_headers((StatusCode::NOT_FOUND, "no such dashboard file").into_response(), "text/plain; charset=utf-8"),
    }
}

#[derive(serde::Serialize)]
struct DashboardConfig {
    /// `UTC` first, then the configured reporting zones.
    time_zones: Vec<String>,
}

async fn config(State(state): State<AppState>) -> Response {
    let mut time_zones = vec!["UTC".to_string()];
    time_zones.extend(state.config.reporting_time_zones.iter().filter(|z| *z != "UTC").cloned());
    with_headers(Json(DashboardConfig { time_zones }).into_response(), "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state() -> AppState {
        AppState::new(crate::config::Config { reporting_time_zones: vec!["Asia/Tokyo".into()], ..Default::default() })
    }

    async fn get(uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = super::super::app(state()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn every_page_serves_the_shell_with_a_strict_policy() {
        for p in PAGES {
            let (status, h, body) = get(p).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert!(body.contains("<script type=\"module\" src=\"/ui/app.js\">"), "{p}");
            assert!(!body.contains("<script>"), "no inline script (the policy would block it)");
        }
    }

    #[tokio::test]
    async fn files_config_and_unknown_paths() {
        let (status, h, body) = get("/ui/vendor/uPlot.iife.min.js").await;
        assert_eq!((status, h[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, JS));
        assert!(body.starts_with("/*! https://github.com/leeoniya/uPlot"));
        let (status, h, body) = get("/ui/config.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["time_zones"], serde_json::json!(["UTC", "Asia/Tokyo"]));
        for missing in ["/ui/nope.js", "/ui/../Cargo.toml", "/ui/pages/../app.js"] {
            assert_eq!(get(missing).await.0, StatusCode::NOT_FOUND, "{missing}");
        }
        // the API's own 404 is untouched
        let (status, h, _) = get("/v1/nope").await;
        assert_eq!((status, h[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::NOT_FOUND, "application/problem+json"));
    }

    /// Every `/ui/...` file the shell links and every module a script imports is embedded,
    /// so a new page file cannot be forgotten in [`ASSETS`].
    #[test]
    fn every_import_is_served() {
        let mut wanted: Vec<String> = Vec::new();
        for cap in INDEX.split("\"/ui/").skip(1) {
            wanted.push(cap.split('"').next().unwrap().to_string());
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js") && !a.name.starts_with("vendor/")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.name.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.rsplit_once("from ").map(|(_, s)| s).unwrap_or(line).trim_matches(|c| c == '\'' || c == '"' || c == ';' || c == ' ');
                let spec = spec.strip_prefix("import ").unwrap_or(spec).trim_matches(|c| c == '\'' || c == '"');
                let resolved = if let Some(rest) = spec.strip_prefix("../") {
                    rest.to_string()
                } else if let Some(rest) = spec.strip_prefix("./") {
                    format!("{dir}{rest}")
                } else {
                    spec.trim_start_matches("/ui/").to_string()
                };
                wanted.push(resolved);
            }
        }
        assert!(wanted.len() > 10, "found the imports: {wanted:?}");
        for w in &wanted {
            assert!(ASSETS.iter().any(|a| a.name == w), "`{w}` is linked or imported but not in ASSETS");
        }
    }
}
