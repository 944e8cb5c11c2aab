#!/usr/bin/env bash
# Sets up and runs every test on a fresh machine: installs the stack's parts (cached in
# ~/.cache/sendtrace), builds, starts a private broker + ClickHouse endpoint on test ports,
# runs the ClickHouse endpoint's tests and the whole Rust workspace's tests (unit, route,
# provider fixtures, end-to-end), then stops the test stack.
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKA_PORT="${TEST_KAFKA_PORT:-19092}" CLICKHOUSE_PORT="${TEST_CLICKHOUSE_PORT:-18123}"
export DEVSTACK_DIR="${TEST_DEVSTACK_DIR:-$PWD/target/test-stack}"
source devstack/env.sh
# the tests run the binaries this checkout builds (scripts/load.sh sets this for its own stack)
unset DEVSTACK_NO_BUILD
devstack/down.sh --clean >/dev/null 2>&1 || true
trap 'devstack/down.sh --clean' EXIT
devstack/up.sh --infra-only

log "ClickHouse endpoint tests"
(cd devstack/clickhouse && "$VENV/bin/python" -m unittest -q test_server)

export SENDTRACE_TEST_KAFKA="$KAFKA_BROKERS" SENDTRACE_TEST_CLICKHOUSE="$CH_URL" SENDTRACE_BIN_DIR="$BIN_DIR"
export SENDTRACE_TANSU="$TANSU" SENDTRACE_TEST_LOGS="$PWD/target/e2e-logs" SENDTRACE_SCHEMATHESIS="$VENV/bin/schemathesis"
log "Rust tests (logs of end-to-end services in target/e2e-logs)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# Every criterion benchmark once, in test mode (seconds): they keep compiling and working.
# The measuring runs are `cargo bench` (BENCHMARKS.md).
log "Benchmarks, once each in test mode"
cargo test -q "${BENCH_SELECTION[@]}" --benches
# the edge against the broker alone and a bare HTTP server (BENCHMARKS.md §7), one second a phase
log "ingest-bench (quick)"
"$BIN_DIR/ingest-bench" --brokers "$KAFKA_BROKERS" --seconds 1 --concurrency 8 --bodies 16
# the normalizer core against ClickHouse's SQL (BENCHMARKS.md): the SQL still maps as the
# normalizer does (same event ids), on a small file
log "bench-normalizer (quick)"
scripts/bench-normalizer.sh --quick
# the aggregator's state reads against stored history (BENCHMARKS.md §10), two small sizes
log "bench-state-reads (quick)"
SIZES="20000 60000" scripts/bench-state-reads.sh
# the dashboard and read-API benches (BENCHMARKS.md §3-§5) on 200,000 events: the aggregate
# tables still give the events' answers (dashboard-bench exits non-zero otherwise) and every
# endpoint api-bench times answers 2xx
log "dashboard-bench and api-bench on 200,000 events"
bench_out=$("$BIN_DIR/dashboard-bench" --clickhouse-url "$CH_URL" --events 200000 --runs 1 --keep)
echo "$bench_out"
bench_db=$(grep -m1 -o 'bench_dashboard_[0-9a-f]*' <<<"$bench_out")
"$BIN_DIR/api-bench" --clickhouse-url "$CH_URL" --database "$bench_db" --runs 2 --depth 500
# the whole pipeline under load (scripts/load.sh, release builds) is covered in small by
# tests/tests/pipeline_load.rs above

# Fuzz smoke run: every cargo-fuzz target for a few seconds from the fixture seeds
# (the long campaign is `scripts/fuzz.sh`; see FUZZING.md). Needs the nightly toolchain.
log "Fuzz smoke run (${TEST_FUZZ_SECONDS:-5}s per target)"
fuzz_rc=0
scripts/fuzz.sh "${TEST_FUZZ_SECONDS:-5}" || fuzz_rc=$?
if [ "$fuzz_rc" = 2 ]; then
  log "Fuzz smoke run SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
elif [ "$fuzz_rc" != 0 ]; then
  exit "$fuzz_rc"
fi
log "all tests passed"
