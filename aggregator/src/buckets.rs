//! Counter buckets: UTC day, ISO week (starting Monday) and month.

use chrono::{DateTime, Datelike, Duration, NaiveDate};

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
    let day = DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive();
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
}
