//! `GET /v1/stats/bounces` (bounce and failure reasons in classes across providers, top reasons
//! by provider and by recipient domain) and `GET /v1/stats/latency` (p50/p90/p99 of send →
//! delivered and delivered → first human open, by provider and channel, per bucket).

use super::stats::{midnight, today, zone};
use super::{time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::bounce_reasons::{classify, Failure, ReasonClass};
use crate::buckets::{self, Granularity};
use crate::db::insights::{self as q, FailureFilter, LatencyFilter, MAX_REASON_GROUPS};
use crate::db::stats::as_of;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::{IntoParams, ToSchema};

/// Rows in each top list of `/v1/stats/bounces`.
pub const TOP_REASONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClassCount {
    pub class: ReasonClass,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProviderReason {
    pub provider: String,
    pub class: ReasonClass,
    /// The provider's code (bounce subtype, SMTP status, error code), empty if none.
    pub code: String,
    /// One of the reason texts of these bounces.
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DomainReason {
    /// The recipient's e-mail domain (empty for numbers and tokens).
    pub domain: String,
    pub class: ReasonClass,
    pub code: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BouncesResponse {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub tz: String,
    /// The newest event time applied (null: no events yet).
    pub as_of: Option<String>,
    /// Bounced and failed events in the range (after the filters).
    pub total: u64,
    /// Every class, largest first (zeros included).
    pub classes: Vec<ClassCount>,
    /// Top 50 (provider, class, code), largest first.
    pub by_provider: Vec<ProviderReason>,
    /// Top 50 (domain, class, code), largest first.
    pub by_domain: Vec<DomainReason>,
    /// More than 20,000 distinct reason groups: the smallest were left out of every figure.
    pub truncated: bool,
}

/// Parameters of `/v1/stats/bounces`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct BounceParams {
    /// First day (`YYYY-MM-DD`, in `tz`); default 29 days before `to`.
    from: Option<String>,
    /// Last day, inclusive; default today.
    to: Option<String>,
    /// `UTC` (default) or a configured reporting zone.
    tz: Option<String>,
    channel: Option<String>,
    provider: Option<String>,
    broadcast: Option<String>,
    template: Option<String>,
}

struct Common {
    tz: String,
    from: NaiveDate,
    to: NaiveDate,
    channel: Option<String>,
    provider: Option<String>,
    broadcast: Option<String>,
    template: Option<String>,
}

fn common(p: &mut Params, state: &AppState) -> Common {
    let tz = zone(p, state);
    let to = p.parsed("to", params::date).unwrap_or_else(|| today(&tz));
    let from = p.parsed("from", params::date).unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        p.fail("from", "after `to`");
    }
    let max = state.config.max_buckets as i64;
    if (to - from).num_days() >= max {
        p.fail("from", format!("the range holds more than {max} days"));
    }
    Common {
        channel: p.parsed("channel", |v| schemas::Channel::parse(v).map(|c| c.as_str().to_string()).ok_or_else(|| format!("one of: {}", schemas::Channel::SYMBOLS.join(", ")))),
        provider: p.one("provider"),
        broadcast: p.one("broadcast"),
        template: p.one("template"),
        tz,
        from,
        to,
    }
}

#[utoipa::path(get, path = "/v1/stats/bounces", tag = "stats", params(BounceParams, TenantParam),
    responses((status = 200, description = "Bounce and failure reasons by class, provider and domain", body = BouncesResponse), ApiErrors))]
pub async fn bounces(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<BouncesResponse>, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<BounceParams>(query.as_deref());
    let c = common(&mut p, &state);
    p.finish()?;
    let f = FailureFilter {
        from: midnight(c.from, &c.tz),
        to: midnight(c.to + chrono::Duration::days(1), &c.tz),
        channel: c.channel,
        provider: c.provider,
        broadcast: c.broadcast,
        template: c.template,
    };
    let mut groups = q::failure_groups(&state.db, &caller.tenant, &f).await?;
    let truncated = groups.len() > MAX_REASON_GROUPS as usize;
    groups.truncate(MAX_REASON_GROUPS as usize);
    let as_of = as_of(&state.db, &caller.tenant).await?;
    let mut classes: HashMap<ReasonClass, u64> = ReasonClass::ALL.iter().map(|c| (*c, 0)).collect();
    // (key) → (count, reason of the largest group); groups come largest first.
    let mut providers: HashMap<(String, ReasonClass, String), (u64, String)> = HashMap::new();
    let mut domains: HashMap<(String, ReasonClass, String), (u64, String)> = HashMap::new();
    let mut total = 0;
    for g in &groups {
        let class = classify(&Failure { provider: &g.provider, channel: &g.channel, bounce_class: &g.bounce_class, code: &g.code, text: &g.text });
        total += g.events;
        *classes.entry(class).or_default() += g.events;
        for (map, key) in [(&mut providers, g.provider.clone()), (&mut domains, g.domain.clone())] {
            let e = map.entry((key, class, g.code.clone())).or_insert_with(|| (0, g.text.clone()));
            e.0 += g.events;
        }
    }
    let top = |m: HashMap<(String, ReasonClass, String), (u64, String)>| {
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        v.truncate(TOP_REASONS);
        v
    };
    let mut classes: Vec<ClassCount> = classes.into_iter().map(|(class, count)| ClassCount { class, count }).collect();
    classes.sort_by(|a, b| b.count.cmp(&a.count).then(a.class.cmp(&b.class)));
    Ok(Json(BouncesResponse {
        from: c.from,
        to: c.to,
        tz: c.tz,
        as_of: (as_of > 0).then(|| time(as_of)),
        total,
        classes,
        by_provider: top(providers).into_iter().map(|((provider, class, code), (count, reason))| ProviderReason { provider, class, code, reason, count }).collect(),
        by_domain: top(domains).into_iter().map(|((domain, class, code), (count, reason))| DomainReason { domain, class, code, reason, count }).collect(),
        truncated,
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Quantiles {
    /// Deliveries with both times.
    pub count: u64,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub p99_ms: Option<i64>,
}

impl Quantiles {
    fn of(count: u64, q: &[i64]) -> Quantiles {
        let at = |i: usize| if count > 0 { q.get(i).copied() } else { None };
        Quantiles { count, p50_ms: at(0), p90_ms: at(1), p99_ms: at(2) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencyBucket {
    /// First day of the bucket (in `tz`).
    #[schema(value_type = String, format = Date)]
    pub bucket: NaiveDate,
    /// From the send (first `sent`, else `queued`) to the first delivery.
    pub send_to_delivered: Quantiles,
    /// From the first delivery to the first human open (machine opens excluded).
    pub delivered_to_first_open: Quantiles,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencySeries {
    pub provider: String,
    pub channel: String,
    /// Every bucket of the range, empty ones with count 0.
    pub buckets: Vec<LatencyBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencyResponse {
    pub granularity: Granularity,
    pub tz: String,
    pub as_of: Option<String>,
    /// One per provider and channel with deliveries sent in the range.
    pub series: Vec<LatencySeries>,
}

/// Parameters of `/v1/stats/latency`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LatencyParams {
    /// `day` (default), `week` (ISO, Monday) or `month`, of the send time.
    granularity: Option<String>,
    /// First day (`YYYY-MM-DD`, in `tz`); default 29 days before `to`.
    from: Option<String>,
    /// Last day, inclusive; default today.
    to: Option<String>,
    /// `UTC` (default) or a configured reporting zone.
    tz: Option<String>,
    channel: Option<String>,
    provider: Option<String>,
    broadcast: Option<String>,
    template: Option<String>,
}

#[utoipa::path(get, path = "/v1/stats/latency", tag = "stats", params(LatencyParams, TenantParam),
    responses((status = 200, description = "Latency quantiles per bucket, provider and channel", body = LatencyResponse), ApiErrors))]
pub async fn latency(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<LatencyResponse>, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<LatencyParams>(query.as_deref());
    let granularity = p.parsed("granularity", Granularity::parse).unwrap_or(Granularity::Day);
    let c = common(&mut p, &state);
    // `common` bounds the range to `max_buckets` days, so any granularity holds at most that many buckets
    let max = state.config.max_buckets as usize;
    let range = if c.from <= c.to { granularity.range(c.from, c.to, max).unwrap_or_default() } else { Vec::new() };
    p.finish()?;
    let (Some(first), Some(last)) = (range.first(), range.last()) else {
        return Ok(Json(LatencyResponse { granularity, tz: c.tz, as_of: None, series: Vec::new() }));
    };
    let f = LatencyFilter {
        from: midnight(*first, &c.tz),
        to: midnight(granularity.next(*last), &c.tz),
        channel: c.channel,
        provider: c.provider,
        broadcast: c.broadcast,
        template: c.template,
    };
    let rows = q::latency(&state.db, &caller.tenant, &f, &c.tz, granularity.as_str()).await?;
    let as_of = as_of(&state.db, &caller.tenant).await?;
    let mut by: BTreeMap<(String, String), HashMap<NaiveDate, q::LatencyRow>> = BTreeMap::new();
    for r in rows {
        by.entry((r.provider.clone(), r.channel.clone())).or_default().insert(buckets::from_days(r.bucket), r);
    }
    let series = by
        .into_iter()
        .map(|((provider, channel), rows)| LatencySeries {
            provider,
            channel,
            buckets: range
                .iter()
                .map(|b| {
                    let r = rows.get(b);
                    LatencyBucket {
                        bucket: *b,
                        send_to_delivered: r.map(|r| Quantiles::of(r.delivered, &r.to_delivered)).unwrap_or(Quantiles::of(0, &[])),
                        delivered_to_first_open: r.map(|r| Quantiles::of(r.opened, &r.to_open)).unwrap_or(Quantiles::of(0, &[])),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(Json(LatencyResponse { granularity, tz: c.tz, as_of: (as_of > 0).then(|| time(as_of)), series }))
}
