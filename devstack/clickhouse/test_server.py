"""Tests for the chdb-backed ClickHouse HTTP devstack server.

Run from this folder with the venv python:  python -m unittest -v
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")


# ---- ClickHouse compressed-block framing, written independently of server.py ----

def _checksum(b: bytes) -> bytes:
    h = CityHash128(b)
    return struct.pack("<QQ", h >> 64, h & 0xFFFFFFFFFFFFFFFF)


def lz4_frame(data: bytes) -> bytes:
    payload = lz4.block.compress(data, store_size=False)
    block = bytes([0x82]) + struct.pack("<II", 9 + len(payload), len(data)) + payload
    return _checksum(block) + block


def lz4_unframe(data: bytes) -> bytes:
    out = b""
    pos = 0
    while pos < len(data):
        method = data[pos + 16]
        csize, usize = struct.unpack_from("<II", data, pos + 17)
        block = data[pos + 16 : pos + 16 + csize]
        assert _checksum(block) == data[pos : pos + 16], "checksum mismatch"
        assert method == 0x82, hex(method)
        out += lz4.block.decompress(block[9:], uncompressed_size=usize)
        pos += 16 + csize
    return out


def varuint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(b: bytes) -> bytes:
    return varuint(len(b)) + b


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerTest(unittest.TestCase):
    proc: subprocess.Popen = None
    port: int = 0
    data_dir: str = ""

    # ---- server lifecycle ----
    @classmethod
    def start_server(cls):
        cls.port = free_port()
        cls.log = open(os.path.join(cls.tmp, "server.log"), "ab")
        cls.proc = subprocess.Popen(
            [sys.executable, SERVER, "--host", "127.0.0.1", "--port", str(cls.port), "--data-dir", cls.data_dir],
            stdout=cls.log, stderr=cls.log,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if cls.proc.poll() is not None:
                raise RuntimeError("server exited early, see " + cls.log.name)
            try:
                status, _, body = cls.request("GET", "/ping")
                if status == 200 and body == b"Ok.\n":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    @classmethod
    def stop_server(cls):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                rc = cls.proc.wait(30)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
                raise
            assert rc == 0, f"server exit code {rc}"
        cls.proc = None
        cls.log.close()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="chdb-http-test-")
        cls.data_dir = os.path.join(cls.tmp, "data")
        cls.start_server()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stop_server()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- HTTP helpers ----
    @classmethod
    def request(cls, method, path, body=None, headers=None, params=None, chunked=False, conn=None):
        if params:
            path = path + "?" + urllib.parse.urlencode(params)
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=60)
        try:
            hdrs = dict(headers or {})
            if chunked:
                def gen(b=body):
                    for i in range(0, len(b), 1000):
                        yield b[i : i + 1000]
                conn.request(method, path, body=gen(), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp, data
        finally:
            if own:
                conn.close()

    def q(self, sql, **params):
        status, resp, data = self.request("POST", "/", body=sql.encode(), params=params)
        self.assertEqual(status, 200, data)
        return data

    # ---- tests ----
    def test_ping(self):
        for path in ("/ping", "/"):
            status, _, body = self.request("GET", path)
            self.assertEqual((status, body), (200, b"Ok.\n"))

    def raw(self, head: bytes, body: bytes = b"") -> bytes:
        """Sends raw bytes (for headers http.client would not send) and returns the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(head + body)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    def test_foreign_host_header_is_refused(self):
        """DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name as Host."""
        for host in ("evil.example.com", "evil.example.com:8123", "127.0.0.1.nip.io", "10.0.0.1"):
            status, _, body = self.request("POST", "/", body=b"SELECT 1", headers={"Host": host})
            self.assertEqual(status, 403, (host, body))
        for host in ("localhost", f"localhost:{self.port}", f"127.0.0.1:{self.port}", "[::1]:8123", "127.0.0.2"):
            status, _, body = self.request("POST", "/", body=b"SELECT 1", headers={"Host": host})
            self.assertEqual((status, body), (200, b"1\n"), host)

    def test_get_runs_only_reads(self):
        for sql in ("CREATE DATABASE t_get_forbidden", "DROP DATABASE IF EXISTS default", "INSERT INTO t VALUES (1)"):
            status, resp, body = self.request("GET", "/", params={"query": sql})
            self.assertEqual(status, 403, (sql, body))
            self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "164")
        self.assertEqual(self.q("SELECT count() FROM system.databases WHERE name = 't_get_forbidden'"), b"0\n")
        status, _, body = self.request("GET", "/", params={"query": "SELECT 2"})
        self.assertEqual((status, body), (200, b"2\n"))

    def test_readonly_is_honoured(self):
        self.q("CREATE DATABASE IF NOT EXISTS t_ro")
        self.q("CREATE TABLE IF NOT EXISTS t_ro.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        for ro in ("1", "2"):
            status, _, body = self.request("POST", "/", body=b"INSERT INTO t_ro.t VALUES (1)", params={"readonly": ro})
            self.assertEqual(status, 403, body)
        self.assertEqual(self.q("SELECT count() FROM t_ro.t"), b"0\n")
        self.assertEqual(self.q("SELECT 3", readonly="1"), b"3\n")

    def test_oversized_content_length_is_refused_unread(self):
        reply = self.raw(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000\r\n\r\n", b"SELECT 1")
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
        reply = self.raw(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"ffffffffff\r\nSELECT 1\r\n0\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])

    def test_get_query_and_default_format(self):
        status, resp, body = self.request("GET", "/", params={"query": "SELECT 1 AS x, 'a' AS y"})
        self.assertEqual(status, 200)
        self.assertEqual(body, b"1\ta\n")
        self.assertEqual(resp.getheader("X-ClickHouse-Format"), "TabSeparated")
        self.assertTrue(resp.getheader("Content-Type").startswith("text/tab-separated-values"))
        summary = json.loads(resp.getheader("X-ClickHouse-Summary"))
        self.assertIn("read_rows", summary)
        status, resp, body = self.request("GET", "/", params={"query": "SELECT 1 AS x", "query_id": "qid-123"})
        self.assertEqual(resp.getheader("X-ClickHouse-Query-Id"), "qid-123")

    def test_create_insert_select(self):
        self.q("CREATE DATABASE IF NOT EXISTS t_basic")
        self.q("CREATE TABLE t_basic.events (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
        status, _, body = self.request(
            "POST", "/", body=b"1\talpha\n2\tbeta\n",
            params={"query": "INSERT INTO events FORMAT TSV", "database": "t_basic"},
        )
        self.assertEqual((status, body), (200, b""))
        # Insert fully in the body, and VALUES form.
        self.q("INSERT INTO t_basic.events FORMAT TabSeparated\n3\tgamma\n")
        self.q("INSERT INTO t_basic.events (id, name) VALUES (4, 'delta')")
        status, resp, body = self.request(
            "POST", "/", body=b"SELECT id, name FROM events ORDER BY id",
            params={"database": "t_basic", "default_format": "JSONEachRow"},
        )
        self.assertEqual(status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("application/json"))
        self.assertEqual(resp.getheader("X-ClickHouse-Format"), "JSONEachRow")
        rows = [json.loads(line) for line in body.splitlines()]
        self.assertEqual(rows, [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"},
                                {"id": 3, "name": "gamma"}, {"id": 4, "name": "delta"}])
        # FORMAT clause in the query wins over default_format.
        body = self.q("SELECT count() AS c FROM t_basic.events FORMAT JSONEachRow", default_format="CSV")
        self.assertEqual(json.loads(body), {"c": 4})

    def test_error(self):
        status, resp, body = self.request("POST", "/", body=b"SELECT * FROM no_such_table_xyz")
        self.assertNotEqual(status, 200)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "60")
        self.assertTrue(body.startswith(b"Code: 60. DB::Exception: "), body)
        self.assertIn(b"(UNKNOWN_TABLE)", body)
        status, resp, body = self.request("POST", "/", body=b"SELEC 1")
        self.assertNotEqual(status, 200)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "62")
        status, resp, body = self.request("POST", "/", body=b"SELECT 1", params={"no_such_setting_q": "1"})
        self.assertNotEqual(status, 200)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "115")

    def test_lz4_insert_and_compressed_response(self):
        """Mimics the Rust `clickhouse` crate: DESCRIBE, RowBinary insert with
        decompress=1 (chunked transfer), SELECT with compress=1."""
        self.q("CREATE DATABASE IF NOT EXISTS t_lz4")
        self.q("CREATE TABLE t_lz4.blobs (id UInt64, payload String) ENGINE = MergeTree ORDER BY id")

        # DESCRIBE as the crate does for validation (compressed response).
        status, resp, body = self.request(
            "POST", "/", body=b"DESCRIBE TABLE blobs",
            params={"default_format": "RowBinaryWithNamesAndTypes", "database": "t_lz4", "compress": "1",
                    "describe_include_subcolumns": "0"},
            headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": ""},
        )
        self.assertEqual(status, 200, body)
        desc = lz4_unframe(body)
        self.assertTrue(desc.startswith(b"\x07\x04name\x04type"), desc[:40])
        self.assertIn(b"\x07payload\x06String", desc)

        rows = [(i, bytes([i % 256, 0, 0xFF, 0x0A, 0x09, 0x20]) * (i % 5)) for i in range(1, 2001)]
        raw = b"".join(struct.pack("<Q", i) + rb_string(p) for i, p in rows)
        half = len(raw) // 2
        framed = lz4_frame(raw[:half]) + lz4_frame(raw[half:])  # several blocks
        status, _, body = self.request(
            "POST", "/", body=framed, chunked=True,
            params={"database": "t_lz4", "query": "INSERT INTO blobs(id,payload) FORMAT RowBinary", "decompress": "1"},
        )
        self.assertEqual(status, 200, body)

        # RowBinaryWithNamesAndTypes insert (crate validation mode).
        rbwnat = (varuint(2) + rb_string(b"id") + rb_string(b"payload") + rb_string(b"UInt64") + rb_string(b"String")
                  + struct.pack("<Q", 5000) + rb_string(b"\x00\x01\xfe"))
        status, _, body = self.request(
            "POST", "/", body=lz4_frame(rbwnat),
            params={"database": "t_lz4", "query": "INSERT INTO blobs(id,payload) FORMAT RowBinaryWithNamesAndTypes",
                    "decompress": "1"},
        )
        self.assertEqual(status, 200, body)

        status, resp, body = self.request(
            "POST", "/", body=b"SELECT id, payload FROM blobs WHERE id < 5000 ORDER BY id",
            params={"default_format": "RowBinary", "database": "t_lz4", "compress": "1"},
        )
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/octet-stream")
        self.assertEqual(lz4_unframe(body), raw)

        body = self.q("SELECT hex(payload) FROM t_lz4.blobs WHERE id = 5000")
        self.assertEqual(body, b"0001FE\n")

        # Empty result with compress=1 -> empty body.
        status, _, body = self.request(
            "POST", "/", body=b"SELECT id FROM blobs WHERE id > 999999",
            params={"default_format": "RowBinary", "database": "t_lz4", "compress": "1"},
        )
        self.assertEqual((status, body), (200, b""))

        # Corrupted frame -> checksum error.
        bad = bytearray(lz4_frame(raw[:100]))
        bad[-1] ^= 0xFF
        status, resp, body = self.request(
            "POST", "/", body=bytes(bad),
            params={"database": "t_lz4", "query": "INSERT INTO blobs FORMAT RowBinary", "decompress": "1"},
        )
        self.assertNotEqual(status, 200)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "40")

    def test_insert_deduplication_token(self):
        self.q("CREATE DATABASE IF NOT EXISTS t_dedup")
        self.q("CREATE TABLE t_dedup.d (id UInt32, v String) ENGINE = MergeTree ORDER BY id "
               "SETTINGS non_replicated_deduplication_window = 1000")
        for _ in range(2):
            status, _, body = self.request(
                "POST", "/", body=b"1\ta\n2\tb\n",
                params={"query": "INSERT INTO t_dedup.d FORMAT TSV", "insert_deduplication_token": "tok-1"},
            )
            self.assertEqual(status, 200, body)
        self.assertEqual(self.q("SELECT count() FROM t_dedup.d"), b"2\n")
        status, _, body = self.request(
            "POST", "/", body=b"1\ta\n2\tb\n",
            params={"query": "INSERT INTO t_dedup.d FORMAT TSV", "insert_deduplication_token": "tok-2"},
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(self.q("SELECT count() FROM t_dedup.d"), b"4\n")
        # The setting does not leak into later requests.
        self.assertEqual(self.q("SELECT getSetting('insert_deduplication_token')"), b"\n")

    def test_materialized_view_fires_on_every_insert_path(self):
        """sendtrace's unique_recipients_mv: the crate's RowBinary insert, a body insert and
        VALUES (all run as INSERT ... FROM INFILE) and INSERT ... SELECT feed the view; a
        deduplicated retry still reaches it (and an idempotent state absorbs it)."""
        self.q("CREATE DATABASE IF NOT EXISTS t_mv")
        self.q("CREATE TABLE t_mv.src (id String, rcpt String) ENGINE = MergeTree ORDER BY id "
               "SETTINGS non_replicated_deduplication_window = 1000")
        self.q("CREATE TABLE t_mv.uniq (k String, r AggregateFunction(uniqExact, String)) "
               "ENGINE = AggregatingMergeTree ORDER BY k")
        self.q("CREATE MATERIALIZED VIEW t_mv.mv TO t_mv.uniq AS "
               "SELECT 'all' AS k, uniqExactState(lower(rcpt)) AS r FROM t_mv.src GROUP BY k")
        self.q("SYSTEM STOP MERGES t_mv.uniq")  # rows stay apart, so they can be counted
        uniques = lambda: self.q("SELECT uniqExactMerge(r) FROM t_mv.uniq")  # noqa: E731
        raw = b"".join(rb_string(i) + rb_string(r) for i, r in [(b"e1", b"Ann@x.io"), (b"e2", b"ann@x.io"), (b"e3", b"bob@x.io")])
        params = {"database": "t_mv", "query": "INSERT INTO src(id,rcpt) FORMAT RowBinary", "decompress": "1",
                  "insert_deduplication_token": "tok-mv", "deduplicate_blocks_in_dependent_materialized_views": "1"}
        for _ in range(2):  # the second is a retry: dropped by the source table
            status, _, body = self.request("POST", "/", body=lz4_frame(raw), chunked=True, params=params)
            self.assertEqual(status, 200, body)
        self.assertEqual(self.q("SELECT count() FROM t_mv.src"), b"3\n")
        self.assertEqual(self.q("SELECT count() FROM t_mv.uniq"), b"2\n", "the retry reached the view")
        self.assertEqual(uniques(), b"2\n", "and changed no count")
        self.q("INSERT INTO t_mv.src FORMAT TabSeparated\ne4\tcarol@x.io\n")
        self.q("INSERT INTO t_mv.src (id, rcpt) VALUES ('e5', 'BOB@x.io')")
        self.assertEqual(uniques(), b"3\n")
        self.q("INSERT INTO t_mv.src SELECT 'e6', 'dave@x.io'")
        self.assertEqual(uniques(), b"4\n")

    def test_settings_do_not_leak(self):
        default = self.q("SELECT getSetting('max_threads')")
        self.assertEqual(self.q("SELECT getSetting('max_threads')", max_threads="3"), b"3\n")
        self.assertEqual(self.q("SELECT getSetting('max_threads')"), default)
        self.q("SET max_threads = 5")
        self.assertEqual(self.q("SELECT getSetting('max_threads')"), default)
        self.q("USE system")
        self.assertEqual(self.q("SELECT currentDatabase()"), b"default\n")

    def test_settings_follow_each_request(self):
        # the session keeps what the last request set; each request must still see only its own
        get = "SELECT getSetting('max_threads'), getSetting('max_block_size')"
        default = self.q(get)
        self.assertEqual(self.q(get, max_threads="3", max_block_size="1000"), b"3\t1000\n")
        self.assertEqual(self.q(get, max_threads="3"), b"3\t" + default.split(b"\t")[1])
        self.assertEqual(self.q(get, max_threads="4"), b"4\t" + default.split(b"\t")[1])
        self.assertEqual(self.q(get), default)
        # a setting that does not exist is refused, and spoils nothing after it
        status, _, _ = self.request("POST", "/", body=b"SELECT 1", params={"max_threads": "2", "no_such_setting_x": "1"})
        self.assertNotEqual(status, 200)
        self.assertEqual(self.q(get), default)
        # a client's own USE, in any case, does not stick either
        self.q("use system")
        self.assertEqual(self.q("SELECT currentDatabase()"), b"default\n")
        self.assertEqual(self.q("SELECT currentDatabase()", database="system"), b"system\n")
        self.assertEqual(self.q("SELECT currentDatabase()"), b"default\n")

    def test_param_substitution(self):
        body = self.q("SELECT {s:String} AS s, {n:UInt32} + 1 AS n, {a:Array(String)} AS a FORMAT JSONEachRow",
                      param_s="it's \\ \"quoted\"", param_n="41", param_a="['x','y']")
        self.assertEqual(json.loads(body), {"s": "it's \\ \"quoted\"", "n": 42, "a": ["x", "y"]})
        status, _, body = self.request("GET", "/", params={"query": "SELECT {v:Int8}", "param_v": "-5"})
        self.assertEqual((status, body), (200, b"-5\n"))

    def test_keep_alive_and_gzip(self):
        import gzip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            for i in range(5):
                status, _, body = self.request("POST", "/", body=f"SELECT {i}".encode(), conn=conn)
                self.assertEqual((status, body), (200, f"{i}\n".encode()))
            status, resp, body = self.request(
                "POST", "/", body=gzip.compress(b"SELECT 'zipped'"), conn=conn,
                headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
                params={"enable_http_compression": "1"})
            self.assertEqual(status, 200)
            self.assertEqual(resp.getheader("Content-Encoding"), "gzip")
            self.assertEqual(gzip.decompress(body), b"zipped\n")
        finally:
            conn.close()

    def test_concurrent_databases(self):
        n_threads = 8
        for t in range(n_threads):
            self.q(f"CREATE DATABASE IF NOT EXISTS conc_{t}")
            self.q(f"CREATE TABLE IF NOT EXISTS conc_{t}.x (v UInt32) ENGINE = MergeTree ORDER BY v")
        errors = []

        def worker(t):
            try:
                db = f"conc_{t}"
                for i in range(15):
                    status, _, body = self.request("POST", "/", body=f"{t * 1000 + i}\n".encode(),
                                                   params={"database": db, "query": "INSERT INTO x FORMAT TSV"})
                    assert status == 200, body
                    status, _, body = self.request("POST", "/", body=b"SELECT currentDatabase(), count(), min(v) FROM x",
                                                   params={"database": db, "max_threads": str(t + 1)})
                    assert status == 200, body
                    assert body == f"{db}\t{i + 1}\t{t * 1000}\n".encode(), (db, body)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])

    def test_zz_restart_keeps_data(self):
        self.q("CREATE DATABASE IF NOT EXISTS t_persist")
        self.q("CREATE TABLE t_persist.p (id UInt32) ENGINE = MergeTree ORDER BY id")
        self.q("INSERT INTO t_persist.p VALUES (1), (2), (3)")
        type(self).stop_server()  # SIGTERM -> must exit 0
        type(self).start_server()
        self.assertEqual(self.q("SELECT sum(id) FROM t_persist.p"), b"6\n")


if __name__ == "__main__":
    unittest.main()
