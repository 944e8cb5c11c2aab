//! The sender's JSON items (send records, app events, push results) on arbitrary bodies.
//! First byte (mod 3) picks the kind; the rest is the body. A batch `parse_batch` accepts
//! (what ingest checks before storing) must map to one event per item, without error,
//! through the same provider code the pipeline runs; nothing panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use normalizer::providers::sender::items::parse_batch;
use normalizer::providers::sender::{app_events::AppEvent, push_results::PushResult, records::SendRecord};
use schemas::{ProviderId, RawEnvelope, Route};
use sendtrace_fuzz as f;
use std::collections::BTreeMap;

fn envelope(provider: ProviderId, route: Route, body: &[u8]) -> RawEnvelope {
    RawEnvelope {
        request_id: "fuzz".into(),
        tenant: f::TENANT.into(),
        provider,
        url: route.path(provider, f::TENANT),
        route,
        content_type: "application/json".into(),
        received_at: f::NOW_MS,
        headers: BTreeMap::new(),
        body: body.to_vec(),
    }
}

fn check(accepted: Option<usize>, env: &RawEnvelope) {
    let normalized = f::normalize(env);
    match (accepted, normalized) {
        (Some(n), Ok(out)) => assert_eq!(out.events.len() + out.rejected.len(), n, "one event or one dead letter per accepted item"),
        (Some(_), Err(e)) => panic!("accepted batch does not normalize: {e}"),
        (None, _) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let _ = normalizer::providers::sender::route_of_body(body);
    match kind % 3 {
        0 => {
            let accepted = parse_batch::<SendRecord>(body).ok().map(|items| {
                for (i, r) in items.iter().enumerate() {
                    r.draft(i).expect("a validated send record has a draft");
                }
                items.len()
            });
            check(accepted, &envelope(ProviderId::Sender, Route::Sends, body));
        }
        1 => {
            let accepted = parse_batch::<AppEvent>(body).ok().map(|items| {
                for (i, e) in items.iter().enumerate() {
                    e.draft(i).expect("a validated app event has a draft");
                }
                items.len()
            });
            check(accepted, &envelope(ProviderId::Sender, Route::Events, body));
        }
        _ => {
            let accepted = parse_batch::<PushResult>(body).ok().map(|items| items.len());
            for p in [ProviderId::Fcm, ProviderId::Apns] {
                check(accepted, &envelope(p, Route::PushResults, body));
            }
        }
    }
});
