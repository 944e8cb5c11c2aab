#!/usr/bin/env bash
# The normalizer core against ClickHouse's own SQL doing the same mapping (issue 14, goal 1).
#
# 1. `benches/normalize.rs` writes the SES-through-SNS bodies of its mix (one per line) to a file.
# 2. ClickHouse (chdb, the devstack's engine, `max_threads=1`) maps them with `JSONExtract*`:
#    SNS envelope → `Message` → event name, message id, times, one row per recipient with its
#    bounce class, error code and reason, tags → attribution and labels, `X-Metadata-*`
#    headers → metadata, and the same event id and delivery key hashes (SHA-256 of
#    length-prefixed parts, first 16 bytes in hex) — timed over the bodies held in a Memory
#    table, best of three runs.
# 3. The criterion bench times `pipeline::handle` on the same records and its baselines.
# 4. Prints docs/s of each and the ratio normalizer ÷ ClickHouse.
#
# Usage: scripts/bench-normalizer.sh [--quick]   (--quick: a small file and criterion's test
# mode, seconds; for CI). CH_RECORDS sets the size of the mix whose SES bodies ClickHouse maps
# (default 200 000, 60 % of it SES through SNS: large enough that the query's fixed cost does
# not count), CRITERION_RECORDS the mix criterion times per iteration (default 20 000; the mix
# cycles through its fixtures, so both have the same proportions).
set -euo pipefail
cd "$(dirname "$0")/.."
source devstack/env.sh
quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ "$quick" = 1 ]; then
  ch_records="${CH_RECORDS:-2000}" criterion_records="${CRITERION_RECORDS:-2000}"
else
  ch_records="${CH_RECORDS:-200000}" criterion_records="${CRITERION_RECORDS:-20000}"
fi
out="${CARGO_TARGET_DIR:-$PWD/target}/bench-normalizer"
mkdir -p "$out"
if ! "$VENV/bin/python" -c "import chdb" 2>/dev/null; then
  log "no chdb in $VENV: run devstack/setup.sh first"
  exit 1
fi

# The bench binary: in quick mode the test profile's (`cargo test` runs a criterion bench once
# each, untimed), the one scripts/test.sh's bench step built just before (`BENCH_SELECTION`,
# devstack/env.sh), which spares a release build of the normalizer and its dependencies, ~5
# minutes of CI on two cores; timed runs use the bench profile.
bench() {
  if [ "$quick" = 1 ]; then
    cargo test -q "${BENCH_SELECTION[@]}" --bench normalize
  else
    cargo bench -q -p normalizer --features samples --bench normalize -- "$@"
  fi
}

log "writing the mix's SES-through-SNS bodies ($ch_records records in the mix)"
SENDTRACE_BENCH_RECORDS="$ch_records" SENDTRACE_BENCH_DUMP="$out" bench >/dev/null

cat > "$out/clickhouse.py" <<'PY'
import sys, time
import chdb.session

path, quick = sys.argv[1], sys.argv[2] == "1"
s = chdb.session.Session()
s.query("CREATE DATABASE IF NOT EXISTS b")
s.query("CREATE TABLE b.docs (line String) ENGINE = Memory")
s.query(f"INSERT INTO b.docs SELECT line FROM file('{path}', 'LineAsString')")
docs = int(str(s.query("SELECT count() FROM b.docs", "CSV")).strip())

# The SES mapping of providers/ses/map.rs, in ClickHouse SQL.
MAPPING = r"""
WITH
    'acme' AS tenant, 'ses' AS provider,
    JSONExtractString(line, 'MessageId') AS report_id,
    JSONExtractString(line, 'Message') AS m,
    if(JSONHas(m, 'eventType'), JSONExtractString(m, 'eventType'), JSONExtractString(m, 'notificationType')) AS name,
    JSONExtractString(m, 'mail', 'messageId') AS message_id,
    transform(name, ['Send', 'Delivery', 'Bounce', 'Complaint', 'Reject', 'Rendering Failure', 'Open', 'Click', 'DeliveryDelay', 'Subscription'],
                    ['send', 'delivery', 'bounce', 'complaint', 'reject', 'failure', 'open', 'click', 'deliveryDelay', 'subscription'], '') AS key,
    JSONExtractRaw(m, key) AS detail,
    if(name = 'Subscription',
       if(JSONExtractBool(detail, 'newTopicPreferences', 'unsubscribeAll')
          OR has(arrayMap(t -> JSONExtractString(t, 'subscriptionStatus'), JSONExtractArrayRaw(detail, 'newTopicPreferences', 'topicSubscriptionStatus')), 'OptOut'),
          'unsubscribed', 'unknown'),
       transform(name, ['Send', 'Delivery', 'Bounce', 'Complaint', 'Reject', 'Rendering Failure', 'Open', 'Click', 'DeliveryDelay'],
                       ['sent', 'delivered', 'bounced', 'complained', 'failed', 'failed', 'opened', 'clicked', 'deferred'], 'unknown')) AS event_type,
    parseDateTime64BestEffortOrNull(if(JSONHas(detail, 'timestamp'), JSONExtractString(detail, 'timestamp'), JSONExtractString(m, 'mail', 'timestamp')), 3) AS occurred_at,
    JSONExtract(m, 'mail', 'destination', 'Array(String)') AS destination,
    multiIf(name IN ('Bounce', 'Complaint', 'DeliveryDelay'),
                arrayMap(r -> (JSONExtractString(r, 'emailAddress'), JSONExtractString(r, 'diagnosticCode')),
                         JSONExtractArrayRaw(detail, multiIf(name = 'Bounce', 'bouncedRecipients', name = 'Complaint', 'complainedRecipients', 'delayedRecipients'))),
            name = 'Delivery' AND notEmpty(JSONExtract(detail, 'recipients', 'Array(String)')),
                arrayMap(r -> (r, ''), JSONExtract(detail, 'recipients', 'Array(String)')),
            arrayMap(r -> (r, ''), destination)) AS recipients,
    arrayJoin(recipients) AS rcpt,
    lower(rcpt.1) AS recipient,
    JSONExtract(m, 'mail', 'tags', 'Map(String, Array(String))') AS tags,
    JSONExtract(m, 'mail', 'headers', 'Array(Tuple(name String, value String))') AS headers,
    (s -> toFixedString(reinterpretAsString(toUInt64(length(s))), 8)) AS len
SELECT
    lower(hex(substring(SHA256(concat(len(tenant), tenant, len(provider), provider, len('pe'), 'pe', len(report_id), report_id,
                                      len(name), name, len(recipient), recipient)), 1, 16))) AS event_id,
    lower(hex(substring(SHA256(concat(len(tenant), tenant, len(provider), provider, len(message_id), message_id,
                                      len(recipient), recipient)), 1, 16))) AS delivery_key,
    tenant, provider, message_id, report_id, name, event_type, rcpt.1 AS recipient_as_sent, occurred_at,
    multiIf(name != 'Bounce', '', JSONExtractString(detail, 'bounceType') = 'Permanent', 'hard',
            JSONExtractString(detail, 'bounceType') = 'Transient', 'soft', 'undetermined') AS bounce_class,
    multiIf(name = 'Bounce', JSONExtractString(detail, 'bounceSubType'), name = 'Complaint', JSONExtractString(detail, 'complaintFeedbackType'),
            name = 'DeliveryDelay', JSONExtractString(detail, 'delayType'), name = 'Rendering Failure', 'rendering_failure', '') AS error_code,
    multiIf(name = 'Reject', JSONExtractString(detail, 'reason'), name = 'Rendering Failure', JSONExtractString(detail, 'errorMessage'),
            name = 'DeliveryDelay', concat(JSONExtractString(detail, 'delayType'), ': ', rcpt.2), rcpt.2) AS error_reason,
    JSONExtractString(detail, 'userAgent') AS user_agent, JSONExtractString(detail, 'ipAddress') AS ip, JSONExtractString(detail, 'link') AS click_url,
    tags['broadcast'][1] AS broadcast_id, tags['sequence'][1] AS sequence_id, tags['contact'][1] AS contact_id,
    tags['template'][1] AS template_key, tags['message_class'][1] AS message_class,
    arraySort(arrayFlatten(arrayMap((k, vs) -> arrayMap(v -> if(v = '', k, concat(k, ':', v)), vs),
        arrayFilter(k -> NOT startsWith(k, 'ses:') AND k NOT IN ('broadcast', 'sequence', 'contact', 'template', 'message_class'), mapKeys(tags)),
        arrayMap(k -> tags[k], arrayFilter(k -> NOT startsWith(k, 'ses:') AND k NOT IN ('broadcast', 'sequence', 'contact', 'template', 'message_class'), mapKeys(tags)))))) AS labels,
    mapUpdate(
        mapFromArrays(arrayMap(h -> lower(substring(h.name, 12)), arrayFilter(h -> startsWith(lower(h.name), 'x-metadata-'), headers)),
                      arrayMap(h -> h.value, arrayFilter(h -> startsWith(lower(h.name), 'x-metadata-'), headers))),
        map('configuration_set', tags['ses:configuration-set'][1], 'from_domain', tags['ses:from-domain'][1],
            'source_ip', tags['ses:source-ip'][1], 'sending_account', JSONExtractString(m, 'mail', 'sendingAccountId'))) AS metadata
FROM b.docs
SETTINGS max_threads = 1
"""
events = int(str(s.query(f"SELECT count() FROM ({MAPPING})", "CSV")).strip())
# The SQL must make the events the normalizer makes: same ids, delivery keys and types.
ids = path.replace(".jsonl", ".ids.tsv")
diff = str(s.query(f"""
    SELECT count() FROM (
        (SELECT event_id, delivery_key, event_type FROM ({MAPPING}) EXCEPT ALL
         SELECT c1, c2, c3 FROM file('{ids}', 'TSV', 'c1 String, c2 String, c3 String'))
        UNION ALL
        (SELECT c1, c2, c3 FROM file('{ids}', 'TSV', 'c1 String, c2 String, c3 String') EXCEPT ALL
         SELECT event_id, delivery_key, event_type FROM ({MAPPING})))""", "CSV")).strip()
if diff != "0":
    sys.exit(f"the SQL mapping differs from the normalizer's on {diff} events (ids, keys or types)")
runs = []
for _ in range(1 if quick else 3):
    t = time.perf_counter()
    s.query(MAPPING + " FORMAT Null")
    runs.append(time.perf_counter() - t)
best = min(runs)
print(f"docs={docs} events={events} same_ids_as_normalizer=yes best_s={best:.4f} runs_s={','.join(f'{r:.4f}' for r in runs)} docs_per_s={docs / best:.0f}")
PY
# ClickHouse is timed before and after criterion (the machine is shared: its load changes
# within minutes), and the faster of the two is the baseline.
clickhouse() {
  log "ClickHouse SQL over $out/ses_sns.jsonl (max_threads=1)"
  "$VENV/bin/python" "$out/clickhouse.py" "$out/ses_sns.jsonl" "$quick" | tee -a "$out/clickhouse.txt"
}
: > "$out/clickhouse.txt"
clickhouse
ch_rate() { sed -n 's/.*docs_per_s=\([0-9]*\).*/\1/p' "$out/clickhouse.txt" | sort -n | tail -1; }
ch_rate=$(ch_rate)

log "criterion: pipeline::handle and its baselines on the same mix ($criterion_records records)"
export SENDTRACE_BENCH_RECORDS="$criterion_records"
if [ "$quick" = 1 ]; then
  bench
  log "quick mode: criterion ran in test mode (no timings); ClickHouse: $ch_rate docs/s"
  exit 0
fi
bench --warm-up-time 1 --measurement-time 5 2>&1 | tee "$out/criterion.txt"
clickhouse
ch_rate=$(ch_rate)

# criterion prints `thrpt:  [low mid high]` in Kelem/s or Melem/s under each bench's name
rate_of() {
  awk -v name="$1" '
    $1 == name { found = 1 }
    found && /thrpt:/ {
      v = $(NF-3); u = $(NF-2);
      m = (u ~ /^Melem/) ? 1e6 : (u ~ /^Kelem/) ? 1e3 : 1;
      printf "%.0f\n", v * m; exit
    }' "$out/criterion.txt"
}
echo
printf '%-34s %12s %10s\n' "path (one thread)" "docs/s" "÷ ClickHouse"
printf '%-34s %12s %10s\n' "ClickHouse SQL, SES through SNS" "$ch_rate" "1.00 (best of $(grep -c docs_per_s "$out/clickhouse.txt"))"
for b in ses_sns/handle ses_sns/baseline_decode_raw ses_sns/baseline_value ses_sns/baseline_typed_parse mix/handle mix/baseline_decode_raw mix/baseline_value mix/baseline_skim; do
  r=$(rate_of "$b")
  printf '%-34s %12s %10s\n' "$b" "$r" "$(awk -v a="$r" -v b="$ch_rate" 'BEGIN { printf "%.2f", a / b }')"
done
