#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target in fuzz/ (see FUZZING.md): builds them with the nightly
# toolchain (installs cargo-fuzz if missing), seeds the corpora from the provider fixtures,
# then runs each target for SECONDS (default 3600: a long campaign; `scripts/fuzz.sh 5` is
# the CI smoke run). One fuzzer process at a time, niced; every run bounded in memory
# (-rss_limit_mb=512; one allocation at most -malloc_limit_mb=64) and time per input
# (-timeout=10), so unbounded allocation and stalls are findings. Exits 1 if any target found
# a crash, OOM or timeout (inputs in fuzz/artifacts/<target>/), 2 if the nightly toolchain
# is missing. Built optimised (-O) with
# debug assertions and overflow checks (-a): an integer overflow on hostile input is a finding.
#   FUZZ_TARGETS="provider avro" scripts/fuzz.sh 60   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3600}"
read -r -a targets <<<"${FUZZ_TARGETS:-provider pipeline avro sender_items batch}"
nice="nice -n ${FUZZ_NICE:-15}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); fuzzing skipped" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  $nice cargo install cargo-fuzz --locked
fi

cd fuzz
# The instrumented nightly build of every dependency takes ~10 min cold: keep it beside the
# other cached tools so later runs (and CI on this machine) only rebuild what changed.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${SENDTRACE_TOOLS:-$HOME/.cache/sendtrace}/fuzz-target}"
echo "fuzz.sh: building the fuzz targets (nightly, instrumented; ~10 min the first time, cached in $CARGO_TARGET_DIR)" >&2
$nice cargo +nightly fuzz build -O -a
./seed.sh >/dev/null

max_len() { # inputs stay small enough to mutate well, large enough for every fixture
  case "$1" in
    avro) echo 32768 ;;
    *) echo 65536 ;;
  esac
}

failed=()
summary=()
mkdir -p logs
for t in "${targets[@]}"; do
  log="logs/$t.log"
  echo "fuzz.sh: $t for ${secs}s (log fuzz/$log)" >&2
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  # `batch` allocates and frees a state store and every table's buffers per input:
  # AddressSanitizer's quarantine of freed memory (256 MB by default) held ~450 MB of RSS
  # against the 512 MB bound; 64 MB still catches a use after free of recent inputs' memory
  asan=()
  [ "$t" = batch ] && asan=(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=64")
  if ! env "${asan[@]}" $nice cargo +nightly fuzz run -O -a "$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=10 \
      -max_len="$(max_len "$t")" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    failed+=("$t")
    grep -E "^(==[0-9]+== ?ERROR|SUMMARY|thread .* panicked)|Test unit written" "$log" >&2 || tail -20 "$log" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  summary+=("$(printf '%-13s %12s runs  %s  peak rss %s MB' "$t" "${runs:-?}" "${cov:-?}" "${rss:-?}")")
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (see fuzz/artifacts/ and FUZZING.md on what to do)" >&2
  exit 1
fi
