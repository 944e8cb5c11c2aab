//! Every provider's `verify` and `normalize` on arbitrary headers and bodies
//! (input format: `fuzz/src/lib.rs`). No panic; verify errors map to a 4xx/503;
//! every event normalize returns survives the Avro round trip; a verified sender or
//! push-result batch always normalizes (its items were checked at the edge).
#![no_main]
use libfuzzer_sys::fuzz_target;
use normalizer::providers::registry;
use schemas::ProviderId;
use sendtrace_fuzz as f;

fuzz_target!(|data: &[u8]| {
    let Some(req) = f::request(data) else { return };
    let provider = registry(req.provider);
    let verified = provider.verify(&req.raw_request(), &req.creds, f::context());
    if let Err(e) = &verified {
        let status = e.http_status();
        assert!((400..500).contains(&status) || status == 503, "{e}: {status}");
        let _ = (e.code(), e.to_string());
    }
    // Normalize every body, verified or not: the raw topic is the trust boundary's far side.
    let env = req.envelope();
    match f::normalize(&env) {
        Ok(out) => {
            for r in &out.rejected {
                let _ = (r.error.code(), r.error.to_string());
            }
            for e in &out.events {
                assert_eq!(e.tenant, f::TENANT);
                assert!(!e.event_id.is_empty() && !e.delivery_key.is_empty());
                let bytes = schemas::avro::encode_event(e).expect("every normalized event encodes");
                assert_eq!(&schemas::avro::decode_event(&bytes).expect("and decodes"), e);
            }
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
            if verified.is_ok() && matches!(req.provider, ProviderId::Sender | ProviderId::Fcm | ProviderId::Apns) {
                panic!("verified {} batch does not normalize: {e}", req.provider.as_str());
            }
        }
    }
});
