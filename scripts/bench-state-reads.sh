#!/usr/bin/env bash
# How the aggregator's two state reads cost as the stored history grows (BENCHMARKS.md §10),
# on the devstack's ClickHouse engine (chdb), in tables shaped as `deliveries` and `events`
# (same ORDER BY keys and skip indexes), one part each:
#   load_deliveries: `deliveries FINAL WHERE tenant = ? AND delivery_key IN (1,000 new keys)`,
#                    without and with migration 12's bloom filter on `delivery_key`
#   load_events:     `events FINAL WHERE tenant = ? AND delivery_key IN (500 stored keys)`
# Prints, per table size, the best of 3 times and the granules the indexes keep.
#   scripts/bench-state-reads.sh            # 100 k, 1 M, 4 M rows (~3 min)
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
s.query("CREATE TABLE e (tenant String, event_id String, delivery_key String, payload String, "
        "INDEX delivery_key_bf delivery_key TYPE bloom_filter(0.01) GRANULARITY 1) "
        "ENGINE = ReplacingMergeTree ORDER BY (tenant, event_id)")
key = lambda i: "'" + hashlib.sha256(str(i).encode()).hexdigest().upper() + "'"
total = 0
print(f"{'stored rows':>12} | {'load_deliveries: 1,000 new keys':>34} | {'the same, migration 12':>34} | {'load_events: 500 stored keys':>34}")
for n in map(int, os.environ["SIZES"].split()):
    # deliveries: one row per key; events: two per delivery key, ordered by their own ids
    for t in ("d", "dbf"):
        s.query(f"INSERT INTO {t} SELECT 't', hex(SHA256(toString(number))), 1, repeat('x', 200) FROM numbers({total}, {n - total})")
    s.query(f"INSERT INTO e SELECT 't', hex(SHA256(toString(number + 1000000000000))), hex(SHA256(toString(intDiv(number, 2)))), "
            f"repeat('x', 200) FROM numbers({total}, {n - total})")
    total = n
    for t in ("d", "dbf", "e"):
        s.query(f"OPTIMIZE TABLE {t} FINAL")
    new = ",".join(f"'{uuid.uuid4().hex}{uuid.uuid4().hex}'".upper() for _ in range(1000))
    held = ",".join(key(i * 997 % (n // 2)) for i in range(500))
    cells = []
    for table, keys, expect in (("d", new, 0), ("dbf", new, 0), ("e", held, 1000)):
        where = f"FROM {table} FINAL WHERE tenant = 't' AND delivery_key IN ({keys})"
        times = []
        for _ in range(3):
            t = time.perf_counter(); s.query(f"SELECT * {where} FORMAT Null"); times.append(time.perf_counter() - t)
        found = int(s.query(f"SELECT count() {where}", "TabSeparated").bytes())
        assert found == expect, f"{table}: {found} rows found, {expect} expected"
        plan = s.query(f"EXPLAIN indexes = 1 SELECT * {where}", "TabSeparatedRaw").bytes().decode()
        granules = re.findall(r"Granules: (\d+)/(\d+)", plan)
        kept = f"{granules[-1][0]} of {granules[0][1]} granules" if granules else "?"
        cells.append(f"{min(times) * 1000:6.0f} ms, {kept:>22}")
    print(f"{n:>12} | " + " | ".join(f"{c:>34}" for c in cells), flush=True)
PY
