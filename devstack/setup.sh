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
# the dashboard's real-browser test (tests/tests/dashboard_browser.rs): Debian's Chromium, node,
# and playwright-core from the committed lockfile
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "cannot install $*: not root and no sudo"; return 1; }
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || { log "cannot install $*: no apt-get"; return 1; }
  log "installing $* (apt-get; takes a few minutes)"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium chromium-driver || log "no chromium: the dashboard browser test will be skipped"
fi
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm || log "no node/npm: the dashboard browser test cannot run"
fi
BROWSER_DIR="$ROOT/tests/browser"
if command -v npm >/dev/null 2>&1 && ! cmp -s "$BROWSER_DIR/package-lock.json" "$BROWSER_DIR/node_modules/.installed-lock.json" 2>/dev/null; then
  log "installing the browser test's npm packages (npm ci in tests/browser)"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.installed-lock.json)
fi
# DEVSTACK_NO_BUILD=1: the caller built the binaries it wants (scripts/load.sh)
if [ "${DEVSTACK_NO_BUILD:-0}" != 1 ]; then
  log "building the services ($CARGO_PROFILE)"
  (cd "$ROOT" && cargo build --profile "$CARGO_PROFILE" --bins --quiet)
fi
