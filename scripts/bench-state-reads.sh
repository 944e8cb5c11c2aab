#!/usr/bin/env bash
# How the aggregator's state reads cost as the stored history grows (BENCHMARKS.md §10), on the
# devstack's ClickHouse engine (chdb), in tables shaped as `deliveries`, `events` and
# `soft_bounces` (same ORDER BY keys and skip indexes), one part each:
#   load_deliveries: `deliveries FINAL WHERE tenant = ? AND delivery_key IN (1,000 new keys)`,
#                    without and with migration 12's bloom filter on `delivery_key`; and 3,000
#                    new keys (a unit's at 5 k events/s) in lists of 1,000 (before `in_list`'s
#                    longer lists) and in one list (since), with the bloom filter; 5,000 new
#                    keys (in_list's longest list) with the filter at 1 in 10,000 and at 1 in a
#                    million (ClickHouse builds the same filter: its bytes are printed too)
#   load_events:     `events FINAL WHERE tenant = ? AND delivery_key IN (500 stored keys)`, and
#                    for 10 keys in FINAL's exact mode (ClickHouse's default) and without it (as
#                    `load_events` asks)
#   soft-bounce history of 200 addresses (1 in 20 events a soft bounce): `events FINAL` through
#                    `recipient_bf` (before migration 13), and `soft_bounces FINAL` (migration 13)
# Prints, per table size, the best of 3 times and the granules the indexes keep (~6 min).
#   scripts/bench-state-reads.sh            # 100 k, 1 M, 4 M rows (~6 min)
#   SIZES="100000 1000000" scripts/bench-state-reads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source devstack/env.sh
"$VENV/bin/python" -c "import chdb" 2>/dev/null || { log "no chdb in $VENV: run devstack/setup.sh first"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
SIZES="${SIZES:-100000 1000000 4000000}" "$VENV/bin/python" - "$dir" <<'PY'
import chdb.session, hashlib, os, re, sys, time, uuid
s = chdb.session.Session(sys.argv[1])
s.query("CREATE TABLE d (tenant String, delivery_key String, version UInt64, payload String) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (tenant, delivery_key)")
s.query("CREATE TABLE dbf (tenant String, delivery_key String, version UInt64, payload String, "
        "INDEX delivery_key_bf delivery_key TYPE bloom_filter(0.0001) GRANULARITY 1) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (tenant, delivery_key)")
s.query("CREATE TABLE dbf6 (tenant String, delivery_key String, version UInt64, payload String, "
        "INDEX delivery_key_bf delivery_key TYPE bloom_filter(0.000001) GRANULARITY 1) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (tenant, delivery_key)")
s.query("CREATE TABLE e (tenant String, event_id String, delivery_key String, recipient String, kind String, "
        "occurred_at DateTime64(3, 'UTC'), payload String, "
        "INDEX delivery_key_bf delivery_key TYPE bloom_filter(0.001) GRANULARITY 1, "
        "INDEX recipient_bf lower(recipient) TYPE bloom_filter(0.01) GRANULARITY 1) "
        "ENGINE = ReplacingMergeTree ORDER BY (tenant, event_id)")
s.query("CREATE TABLE sb (tenant String, address String, event_id String, occurred_at DateTime64(3, 'UTC'), delivery_key String) "
        "ENGINE = ReplacingMergeTree ORDER BY (tenant, address, event_id)")
key = lambda i: "'" + hashlib.sha256(str(i).encode()).hexdigest().upper() + "'"
total = 0
heads = ["load_deliveries: 1,000 new keys", "the same, migration 12", "3,000 new keys, 3 lists of 1,000", "the same, one list",
         "5,000 new keys, one list", "the same, bloom_filter(0.000001)", "load_events: 500 stored keys", "load_events: 10 stored keys", "the same, exact mode off",
         "soft bounces of 200: events", "the same, migration 13"]
print(f"{'stored rows':>12} | " + " | ".join(f"{h:>34}" for h in heads))
for n in map(int, os.environ["SIZES"].split()):
    # deliveries: one row per key; events: two per delivery key, ordered by their own ids
    for t in ("d", "dbf", "dbf6"):
        s.query(f"INSERT INTO {t} SELECT 't', hex(SHA256(toString(number))), 1, repeat('x', 200) FROM numbers({total}, {n - total})")
    # events: 1 in 20 a soft bounce, of 50,000 addresses (Upper-case, as providers send them)
    s.query(f"INSERT INTO e SELECT 't', hex(SHA256(toString(number + 1000000000000))), hex(SHA256(toString(intDiv(number, 2)))), "
            f"concat('User', toString(number % 50000), '@Example.com'), if(number % 20 = 0, 'soft', 'delivered'), "
            f"fromUnixTimestamp64Milli(toInt64(1780000000000 + number * 1000), 'UTC'), repeat('x', 200) FROM numbers({total}, {n - total})")
    s.query(f"INSERT INTO sb SELECT 't', concat('user', toString(number % 50000), '@example.com'), hex(SHA256(toString(number + 1000000000000))), "
            f"fromUnixTimestamp64Milli(toInt64(1780000000000 + number * 1000), 'UTC'), hex(SHA256(toString(intDiv(number, 2)))) "
            f"FROM numbers({total}, {n - total}) WHERE number % 20 = 0")
    total = n
    for t in ("d", "dbf", "dbf6", "e", "sb"):
        s.query(f"OPTIMIZE TABLE {t} FINAL")
    new = ",".join(f"'{uuid.uuid4().hex}{uuid.uuid4().hex}'".upper() for _ in range(1000))
    # (5,000 keys of 64 characters are over max_query_size: those lists hold 32-character keys,
    # as the aggregator's are)
    def lists(keys, per, width=64):
        ks = [f"'{uuid.uuid4().hex}{uuid.uuid4().hex}'"[:width + 1].upper() + "'" for _ in range(keys)]
        return [",".join(ks[i:i + per]) for i in range(0, keys, per)]
    held = ",".join(key(i * 997 % (n // 2)) for i in range(500))
    few = ",".join(key(i * 997 % (n // 2)) for i in range(10))
    # 200 addresses with soft bounces (a multiple of 20: rows number ≡ a mod 50,000 are all soft)
    asked = sorted({i * 241 * 20 % 50000 for i in range(200)})
    addresses = ",".join(f"'user{a}@example.com'" for a in asked)
    soft = sum(len(range(a, n, 50000)) for a in asked)
    exact_off = " SETTINGS use_skip_indexes_if_final_exact_mode = 0"
    cells = []
    for table, where, settings, expect in (
        ("d", f"delivery_key IN ({new})", "", 0),
        ("dbf", f"delivery_key IN ({new})", "", 0),
        ("dbf", [f"delivery_key IN ({l})" for l in lists(3000, 1000)], "", 0),
        ("dbf", [f"delivery_key IN ({l})" for l in lists(3000, 3000)], "", 0),
        ("dbf", [f"delivery_key IN ({l})" for l in lists(5000, 5000, 32)], "", 0),
        ("dbf6", [f"delivery_key IN ({l})" for l in lists(5000, 5000, 32)], "", 0),
        ("e", f"delivery_key IN ({held})", "", 1000),
        ("e", f"delivery_key IN ({few})", "", 20),
        ("e", f"delivery_key IN ({few})", exact_off, 20),
        ("e", f"kind = 'soft' AND lower(recipient) IN ({addresses})", "", soft),
        ("sb", f"address IN ({addresses})", "", soft),
    ):
        # a list of conditions is one read asked in several statements (times and granules summed)
        wheres = [f"FROM {table} FINAL WHERE tenant = 't' AND {w}" for w in (where if isinstance(where, list) else [where])]
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for where in wheres:
                s.query(f"SELECT * {where}{settings} FORMAT Null")
            times.append(time.perf_counter() - t)
        found = sum(int(s.query(f"SELECT count() {where}{settings}", "TabSeparated").bytes()) for where in wheres)
        assert found == expect, f"{table}: {found} rows found, {expect} expected"
        kept_total, of = 0, 0
        for where in wheres:
            plan = s.query(f"EXPLAIN indexes = 1 SELECT * {where}{settings}", "TabSeparatedRaw").bytes().decode()
            granules = re.findall(r"Granules: (\d+)/(\d+)", plan)
            kept_total += int(granules[-1][0]) if granules else 0
            of = int(granules[0][1]) if granules else 0
        kept = f"{kept_total} of {of} granules" + (f" × {len(wheres)}" if len(wheres) > 1 else "")
        cells.append(f"{min(times) * 1000:6.0f} ms, {kept:>22}")
    print(f"{n:>12} | " + " | ".join(f"{c:>34}" for c in cells), flush=True)
    # what replaces the read of new keys (aggregator::stored_keys): one partition's fingerprints
    # of 4, loaded when the aggregator claims it
    load = "SELECT sipHash64(concat(tenant, '/', delivery_key)) FROM dbf WHERE CRC32(delivery_key) % 4 = 0"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        s.query(f"{load} FORMAT Null")
        times.append(time.perf_counter() - t)
    got = int(s.query(f"SELECT count() FROM ({load})", "TabSeparated").bytes())
    print(f"{'':>12}   stored-keys filter, one partition of 4: {got} fingerprints in {min(times) * 1000:.0f} ms", flush=True)
    sizes = s.query("SELECT table, data_compressed_bytes FROM system.data_skipping_indices WHERE database = currentDatabase() AND table LIKE 'dbf%' ORDER BY table", "TabSeparated").bytes().decode().split()
    print(f"{'':>12}   delivery_key_bf bytes per row: " + ", ".join(f"{t} {int(b) / n:.2f}" for t, b in zip(sizes[::2], sizes[1::2])), flush=True)
PY
