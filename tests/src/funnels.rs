//! The signed funnel tables (`funnels`, `funnel_recipients`, migration 17; `funnel_statuses`,
//! migration 19) against the same counts over `deliveries FINAL`, which they must always equal
//! (`aggregator/src/funnels.rs`).

use crate::Pipeline;
use std::collections::BTreeMap;

/// Every funnel's sums per cost unit, the recipients of each id with their deliveries, and the
/// last activity, from the signed tables and from `deliveries FINAL`: equal (the last activity
/// is the latest status time a delivery reached while in the id, so never before the current
/// rows' latest, never after the latest event or delivery row).
pub async fn assert_funnels_equal_deliveries(p: &Pipeline) {
    // a delivery row once per id it has (`dm`: (dimension, id))
    const BY_ID: &str = "ARRAY JOIN arrayFilter(x -> x.2 IS NOT NULL, [('broadcast', broadcast_id), ('sequence', sequence_id), ('template', template_key)]) AS dm";
    let rows = |sql: String| async move {
        p.rows(&sql)
            .await
            .into_iter()
            .map(|r| {
                let s = |c: &str| Pipeline::cell(&r, c);
                ((s("d"), s("id"), s("u")), s("v"))
            })
            .collect::<BTreeMap<_, _>>()
    };
    const COUNTS: &str = "deliveries, sent, delivered, opened_human, opened_all, opens_human, opens_all, clicked_human, clicked_all, clicks_human, clicks_all, \
                          hard_bounces, complaints, unsubscribes, failed";
    let summed = rows(format!(
        "SELECT toString(dimension) AS d, id, toString(cost_unit) AS u, \
         arrayStringConcat(arrayMap(x -> toString(x), [{}]), ' ') || ' ' || toString(sum(cost_amount)) AS v \
         FROM funnels GROUP BY d, id, u HAVING {} OR sum(cost_amount) != 0",
        COUNTS.split(", ").map(|c| format!("sum({c})")).collect::<Vec<_>>().join(", "),
        COUNTS.split(", ").map(|c| format!("sum({c}) != 0")).collect::<Vec<_>>().join(" OR ")
    ))
    .await;
    let counted = rows(format!(
        "SELECT toString(dm.1) AS d, assumeNotNull(dm.2) AS id, toString(cost_unit) AS u, \
         arrayStringConcat(arrayMap(x -> toString(x), [toInt64(count()), countIf(first_sent_at IS NOT NULL OR first_delivered_at IS NOT NULL), \
           countIf(first_delivered_at IS NOT NULL), countIf(open_count > 0), countIf(open_count + machine_open_count > 0), sum(open_count), \
           sum(open_count + machine_open_count), countIf(click_count > 0), countIf(click_count + machine_click_count > 0), sum(click_count), \
           sum(click_count + machine_click_count), countIf(status = 'bounced'), countIf(status = 'complained'), countIf(status = 'unsubscribed'), \
           countIf(status = 'failed')]), ' ') || ' ' || toString(sumIf(cost_amount, cost_unit != '')) AS v \
         FROM deliveries FINAL {BY_ID} GROUP BY d, id, u"
    ))
    .await;
    assert!(!counted.is_empty(), "the stream has attributed deliveries");
    assert_eq!(summed, counted, "funnels ((dimension, id, cost unit) -> {COUNTS}, cost) = the same over deliveries FINAL");

    // the deliveries of each id by one of their columns: the signed table's sums, and counted
    for (table, column) in [("funnel_recipients", "recipient"), ("funnel_statuses", "status")] {
        let signed = rows(format!(
            "SELECT toString(dimension) AS d, id, toString({column}) AS u, toString(sum({table}.deliveries)) AS v FROM {table} \
             GROUP BY d, id, u HAVING sum({table}.deliveries) != 0"
        ))
        .await;
        let from_rows = rows(format!(
            "SELECT toString(dm.1) AS d, assumeNotNull(dm.2) AS id, toString({column}) AS u, toString(count()) AS v FROM deliveries FINAL {BY_ID} GROUP BY d, id, u"
        ))
        .await;
        assert_eq!(signed, from_rows, "{table} ((dimension, id, {column}) -> deliveries) = the same over deliveries FINAL");
    }

    let last = rows(format!(
        "SELECT toString(f.d) AS d, f.id AS id, '' AS u, \
         if(f.t >= r.t AND f.t <= greatest((SELECT max(occurred_at) FROM events), (SELECT max(status_at) FROM deliveries)), 'ok', 'wrong') || ' ' || toString(f.t) || ' ' || toString(r.t) AS v \
         FROM (SELECT dimension AS d, id, max(last_status_at) AS t FROM funnels GROUP BY d, id HAVING sum(deliveries) != 0) AS f \
         JOIN (SELECT CAST(dm.1, 'Enum8(\\'broadcast\\' = 1, \\'sequence\\' = 2, \\'template\\' = 3)') AS d, assumeNotNull(dm.2) AS id, max(status_at) AS t FROM deliveries FINAL \
           {BY_ID} GROUP BY d, id) AS r \
         ON f.d = r.d AND f.id = r.id"
    ))
    .await;
    assert_eq!(last.len(), counted.keys().map(|(d, id, _)| (d, id)).collect::<std::collections::BTreeSet<_>>().len(), "a last activity per funnel");
    let wrong: Vec<_> = last.iter().filter(|(_, v)| !v.starts_with("ok ")).take(5).collect();
    assert!(wrong.is_empty(), "last activity not before the rows' latest status time, not after the latest event: {wrong:?}");
}
