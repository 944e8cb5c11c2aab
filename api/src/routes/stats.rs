//! `GET /v1/stats` (series per bucket) and `GET /v1/stats/summary` (the N-day card).
//! Both read the counter tables only (`counters`, `attributed_counters`, `unique_recipients`).

use super::{money, time, ApiErrors};
use crate::auth::{Caller, Scope, TenantParam};
use crate::buckets::Granularity;
use crate::db::stats::{self as q, CounterFilter, CounterRow, GroupBy};
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// A rate as its exact parts; `value` is `numerator / denominator`, null when the denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
    pub value: Option<f64>,
}

impl Rate {
    fn of(numerator: i64, denominator: i64) -> Rate {
        Rate { numerator, denominator, value: (denominator > 0).then(|| numerator as f64 / denominator as f64) }
    }
}

/// Engagement rates (ratios of event counts: repeat opens and clicks count).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EngagementRates {
    /// opened + read events / delivered.
    pub open: Rate,
    /// clicked / delivered.
    pub click: Rate,
    /// clicked / (opened + read).
    pub click_to_open: Rate,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rates {
    /// delivered / sent.
    pub delivery: Rate,
    /// hard bounces / sent.
    pub bounce: Rate,
    /// complained / delivered.
    pub complaint: Rate,
    /// unsubscribed / delivered.
    pub unsubscribe: Rate,
    /// People and machines (privacy proxies, scanners).
    pub all: EngagementRates,
    /// People only: machine opens and clicks excluded.
    pub human: EngagementRates,
}

/// Counts, cost and rates of one bucket (or a whole range).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Totals {
    /// Events per event type (every type present, zeros included), people and machines.
    pub counts: BTreeMap<String, i64>,
    /// Events per event type without machine opens and clicks.
    pub human_counts: BTreeMap<String, i64>,
    /// Bounces with bounce class `hard`.
    pub hard_bounces: i64,
    /// Cost per currency (ISO 4217), decimal strings.
    pub cost: BTreeMap<String, String>,
    pub rates: Rates,
}

#[derive(Debug, Clone, Default)]
struct Sums {
    all: BTreeMap<String, i64>,
    human: BTreeMap<String, i64>,
    hard_bounces: i64,
    cost: BTreeMap<String, i128>,
}

impl Sums {
    fn add(&mut self, r: &CounterRow) {
        *self.all.entry(r.event_type.clone()).or_default() += r.events;
        if r.machine.is_empty() {
            *self.human.entry(r.event_type.clone()).or_default() += r.events;
        }
        if r.event_type == "bounced" && r.bounce_class == "hard" {
            self.hard_bounces += r.events;
        }
        if !r.cost_unit.is_empty() {
            *self.cost.entry(r.cost_unit.clone()).or_default() += r.cost;
        }
    }

    fn merge(&mut self, o: &Sums) {
        for (k, v) in &o.all {
            *self.all.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.human {
            *self.human.entry(k.clone()).or_default() += v;
        }
        self.hard_bounces += o.hard_bounces;
        for (k, v) in &o.cost {
            *self.cost.entry(k.clone()).or_default() += v;
        }
    }

    fn totals(&self) -> Totals {
        let full = |m: &BTreeMap<String, i64>| -> BTreeMap<String, i64> {
            schemas::EventType::SYMBOLS.iter().map(|t| (t.to_string(), m.get(*t).copied().unwrap_or(0))).collect()
        };
        let (all, human) = (full(&self.all), full(&self.human));
        let engagement = |m: &BTreeMap<String, i64>| {
            let opens = m["opened"] + m["read"];
            EngagementRates { open: Rate::of(opens, m["delivered"]), click: Rate::of(m["clicked"], m["delivered"]), click_to_open: Rate::of(m["clicked"], opens) }
        };
        let rates = Rates {
            delivery: Rate::of(all["delivered"], all["sent"]),
            bounce: Rate::of(self.hard_bounces, all["sent"]),
            complaint: Rate::of(all["complained"], all["delivered"]),
            unsubscribe: Rate::of(all["unsubscribed"], all["delivered"]),
            all: engagement(&all),
            human: engagement(&human),
        };
        Totals { cost: self.cost.iter().map(|(k, v)| (k.clone(), money(*v))).collect(), counts: all, human_counts: human, hard_bounces: self.hard_bounces, rates }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// First day of the bucket (`YYYY-MM-DD`, in `tz`).
    pub start: String,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Series {
    /// The group's values by `group_by` dimension (empty without `group_by`).
    pub group: BTreeMap<String, String>,
    /// Every bucket of the range, empty ones as zeros.
    pub buckets: Vec<Bucket>,
    /// The whole range.
    pub total: Totals,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatsResponse {
    pub granularity: Granularity,
    pub tz: String,
    /// First bucket start.
    pub from: String,
    /// Last bucket start.
    pub to: String,
    /// Newest event time applied for this tenant (RFC 3339), null before any.
    pub as_of: Option<String>,
    /// Deliveries first known in the range still without a final status (queued, sent): the share
    /// of numbers that can still change. Settled when `value` is 0.
    pub provisional: Rate,
    pub series: Vec<Series>,
    /// With `compare=previous_period`: the same series over the same number of buckets just before.
    pub previous: Option<Vec<Series>>,
}

/// Parameters of `/v1/stats`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StatsParams {
    /// `day` (default), `week` (ISO, Monday) or `month`.
    granularity: Option<Granularity>,
    /// First day, `YYYY-MM-DD` in `tz` (or an RFC 3339 time); default: 29 days before `to`.
    from: Option<String>,
    /// Last day, inclusive; default: today in `tz`.
    to: Option<String>,
    /// `UTC` (default) or a configured reporting zone; a 400 lists the ones available.
    tz: Option<String>,
    /// Only these channels (repeatable).
    channel: Option<Vec<String>>,
    /// Only these providers (repeatable).
    provider: Option<Vec<String>>,
    /// Only these broadcasts (repeatable).
    broadcast: Option<Vec<String>>,
    /// Only these sequences (repeatable).
    sequence: Option<Vec<String>>,
    /// Only these templates (repeatable).
    template: Option<Vec<String>>,
    /// Split into series by up to two of `channel`, `provider`, `broadcast`, `template`, `event_type` (repeatable or comma-separated).
    group_by: Option<Vec<String>>,
    /// `previous_period`: add the same series for the preceding period.
    compare: Option<String>,
}

/// What `/v1/stats` and the summary share: zone and range.
struct Range {
    tz: String,
    granularity: Granularity,
    buckets: Vec<NaiveDate>,
}

pub(crate) fn zone(p: &mut Params, state: &AppState) -> String {
    let tz = p.one("tz").unwrap_or_else(|| "UTC".into());
    if tz != "UTC" && !state.config.reporting_time_zones.contains(&tz) {
        let mut available = vec!["UTC".to_string()];
        available.extend(state.config.reporting_time_zones.iter().cloned());
        p.fail("tz", format!("unknown or unconfigured zone; available: {}", available.join(", ")));
        return "UTC".into();
    }
    tz
}

/// UTC milliseconds of the start of `day` in `tz` (the earliest instant of that date there).
pub(crate) fn midnight(day: NaiveDate, tz: &str) -> i64 {
    use chrono::TimeZone;
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.parse::<chrono_tz::Tz>() {
        Ok(z) => z.from_local_datetime(&naive).earliest().map(|t| t.timestamp_millis()).unwrap_or_else(|| naive.and_utc().timestamp_millis()),
        Err(_) => naive.and_utc().timestamp_millis(),
    }
}

pub(crate) fn today(tz: &str) -> NaiveDate {
    match tz.parse::<chrono_tz::Tz>() {
        Ok(z) => Utc::now().with_timezone(&z).date_naive(),
        Err(_) => Utc::now().date_naive(),
    }
}

#[utoipa::path(get, path = "/v1/stats", tag = "stats", params(StatsParams, TenantParam),
    responses((status = 200, description = "Series per bucket", body = StatsResponse), ApiErrors))]
pub async fn series(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<StatsResponse>, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<StatsParams>(query.as_deref());
    let granularity = p.parsed("granularity", Granularity::parse).unwrap_or(Granularity::Day);
    let tz = zone(&mut p, &state);
    let to = p.parsed("to", params::date).unwrap_or_else(|| today(&tz));
    let from = p.parsed("from", params::date).unwrap_or(to - chrono::Duration::days(29));
    let filter = CounterFilter {
        channels: p.many_of("channel", schemas::Channel::SYMBOLS),
        providers: p.many("provider"),
        broadcasts: p.many("broadcast"),
        sequences: p.many("sequence"),
        templates: p.many("template"),
    };
    let group_names = p.many_of("group_by", &GroupBy::NAMES);
    let group: Vec<GroupBy> = group_names.iter().filter_map(|g| GroupBy::parse(g)).collect();
    if group.len() > 2 {
        p.fail("group_by", "at most two dimensions");
    }
    let compare = p.parsed("compare", |v| if v == "previous_period" { Ok(true) } else { Err("only `previous_period`".into()) }).unwrap_or(false);
    if from > to {
        p.fail("from", "after `to`");
    }
    let max = state.config.max_buckets as usize;
    let buckets = granularity.range(from, to, max).unwrap_or_else(|| {
        p.fail("from", format!("the range holds more than {max} {} buckets", granularity.as_str()));
        Vec::new()
    });
    p.finish()?;
    let range = Range { tz, granularity, buckets };
    let series = series_of(&state, &caller.tenant, &range, &range.buckets, &filter, &group).await?;
    let previous = if compare {
        let prev = granularity.previous(&range.buckets);
        Some(series_of(&state, &caller.tenant, &range, &prev, &filter, &group).await?)
    } else {
        None
    };
    let as_of = q::as_of(&state.db, &caller.tenant).await?;
    let (start, end) = match (range.buckets.first(), range.buckets.last()) {
        (Some(a), Some(b)) => (midnight(*a, &range.tz), midnight(granularity.next(*b), &range.tz)),
        _ => (0, 0),
    };
    let p = q::provisional(&state.db, &caller.tenant, start, end).await?;
    Ok(Json(StatsResponse {
        provisional: Rate::of(p.pending as i64, p.deliveries as i64),
        granularity,
        from: range.buckets.first().map(|d| d.to_string()).unwrap_or_default(),
        to: range.buckets.last().map(|d| d.to_string()).unwrap_or_default(),
        tz: range.tz,
        as_of: (as_of > 0).then(|| time(as_of)),
        series,
        previous,
    }))
}

async fn series_of(state: &AppState, tenant: &str, range: &Range, buckets: &[NaiveDate], f: &CounterFilter, group: &[GroupBy]) -> Result<Vec<Series>, ApiError> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ok(Vec::new());
    };
    let period = range.granularity.period(&range.tz);
    let rows = q::counters(&state.db, tenant, &period, &first.to_string(), &last.to_string(), f, group).await?;
    Ok(assemble(&rows, buckets, group))
}

/// Rows → one series per group present (one series without `group_by`), every bucket filled.
fn assemble(rows: &[CounterRow], buckets: &[NaiveDate], group: &[GroupBy]) -> Vec<Series> {
    let mut by_group: BTreeMap<(String, String), BTreeMap<String, Sums>> = BTreeMap::new();
    if group.is_empty() {
        by_group.entry((String::new(), String::new())).or_default();
    }
    for r in rows {
        by_group.entry((r.g1.clone(), r.g2.clone())).or_default().entry(r.bucket.clone()).or_default().add(r);
    }
    by_group
        .into_iter()
        .map(|((g1, g2), sums)| {
            let mut total = Sums::default();
            let buckets = buckets
                .iter()
                .map(|d| {
                    let start = d.to_string();
                    let s = sums.get(&start).cloned().unwrap_or_default();
                    total.merge(&s);
                    Bucket { start, totals: s.totals() }
                })
                .collect();
            let group = group.iter().zip([g1, g2]).map(|(g, v)| (g.as_str().to_string(), v)).collect();
            Series { group, buckets, total: total.totals() }
        })
        .collect()
}

/// Parameters of `/v1/stats/summary`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SummaryParams {
    /// Days up to and including today (in `tz`); default 30.
    days: Option<u32>,
    /// `UTC` (default) or a configured reporting zone.
    tz: Option<String>,
}

/// Unique recipients over the range (people only for opens and clicks).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Uniques {
    pub reached: u64,
    pub opened: u64,
    pub clicked: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SenderFlag {
    pub provider: String,
    pub sending_domain: String,
    pub sending_account: String,
    pub reasons: Vec<String>,
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SummaryResponse {
    pub days: u32,
    pub tz: String,
    pub from: String,
    pub to: String,
    pub as_of: Option<String>,
    pub totals: Totals,
    pub unique_recipients: Uniques,
    /// The N days before.
    pub previous: Totals,
    pub previous_unique_recipients: Uniques,
    /// `counts` minus the previous period's, per event type.
    pub deltas: BTreeMap<String, i64>,
    /// Senders flagged now.
    pub sender_flags: Vec<SenderFlag>,
}

#[utoipa::path(get, path = "/v1/stats/summary", tag = "stats", params(SummaryParams, TenantParam),
    responses((status = 200, description = "Totals, rates, unique recipients and deltas", body = SummaryResponse), ApiErrors))]
pub async fn summary(State(state): State<AppState>, caller: Caller, RawQuery(query): RawQuery) -> Result<Json<SummaryResponse>, ApiError> {
    caller.require(Scope::Stats)?;
    let mut p = Params::of::<SummaryParams>(query.as_deref());
    let max = state.config.max_summary_days;
    let days = p
        .parsed("days", |v| match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("a whole number between 1 and {max}")),
        })
        .unwrap_or(30);
    let tz = zone(&mut p, &state);
    p.finish()?;
    let to = today(&tz);
    let from = to - chrono::Duration::days(days as i64 - 1);
    let prev_from = from - chrono::Duration::days(days as i64);
    let period = Granularity::Day.period(&tz);
    let tenant = &caller.tenant;
    let db = &state.db;
    let (from_s, to_s, prev_from_s) = (from.to_string(), to.to_string(), prev_from.to_string());
    // both periods' counters in one read, split by bucket (ISO dates order as text)
    let sum = |rows: &[CounterRow], current: bool| {
        let mut s = Sums::default();
        rows.iter().filter(|r| (r.bucket.as_str() >= from_s.as_str()) == current).for_each(|r| s.add(r));
        s.totals()
    };
    let none = CounterFilter::default();
    let uniques = |r: q::UniqueRow| Uniques { reached: r.reached, opened: r.opened, clicked: r.clicked };
    // four independent reads, sent at once: a ClickHouse server runs them side by side (the
    // exact unique counts of both periods, one read, dominate: BENCHMARKS.md §5)
    let (rows, (now_uniques, prev_uniques), health, as_of) = tokio::try_join!(
        q::counters(db, tenant, &period, &prev_from_s, &to_s, &none, &[]),
        q::unique_recipients(db, tenant, &period, &prev_from_s, &from_s, &to_s),
        crate::db::health::current(db, tenant, true),
        q::as_of(db, tenant),
    )?;
    let (totals, previous) = (sum(&rows, true), sum(&rows, false));
    let (unique_recipients, previous_unique_recipients) = (uniques(now_uniques), uniques(prev_uniques));
    let deltas = totals.counts.iter().map(|(k, v)| (k.clone(), v - previous.counts.get(k).copied().unwrap_or(0))).collect();
    let sender_flags = health
        .into_iter()
        .map(|h| SenderFlag { provider: h.provider, sending_domain: h.sending_domain, sending_account: h.sending_account, reasons: h.reasons, since: time(h.evaluated_at) })
        .collect();
    Ok(Json(SummaryResponse {
        days,
        tz,
        from: from.to_string(),
        to: to.to_string(),
        as_of: (as_of > 0).then(|| time(as_of)),
        totals,
        unique_recipients,
        previous,
        previous_unique_recipients,
        deltas,
        sender_flags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bucket: &str, g1: &str, ty: &str, bounce: &str, machine: &str, n: i64, cost: i128) -> CounterRow {
        CounterRow { bucket: bucket.into(), g1: g1.into(), g2: String::new(), event_type: ty.into(), bounce_class: bounce.into(), machine: machine.into(), cost_unit: if cost != 0 { "USD".into() } else { String::new() }, events: n, cost }
    }

    #[test]
    fn every_bucket_every_type_and_rates() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let buckets = vec![d("2026-01-01"), d("2026-01-02"), d("2026-01-03")];
        let rows = vec![
            row("2026-01-02", "email", "sent", "", "", 10, 750_000_000),
            row("2026-01-02", "email", "delivered", "", "", 8, 0),
            row("2026-01-02", "email", "bounced", "hard", "", 1, 0),
            row("2026-01-02", "email", "bounced", "soft", "", 1, 0),
            row("2026-01-02", "email", "opened", "", "", 4, 0),
            row("2026-01-02", "email", "opened", "", "apple_mpp", 2, 0),
            row("2026-01-03", "sms", "sent", "", "", 3, 0),
        ];
        let s = assemble(&rows, &buckets, &[GroupBy::Channel]);
        assert_eq!(s.len(), 2);
        let email = &s[0];
        assert_eq!(email.group["channel"], "email");
        assert_eq!(email.buckets.len(), 3, "empty buckets present");
        assert_eq!(email.buckets[0].totals.counts["sent"], 0);
        assert_eq!(email.buckets[0].totals.counts.len(), schemas::EventType::SYMBOLS.len());
        let t = &email.buckets[1].totals;
        assert_eq!((t.counts["opened"], t.human_counts["opened"], t.hard_bounces), (6, 4, 1));
        assert_eq!(t.cost["USD"], "0.075");
        assert_eq!(t.rates.delivery, Rate { numerator: 8, denominator: 10, value: Some(0.8) });
        assert_eq!(t.rates.bounce.numerator, 1);
        assert_eq!(t.rates.human.open, Rate { numerator: 4, denominator: 8, value: Some(0.5) });
        assert_eq!(t.rates.all.open.numerator, 6);
        assert_eq!(email.buckets[0].totals.rates.delivery.value, None, "0 of 0 is no rate");
        assert_eq!(email.total.counts["sent"], 10);
        assert_eq!(midnight(d("2026-01-02"), "UTC"), 1_767_312_000_000);
        assert_eq!(midnight(d("2026-01-02"), "Europe/Berlin"), 1_767_312_000_000 - 3_600_000);
        // without group_by: one series even without rows
        let none = assemble(&[], &buckets, &[]);
        assert_eq!(none.len(), 1);
        assert!(none[0].group.is_empty());
    }
}
