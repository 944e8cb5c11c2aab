# Shared settings of the local stack. Every value can be overridden from the environment.
# Sourced by the devstack and scripts; not executable on its own.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SENDTRACE_TOOLS="${SENDTRACE_TOOLS:-$HOME/.cache/sendtrace}"   # tansu, python venv (kept across runs)
export DEVSTACK_DIR="${DEVSTACK_DIR:-$ROOT/.devstack}"                 # data, logs, pids of this checkout
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export CLICKHOUSE_PORT="${CLICKHOUSE_PORT:-8123}"
export INGEST_PORT="${INGEST_PORT:-8080}"
export INGEST_ADMIN_PORT="${INGEST_ADMIN_PORT:-9100}"
export NORMALIZER_ADMIN_PORT="${NORMALIZER_ADMIN_PORT:-9101}"
export AGGREGATOR_ADMIN_PORT="${AGGREGATOR_ADMIN_PORT:-9102}"
export API_PORT="${API_PORT:-8090}"
export CARGO_PROFILE="${CARGO_PROFILE:-dev}"
TANSU="$SENDTRACE_TOOLS/bin/tansu"
VENV="$SENDTRACE_TOOLS/chvenv"
if [ "$CARGO_PROFILE" = dev ]; then BIN_DIR="$ROOT/target/debug"; else BIN_DIR="$ROOT/target/$CARGO_PROFILE"; fi
export BIN_DIR
KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
CH_URL="http://127.0.0.1:$CLICKHOUSE_PORT"
# Each service gets only the SENDTRACE_* keys its config knows (unknown keys are refused).
KAFKA_ENV="SENDTRACE_KAFKA__BROKERS=$KAFKA_BROKERS"
CH_ENV="SENDTRACE_CLICKHOUSE__URL=$CH_URL"

# The packages and features of the benches' test-mode build (scripts/test.sh), which
# scripts/bench-normalizer.sh --quick runs again: one selection, as another unifies other
# features and rebuilds.
BENCH_SELECTION=(-p aggregator -p normalizer -p sendtrace-schemas --features normalizer/samples)

# Each line says how long the outermost script has run (a newcomer's first run is ~20 minutes;
# CI's log shows where its time goes).
export DEVSTACK_T0="${DEVSTACK_T0:-$(date +%s)}"
log() {
  local t=$(($(date +%s) - DEVSTACK_T0))
  printf '[devstack %2dm%02ds] %s\n' $((t / 60)) $((t % 60)) "$*" >&2
}

# wait_for <what> <seconds> <command...>: retries the command until it succeeds.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.3
  done
  log "$what is up"
}

# start <name> <command...>: runs in the background with log and pid files.
start() {
  local name="$1"; shift
  mkdir -p "$DEVSTACK_DIR/logs" "$DEVSTACK_DIR/pids"
  nohup "$@" >"$DEVSTACK_DIR/logs/$name.log" 2>&1 &
  echo $! >"$DEVSTACK_DIR/pids/$name.pid"
}

# stop <name>: SIGTERM the process in its pid file (SIGKILL after 10 s) and remove the file.
stop() {
  local f="$DEVSTACK_DIR/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null && log "$1 killed" || log "$1 stopped"
  fi
  rm -f "$f"
}

# port_free <port>: nothing listens there.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
