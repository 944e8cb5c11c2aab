#!/usr/bin/env bash
# Stops the local stack (SIGTERM, then SIGKILL after 10 s).  --clean also deletes its data.
set -uo pipefail
source "$(dirname "$0")/env.sh"
for name in ingest normalizer aggregator clickhouse tansu; do
  f="$DEVSTACK_DIR/pids/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null && log "$name killed" || log "$name stopped"
  fi
  rm -f "$f"
done
if [ "${1:-}" = "--clean" ]; then rm -rf "$DEVSTACK_DIR"; log "data removed"; fi
