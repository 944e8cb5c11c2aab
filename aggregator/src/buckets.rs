//! Counter buckets: day, ISO week (starting Monday) and month, in UTC (periods `day`,
//! `week`, `month`) and, when a reporting time zone is configured, also in that zone
//! (periods `day:<zone>`, `week:<zone>`, `month:<zone>`, e.g. `day:Europe/Berlin`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// First day of the bucket holding `ms` (UTC milliseconds). Out-of-range times clamp to the epoch.
pub fn bucket_start(period: Period, ms: i64) -> NaiveDate {
    start_of(period, DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive())
}

/// As [`bucket_start`], with days as they are in `tz`.
pub fn bucket_start_in(period: Period, ms: i64, tz: Tz) -> NaiveDate {
    let utc = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    start_of(period, tz.from_utc_datetime(&utc.naive_utc()).date_naive())
}

/// The periods counters are kept for: UTC always, the reporting zone if it is not UTC.
#[derive(Debug, Clone)]
pub struct Periods(pub Vec<(String, Period, Option<Tz>)>);

impl Periods {
    /// `zone` is an IANA name (`Europe/Berlin`); `UTC` or empty adds nothing.
    pub fn new(zone: &str) -> Result<Periods, String> {
        let mut v: Vec<(String, Period, Option<Tz>)> = Period::ALL.iter().map(|p| (p.as_str().to_string(), *p, None)).collect();
        if !zone.is_empty() && zone != "UTC" {
            let tz: Tz = zone.parse().map_err(|e| format!("reporting_time_zone `{zone}`: {e}"))?;
            v.extend(Period::ALL.iter().map(|p| (format!("{}:{zone}", p.as_str()), *p, Some(tz))));
        }
        Ok(Periods(v))
    }

    /// (period name, bucket start) of every period for `ms`.
    pub fn buckets(&self, ms: i64) -> impl Iterator<Item = (&str, NaiveDate)> + '_ {
        self.0.iter().map(move |(name, p, tz)| {
            (name.as_str(), match tz {
                Some(tz) => bucket_start_in(*p, ms, *tz),
                None => bucket_start(*p, ms),
            })
        })
    }
}

fn start_of(period: Period, day: NaiveDate) -> NaiveDate {
    match period {
        Period::Day => day,
        Period::Week => day - Duration::days(day.weekday().num_days_from_monday() as i64),
        Period::Month => day.with_day(1).unwrap_or(day),
    }
}

/// Days since 1970-01-01, as ClickHouse stores `Date`.
pub fn clickhouse_date(d: NaiveDate) -> u16 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days().clamp(0, u16::MAX as i64) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn buckets_start_on_utc_day_monday_and_first_of_month() {
        // 2026-11-25 is a Wednesday
        let t = ms("2026-11-25T23:59:59.999Z");
        assert_eq!(bucket_start(Period::Day, t).to_string(), "2026-11-25");
        assert_eq!(bucket_start(Period::Week, t).to_string(), "2026-11-23");
        assert_eq!(bucket_start(Period::Month, t).to_string(), "2026-11-01");
        // a Sunday belongs to the week that began six days earlier
        assert_eq!(bucket_start(Period::Week, ms("2026-11-29T12:00:00Z")).to_string(), "2026-11-23");
        // a non-UTC offset is converted first
        assert_eq!(bucket_start(Period::Day, ms("2026-11-26T01:00:00+02:00")).to_string(), "2026-11-25");
        assert_eq!(clickhouse_date(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
    }

    #[test]
    fn reporting_zone_buckets() {
        // 2026-11-29 23:30 UTC is already Monday 2026-11-30 in Berlin: another day, week and month
        let t = ms("2026-11-30T23:30:00Z");
        let p = Periods::new("Europe/Berlin").unwrap();
        let got: Vec<(String, String)> = p.buckets(t).map(|(n, d)| (n.to_string(), d.to_string())).collect();
        assert_eq!(got[0], ("day".into(), "2026-11-30".into()));
        assert_eq!(got[3], ("day:Europe/Berlin".into(), "2026-12-01".into()));
        assert_eq!(got[4], ("week:Europe/Berlin".into(), "2026-11-30".into()));
        assert_eq!(got[5], ("month:Europe/Berlin".into(), "2026-12-01".into()));
        assert_eq!(Periods::new("UTC").unwrap().0.len(), 3);
        assert!(Periods::new("Mars/Olympus").is_err());
    }
}
