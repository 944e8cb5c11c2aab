#!/usr/bin/env bash
# Brings the whole local stack up on loopback: tansu (Kafka API, sqlite storage),
# the ClickHouse endpoint (chdb), migrations, ingest, normalizer, aggregator.
# Waits until each is healthy. `devstack/down.sh` stops it.
#   --infra-only   broker and ClickHouse only (what the tests need)
set -euo pipefail
source "$(dirname "$0")/env.sh"
INFRA_ONLY=0; [ "${1:-}" = "--infra-only" ] && INFRA_ONLY=1
"$ROOT/devstack/setup.sh"
mkdir -p "$DEVSTACK_DIR/kafka" "$DEVSTACK_DIR/clickhouse"

if ! (exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT) 2>/dev/null; then
  # tansu resolves sqlite:// paths against its working directory
  start tansu bash -c "cd '$DEVSTACK_DIR/kafka' && exec '$TANSU' broker --listener-url tcp://127.0.0.1:$KAFKA_PORT \
    --advertised-listener-url tcp://127.0.0.1:$KAFKA_PORT --storage-engine sqlite://tansu.db"
fi
wait_for "kafka (tansu) on :$KAFKA_PORT" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT"

if ! curl -sf "$CH_URL/ping" >/dev/null; then
  start clickhouse "$VENV/bin/python" "$ROOT/devstack/clickhouse/server.py" --host 127.0.0.1 \
    --port "$CLICKHOUSE_PORT" --data-dir "$DEVSTACK_DIR/clickhouse"
fi
wait_for "clickhouse endpoint on :$CLICKHOUSE_PORT" 60 curl -sf "$CH_URL/ping"
[ $INFRA_ONLY = 1 ] && exit 0

env "$KAFKA_ENV" "$CH_ENV" "$BIN_DIR/aggregator" --config "$ROOT/devstack/config/aggregator.toml" migrate
# (re)start the services with the current build; refuse if someone else holds their ports
for svc in "ingest:$INGEST_PORT" "ingest:$INGEST_ADMIN_PORT" "normalizer:$NORMALIZER_ADMIN_PORT" "aggregator:$AGGREGATOR_ADMIN_PORT" "api:$API_PORT"; do
  stop "${svc%%:*}"
  port_free "${svc##*:}" || { log "port ${svc##*:} for ${svc%%:*} is taken by another process; stop it or set the *_PORT variables"; exit 1; }
done
# the demo tenant's secrets: generated so that `sample-traffic post` signs with the same ones
"$BIN_DIR/sample-traffic" --tenant demo --ingest-url "http://127.0.0.1:$INGEST_PORT" config >"$DEVSTACK_DIR/ingest.toml"
# ingest's producer lingers 50 ms here: tansu acknowledges in 40-100 ms and spends its CPU per
# produce request, so fewer, larger requests pay (one pair of runs at 5 k events/s: the whole
# stack 428 µs of CPU per event with 5 ms, 377 with 50; BENCHMARKS.md §7 and §10). Apache Kafka
# answers in milliseconds and keeps the default (2 ms).
start ingest env "$KAFKA_ENV" "SENDTRACE_KAFKA__LINGER_MS=${SENDTRACE_KAFKA__LINGER_MS:-50}" SENDTRACE_LISTEN_ADDR="127.0.0.1:$INGEST_PORT" SENDTRACE_ADMIN_ADDR="127.0.0.1:$INGEST_ADMIN_PORT" \
  "$BIN_DIR/ingest" --config "$DEVSTACK_DIR/ingest.toml"
start normalizer env "$KAFKA_ENV" SENDTRACE_ADMIN_ADDR="127.0.0.1:$NORMALIZER_ADMIN_PORT" \
  "$BIN_DIR/normalizer" --config "$ROOT/devstack/config/normalizer.toml" run
start aggregator env "$KAFKA_ENV" "$CH_ENV" SENDTRACE_ADMIN_ADDR="127.0.0.1:$AGGREGATOR_ADMIN_PORT" \
  "$BIN_DIR/aggregator" --config "$ROOT/devstack/config/aggregator.toml" run
# (the API publishes suppression changes and tails the events topic: its broker is the stack's)
start api env "$KAFKA_ENV" "$CH_ENV" SENDTRACE_LISTEN_ADDR="127.0.0.1:$API_PORT" \
  "$BIN_DIR/api" --config "$ROOT/devstack/config/api.toml"
wait_for "ingest on :$INGEST_PORT" 60 curl -sf "http://127.0.0.1:$INGEST_PORT/healthz"
wait_for "normalizer on :$NORMALIZER_ADMIN_PORT" 60 curl -sf "http://127.0.0.1:$NORMALIZER_ADMIN_PORT/healthz"
wait_for "aggregator on :$AGGREGATOR_ADMIN_PORT" 60 curl -sf "http://127.0.0.1:$AGGREGATOR_ADMIN_PORT/healthz"
wait_for "api on :$API_PORT" 60 curl -sf "http://127.0.0.1:$API_PORT/healthz"
log "stack is up; logs in $DEVSTACK_DIR/logs"
