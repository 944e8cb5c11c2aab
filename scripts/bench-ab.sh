#!/usr/bin/env bash
# Two builds of one criterion bench, compared on a shared, noisy machine: A and B run at the
# same time, each pinned to one of the two cores, then again with the cores swapped, for each
# round. Both see the same outside load at the same moment, so the ratio B ÷ A of one pair is
# steady where their times, run one after the other, swung ±20–30 % (BENCHMARKS.md §1b,
# 2026-12-03 night). Prints every pair's times and ratios, then each bench's median ratio.
#
# Usage: scripts/bench-ab.sh <bench binary A> <bench binary B> [criterion filter] [rounds]
#   (rounds default 2, i.e. 4 pairs; filter default: every bench of the binary)
# Bench binaries: `cargo bench -p aggregator --bench state_update --no-run` prints the path of
# the one it built (target/release/deps/state_update-<hash>); copy it aside, change the code,
# build again.
set -euo pipefail
a=${1:?bench binary A}; b=${2:?bench binary B}; filter=${3:-}; rounds=${4:-2}
cores=$(nproc)
if [ "$cores" -lt 2 ]; then
  echo "bench-ab: needs two cores (one per binary), this machine has $cores" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# one bench ($4) of one binary on one core: "<bench> <seconds>" (criterion's estimate)
run() {
  taskset -c "$2" "$1" --bench --warm-up-time 1 --measurement-time 3 "$4" 2>&1 |
    awk '/^[a-z_]+\/[a-z_0-9]+$/ { name = $1; sub(/^[^\/]*\//, "", name) }
         /^ +time: +\[/ && name != "" {
           v = $4; u = $5; s = (u == "ms") ? v / 1000 : (u == "µs" ? v / 1e6 : (u == "ns" ? v / 1e9 : v));
           print name, s; name = "" }' > "$3"
}
# one bench at a time, so both binaries of a pair are in the same code at the same moment
benches=$("$a" --bench --list $filter 2>/dev/null | sed -n 's|^[^/]*/\([^:]*\): benchmark$|\1|p')
for round in $(seq "$rounds"); do
  for pin in "0 1" "1 0"; do
    set -- $pin
    echo "round $round, A on core $1, B on core $2:"
    for bench in $benches; do
      run "$a" "$1" "$out/a" "/$bench\$" & run "$b" "$2" "$out/b" "/$bench\$" & wait
      join "$out/a" "$out/b" | awk '{ printf "  %-32s A %8.3f s  B %8.3f s  B/A %.3f\n", $1, $2, $3, $3 / $2 }' | tee -a "$out/all"
    done
  done
done
echo "median B/A per bench:"
awk '{ r[$1] = r[$1] " " $NF } END { for (k in r) print k, r[k] }' "$out/all" | sort |
  while read -r name ratios; do
    m=$(printf '%s\n' $ratios | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '  %-32s %s   (pairs: %s)\n' "$name" "$m" "$(echo $ratios)"
  done
