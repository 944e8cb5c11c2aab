use super::*;

/// Fixtures, API key and item checks, garbage bodies: shared with the other push-result provider.
#[test]
fn fixtures_verify_and_garbage() {
    push_results::check_push_provider(&Apns, 9);
}
