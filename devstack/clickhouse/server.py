#!/usr/bin/env python3
"""Devstack ClickHouse HTTP server backed by the embedded ClickHouse engine (chdb).

Serves a subset of the ClickHouse HTTP interface (port 8123 protocol) that is
enough for the official Rust `clickhouse` crate (0.14, LZ4 compression on) and
for analysts using curl:

    python server.py --host 127.0.0.1 --port 8123 --data-dir ./data/clickhouse

Environment fallbacks: CH_HOST, CH_PORT, CH_DATA_DIR.

Devstack only: no authentication (credentials are accepted and ignored), one
chdb session per process, all engine calls serialized by a single lock.
"""

from __future__ import annotations

import argparse
import ipaddress
import gzip
import json
import os
import re
import signal
import struct
import sys
import tempfile
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb
import chdb.session
import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

# --------------------------------------------------------------------------
# ClickHouse native compressed-block framing (used by compress=1 / decompress=1)
#
#   [16b] CityHash128 (v1.0.2) of the rest of the block, as two LE u64 (high, low)
#   [ 1b] method: 0x82 = LZ4, 0x02 = none
#   [ 4b] compressed size incl. this 9-byte header (LE)
#   [ 4b] uncompressed size (LE)
#   [..]  payload
# --------------------------------------------------------------------------

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90
HEADER_SIZE = 9
CHECKSUM_SIZE = 16
MAX_BLOCK = 1024 * 1024  # uncompressed bytes per response block
MAX_COMPRESSED_SIZE = 1024 * 1024 * 1024


class CHError(Exception):
    """An error to report to the client in ClickHouse format."""

    def __init__(self, code: int, name: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message
        self.status = status


def _checksum(data: bytes) -> bytes:
    h = CityHash128(data)
    return struct.pack("<QQ", h >> 64, h & 0xFFFFFFFFFFFFFFFF)


def compress_blocks(data: bytes) -> bytes:
    out = bytearray()
    for off in range(0, len(data), MAX_BLOCK):
        chunk = data[off : off + MAX_BLOCK]
        payload = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", METHOD_LZ4, HEADER_SIZE + len(payload), len(chunk)) + payload
        out += _checksum(block)
        out += block
    return bytes(out)


def decompress_blocks(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < CHECKSUM_SIZE + HEADER_SIZE:
            raise CHError(271, "CANNOT_DECOMPRESS", "Cannot decompress: truncated compressed block header")
        method, csize, usize = struct.unpack_from("<BII", data, pos + CHECKSUM_SIZE)
        if csize < HEADER_SIZE or csize > MAX_COMPRESSED_SIZE:
            raise CHError(271, "CANNOT_DECOMPRESS", f"Too large or invalid size of compressed block: {csize}")
        end = pos + CHECKSUM_SIZE + csize
        if end > n:
            raise CHError(271, "CANNOT_DECOMPRESS", "Cannot decompress: truncated compressed block")
        block = data[pos + CHECKSUM_SIZE : end]
        if _checksum(block) != data[pos : pos + CHECKSUM_SIZE]:
            raise CHError(40, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data")
        payload = block[HEADER_SIZE:]
        if method == METHOD_LZ4:
            try:
                chunk = lz4.block.decompress(payload, uncompressed_size=usize)
            except Exception as e:  # noqa: BLE001
                raise CHError(271, "CANNOT_DECOMPRESS", f"Cannot decompress LZ4-encoded data: {e}")
        elif method == METHOD_NONE:
            chunk = payload
        elif method == METHOD_ZSTD:
            raise CHError(89, "UNKNOWN_COMPRESSION_METHOD", "ZSTD compressed blocks are not supported by the devstack server; use LZ4")
        else:
            raise CHError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {method:#x}")
        if len(chunk) != usize:
            raise CHError(271, "CANNOT_DECOMPRESS", "Cannot decompress: size mismatch")
        out += chunk
        pos = end
    return bytes(out)


# --------------------------------------------------------------------------
# Minimal SQL scanning (only what is needed to find FORMAT / VALUES / SETTINGS)
# --------------------------------------------------------------------------

_WS = b" \t\r\n\f\v"


def _scan_words(sql: bytes, stop_at_format: bool):
    """Yield (WORD_UPPER, start, end, depth) for bare words outside quotes/comments.

    Stops yielding after a top-level FORMAT <name> if stop_at_format (the rest is data).
    """
    i = 0
    n = len(sql)
    depth = 0
    while i < n:
        c = sql[i : i + 1]
        if c in (b"'", b'"', b"`"):
            q = c
            i += 1
            while i < n:
                ch = sql[i : i + 1]
                if ch == b"\\":
                    i += 2
                    continue
                if ch == q:
                    if sql[i + 1 : i + 2] == q:  # doubled quote
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            continue
        if sql.startswith(b"--", i) or c == b"#":
            j = sql.find(b"\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith(b"/*", i):
            j = sql.find(b"*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c in (b"(", b"["):
            depth += 1
            i += 1
            continue
        if c in (b")", b"]"):
            depth = max(0, depth - 1)
            i += 1
            continue
        if c.isalpha() or c == b"_":
            j = i + 1
            while j < n and (sql[j : j + 1].isalnum() or sql[j : j + 1] == b"_"):
                j += 1
            yield sql[i:j].upper(), i, j, depth
            i = j
            continue
        i += 1


def _data_start(sql: bytes, pos: int) -> int:
    """ClickHouse rule: data starts after the first newline, if there is one,
    or after all the whitespace characters otherwise."""
    n = len(sql)
    while pos < n and sql[pos] in _WS:
        if sql[pos] == 0x0A:
            return pos + 1
        pos += 1
    return pos


def split_insert(sql: bytes):
    """If `sql` is an INSERT carrying inline data (FORMAT x / VALUES), return
    (sql_prefix, sql_suffix, format_name, data) where the statement to run is
    sql_prefix + " FROM INFILE '<file>' " + sql_suffix. Otherwise None."""
    words = _scan_words(sql, stop_at_format=True)
    first = next(words, None)
    if first is None or first[0] != b"INSERT":
        return None
    settings_pos = None
    prev = None
    for word, start, end, depth in words:
        if depth != 0:
            prev = word
            continue
        if word in (b"SELECT", b"WITH", b"INFILE"):
            return None
        if word == b"SETTINGS" and settings_pos is None:
            settings_pos = start
        elif word == b"FORMAT":
            nxt = next(words, None)
            if nxt is None:
                return None
            fmt_name = sql[nxt[1] : nxt[2]].decode("ascii")
            header_end = nxt[2]
            data = sql[_data_start(sql, header_end) :]
            cut = settings_pos if settings_pos is not None else start
            prefix = sql[:cut].decode("utf-8")
            suffix = sql[cut:header_end].decode("utf-8")
            return prefix, suffix, fmt_name, data
        elif word == b"VALUES" and prev != b"FORMAT":
            cut = settings_pos if settings_pos is not None else start
            prefix = sql[:cut].decode("utf-8")
            suffix = (sql[cut:start].decode("utf-8") + " FORMAT Values") if settings_pos is not None else "FORMAT Values"
            return prefix, suffix, "Values", sql[end:]
        prev = word
    return None


def output_format_clause(sql: str) -> str | None:
    words = list(_scan_words(sql.encode("utf-8"), stop_at_format=False))
    found = None
    for idx, (word, _s, _e, depth) in enumerate(words):
        if word == b"FORMAT" and depth == 0 and idx + 1 < len(words):
            nxt = words[idx + 1]
            found = sql.encode("utf-8")[nxt[1] : nxt[2]].decode("ascii")
    return found


# Statements that only read (ClickHouse allows these with readonly=1/2 and on GET).
READ_ONLY_STATEMENTS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}

# Host names a browser may use for this endpoint. Anything else is refused: a page on another
# origin whose name resolves to 127.0.0.1 (DNS rebinding) must not reach the database.
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def host_allowed(host_header: str | None) -> bool:
    """True for a missing Host (HTTP/1.0 tools) and for loopback names and addresses, with any port."""
    if host_header is None:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8123
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_word(sql: str) -> str:
    for word, *_ in _scan_words(sql.encode("utf-8"), stop_at_format=False):
        return word.decode("ascii")
    return ""


# --------------------------------------------------------------------------
# HTTP-level helpers
# --------------------------------------------------------------------------

# URL parameters that are part of the HTTP protocol, not query settings.
RESERVED_PARAMS = {
    "query", "database", "default_format", "query_id", "compress", "decompress",
    "user", "password", "quota_key", "role", "stacktrace", "buffer_size",
    "wait_end_of_query", "session_id", "session_timeout", "session_check",
    "client_protocol_version", "close_session", "enable_http_compression",
    "http_zlib_compression_level", "http_native_compression_disable_checksumming_on_decompress",
    "add_http_cors_header", "readonly",
}

SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

HTTP_404_CODES = {60, 46, 47, 50, 56, 63, 73, 78, 81, 115, 336}
HTTP_400_CODES = {
    6, 16, 26, 27, 32, 33, 36, 38, 41, 42, 43, 44, 53, 62, 69, 70, 72, 117, 130, 190,
    271, 40, 89, 456, 457,
}
HTTP_403_CODES = {164}


def http_status_for(code: int) -> int:
    if code in HTTP_404_CODES:
        return 404
    if code in HTTP_400_CODES:
        return 400
    if code in HTTP_403_CODES:
        return 403
    return 500


def content_type_for(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")) and not f.startswith("tskv"):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "withnames" in f else "absent")
    if f.startswith("json") or f == "ndjson":
        return "application/json; charset=UTF-8"
    if f == "xml":
        return "application/xml; charset=UTF-8"
    if f.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "protobuf",
                     "msgpack", "capnproto", "npy", "bson", "rawblob", "lineasstring")) and f != "lineasstring":
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


_CODE_PREFIX_RE = re.compile(r"^(?:Code: (\d+)\. (?:DB::\w*Exception: )?)+")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


def parse_engine_error(text: str) -> tuple[int, str, str]:
    """Turn a chdb exception text into (code, NAME, clean message)."""
    text = text.strip()
    m = _CODE_PREFIX_RE.match(text)
    if not m:
        return 1001, "STD_EXCEPTION", text
    code = int(m.group(1))
    body = text[m.end() :]
    cut = body.find(" (version ")
    if cut >= 0:
        body = body[:cut]
    name = "UNKNOWN_EXCEPTION"
    nm = None
    for nm in _NAME_RE.finditer(body):
        pass
    if nm and body.endswith(nm.group(0)):
        name = nm.group(1)
        body = body[: nm.start()].rstrip()
        if body.endswith("."):
            body = body[:-1]
    return code, name, body


def sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident_quote(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


# --------------------------------------------------------------------------
# Engine wrapper
# --------------------------------------------------------------------------


class Result:
    __slots__ = ("data", "summary")

    def __init__(self, data: bytes, summary: dict):
        self.data = data
        self.summary = summary


class Engine:
    def __init__(self, data_dir: str):
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.tmp_dir = os.path.join(self.data_dir, "_http_tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        for name in os.listdir(self.tmp_dir):  # leftovers from a crash
            try:
                os.unlink(os.path.join(self.tmp_dir, name))
            except OSError:
                pass
        self.lock = threading.Lock()
        self.session = chdb.session.Session(self.data_dir)
        self.closed = False
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self.baseline = self._changed_settings()
        # What the session holds between requests, so a request changes only what differs from
        # the last one (each USE or SET is a query of its own, ~0.2-0.3 ms under the lock): the
        # database of the last `USE` (None: unknown), and the settings the last request set.
        self.current_db: str | None = None
        self.applied: dict = {}

    def _scalar(self, sql: str) -> str:
        return self.session.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    def _changed_settings(self) -> dict:
        out = {}
        raw = self.session.query("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow").bytes()
        for line in raw.splitlines():
            if line.strip():
                row = json.loads(line)
                out[row["name"]] = row["value"]
        return out

    def _reset_all_settings(self):
        """Undo any SET a client query did (HTTP requests are stateless)."""
        now = self._changed_settings()
        resets = []
        for name, value in now.items():
            if name == "database":
                continue
            if name in self.baseline:
                if self.baseline[name] != value:
                    resets.append(f"{name} = {sql_quote(self.baseline[name])}")
            else:
                resets.append(f"{name} = DEFAULT")
        for name, value in self.baseline.items():
            if name != "database" and name not in now:
                resets.append(f"{name} = {sql_quote(value)}")
        if resets:
            self.session.query("SET " + ", ".join(resets), "TabSeparated")

    def execute(self, *, database: str, sql: str, fmt: str, settings: dict, params: dict,
                infile_data: bytes | None) -> Result:
        tmp_path = None
        if infile_data is not None:
            fd, tmp_path = tempfile.mkstemp(dir=self.tmp_dir, suffix=".data")
            with os.fdopen(fd, "wb") as f:
                f.write(infile_data)
            sql = sql.replace("\x00INFILE\x00", sql_quote(tmp_path))
        try:
            with self.lock:
                if self.closed:
                    raise CHError(210, "NETWORK_ERROR", "Server is shutting down")
                word = first_word(sql)
                reset_all = word == "SET"
                try:
                    if self.current_db != database:
                        self.current_db = None
                        self.session.query(f"USE {ident_quote(database)}", "TabSeparated")
                        self.current_db = database
                    if self.applied is None:  # (a reset that failed: start from the baseline)
                        self._reset_all_settings()
                        self.applied = {}
                    # this request's settings over the last one's: those it does not name go
                    # back to their defaults, as if each request had its own session
                    changes = [f"{k} = DEFAULT" for k in self.applied if k not in settings]
                    changes += [f"{k} = {sql_quote(v)}" for k, v in settings.items() if self.applied.get(k) != v]
                    if changes:
                        self.applied = None  # (unknown until the SET has run)
                        self.session.query("SET " + ", ".join(changes), "TabSeparated")
                    self.applied = dict(settings)
                    if word == "USE":
                        self.current_db = None
                    t0 = time.perf_counter()
                    res = self.session.query(sql, fmt, params=params or None)
                    elapsed_ns = int((time.perf_counter() - t0) * 1e9)
                    data = res.bytes()
                    summary = {
                        "read_rows": str(res.rows_read()),
                        "read_bytes": str(res.bytes_read()),
                        "written_rows": str(getattr(res, "rows_written", lambda: 0)()),
                        "written_bytes": str(getattr(res, "bytes_written", lambda: 0)()),
                        "total_rows_to_read": str(res.rows_read()),
                        "result_rows": str(res.rows_read()),
                        "result_bytes": str(len(data)),
                        "elapsed_ns": str(elapsed_ns),
                    }
                    return Result(data, summary)
                finally:
                    try:
                        if reset_all or self.applied is None:
                            # a client's own SET, or a SET of ours that failed part way (if this
                            # reset fails too, the next request tries it first)
                            self.applied = None
                            self._reset_all_settings()
                            self.applied = {}
                    except Exception as e:  # noqa: BLE001
                        print(f"warning: failed to reset settings: {e}", file=sys.stderr)
        finally:
            if tmp_path:
                try:
                    os.unlink(tmp_path)
                except OSError:
                    pass

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    self.session.close()
                except Exception as e:  # noqa: BLE001
                    print(f"warning: error closing session: {e}", file=sys.stderr)


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True
    server_version = "chdb-devstack"
    sys_version = ""
    timeout = 60  # idle keep-alive / slow body timeout, seconds
    engine: Engine = None  # set by main()
    max_body_bytes = 256 * 1024 * 1024  # largest request body (Content-Length or chunked); --max-body-bytes

    # quiet default logging; we log one line per request ourselves
    def log_message(self, format, *args):  # noqa: A002
        pass

    def _log(self, status: int, t0: float):
        try:
            parts = urlsplit(self.path)
            shown = []
            for k, v in parse_qsl(parts.query, keep_blank_values=True):
                if k in ("query", "password") or k.startswith("param_"):
                    shown.append(f"{k}=…")
                else:
                    shown.append(f"{k}={v}")
            path = parts.path + (("?" + "&".join(shown)) if shown else "")
        except Exception:  # noqa: BLE001
            path = "?"
        ms = (time.perf_counter() - t0) * 1000
        sys.stderr.write(f"{self.command} {path} {status} {ms:.1f}ms\n")
        sys.stderr.flush()

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise CHError(33, "CANNOT_READ_ALL_DATA", "Unexpected end of chunked request body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                total += size
                if size < 0 or total > self.max_body_bytes:
                    raise CHError(0, "", f"Request body exceeds {self.max_body_bytes} bytes", status=413)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise CHError(33, "CANNOT_READ_ALL_DATA", "Unexpected end of chunked request body")
                chunks.append(data)
                self.rfile.readline(3)  # CRLF after chunk
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            n = int(length)
            if n < 0 or n > self.max_body_bytes:
                raise CHError(0, "", f"Content-Length {n} exceeds {self.max_body_bytes} bytes", status=413)
            data = self.rfile.read(n)
            if len(data) != n:
                raise CHError(33, "CANNOT_READ_ALL_DATA", "Unexpected end of request body")
            return data
        return b""

    def _send(self, status: int, body: bytes, headers: dict):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        t0 = time.perf_counter()
        status = 500
        query_id = str(uuid.uuid4())
        try:
            parts = urlsplit(self.path)
            params = parse_qsl(parts.query, keep_blank_values=True)
            qp: dict[str, str] = {}
            for k, v in params:
                qp[k] = v  # last wins, like ClickHouse
            query_id = qp.get("query_id") or query_id
            if not host_allowed(self.headers.get("Host")):
                self.close_connection = True
                raise CHError(0, "", "Host not allowed: this endpoint answers loopback names only", status=403)
            try:
                body = self._read_body()
            except CHError:
                self.close_connection = True
                raise
            except ValueError:
                self.close_connection = True
                raise CHError(33, "CANNOT_READ_ALL_DATA", "Malformed request body framing")

            path = parts.path.rstrip("/") or "/"
            if path in ("/ping", "/replicas_status") or (path == "/" and "query" not in qp and not body):
                status = 200
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if path != "/":
                raise CHError(0, "", f"There is no handle {parts.path}", status=404)

            status, out, headers = self._run_query(qp, body, query_id)
            self._send(status, out, headers)
        except CHError as e:
            status = e.status or http_status_for(e.code)
            self._send_error(status, e.code, e.name, e.message, query_id)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            status = 499
        except Exception as e:  # noqa: BLE001
            status = 500
            try:
                self._send_error(500, 1001, "STD_EXCEPTION", f"{type(e).__name__}: {e}", query_id)
            except Exception:  # noqa: BLE001
                self.close_connection = True
        finally:
            self._log(status, t0)

    def _send_error(self, status: int, code: int, name: str, message: str, query_id: str):
        ver = self.engine.version if self.engine else "unknown"
        if code == 0 and not name:  # not an engine error (e.g. unknown handler)
            text = message + "\n"
        else:
            text = f"Code: {code}. DB::Exception: {message}. ({name}) (version {ver} (chdb))\n"
        self._send(status, text.encode("utf-8", "replace"), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": "chdb-devstack",
        })

    def _run_query(self, qp: dict, body: bytes, query_id: str):
        # 1. undo HTTP content encoding, then ClickHouse block compression
        enc = (self.headers.get("Content-Encoding") or "").strip().lower()
        if body and enc:
            try:
                if enc in ("gzip", "x-gzip"):
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                elif enc not in ("identity", "none"):
                    raise CHError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown Content-Encoding: {enc}")
            except CHError:
                raise
            except Exception as e:  # noqa: BLE001
                raise CHError(271, "CANNOT_DECOMPRESS", f"Cannot decompress request body ({enc}): {e}")
        if body and qp.get("decompress", "0") not in ("0", "", "false"):
            body = decompress_blocks(body)

        # 2. assemble the statement (query param + body, ClickHouse style)
        qparam = qp.get("query", "").encode("utf-8")
        if qparam and body:
            text = qparam + (b"" if qparam.endswith(b"\n") else b"\n") + body
        else:
            text = qparam or body
        if not text.strip():
            raise CHError(62, "SYNTAX_ERROR", "Empty query")

        # GET is read-only in ClickHouse (readonly=2), and so is any request with readonly=1/2.
        readonly = qp.get("readonly", "0") not in ("0", "", "false") or self.command in ("GET", "HEAD")
        if readonly:
            try:
                word = first_word(text.decode("utf-8")).upper()
            except (UnicodeDecodeError, ValueError):
                word = ""
            if word not in READ_ONLY_STATEMENTS:
                why = "a GET request" if self.command in ("GET", "HEAD") else "readonly mode"
                raise CHError(164, "READONLY", f"Cannot execute {word or 'this statement'} in {why}; use POST without readonly")

        database = qp.get("database") or "default"
        default_format = qp.get("default_format") or "TabSeparated"
        settings = {}
        qparams = {}
        for k, v in qp.items():
            if k.startswith("param_"):
                qparams[k[len("param_"):]] = v
            elif k in RESERVED_PARAMS:
                continue
            else:
                if not SETTING_NAME_RE.match(k):
                    raise CHError(115, "UNKNOWN_SETTING", f"Unknown setting '{k}'")
                settings[k] = v

        ins = None
        try:
            ins = split_insert(text)
        except UnicodeDecodeError:
            raise CHError(62, "SYNTAX_ERROR", "INSERT query text is not valid UTF-8")
        if ins is not None:
            prefix, suffix, fmt_name, data = ins
            sql = prefix.rstrip() + " FROM INFILE \x00INFILE\x00 " + suffix.lstrip()
            out_fmt = default_format
            infile = data
        else:
            try:
                sql = text.decode("utf-8")
            except UnicodeDecodeError:
                raise CHError(62, "SYNTAX_ERROR", "Query is not valid UTF-8")
            out_fmt = default_format
            infile = None
            fmt_clause = output_format_clause(sql)
            if fmt_clause:
                out_fmt = fmt_clause

        try:
            res = self.engine.execute(database=database, sql=sql, fmt=default_format, settings=settings,
                                      params=qparams, infile_data=infile)
        except CHError:
            raise
        except Exception as e:  # noqa: BLE001  (chdb raises ChdbError/RuntimeError)
            code, name, msg = parse_engine_error(str(e))
            raise CHError(code, name, msg)

        out = res.data
        headers = {
            "Content-Type": content_type_for(out_fmt),
            "X-ClickHouse-Format": out_fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "chdb-devstack",
            "X-ClickHouse-Summary": json.dumps(res.summary, separators=(",", ":")),
        }
        if qp.get("compress", "0") not in ("0", "", "false"):
            out = compress_blocks(out)
        elif (qp.get("enable_http_compression", "0") not in ("0", "", "false")
              and "gzip" in (self.headers.get("Accept-Encoding") or "").lower() and out):
            out = gzip.compress(out, compresslevel=3)
            headers["Content-Encoding"] = "gzip"
        return 200, out, headers


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description="ClickHouse HTTP interface on top of chdb (devstack only)")
    ap.add_argument("--host", default=os.environ.get("CH_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("CH_PORT", "8123")))
    ap.add_argument("--data-dir", default=os.environ.get("CH_DATA_DIR", "./data/clickhouse"))
    ap.add_argument("--max-body-bytes", type=int, default=Handler.max_body_bytes,
                    help="largest request body accepted (413 above)")
    args = ap.parse_args(argv)
    Handler.max_body_bytes = args.max_body_bytes

    engine = Engine(args.data_dir)
    Handler.engine = engine

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    httpd = Server((args.host, args.port), Handler)
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    host, port = httpd.server_address[:2]
    print(f"chdb {chdb.__version__} (ClickHouse {engine.version}) listening on http://{host}:{port} "
          f"data-dir={engine.data_dir}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        httpd.shutdown()
        httpd.server_close()
        engine.close()
        print("shut down cleanly", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
