#!/usr/bin/env bash
# The whole pipeline under an open-loop load (issue 14, goal 3; BENCHMARKS.md §9).
# Starts its own local stack in release builds on separate ports (so a running demo is not
# touched), measures the stand-ins alone (the broker's own produce rate), then posts webhooks
# at fixed rates with `pipeline-load` and prints, per run, the events/s the pipeline sustained
# and each event's freshness (ingest received → row written in ClickHouse) at p50/p99.
#   scripts/load.sh            # 5 k events/s for 20 s (freshness), then 10 k events/s for 20 s
#   scripts/load.sh --quick    # seconds: a small run, as CI does (keeps the command working)
#   RATES="2000 5000 10000" SECONDS_PER_RUN=30 scripts/load.sh   (LOAD_NO_BUILD=1: use the binaries as built)
#   LOAD_MAX_IN_FLIGHT=4096 scripts/load.sh   (the load client's open requests at most; default 2048)
# The first run builds the services in release mode (~10–25 min on 2 cores: release builds are
# whole-program optimised, fat LTO; after a change ~4–8 min; BENCHMARKS.md §1b).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0; [ "${1:-}" = "--quick" ] && QUICK=1
export CARGO_PROFILE="${CARGO_PROFILE:-release}"
export KAFKA_PORT="${LOAD_KAFKA_PORT:-29192}" CLICKHOUSE_PORT="${LOAD_CLICKHOUSE_PORT:-28223}"
export INGEST_PORT="${LOAD_INGEST_PORT:-28180}" INGEST_ADMIN_PORT=29200 NORMALIZER_ADMIN_PORT=29201 AGGREGATOR_ADMIN_PORT=29202 API_PORT=28190
export DEVSTACK_DIR="${LOAD_DEVSTACK_DIR:-$PWD/target/load-stack}"
source devstack/env.sh
if [ $QUICK = 1 ]; then RATES="${RATES:-300}"; SECS="${SECONDS_PER_RUN:-3}"; else RATES="${RATES:-5000 10000}"; SECS="${SECONDS_PER_RUN:-20}"; fi

if [ "${LOAD_NO_BUILD:-0}" != 1 ]; then
  log "building (profile $CARGO_PROFILE; release is fat LTO: the first time takes 10-25 min, after a change 4-8)"
  cargo build --profile "$CARGO_PROFILE" --quiet -p ingest -p normalizer -p aggregator -p api -p sendtrace-e2e --bins
fi
export DEVSTACK_NO_BUILD=1
devstack/down.sh --clean >/dev/null 2>&1 || true
trap 'devstack/down.sh --clean >/dev/null 2>&1 || true' EXIT
devstack/up.sh

pid_of() { cat "$DEVSTACK_DIR/pids/$1.pid"; }
log "the broker alone: a native idempotent acks=all producer of 2 KB records, 512 in flight"
"$BIN_DIR/ingest-bench" --brokers "127.0.0.1:$KAFKA_PORT" --seconds "$([ $QUICK = 1 ] && echo 2 || echo 10)" --only broker --concurrency 512 --broker-pid "$(pid_of tansu)"

# clickhouse_time <histogram> <label> <title>: count and mean of the aggregator's
# sendtrace_aggregator_clickhouse_<histogram>{<label>=…}, cumulative over the runs
clickhouse_time() {
  curl -sf "http://127.0.0.1:$AGGREGATOR_ADMIN_PORT/metrics" | awk -F'[{}" ]+' -v m="sendtrace_aggregator_clickhouse_$1" -v l="$2=" -v title="$3" '
    index($1, m "_sum") == 1 || index($1, m "_count") == 1 {
      for (i = 2; i < NF; i++) if ($i == l) t = $(i + 1)
      if ($1 ~ /_sum$/) sum[t] += $NF; else cnt[t] += $NF }
    END { printf "  aggregator ClickHouse %s:", title; for (t in cnt) printf " %s %d x %.0f ms;", t, cnt[t], 1000 * sum[t] / cnt[t]; print "" }' || true
}

status=0
for rate in $RATES; do
  log "pipeline-load: $rate events/s for $SECS s"
  "$BIN_DIR/pipeline-load" --ingest-url "http://127.0.0.1:$INGEST_PORT" --clickhouse-url "$CH_URL" --rate "$rate" --seconds "$SECS" ${LOAD_MAX_IN_FLIGHT:+--max-in-flight "$LOAD_MAX_IN_FLIGHT"} \
    --watch "normalizer=http://127.0.0.1:$NORMALIZER_ADMIN_PORT/metrics" --watch "aggregator=http://127.0.0.1:$AGGREGATOR_ADMIN_PORT/metrics" \
    $(for p in ingest tansu normalizer aggregator clickhouse; do echo --cpu "$p=$(pid_of $p)"; done) || status=$?
  # where the aggregator's time went: its ClickHouse inserts per table and reads per query
  clickhouse_time insert_duration_seconds table "inserts"
  clickhouse_time query_duration_seconds query "reads"
  # the stand-in alone: one aggregator unit's ClickHouse calls replayed with this run's rows
  "$BIN_DIR/clickhouse-alone" --clickhouse-url "$CH_URL" --aggregator-metrics "http://127.0.0.1:$AGGREGATOR_ADMIN_PORT/metrics" \
    --repeat "$([ $QUICK = 1 ] && echo 1 || echo 5)" --server-pid "$(pid_of clickhouse)" | sed 's/^/  /' || status=$?
  for svc in ingest normalizer aggregator; do
    echo "  $svc: $(ps -o rss=,cputime= -p "$(pid_of $svc)" | awk '{printf "RSS %.0f MiB, CPU time since start %s", $1/1024, $2}')"
  done
done
exit $status
