//! Query-string parsing that names every offending parameter.
//!
//! The accepted names come from the endpoint's `IntoParams` type, the same one the OpenAPI
//! document is generated from, so a parameter cannot be documented and ignored, or
//! accepted and undocumented: anything else is a 400 naming it.

use crate::error::{ApiError, ParamError};
use chrono::{DateTime, NaiveDate, Utc};
use utoipa::openapi::path::ParameterIn;
use utoipa::IntoParams;

pub struct Params {
    pairs: Vec<(String, String)>,
    errors: Vec<ParamError>,
}

/// The query parameter names of `T` as documented.
pub fn names<T: IntoParams>() -> Vec<String> {
    T::into_params(|| Some(ParameterIn::Query)).into_iter().map(|p| p.name).collect()
}

impl Params {
    /// Splits the query string; unknown names (not in `allowed`, nor `tenant`) are errors.
    pub fn new(query: Option<&str>, allowed: &[String]) -> Params {
        let mut p = Params { pairs: Vec::new(), errors: Vec::new() };
        match serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default()) {
            Ok(pairs) => p.pairs = pairs,
            Err(e) => p.fail("query", format!("not a valid query string: {e}")),
        }
        let unknown: Vec<String> = p.pairs.iter().map(|(k, _)| k.clone()).filter(|k| k != "tenant" && !allowed.contains(k)).collect();
        for k in unknown {
            if !p.errors.iter().any(|e| e.parameter == k) {
                p.fail(&k, format!("unknown parameter; accepted: {}", allowed.join(", ")));
            }
        }
        p
    }

    /// As [`Params::new`] with `T`'s documented names.
    pub fn of<T: IntoParams>(query: Option<&str>) -> Params {
        Params::new(query, &names::<T>())
    }

    pub fn fail(&mut self, parameter: &str, detail: impl Into<String>) {
        self.errors.push(ParamError { parameter: parameter.into(), detail: detail.into() });
    }

    /// A parameter given at most once; empty values count as absent.
    pub fn one(&mut self, name: &str) -> Option<String> {
        let values: Vec<String> = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
        if values.len() > 1 {
            self.fail(name, "given more than once");
            return None;
        }
        values.into_iter().next().filter(|v| !v.is_empty())
    }

    /// A repeatable parameter (`status=a&status=b`, or `status=a,b`).
    pub fn many(&mut self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A single value parsed by `f`; its error message is the parameter's detail.
    pub fn parsed<T>(&mut self, name: &str, f: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let v = self.one(name)?;
        match f(&v) {
            Ok(t) => Some(t),
            Err(detail) => {
                self.fail(name, detail);
                None
            }
        }
    }

    /// Each value of a repeatable parameter must be one of `allowed`.
    pub fn many_of(&mut self, name: &str, allowed: &[&str]) -> Vec<String> {
        let values = self.many(name);
        for v in &values {
            if !allowed.contains(&v.as_str()) {
                self.fail(name, format!("unknown value `{v}`; one of: {}", allowed.join(", ")));
            }
        }
        values
    }

    /// `page_size`: 1..=max, `default` when absent.
    pub fn page_size(&mut self, default: u32, max: u32) -> u32 {
        self.parsed("page_size", |v| match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            Ok(_) => Err(format!("must be between 1 and {max}")),
            Err(_) => Err("not a whole number".into()),
        })
        .unwrap_or(default)
    }

    /// The 400 with every error found, or nothing.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::BadRequest(self.errors))
        }
    }
}

/// An RFC 3339 time as UTC milliseconds.
pub fn rfc3339(v: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc).timestamp_millis()).map_err(|_| "not an RFC 3339 time (2026-01-31T00:00:00Z)".into())
}

/// A calendar date `YYYY-MM-DD`, or the date part of an RFC 3339 time.
pub fn date(v: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| DateTime::parse_from_rfc3339(v).map(|t| t.date_naive()))
        .map_err(|_| "not a date (2026-01-31)".into())
        .and_then(|d| if d.year_ce().1 < 1970 || d.year_ce().1 > 2149 { Err("outside 1970..2149".into()) } else { Ok(d) })
}

use chrono::Datelike;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_bad_parameter() {
        let allowed = vec!["a".to_string(), "n".to_string(), "s".to_string()];
        let mut p = Params::new(Some("a=1&a=2&n=x&zzz=1&s=ok,bad&tenant=t"), &allowed);
        assert_eq!(p.one("a"), None);
        assert_eq!(p.parsed("n", |v| v.parse::<u32>().map_err(|_| "nan".to_string())), None);
        assert_eq!(p.many_of("s", &["ok"]), vec!["bad", "ok"]);
        let Err(ApiError::BadRequest(errors)) = p.finish() else { panic!("400 expected") };
        let names: Vec<&str> = errors.iter().map(|e| e.parameter.as_str()).collect();
        assert_eq!(names, vec!["zzz", "a", "n", "s"]);
    }

    #[test]
    fn page_size_bounds() {
        let allowed = vec!["page_size".to_string()];
        assert_eq!(Params::new(None, &allowed).page_size(50, 1000), 50);
        assert_eq!(Params::new(Some("page_size=1000"), &allowed).page_size(50, 1000), 1000);
        let mut p = Params::new(Some("page_size=1001"), &allowed);
        p.page_size(50, 1000);
        assert!(p.finish().is_err());
        let mut p = Params::new(Some("page_size=0"), &allowed);
        p.page_size(50, 1000);
        assert!(p.finish().is_err());
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(rfc3339("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(rfc3339("yesterday").is_err());
        assert_eq!(date("2026-02-03").unwrap().to_string(), "2026-02-03");
        assert_eq!(date("2026-02-03T23:00:00Z").unwrap().to_string(), "2026-02-03");
        assert!(date("1900-01-01").is_err());
    }
}
