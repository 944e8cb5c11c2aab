#!/usr/bin/env bash
# Writes seed corpora for every fuzz target from the provider fixtures
# (normalizer/src/providers/*/fixtures) into fuzz/corpus/<target>/. Idempotent: seeds are
# named by content hash, and libFuzzer adds its own finds beside them.
# Request-shaped seeds follow the format in fuzz/src/lib.rs: provider byte, flags byte,
# header lines, an empty line, the body.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../normalizer/src/providers
# Same order as schemas::ProviderId::ALL.
providers=(ses sendgrid mailgun resend postmark twilio fcm apns sender)

put() { # put <target> <file with the seed>: stores it under its sha1
  local dir="corpus/$1"; mkdir -p "$dir"
  mv "$2" "$dir/seed-$(sha1sum "$2" | cut -c1-16)"
}

tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
request() { # request <provider index> <flags> <headers (may be empty)> <body file>
  { printf "\\x$(printf %02x "$1")\\x$(printf %02x "$2")"; printf '%b' "$3"; printf '\n'; cat "$4"; } >"$tmp.r"
}

for i in "${!providers[@]}"; do
  p=${providers[$i]}
  for body in "$fixtures/$p"/fixtures/*.json "$fixtures/$p"/fixtures/*.txt "$fixtures/$p"/fixtures/*.form; do
    [ -f "$body" ] || continue
    name=$(basename "$body")
    routes=(0)
    case "$p:$name" in
      ses:eventbridge*) routes=(1) ;;
      fcm:*|apns:*) routes=(4) ;;
      sender:events*) routes=(3) ;;
      sender:*) routes=(2) ;;
    esac
    headers=""
    case "$p" in
      ses) headers='x-amz-sns-message-type: Notification\n' ;;
      twilio) headers='content-type: application/x-www-form-urlencoded\nx-twilio-signature: AAAA\n' ;;
      sendgrid) headers='x-twilio-email-event-webhook-timestamp: 1893456000\nx-twilio-email-event-webhook-signature: MEUCIQ\n' ;;
    esac
    for r in "${routes[@]}"; do
      for flags in $(( (r << 4) | 5 )) $(( (r << 4) | 7 )) $(( r << 4 )); do
        request "$i" "$flags" "$headers" "$body"; cp "$tmp.r" "$tmp.p"; put provider "$tmp.r"
        # pipeline: odd first byte = request stored as a raw envelope
        { printf '\x01'; cat "$tmp.p"; } >"$tmp.q"; put pipeline "$tmp.q"
      done
    done
    # sender items: 0 send records, 1 app events, 2 push results
    case "$p:$name" in
      sender:events*) { printf '\x01'; cat "$body"; } >"$tmp.i"; put sender_items "$tmp.i" ;;
      sender:*) { printf '\x00'; cat "$body"; } >"$tmp.i"; put sender_items "$tmp.i" ;;
      fcm:*|apns:*) { printf '\x02'; cat "$body"; } >"$tmp.i"; put sender_items "$tmp.i" ;;
    esac
  done
done
# Avro: envelopes, events and dead letters as the normalizer writes them for every
# fixture (the built pipeline target dumps them; skipped until it is built), plus the
# bare schema headers.
mkdir -p corpus/avro
# (where `scripts/fuzz.sh` builds them: CARGO_TARGET_DIR, the tools' cache; else fuzz/target)
pipeline=$(ls "${CARGO_TARGET_DIR:-target}"/*/release/pipeline 2>/dev/null | head -1 || true)
if [ -n "$pipeline" ]; then
  # (from the fixtures' seeds only: the grown `pipeline` corpus would add its whole dump on every
  # run, ~19,000 inputs after one campaign, enough to take `avro` past its RSS bound as it loads)
  FUZZ_DUMP_AVRO=corpus/avro "$pipeline" -runs=0 corpus/pipeline/seed-* >/dev/null 2>&1
else
  echo "seed.sh: pipeline target not built yet; Avro corpus gets only schema headers" >&2
fi
for m in 3 4 5; do printf "\\x0$m" >"$tmp.a"; put avro "$tmp.a"; done
# Committed seeds: minimised inputs of past findings (regressions to keep exercising).
for d in seeds/*/; do
  t=$(basename "$d"); mkdir -p "corpus/$t"; cp "$d"* "corpus/$t/"
done
for t in provider pipeline avro sender_items; do
  echo "corpus/$t: $(ls "corpus/$t" | wc -l) files"
done
