//! The raw envelope's schema-specific codec for the CURRENT `avro/raw_envelope.avsc`, and
//! [`RawEnvelopeRef`], an envelope whose strings and body borrow the record's bytes.

use super::binary::{bytes_hint, put_bytes, put_long, put_str, Reader};
use super::event::put_map;
use super::CodecError;
use crate::raw::{RawEnvelope, Route};
use crate::ProviderId;
use std::collections::BTreeMap;

/// A raw envelope read without copying: what the normalizer needs per record, for the price
/// of one small vector (the headers). [`RawEnvelopeRef::to_envelope`] gives the [`RawEnvelope`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnvelopeRef<'a> {
    pub request_id: &'a str,
    pub tenant: &'a str,
    pub provider: ProviderId,
    pub route: Route,
    pub url: &'a str,
    pub content_type: &'a str,
    pub received_at: i64,
    /// Sorted by name, one entry per name (a name written twice keeps its last value): the
    /// entries of [`RawEnvelope::headers`], in its order.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl<'a> RawEnvelopeRef<'a> {
    /// The header `name` (lower case, as stored).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.binary_search_by(|(k, _)| (*k).cmp(name)).ok().map(|i| self.headers[i].1)
    }

    pub fn to_envelope(&self) -> RawEnvelope {
        RawEnvelope {
            request_id: self.request_id.to_owned(),
            tenant: self.tenant.to_owned(),
            provider: self.provider,
            route: self.route.clone(),
            url: self.url.to_owned(),
            content_type: self.content_type.to_owned(),
            received_at: self.received_at,
            // sorted and unique: built in one pass
            headers: self.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            body: self.body.to_vec(),
        }
    }
}

/// An upper bound of the datum's size, so the output is allocated once.
pub(super) fn size_hint(r: &RawEnvelope) -> usize {
    [&r.request_id, &r.tenant, &r.url, &r.content_type].iter().map(|s| bytes_hint(s.len())).sum::<usize>()
        + bytes_hint(16) // provider
        + bytes_hint(9 + route_variant(&r.route).map_or(4, str::len))
        + 10 // received_at
        + r.headers.iter().map(|(k, v)| bytes_hint(k.len()) + bytes_hint(v.len())).sum::<usize>()
        + 11 // header count and end
        + bytes_hint(r.body.len())
}

fn route_variant(route: &Route) -> Option<&str> {
    match route {
        Route::WebhookVariant(v) => Some(v),
        _ => None,
    }
}

/// Appends the datum. The caller has checked that the route is valid.
pub(super) fn write(r: &RawEnvelope, buf: &mut Vec<u8>) {
    put_str(buf, &r.request_id);
    put_str(buf, &r.tenant);
    put_str(buf, r.provider.as_str());
    match &r.route {
        // `Route::as_str` without its `format!`
        Route::WebhookVariant(v) => {
            const PREFIX: &str = "webhook/";
            put_long(buf, (PREFIX.len() + v.len()) as i64);
            buf.extend_from_slice(PREFIX.as_bytes());
            buf.extend_from_slice(v.as_bytes());
        }
        other => put_str(buf, &other.as_str()),
    }
    put_str(buf, &r.url);
    put_str(buf, &r.content_type);
    put_long(buf, r.received_at);
    put_map(buf, &r.headers);
    put_bytes(buf, &r.body);
}

/// Reads a datum written with the current schema (trailing bytes ignored, as apache-avro does).
/// The provider and the route are checked after the whole datum is read, in the Value path's
/// order, so each broken record gets the same error code as before.
pub(super) fn read(datum: &[u8]) -> Result<RawEnvelopeRef<'_>, CodecError> {
    let mut r = Reader::new(datum);
    let request_id = r.str()?;
    let tenant = r.str()?;
    let provider = r.str()?;
    let route = r.str()?;
    let url = r.str()?;
    let content_type = r.str()?;
    let received_at = r.long()?;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    loop {
        // bounded by the entries read, never fewer than the Value path's `HashMap` holds
        let n = r.block(headers.len(), true)?;
        if n == 0 {
            break;
        }
        headers.reserve_exact(n);
        for _ in 0..n {
            headers.push((r.str()?, r.str()?));
        }
    }
    let body = r.bytes()?;
    let provider: ProviderId = provider.parse().map_err(|_| CodecError::UnknownProvider(provider.to_owned()))?;
    let route = Route::parse(route, url).ok_or_else(|| CodecError::UnknownRoute(route.to_owned()))?;
    // A stable sort keeps a repeated name's entries in wire order; keep the last of each.
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let mut kept = 0;
    for i in 0..headers.len() {
        if kept > 0 && headers[kept - 1].0 == headers[i].0 {
            headers[kept - 1] = headers[i];
        } else {
            headers[kept] = headers[i];
            kept += 1;
        }
    }
    headers.truncate(kept);
    Ok(RawEnvelopeRef { request_id, tenant, provider, route, url, content_type, received_at, headers, body })
}
