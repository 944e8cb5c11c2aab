//! `GET /v1/stream`: server-sent events, a live tail of the tenant's canonical events from the
//! moment of the request, filtered by broadcast, recipient, channel and event type. Each
//! event is an SSE `event: event` with the event's id as `id` and a JSON `data` line; a
//! subscriber that fell too far behind gets `event: lagged` with `{"missed": n}`; a comment
//! line keeps idle connections open every 15 s. `machine` is not known yet at this point of
//! the pipeline (the aggregator decides it), so it is not part of a live event.

use super::{money, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LiveEvent {
    pub event_id: String,
    pub occurred_at: String,
    pub message_id: String,
    pub channel: String,
    pub provider: String,
    pub provider_event_name: String,
    pub event_type: String,
    pub bounce_class: Option<String>,
    pub recipient: String,
    pub broadcast: Option<String>,
    pub sequence: Option<String>,
    pub template: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub click_url: Option<String>,
    pub cost: Option<String>,
    pub currency: Option<String>,
}

impl From<&schemas::Event> for LiveEvent {
    fn from(e: &schemas::Event) -> LiveEvent {
        LiveEvent {
            event_id: e.event_id.clone(),
            occurred_at: time(e.occurred_at),
            message_id: e.delivery_key.clone(),
            channel: e.channel.as_str().into(),
            provider: e.provider.clone(),
            provider_event_name: e.provider_event_name.clone(),
            event_type: e.event_type.as_str().into(),
            bounce_class: e.bounce_class.map(|b| b.as_str().into()),
            recipient: e.recipient.clone(),
            broadcast: e.broadcast_id.clone(),
            sequence: e.sequence_id.clone(),
            template: e.template_key.clone(),
            error_code: e.error_code.clone(),
            error_reason: e.error_reason.clone(),
            click_url: e.click_url.clone(),
            cost: e.cost.as_ref().map(|c| money(c.mantissa_at_scale())),
            currency: e.cost.as_ref().map(|c| c.unit.clone()),
        }
    }
}

/// Parameters of `/v1/stream`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamParams {
    broadcast: Option<String>,
    /// Exact address, number or token (case-insensitive).
    recipient: Option<String>,
    /// `email`, `sms`, `whatsapp` or `push`.
    channel: Option<String>,
    /// Canonical event types (repeatable or comma-separated).
    event_type: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/v1/stream", tag = "events", params(StreamParams, TenantParam),
    responses((status = 200, description = "Server-sent events: `event: event` with a LiveEvent as data, `event: lagged` with `{\"missed\": n}`",
        content_type = "text/event-stream", body = LiveEvent), ApiErrors))]
pub async fn live(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    caller.require(Scope::Messages)?;
    let mut p = Params::of::<StreamParams>(query.as_deref());
    let broadcast = p.one("broadcast");
    let recipient = p.one("recipient").map(|r| r.to_ascii_lowercase());
    let channel = p.parsed("channel", |v| schemas::Channel::parse(v).map(|c| c.as_str().to_string()).ok_or_else(|| format!("one of: {}", schemas::Channel::SYMBOLS.join(", "))));
    let types = p.many_of("event_type", schemas::EventType::SYMBOLS);
    p.finish()?;
    let mut sub = state.live.subscribe().await?;
    let tenant = caller.tenant;
    metrics::gauge!("sendtrace_api_open_streams").increment(1.0);
    let stream = async_stream(move |emit| async move {
        let _permit = sub._permit;
        let _gauge = GaugeGuard;
        loop {
            match sub.events.recv().await {
                Ok(e) => {
                    let keep = e.tenant == tenant
                        && broadcast.as_ref().is_none_or(|b| e.broadcast_id.as_ref() == Some(b))
                        && recipient.as_ref().is_none_or(|r| e.recipient.eq_ignore_ascii_case(r))
                        && channel.as_ref().is_none_or(|c| e.channel.as_str() == c)
                        && (types.is_empty() || types.iter().any(|t| t == e.event_type.as_str()));
                    if keep {
                        let data = serde_json::to_string(&LiveEvent::from(e.as_ref())).unwrap_or_default();
                        if !emit(Sse::default().event("event").id(e.event_id.clone()).data(data)).await {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    if !emit(Sse::default().event("lagged").data(format!("{{\"missed\":{n}}}"))).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(axum::response::Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

struct GaugeGuard;
impl Drop for GaugeGuard {
    fn drop(&mut self) {
        metrics::gauge!("sendtrace_api_open_streams").decrement(1.0);
    }
}

/// A stream fed by a task through a small channel; the task ends when the client is gone.
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Sse, Infallible>>
where
    F: FnOnce(Box<dyn Fn(Sse) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Sse>(64);
    let emit = Box::new(move |e: Sse| {
        let tx = tx.clone();
        Box::pin(async move { tx.send(e).await.is_ok() }) as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
    });
    tokio::spawn(f(emit));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
