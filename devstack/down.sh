#!/usr/bin/env bash
# Stops the local stack (SIGTERM, then SIGKILL after 10 s).  --clean also deletes its data.
set -uo pipefail
source "$(dirname "$0")/env.sh"
for name in api ingest normalizer aggregator clickhouse tansu; do stop "$name"; done
if [ "${1:-}" = "--clean" ]; then rm -rf "$DEVSTACK_DIR"; log "data removed"; fi
