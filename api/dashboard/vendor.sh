#!/usr/bin/env bash
# Refreshes the dashboard's vendored charting library from the committed lockfile:
# `npm ci` installs exactly the uPlot version package-lock.json pins, and its minified dist
# file, stylesheet and licence are copied into vendor/, which the api binary embeds at build
# time (so a build needs neither npm nor the network, and the page works offline).
# Run it after changing the version in package.json (`npm install uplot@X` first), then commit vendor/.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
mkdir -p vendor
cp node_modules/uplot/dist/uPlot.iife.min.js vendor/uPlot.iife.min.js
cp node_modules/uplot/dist/uPlot.min.css vendor/uPlot.min.css
cp node_modules/uplot/LICENSE vendor/uPlot.LICENSE
echo "vendored uPlot $(node -p "require('./node_modules/uplot/package.json').version") into $(pwd)/vendor"
