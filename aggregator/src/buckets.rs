//! Counter buckets: day, ISO week (starting Monday) and month, in UTC (periods `day`,
//! `week`, `month`) and, when a reporting time zone is configured, also in that zone
//! (periods `day:<zone>`, `week:<zone>`, `month:<zone>`, e.g. `day:Europe/Berlin`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone};
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

/// As [`bucket_start`], with days as they are in `tz` (a local time beyond chrono's range
/// clamps to the epoch too: chrono's `date_naive` would panic there).
pub fn bucket_start_in(period: Period, ms: i64, tz: Tz) -> NaiveDate {
    let utc = DateTime::from_timestamp_millis(ms).unwrap_or_default().naive_utc();
    let local = utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix()).unwrap_or_default();
    start_of(period, local.date())
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
        // (checked: the week of chrono's first day began before it)
        Period::Week => day.checked_sub_signed(Duration::days(day.weekday().num_days_from_monday() as i64)).unwrap_or(day),
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

    proptest::proptest! {
        /// Any time, in any zone: no panic, and a bucket never starts after its day.
        #[test]
        fn any_time_has_buckets(ms in proptest::prop_oneof![proptest::prelude::any::<i64>(), -9_000_000_000_000_000i64..9_000_000_000_000_000, 0i64..5_000_000_000_000], zone in proptest::sample::select(vec!["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati"])) {
            let p = Periods::new(zone).unwrap();
            for (name, start) in p.buckets(ms) {
                let _ = clickhouse_date(start);
                let admitted = (crate::admission::MIN_EVENT_TIME_MS..crate::admission::MAX_EVENT_TIME_MS).contains(&ms);
                if admitted && name.starts_with("week") {
                    proptest::prop_assert_eq!(start.weekday().num_days_from_monday(), 0);
                }
            }
            for ms in [i64::MIN, i64::MAX, ms.saturating_add(i64::MAX / 2)] {
                let _ = p.buckets(ms).count();
            }
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        // chrono's first and last representable instants, in zones east and west of UTC
        for ms in [i64::MIN, i64::MAX, DateTime::<chrono::Utc>::MIN_UTC.timestamp_millis(), DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis()] {
            for zone in ["UTC", "Asia/Tokyo", "America/Los_Angeles"] {
                let p = Periods::new(zone).unwrap();
                assert_eq!(p.buckets(ms).count(), if zone == "UTC" { 3 } else { 6 });
            }
        }
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
