//! The buckets of a series: day, ISO week (Monday) or month, in UTC or a reporting zone,
//! named as the aggregator names its counter periods (`day`, `week:Europe/Berlin`, ..).

use chrono::{Datelike, Duration, Months, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    pub const NAMES: [&'static str; 3] = ["day", "week", "month"];

    pub fn parse(s: &str) -> Result<Granularity, String> {
        match s {
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            "month" => Ok(Granularity::Month),
            _ => Err(format!("one of: {}", Granularity::NAMES.join(", "))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The counters' period name in `zone` (`UTC` → the plain name).
    pub fn period(self, zone: &str) -> String {
        if zone == "UTC" {
            self.as_str().to_string()
        } else {
            format!("{}:{zone}", self.as_str())
        }
    }

    /// First day of the bucket holding `d`.
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => d,
            Granularity::Week => d - Duration::days(d.weekday().num_days_from_monday() as i64),
            Granularity::Month => d.with_day(1).unwrap_or(d),
        }
    }

    pub fn next(self, d: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => d + Duration::days(1),
            Granularity::Week => d + Duration::days(7),
            Granularity::Month => d.checked_add_months(Months::new(1)).unwrap_or(d + Duration::days(31)),
        }
    }

    pub fn prev(self, d: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => d - Duration::days(1),
            Granularity::Week => d - Duration::days(7),
            Granularity::Month => d.checked_sub_months(Months::new(1)).unwrap_or(d - Duration::days(28)),
        }
    }

    /// Bucket starts from the bucket of `from` to the bucket of `to` (inclusive); `None` if more than `max`.
    pub fn range(self, from: NaiveDate, to: NaiveDate, max: usize) -> Option<Vec<NaiveDate>> {
        let mut out = Vec::new();
        let mut d = self.start(from);
        while d <= to {
            if out.len() == max {
                return None;
            }
            out.push(d);
            d = self.next(d);
        }
        Some(out)
    }

    /// The same number of buckets right before `buckets` (for `compare=previous_period`).
    pub fn previous(self, buckets: &[NaiveDate]) -> Vec<NaiveDate> {
        let mut out = Vec::with_capacity(buckets.len());
        let mut d = buckets.first().copied().unwrap_or_default();
        for _ in 0..buckets.len() {
            d = self.prev(d);
            out.push(d);
        }
        out.reverse();
        out
    }
}

/// Days since 1970-01-01, as ClickHouse stores `Date`.
pub fn to_days(d: NaiveDate) -> u16 {
    (d - NaiveDate::default()).num_days().clamp(0, u16::MAX as i64) as u16
}

pub fn from_days(days: u16) -> NaiveDate {
    NaiveDate::default() + Duration::days(days as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_include_every_bucket_and_respect_the_limit() {
        assert_eq!(Granularity::Day.range(d("2026-01-30"), d("2026-02-02"), 400).unwrap().len(), 4);
        // 2026-01-01 is a Thursday: its ISO week starts 2025-12-29
        assert_eq!(Granularity::Week.range(d("2026-01-01"), d("2026-01-12"), 400).unwrap(), vec![d("2025-12-29"), d("2026-01-05"), d("2026-01-12")]);
        assert_eq!(Granularity::Month.range(d("2026-01-31"), d("2026-03-01"), 400).unwrap(), vec![d("2026-01-01"), d("2026-02-01"), d("2026-03-01")]);
        assert_eq!(Granularity::Day.range(d("2026-01-01"), d("2027-02-04"), 400).unwrap().len(), 400, "exactly the limit");
        assert!(Granularity::Day.range(d("2026-01-01"), d("2027-02-05"), 400).is_none(), "one more");
        assert!(Granularity::Day.range(d("2026-01-02"), d("2026-01-01"), 400).unwrap().is_empty());
    }

    #[test]
    fn previous_period_and_names() {
        let b = Granularity::Month.range(d("2026-03-01"), d("2026-04-30"), 400).unwrap();
        assert_eq!(Granularity::Month.previous(&b), vec![d("2026-01-01"), d("2026-02-01")]);
        assert_eq!(Granularity::Week.period("UTC"), "week");
        assert_eq!(Granularity::Day.period("Europe/Berlin"), "day:Europe/Berlin");
        assert_eq!(from_days(to_days(d("2026-05-17"))), d("2026-05-17"));
    }
}
