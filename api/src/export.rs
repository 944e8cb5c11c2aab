//! Exports without a row cap: a list endpoint asked for `Accept: text/csv` or
//! `Accept: application/x-ndjson` streams the whole filtered set, in its list order, fetched
//! keyset page by keyset page (`max_page_size` rows per query), so memory stays flat however
//! many rows there are.
//!
//! Every exported row carries `resume_token`: the `page_token` that continues after it. A
//! client whose download broke off sends the last token it received as `page_token` (with the
//! same filters and `Accept`) and gets the rest. CSV cells hold strings as they are, numbers as
//! decimals, absent values empty and arrays as JSON text (`["a","b"]`).
//!
//! The first chunk is read before the response starts, so parameter errors (400) and an
//! unreachable ClickHouse (503) are still problem+json answers; a failure after that ends the
//! body early (the client sees a truncated transfer and resumes).

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;

/// What the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ndjson,
}

impl Format {
    /// The first media type of `Accept` this endpoint can give (no `Accept` = JSON); none → 406.
    /// Quality values are not weighed: the order the client lists them in decides.
    pub fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT) else { return Ok(Format::Json) };
        let accept = accept.to_str().unwrap_or("");
        for item in accept.split(',') {
            let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            match media.as_str() {
                "application/json" | "application/*" | "*/*" | "application/problem+json" | "" => return Ok(Format::Json),
                "text/csv" | "text/*" => return Ok(Format::Csv),
                "application/x-ndjson" | "application/jsonl" => return Ok(Format::Ndjson),
                _ => {}
            }
        }
        Err(ApiError::NotAcceptable("acceptable media types: application/json, text/csv, application/x-ndjson".into()))
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// The columns of a CSV export, in order (the JSON field names of the row type).
pub trait Columns: Serialize {
    const COLUMNS: &'static [&'static str];
}

/// The cursor of a row (`(time, key)`, as `page_token` encodes it).
pub type Cursor = (i64, String);

/// Streams every row from `first` (already fetched, after `start`) onwards: `fetch(after)`
/// reads the next chunk of at most `chunk` rows; `cursor` gives a row's keyset position and
/// `convert` its public shape.
pub fn stream<R, T, F, Fut>(format: Format, fingerprint: String, chunk: u32, first: Vec<R>, fetch: F, cursor: fn(&R) -> Cursor, convert: fn(R) -> T) -> Response
where
    R: Send + 'static,
    T: Columns + Send + 'static,
    F: Fn(Cursor) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<R>, ApiError>> + Send + 'static,
{
    struct State<R, F> {
        rows: Option<Vec<R>>,
        header: bool,
        fetch: F,
    }
    let state = State { rows: Some(first), header: format == Format::Csv, fetch };
    let body = futures::stream::unfold(state, move |mut st| {
        let fp = fingerprint.clone();
        async move {
            let rows = st.rows.take()?;
            let full = rows.len() >= chunk as usize;
            let last = rows.last().map(cursor);
            let mut out = Vec::with_capacity(rows.len() * 256);
            if std::mem::take(&mut st.header) {
                write_csv_header::<T>(&mut out);
            }
            for r in rows {
                let token = crate::page_token::encode(&fp, cursor(&r).0, &cursor(&r).1);
                let row = convert(r);
                match format {
                    Format::Csv => write_csv_row(&mut out, &row, &token),
                    _ => write_ndjson_row(&mut out, &row, &token),
                }
            }
            if full {
                if let Some(after) = last {
                    match (st.fetch)(after).await {
                        Ok(next) if !next.is_empty() => st.rows = Some(next),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(message = "Export ended early.", %error);
                            return Some((Err(std::io::Error::other(error.to_string())), st));
                        }
                    }
                }
            }
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), st))
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    resp
}

fn write_csv_header<T: Columns>(out: &mut Vec<u8>) {
    let mut w = csv::Writer::from_writer(out);
    let _ = w.write_record(T::COLUMNS.iter().copied().chain(["resume_token"]));
    let _ = w.flush();
}

fn write_csv_row<T: Columns>(out: &mut Vec<u8>, row: &T, token: &str) {
    let v = serde_json::to_value(row).unwrap_or(Value::Null);
    let cells = T::COLUMNS.iter().map(|c| cell(v.get(*c))).chain([token.to_string()]);
    let mut w = csv::Writer::from_writer(out);
    let _ = w.write_record(cells);
    let _ = w.flush();
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn write_ndjson_row<T: Serialize>(out: &mut Vec<u8>, row: &T, token: &str) {
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("resume_token".into(), Value::String(token.into()));
    }
    let _ = serde_json::to_writer(&mut *out, &v);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        a: String,
        b: Option<u32>,
        c: Vec<String>,
    }
    impl Columns for Row {
        const COLUMNS: &'static [&'static str] = &["a", "b", "c"];
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::negotiate(&h).unwrap(), Format::Json);
        for (accept, f) in [("text/csv", Format::Csv), ("application/x-ndjson", Format::Ndjson), ("text/html, */*;q=0.1", Format::Json), ("image/png, text/csv", Format::Csv)] {
            h.insert(header::ACCEPT, HeaderValue::from_static(accept));
            assert_eq!(Format::negotiate(&h).unwrap(), f, "{accept}");
        }
        h.insert(header::ACCEPT, HeaderValue::from_static("image/png"));
        assert_eq!(Format::negotiate(&h).unwrap_err().status(), StatusCode::NOT_ACCEPTABLE);
    }

    #[test]
    fn csv_cells_quote_and_flatten() {
        let mut out = Vec::new();
        write_csv_header::<Row>(&mut out);
        write_csv_row(&mut out, &Row { a: "x,\"y\"\nz".into(), b: None, c: vec!["l1".into(), "l2".into()] }, "tok");
        let mut r = csv::Reader::from_reader(out.as_slice());
        assert_eq!(r.headers().unwrap(), vec!["a", "b", "c", "resume_token"]);
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(rec, vec!["x,\"y\"\nz", "", "[\"l1\",\"l2\"]", "tok"]);
    }

    #[test]
    fn ndjson_adds_the_resume_token() {
        let mut out = Vec::new();
        write_ndjson_row(&mut out, &Row { a: "x".into(), b: Some(3), c: vec![] }, "tok");
        let v: Value = serde_json::from_slice(out.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"a": "x", "b": 3, "c": [], "resume_token": "tok"}));
    }
}
