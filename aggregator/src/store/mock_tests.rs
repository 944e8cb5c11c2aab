//! The store's reads and writes against `clickhouse::test::Mock` (an in-process HTTP server
//! speaking ClickHouse's protocol): what is sent, how often, and how failures classify. The
//! real-engine behaviour (dedup tokens, FINAL, migrations) is covered by the e2e tests.

use super::failure::{classify, Failure};
use super::rows::{CounterRow, DeliveryRow};
use super::Text;
use super::{insert_rows, load_deliveries, MAX_IN_LIST_KEYS};
use clickhouse::test::{handlers, Mock};
use clickhouse::Client;

fn client(mock: &Mock) -> Client {
    Client::default().with_url(mock.url())
}

fn identity(i: usize) -> schemas::Event {
    schemas::testkit::event(&format!("e{i}"), &format!("dk-{i}"), schemas::EventType::Delivered, 1_000)
}

/// The row of delivery `i`, holding its own (as read back).
fn owned_delivery(i: usize) -> DeliveryRow {
    delivery(i, &identity(i).as_event_ref()).map_text(Text::into_static)
}

/// The row of delivery `i`, borrowing its identity from `e` (as a batch builds it).
fn delivery<'a>(i: usize, e: &'a schemas::EventRef<'a>) -> DeliveryRow<Text<'a>> {
    let s = crate::state::DeliveryState::new(schemas::Channel::Email);
    DeliveryRow::from_state(e, &s, &crate::state::Names::default(), i as u64, 2_000)
}

/// One INSERT carries every row, unchanged.
#[tokio::test]
async fn a_batch_is_one_insert_with_every_row() {
    let mock = Mock::new();
    let recorded = mock.add(handlers::record::<DeliveryRow>());
    let owned: Vec<schemas::Event> = (0..250).map(identity).collect();
    let identities: Vec<schemas::EventRef<'_>> =
        owned.iter().map(schemas::Event::as_event_ref).collect();
    let rows: Vec<DeliveryRow<Text<'_>>> = identities.iter().enumerate().map(|(i, e)| delivery(i, e)).collect();
    insert_rows(&client(&mock), "deliveries", "batch-token-1", &rows).await.unwrap();
    let got: Vec<DeliveryRow> = recorded.collect().await;
    assert_eq!(got, rows);
}

/// No rows, no request (the mock has no handler: a request would fail the test).
#[tokio::test]
async fn no_rows_send_nothing() {
    let mock = Mock::new();
    insert_rows::<CounterRow>(&client(&mock), "counters", "t", &[]).await.unwrap();
}

/// An HTTP failure is transient (retried with the same rows and token); a ClickHouse exception
/// that depends on the data is permanent, others are transient.
#[tokio::test]
async fn failures_classify_by_exception_code() {
    let mock = Mock::new();
    let rows = vec![owned_delivery(1)];
    mock.add(handlers::failure(http::StatusCode::SERVICE_UNAVAILABLE));
    let err = insert_rows(&client(&mock), "deliveries", "t", &rows).await.unwrap_err();
    assert_eq!(classify(&err), Failure::Transient, "{err}");
    mock.add(handlers::exception(53)); // TYPE_MISMATCH
    let err = insert_rows(&client(&mock), "deliveries", "t", &rows).await.unwrap_err();
    assert_eq!(classify(&err), Failure::Permanent { code: 53 }, "{err}");
    mock.add(handlers::exception(60)); // UNKNOWN_TABLE: the deployment's to fix, not the data's
    let err = insert_rows(&client(&mock), "deliveries", "t", &rows).await.unwrap_err();
    assert_eq!(classify(&err), Failure::Transient, "{err}");
}

/// Stored deliveries are read in bounded `IN` lists: 2.5 × the key limit is three queries,
/// whose answers are concatenated.
#[tokio::test]
async fn loads_are_chunked_into_bounded_in_lists() {
    let mock = Mock::new();
    let keys: Vec<(String, String)> = (0..MAX_IN_LIST_KEYS * 5 / 2).map(|i| ("acme".to_string(), format!("dk-{i:05}"))).collect();
    for part in 0..3 {
        mock.add(handlers::provide(vec![owned_delivery(part)]));
    }
    let got = load_deliveries(&client(&mock), &keys).await.unwrap();
    assert_eq!(got, (0..3).map(owned_delivery).collect::<Vec<_>>());
}

/// The bytes an `IN` list is counted at are the bytes the crate writes for it: a bound list of
/// keys with every escaped character (and none) is the statement without them plus their
/// counted bytes, less the last key's comma.
#[test]
fn an_in_lists_counted_bytes_are_what_the_crate_writes() {
    use runtime::in_list::statement_bytes;
    let sql = |keys: &[String]| Client::default().query("SELECT 1 WHERE k IN ?").bind(keys).sql_display().to_string();
    let keys: Vec<String> = ["plain", r"back\slash", "it's", "tick`", "tab\there", "new\nline", "cr\rline", "ünïcødé", "\"quoted\"", r"\'`", ""].iter().map(|s| s.to_string()).collect();
    for n in 1..=keys.len() {
        let counted: usize = keys[..n].iter().map(|k| statement_bytes(k)).sum();
        assert_eq!(sql(&keys[..n]).len(), sql(&[]).len() + counted - 1, "{:?}", &keys[..n]);
    }
}
