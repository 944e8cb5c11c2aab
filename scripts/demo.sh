#!/usr/bin/env bash
# The main job: sets up and starts the local stack (broker, ClickHouse endpoint, migrations,
# ingest, normalizer, aggregator), posts sample traffic from every provider over HTTP,
# waits for it to be aggregated, and prints a stats summary read back from ClickHouse.
# The stack keeps running afterwards; stop it with devstack/down.sh.
set -euo pipefail
source "$(dirname "$0")/../devstack/env.sh"
"$ROOT/devstack/up.sh"
"$BIN_DIR/sample-traffic" --tenant demo --ingest-url "http://127.0.0.1:$INGEST_PORT" post
log "waiting for the pipeline to aggregate the samples"
prev=-1
for _ in $(seq 1 60); do
  n=$(curl -sf "$CH_URL/?database=sendtrace" --data-binary "SELECT count() FROM events" || echo 0)
  [ "$n" = "$prev" ] && [ "$n" != 0 ] && break
  prev=$n; sleep 2
done
"$BIN_DIR/sample-traffic" stats --clickhouse-url "$CH_URL" --database sendtrace
echo
echo "Stack still running: ingest http://127.0.0.1:$INGEST_PORT, ClickHouse $CH_URL (database sendtrace)."
API="http://127.0.0.1:$API_PORT"; AUTH="Authorization: Bearer demo-read-key"
echo
echo "Read API (key of tenant demo: demo-read-key; document: $API/openapi.json):"
for path in "/v1/stats/summary?days=7" "/v1/stats?granularity=day&group_by=channel" "/v1/messages?page_size=3" "/v1/broadcasts" "/v1/stats/bounces" "/v1/suppressions?page_size=3"; do
  echo "\$ curl -s -H '$AUTH' '$API$path'"
  out=$(curl -s -H "$AUTH" "$API$path" || true); echo "${out:0:600}"; echo
done
echo "Export: curl -s -H '$AUTH' -H 'Accept: text/csv' '$API/v1/messages' > messages.csv   Live: curl -sN -H '$AUTH' '$API/v1/stream'"
echo "Try: curl '$CH_URL/?database=sendtrace' --data-binary 'SELECT status, count() FROM deliveries FINAL GROUP BY status'"
echo "Stop it with: devstack/down.sh   (add --clean to delete its data)"
echo
echo "Dashboard: $API/   (open it in a browser and sign in with the demo key: demo-read-key)"
