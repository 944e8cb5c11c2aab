#!/usr/bin/env bash
# Installs the tansu Kafka-compatible broker (Apache-2.0) from crates.io, once.
# Cached under $SENDTRACE_TOOLS (default ~/.cache/sendtrace) so later runs skip the build.
set -euo pipefail
TOOLS="${SENDTRACE_TOOLS:-$HOME/.cache/sendtrace}"
VERSION="0.6.0"
BIN="$TOOLS/bin/tansu"
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "tansu $VERSION already installed at $BIN"
  exit 0
fi
mkdir -p "$TOOLS"
echo "installing tansu $VERSION into $TOOLS (takes ~10 min once)"
CARGO_TARGET_DIR="$TOOLS/tansu-build" cargo install tansu --version "$VERSION" --locked \
  --features dynostore,libsql --root "$TOOLS"
rm -rf "$TOOLS/tansu-build"
"$BIN" --version
