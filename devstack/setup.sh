#!/usr/bin/env bash
# Installs what the local stack needs on a fresh machine (idempotent, cached in $SENDTRACE_TOOLS):
# the tansu broker, a Python venv with the ClickHouse engine (chdb-core), and the three services.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$ROOT/devstack/install-tansu.sh"
if ! "$VENV/bin/python" -c "import chdb, lz4, clickhouse_cityhash" 2>/dev/null; then
  log "creating Python venv with chdb-core in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r "$ROOT/devstack/clickhouse/requirements.txt"
fi
# the read API's contract test (tests/tests/api_schemathesis.rs)
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "4.32.5"; then
  log "installing schemathesis into $VENV"
  "$VENV/bin/pip" install --quiet schemathesis==4.32.5
fi
log "building the services ($CARGO_PROFILE)"
(cd "$ROOT" && cargo build --profile "$CARGO_PROFILE" --bins --quiet)
