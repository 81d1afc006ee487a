"""Hostile input through nginx: every bad request gets its documented status and
JSON error code, and nothing else is disturbed.

While the whole module runs, a writer thread inserts rows through the API and a
watcher long-polls for them. The last test checks that every acknowledged write
is in the table and was delivered as an event, that no row, table or role
changed that nobody asked to change (a canary table that pbp_app may write
included), and that no process of the stack crashed or was restarted.

Raw sockets send what http.client would refuse or tidy up: invalid UTF-8 in
request lines and headers, oversized headers, byte-at-a-time senders,
truncated and pipelined requests. test_crud.py and test_changes.py hold the
first bad-input cases; this module extends them."""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

import fastcgi_client
from conftest import Client, caught_up_cursor, wait_for

JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
# A subscription no event matches: a poll with it parks until its timeout.
NEVER = {"table": "testtype", "where": {"id": -1}}

# Rows this module asked for; the last test expects exactly these new rows.
CREATED: dict[int, str] = {}
CREATED_LOCK = threading.Lock()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def created(response, value: str | None = None) -> dict:
    """Asserts a 201 and records the row as one this module asked for."""
    assert response.status == 201, response
    row = response.json()
    if value is not None:
        assert row["val"] == value, (row, value)
    with CREATED_LOCK:
        CREATED[row["id"]] = row["val"]
    return row


def expect_error(response, status: int, code: str):
    assert response.status == status, response
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (content_type, response)
    body = json.loads(response.body)
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


# -- raw HTTP -------------------------------------------------------------------

class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


def parse_responses(data: bytes) -> list[RawResponse]:
    """Splits a byte stream into HTTP/1.1 responses (Content-Length framed, or to the end)."""
    responses = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"an incomplete response: {data[:300]!r}"
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        assert parts[0].startswith(b"HTTP/1."), lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if "content-length" in headers:
            length = int(headers["content-length"])
            body, data = rest[:length], rest[length:]
        else:
            body, data = rest, b""
        responses.append(RawResponse(int(parts[1]), headers, body))
    return responses


def one_response_complete(data: bytes) -> bool:
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value)
    return False


def raw_exchange(port: int, data: bytes, timeout: float = 30, source: str | None = None,
                 until_closed: bool = True) -> bytes:
    """Sends bytes as they are and reads until nginx closes the connection, or
    with `until_closed` false until one whole response arrived (nginx lingers
    for seconds on a connection whose body it refused unread).
    (Never half-closes: nginx takes a client's FIN for an abort, 499.)"""
    sock = socket.socket()
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # nginx answered before reading everything (a body over the limit): read the answer
        received = b""
        while until_closed or not one_response_complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received
    finally:
        sock.close()


def raw(port: int, data: bytes, **kwargs) -> RawResponse:
    [response] = parse_responses(raw_exchange(port, data, until_closed=False, **kwargs))
    return response


def request_bytes(method: bytes, target: bytes, body: bytes = b"", headers: list[bytes] = (),
                  length: bool = True) -> bytes:
    head = method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for header in headers:
        head += header + b"\r\n"
    if length and (body or method in (b"POST", b"PUT", b"PATCH")):
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def poll_bytes(cursor: str, subscriptions=(NEVER,), timeout: float = 50) -> bytes:
    body = json.dumps({"cursor": cursor, "subscriptions": list(subscriptions), "timeout": timeout}).encode()
    return request_bytes(b"POST", b"/api/changes", body, [b"Content-Type: application/json"])


# -- the stack's state ------------------------------------------------------------

def status(client: Client) -> dict:
    response = client.operators.get("/api/_status", timeout=10)
    assert response.status == 200, response
    return response.json()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def database_fingerprint(stack) -> dict:
    """What must not change unless asked: the relations of the database, the
    roles, the canary's rows, and the testtype rows that existed before."""
    return {
        "relations": stack.psql(
            "select string_agg(c.relname || ':' || c.relkind::text, ',' order by c.relname) from pg_class c "
            "where c.relnamespace = 'public'::regnamespace").strip(),
        "columns": stack.psql(
            "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ',' order by attnum) "
            "from pg_attribute where attrelid = 'testtype'::regclass and attnum > 0 and not attisdropped").strip(),
        "roles": stack.psql("select string_agg(rolname || ':' || rolsuper, ',' order by rolname) from pg_roles").strip(),
        "canary": stack.psql("select md5(string_agg(id || '=' || v, ',' order by id)) from hostile_canary").strip(),
        "grants": stack.psql(
            "select string_agg(grantee || ':' || table_name || ':' || privilege_type, ',' "
            "order by grantee, table_name, privilege_type) from information_schema.role_table_grants "
            "where table_schema = 'public'").strip(),
    }


def rows_of_testtype(stack) -> dict[int, tuple[str, str]]:
    rows = {}
    out = stack.psql("select id, md5(val), mtime from testtype")
    for line in out.splitlines():
        row_id, digest, mtime = line.split("|")
        rows[int(row_id)] = (digest, mtime)
    return rows


class Background:
    """A writer inserting through the API and a watcher long-polling for its
    rows, both running while the hostile requests go on."""

    def __init__(self, client: Client, stack):
        self.client = client
        self.stack = stack
        self.stop = threading.Event()
        self.acknowledged: dict[int, str] = {}
        self.failures: list = []
        self.delivered: dict[int, str] = {}
        self.resets: list = []
        self.cursor = caught_up_cursor(client, [{"table": "testtype"}])
        self.writer = threading.Thread(target=self._write, daemon=True, name="hostile-writer")
        self.watcher = threading.Thread(target=self._watch, daemon=True, name="hostile-watcher")
        self.watching = True

    def start(self):
        self.watcher.start()
        self.writer.start()

    def _write(self):
        client = Client(self.client.port)
        n = 0
        while not self.stop.is_set():
            value = f"writer-{n}-{uuid.uuid4().hex[:6]}"
            n += 1
            try:
                response = client.post("/api/testtype", {"val": value}, timeout=30)
            except OSError as error:
                self.failures.append(("error", value, repr(error)))
                continue
            if response.status == 201:
                row = response.json()
                self.acknowledged[row["id"]] = value
                with CREATED_LOCK:
                    CREATED[row["id"]] = value
            else:
                self.failures.append((response.status, value, response.body[:200]))
            self.stop.wait(0.05)

    def _watch(self):
        client = Client(self.client.port)
        cursor = self.cursor
        while self.watching:
            try:
                response = client.post("/api/changes", {
                    "cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 2}, timeout=30)
            except OSError as error:
                self.resets.append(repr(error))
                time.sleep(0.1)
                continue
            if response.status != 200:
                self.resets.append(response)
                return
            body = response.json()
            for event in body["events"]:
                if event["op"] == "insert" and not event.get("truncated"):
                    self.delivered[event["key"]] = event["new"]["val"]
            cursor = body["cursor"]

    def finish(self, seconds: float = 60):
        self.stop.set()
        self.writer.join(30)
        deadline = time.monotonic() + seconds
        while not set(self.acknowledged) <= set(self.delivered) and time.monotonic() < deadline and not self.resets:
            time.sleep(0.1)
        self.watching = False
        self.watcher.join(30)


@pytest.fixture(scope="module")
def guard(stack, client):
    """The state before the hostile requests, and the background writer and watcher."""
    stack.psql("drop table if exists hostile_canary; "
               "create table hostile_canary (id int primary key, v text not null); "
               "insert into hostile_canary values (1, 'one'), (2, 'two'), (3, 'three'); "
               "grant select, insert, update, delete, truncate on hostile_canary to pbp_anon")
    log = stack.root / "pbp-fcgi.log"
    state = {
        "master": stack.pid("pbp-fcgi"),
        "notifyd": stack.pid("pbp-notifyd"),
        "nginx": stack.pid("nginx"),
        "workers": sorted(stack.worker_pids()),
        "status_workers": sorted(w["pid"] for w in status(client)["workers"]),
        "fingerprint": database_fingerprint(stack),
        "rows": rows_of_testtype(stack),
        "fcgi_log_offset": log.stat().st_size,
        "nginx_log_offset": (stack.nginx_dir / "error.log").stat().st_size,
    }
    background = Background(client, stack)
    background.start()
    state["background"] = background
    yield state
    background.finish(5)
    # Leave the shared stack as this module found it (a 1 MiB row and some
    # hundreds more would only slow the page tests that follow).
    stack.psql("drop table if exists hostile_canary")
    with CREATED_LOCK:
        ids = sorted(CREATED)
    if ids:
        stack.psql("delete from testtype where id = any('{%s}'::bigint[])" % ",".join(map(str, ids)))


@pytest.fixture(autouse=True)
def _guarded(guard):
    """Every test of this module runs under the guard."""
    yield


# -- malformed and deeply nested JSON ----------------------------------------------

MALFORMED_JSON = [
    b"{'val': 'single quotes'}",
    b'{"val": "x",}',
    b'{"val": "x" "val2": 1}',
    b'{val: "x"}',
    b'{"val": "x"} {"val": "y"}',
    b'{"val": "x"} // comment',
    b'/* comment */ {"val": "x"}',
    b'\xef\xbb\xbf{"val": "bom"}',
    b'{"val": NaN}',
    b'{"val": Infinity}',
    b'{"val": -}',
    b'{"val": 01}',
    b'{"val": 1.}',
    b'{"val": .5}',
    b'{"val": "tab\tinside"}',
    b'{"val": "new\nline"}',
    b'{"val": "\\x41"}',
    b'{"val": "\\u00"}',
    b'{"val": "\\ud800"}',
    b'{"val": "\\udc00"}',
    b'{"val": "\\u0000"}',
    b'{"val": "unterminated}',
    b'{"val": tru}',
    b'{"val": nul}',
    b'{"val" "x"}',
    b'{"val": "\xc0\xaf"}',
    b'{"val": "\xed\xa0\x80"}',
    b'{"v\xffal": "x"}',
    '{"val": "x"}'.encode("utf-16"),
    b"   ",
    b"\x00",
    b'{"a":' * 33 + b"1" + b"}" * 33,
    b"[" * 400_000 + b"]" * 400_000,
    b'{"a":' * 150_000 + b"1" + b"}" * 150_000,
    b'{"a":[' * 80_000,
]


@pytest.mark.parametrize("method, path", [("POST", "/api/testtype"), ("PUT", "/api/testtype/1"),
                                          ("PATCH", "/api/testtype/1"), ("POST", "/api/changes")])
def test_malformed_and_deeply_nested_json_is_invalid_json(client, method, path):
    for body in MALFORMED_JSON:
        response = client.request(method, path, body=body, headers=JSON_TYPE)
        if path == "/api/changes" and len(body) > 64 * 1024:
            # A poll's body over 64 KiB is refused before it is parsed.
            expect_error(response, 413, "body_too_large")
        else:
            expect_error(response, 400, "invalid_json")


def test_nesting_up_to_the_limit_is_parsed_and_judged(client):
    # 32 levels parse; then the value is judged by its type, not as broken JSON.
    def nested(levels):
        value = 1
        for _ in range(levels):
            value = {"x": value}
        return value
    expect_error(client.post("/api/testtype", {"val": nested(31)}), 422, "invalid_value")
    expect_error(client.post("/api/testtype", {"val": nested(32)}), 400, "invalid_json")
    poll = {"subscriptions": [{"table": "testtype", "where": {"id": nested(28)}}]}
    expect_error(client.post("/api/changes", poll), 400, "invalid_subscription")
    poll = {"subscriptions": [{"table": "testtype", "where": {"id": nested(29)}}]}
    expect_error(client.post("/api/changes", poll), 400, "invalid_json")


# -- wrong types -------------------------------------------------------------------

@pytest.mark.parametrize("value", [5, 1.5, -0, True, False, [1, 2], [], {"a": 1}, {}, 1e308])
def test_a_value_of_the_wrong_type_is_invalid_value(client, value):
    expect_error(client.post("/api/testtype", {"val": value}), 422, "invalid_value")
    row = created(client.post("/api/testtype", {"val": unique("typed")}))
    expect_error(client.patch(f"/api/testtype/{row['id']}", {"val": value}), 422, "invalid_value")
    expect_error(client.put(f"/api/testtype/{row['id']}", {"val": value}), 422, "invalid_value")
    assert client.get(f"/api/testtype/{row['id']}").json() == row


@pytest.mark.parametrize("body, status, code", [
    ("null", 422, "invalid_body"),
    ('"val"', 422, "invalid_body"),
    ("42", 422, "invalid_body"),
    ("true", 422, "invalid_body"),
    ('[{"val": "x"}]', 422, "invalid_body"),
])
def test_a_body_that_is_not_an_object_of_columns(client, body, status, code):
    expect_error(client.post("/api/testtype", body, headers=JSON_TYPE), status, code)


def test_the_maintained_columns_in_a_body_are_ignored_whatever_they_hold(client):
    value = unique("echo")
    row = created(client.post("/api/testtype", {"val": value, "id": "1; drop table testtype", "mtime": [1]}), value)
    patched = client.patch(f"/api/testtype/{row['id']}", {"val": value + "-2", "id": {"x": 1}, "mtime": "garbage"})
    assert patched.status == 200 and patched.json()["id"] == row["id"] and patched.json()["val"] == value + "-2"
    with CREATED_LOCK:
        CREATED[row["id"]] = value + "-2"
    expect_error(client.patch(f"/api/testtype/{row['id']}", {"id": 5, "mtime": "x"}), 422, "no_fields")


@pytest.mark.parametrize("body, status, code", [
    ([], 400, "invalid_poll"),
    ("subscriptions", 400, "invalid_poll"),
    (None, 400, "invalid_poll"),
    ({"subscriptions": {"table": "testtype"}}, 400, "invalid_poll"),
    ({"subscriptions": "testtype"}, 400, "invalid_poll"),
    ({"subscriptions": None}, 400, "invalid_poll"),
    ({"subscriptions": ["testtype"]}, 400, "invalid_subscription"),
    ({"subscriptions": [None]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": 5}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": ["testtype"]}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": None}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype", "where": "id=1"}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype", "where": 5}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype", "where": {"id": None}}]}, 400, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype", "where": {"id": [1]}}]}, 400, "invalid_subscription"),
    ({"cursor": ["x"], "subscriptions": [{"table": "testtype"}]}, 400, "invalid_cursor"),
    ({"cursor": {}, "subscriptions": [{"table": "testtype"}]}, 400, "invalid_cursor"),
    ({"cursor": True, "subscriptions": [{"table": "testtype"}]}, 400, "invalid_cursor"),
    ({"cursor": "", "subscriptions": [{"table": "testtype"}]}, 400, "invalid_cursor"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": [5]}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": {"s": 5}}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": True}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": -1}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": "soon"}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": "inf"}, 400, "invalid_timeout"),
    ({"subscriptions": [{"table": "testtype"}], "timeout": "nan"}, 400, "invalid_timeout"),
])
def test_a_poll_of_the_wrong_shape(client, body, status, code):
    expect_error(client.post("/api/changes", json.dumps(body), headers=JSON_TYPE, timeout=10), status, code)


# -- invalid UTF-8 and NUL -----------------------------------------------------------

@pytest.mark.parametrize("data, status, code", [
    # Raw bytes in the request line reach the worker as U+FFFD: still only a name that matches nothing.
    (request_bytes(b"GET", b"/api/test\xfftype"), 404, "unknown_table"),
    (request_bytes(b"GET", b"/api/testtype/\xff\xfe"), 404, "not_found"),
    (request_bytes(b"GET", b"/api/testtype?limit=\xff"), 400, "invalid_limit"),
    (request_bytes(b"GET", b"/api/testtype?after=\xc3\x28"), 422, "invalid_value"),
    (request_bytes(b"GET", b"/api/changes?table=testtype&cursor=\xff"), 400, "invalid_cursor"),
    (request_bytes(b"GET", b"/api/changes?table=test\xfftype"), 404, "unknown_table"),
    # Percent-escapes that do not decode to UTF-8 are refused.
    (request_bytes(b"GET", b"/api/testtype?limit=%FF"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/testtype?after=%C0%AF"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/changes?table=testtype&where.id=%ED%A0%80"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/changes?table=test%FEtype"), 400, "invalid_encoding"),
    # NUL would cut a libpq parameter short: refused wherever it can be written.
    (request_bytes(b"GET", b"/api/testtype?after=1%00abc"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/testtype?limit=5%00"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/changes?table=testtype%00"), 400, "invalid_encoding"),
    (request_bytes(b"GET", b"/api/testtype/1%00"), 400, "bad_request"),
    (request_bytes(b"GET", b"/api/testtype/1%2500"), 404, "not_found"),
    (request_bytes(b"POST", b"/api/testtype", b"val=a%00b", [b"Content-Type: application/x-www-form-urlencoded"]),
     400, "invalid_encoding"),
    (request_bytes(b"PUT", b"/api/testtype", b"id=1%00&val=x", [b"Content-Type: application/x-www-form-urlencoded"]),
     400, "invalid_encoding"),
    # Bodies.
    (request_bytes(b"POST", b"/api/testtype", b"val=\xff\xfe", [b"Content-Type: application/x-www-form-urlencoded"]),
     400, "invalid_form"),
    (request_bytes(b"POST", b"/api/testtype", b"val=%FF", [b"Content-Type: application/x-www-form-urlencoded"]),
     400, "invalid_encoding"),
    (request_bytes(b"POST", b"/api/testtype", b'{"val": "\xe2\x82"}', [b"Content-Type: application/json"]),
     400, "invalid_json"),
    (request_bytes(b"POST", b"/api/changes", b'{"subscriptions": [{"table": "test\xfftype"}]}',
                   [b"Content-Type: application/json"]), 400, "invalid_json"),
    # Headers.
    (request_bytes(b"POST", b"/api/testtype", b'{"val": "x"}', [b"Content-Type: application/json\xff"]),
     415, "unsupported_media_type"),
    (request_bytes(b"POST", b"/api/changes", b'{}', [b"Content-Type: \xfe\xff"]), 415, "unsupported_media_type"),
])
def test_invalid_utf8_and_nul(stack, data, status, code):
    expect_error(raw(stack.port, data), status, code)


def test_an_id_is_decoded_once_and_names_a_row_only_in_range(client):
    row = created(client.post("/api/testtype", {"val": unique("decode")}))
    digits = str(row["id"])
    # nginx decodes %25 to %; a second decoding would have read %3N as the digit N.
    twice = f"%25{ord(digits[0]):X}{digits[1:]}"
    for method, body in [("GET", None), ("PATCH", {"val": "x"}), ("DELETE", None)]:
        expect_error(client.request(method, f"/api/testtype/{twice}", body=body), 404, "not_found")
        for key in ["9223372036854775808", "-9223372036854775809", "99999999999999999999", "1" + "0" * 40, "-",
                    "0x10", "1e3", "+1", " 1", "1.0"]:
            expect_error(client.request(method, f"/api/testtype/{q(key)}", body=body), 404, "not_found")
    assert client.get(f"/api/testtype/{row['id']}").json() == row


def test_invalid_utf8_in_headers_the_api_does_not_use_is_harmless(stack):
    for header in [b"If-None-Match: \xff\xfe", b"If-Modified-Since: \xc3\x28", b"X-Anything: \x80\x80",
                   b"Cookie: a=\xff"]:
        response = raw(stack.port, request_bytes(b"GET", b"/api/testtype?limit=1", headers=[header]))
        assert response.status == 200, (header, response)
        assert isinstance(response.json(), list)


# -- unknown tables and columns -------------------------------------------------------

UNKNOWN_TABLES = ["pg_class", "pg_authid", "information_schema.tables", "public.testtype", "TESTTYPE",
                  "testtype ", '"testtype"', "table_mtime", "hostile_canary", "openapi.json.x", "_status2",
                  "testtype;", "x" * 4000]


@pytest.mark.parametrize("name", UNKNOWN_TABLES)
def test_unknown_tables_with_every_method(client, name):
    quoted = urllib.parse.quote(name, safe="")
    for method, path, body in [("GET", f"/api/{quoted}", None), ("POST", f"/api/{quoted}", {"val": "x"}),
                               ("GET", f"/api/{quoted}/1", None), ("PUT", f"/api/{quoted}/1", {"val": "x"}),
                               ("PATCH", f"/api/{quoted}/1", {"val": "x"}), ("DELETE", f"/api/{quoted}/1", None)]:
        expect_error(client.request(method, path, body=body), 404, "unknown_table")
    expect_error(client.get(f"/api/changes?table={quoted}"), 404, "unknown_table")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype"}, {"table": name}]}),
                 404, "unknown_table")


@pytest.mark.parametrize("column", ["VAL", "val ", " val", "Val", "testtype.val", "val\u200b", "", "mtime2",
                                    "oid", "ctid", "xmin", "tableoid", "id; drop table testtype"])
def test_unknown_columns(client, column):
    expect_error(client.post("/api/testtype", {"val": "x", column: "y"}), 422, "unknown_column")
    row = created(client.post("/api/testtype", {"val": unique("col")}))
    expect_error(client.patch(f"/api/testtype/{row['id']}", {column: "y"}), 422, "unknown_column")
    form = urllib.parse.urlencode({"val": "x", column: "y"})
    expect_error(client.post("/api/testtype", form, headers=FORM_TYPE), 422, "unknown_column")
    assert client.get(f"/api/testtype/{row['id']}").json() == row


# -- SQL-injection text in every name and value position ---------------------------------

INJECTIONS = [
    "'; drop table testtype; --",
    "1; drop table hostile_canary",
    "1' or '1'='1",
    "1 or 1=1",
    '" or ""="',
    "1); update hostile_canary set v = 'pwned'; --",
    "$1",
    "$$; drop table hostile_canary; $$",
    "1; select pg_sleep(5)",
    'testtype"; delete from testtype; --',
    "\\'; truncate testtype; --",
    "1 union select rolname from pg_roles",
    "\u02bc; drop table hostile_canary; --",
    "x'::text); delete from hostile_canary; --",
    "%27%3B drop table testtype",
    "'||(select string_agg(rolname, ',') from pg_roles)||'",
    "') on conflict do nothing; insert into hostile_canary values (9, 'x'); --",
]


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_text_in_every_position(client, stack, payload):
    p = q(payload)
    # Table names: in the path, in a poll's query and body.
    expect_error(client.get(f"/api/{p}"), 404, "unknown_table")
    expect_error(client.post(f"/api/{p}", {"val": "x"}), 404, "unknown_table")
    expect_error(client.delete(f"/api/{p}/1"), 404, "unknown_table")
    expect_error(client.get(f"/api/changes?table={p}"), 404, "unknown_table")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": payload}]}), 404, "unknown_table")

    # Row ids: in the path, in the original's form bodies.
    for method, body in [("GET", None), ("PUT", {"val": "x"}), ("PATCH", {"val": "x"}), ("DELETE", None)]:
        expect_error(client.request(method, f"/api/testtype/{p}", body=body), 404, "not_found")
    expect_error(client.put("/api/testtype", f"id={p}&val=x", headers=FORM_TYPE), 404, "not_found")
    expect_error(client.delete("/api/testtype", body=f"id={p}", headers=FORM_TYPE), 404, "not_found")

    # Column names: JSON keys and form keys.
    expect_error(client.post("/api/testtype", {"val": "x", payload: "y"}), 422, "unknown_column")
    expect_error(client.post("/api/testtype", f"val=x&{p}=y", headers=FORM_TYPE), 422, "unknown_column")

    # Values: stored exactly as sent, as JSON and as a form, and patched in.
    row = created(client.post("/api/testtype", {"val": payload}), payload)
    assert client.get(f"/api/testtype/{row['id']}").json()["val"] == payload
    created(client.post("/api/testtype", f"val={p}", headers=FORM_TYPE), payload)
    patched = client.patch(f"/api/testtype/{row['id']}", {"val": payload + payload})
    assert patched.status == 200 and patched.json()["val"] == payload + payload
    with CREATED_LOCK:
        CREATED[row["id"]] = payload + payload
    assert stack.psql(f"select val from testtype where id = {row['id']}").rstrip("\n") == payload + payload

    # Query parameters.
    expect_error(client.get(f"/api/testtype?limit={p}"), 400, "invalid_limit")
    expect_error(client.get(f"/api/testtype?after={p}"), 422, "invalid_value")
    listed = client.get(f"/api/testtype?limit=2&order={p}&sort={p}&{p}={p}")
    assert listed.status == 200 and len(listed.json()) <= 2, "unknown collection parameters are ignored"
    expect_error(client.get(f"/api/changes?table=testtype&cursor={p}"), 400, "invalid_cursor")
    expect_error(client.get(f"/api/changes?table=testtype&timeout={p}"), 400, "invalid_timeout")
    expect_error(client.get(f"/api/changes?table=testtype&{p}=1"), 400, "unknown_parameter")
    expect_error(client.post("/api/changes", {"cursor": payload, "subscriptions": [{"table": "testtype"}]}),
                 400, "invalid_cursor")

    # Filters never reach SQL: a value is compared with event rows only, a
    # column name looked up in the table's description only.
    assert client.get(f"/api/changes?table=testtype&where.val={p}", timeout=10).status == 200
    expect_error(client.get(f"/api/changes?table=testtype&where.{p}=1", timeout=10), 400, "unknown_column")
    poll = {"subscriptions": [{"table": "testtype", "where": {"val": payload}}]}
    assert client.post("/api/changes", poll, timeout=10).status == 200
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": {payload: "x"}}]}),
                 400, "unknown_column")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": {"id": payload}}]}),
                 400, "invalid_filter")

    # Headers.
    conditional = client.get("/api/testtype?limit=1", headers={"If-None-Match": payload.encode(),
                                                               "If-Modified-Since": payload.encode()})
    assert conditional.status == 200
    expect_error(client.post("/api/testtype", "{}", headers={"Content-Type": payload.encode()}),
                 415, "unsupported_media_type")


# -- forged and truncated cursors --------------------------------------------------------

def test_forged_and_truncated_cursors(client):
    real = caught_up_cursor(client, [NEVER])
    epoch, seq = real.split(":")
    invalid = [
        real[1:], real[:8], real[:17],  # truncated
        epoch, epoch + ":", ":" + seq, epoch[:-1] + ":" + seq, epoch[:8],
        epoch.upper() + ":" + seq if epoch != epoch.upper() else "G" + epoch[1:] + ":" + seq,
        f"{epoch}:0{seq}", f"{epoch}:-1", f"{epoch}:+1", f"{epoch}: 1", f" {real}", f"{real} ",
        f"{epoch}:{seq}:1", f"{epoch}:1e3", f"{epoch}:18446744073709551616", "0" * 16 + ":1",
        f"{epoch}:{'9' * 30}", "ffffffffffffffff", real.replace(":", ";"), real + "\n",
        "x" * 37, "x" * 60_000, real * 2,
    ]
    for cursor in invalid:
        body = {"cursor": cursor, "subscriptions": [NEVER], "timeout": 0}
        expect_error(client.post("/api/changes", body, timeout=10), 400, "invalid_cursor")
        if len(cursor) < 4000:
            expect_error(client.get(f"/api/changes?table=testtype&cursor={q(cursor)}&timeout=0", timeout=10),
                         400, "invalid_cursor")
    # A poll's body over 64 KiB is refused before it is parsed.
    expect_error(client.post("/api/changes", {"cursor": "x" * 100_000, "subscriptions": [NEVER]}, timeout=10),
                 413, "body_too_large")
    # Well formed but never issued, of another epoch: the client is told to
    # reset, with the newest cursor.
    other_epoch = ("1" if epoch[0] != "1" else "2") + epoch[1:]
    for cursor in [f"{other_epoch}:{seq}", "ffffffffffffffff:18446744073709551615"]:
        body = expect_error(client.post("/api/changes", {"cursor": cursor, "subscriptions": [NEVER], "timeout": 1},
                                        timeout=20), 409, "reset")
        assert body["cursor"].split(":")[0] == epoch
    # Of this epoch but ahead of the stream: a worker (or a host, on the wal
    # source) that is behind cannot tell it from one another has handed out,
    # so after its grace the sender gets it back with no events; it harms
    # only the sender, who gets nothing until the stream gets there.
    for cursor in [f"{epoch}:18446744073709551615", f"{epoch}:{int(seq) + 10_000_000}"]:
        response = client.post("/api/changes", {"cursor": cursor, "subscriptions": [NEVER], "timeout": 1}, timeout=20)
        assert response.status == 200 and response.json() == {"events": [], "cursor": cursor}, response


# -- thousands of subscriptions, limits out of range -------------------------------------------

def test_thousands_of_subscriptions_in_one_poll(client):
    expect_error(client.post("/api/changes", {"subscriptions": [NEVER] * 257}), 400, "too_many_subscriptions")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype"}] * 1_000}),
                 400, "too_many_subscriptions")
    # A poll's body is capped (64 KiB) before it is parsed: parsing costs more than answering.
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype"}] * 40_000}),
                 413, "body_too_large")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "nope"}] * 40_000}),
                 413, "body_too_large")
    # Filters are bounded too: in number per subscription, in bytes per name and value, and in all.
    many_filters = {f"col{n}": n for n in range(20_000)}
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": many_filters}]}),
                 413, "body_too_large")
    expect_error(client.post("/api/changes", {"subscriptions": [
        {"table": "testtype", "where": {f"col{n}": n for n in range(17)}}]}), 400, "too_many_filters")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": {"c" * 257: 1}}]}),
                 400, "filter_too_long")
    expect_error(client.get("/api/changes?table=testtype&where.val=" + "v" * 1025), 400, "filter_too_long")
    big = [{"table": "testtype", "where": {"val": "v" * 1000, "c": "w" * 1000}} for _ in range(20)]
    expect_error(client.post("/api/changes", {"subscriptions": big}), 400, "filters_too_large")
    # Within every cap, the table's columns judge next.
    most = {f"c{n}": "v" * 1000 for n in range(16)}
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": most}], "timeout": 0}),
                 400, "unknown_column")
    longest = {"val": "v" * 1024, "id": "9" * 18}
    response = client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": longest}], "timeout": 0})
    assert response.status == 200, response

    # The most allowed, parked, and answered with the indexes of all that match.
    subscriptions = [{"table": "testtype", "where": {"val": f"fan-{n % 4}"}} for n in range(256)]
    cursor = caught_up_cursor(client, [NEVER])
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=client.post(
        "/api/changes", {"cursor": cursor, "subscriptions": subscriptions, "timeout": 30}, timeout=60)), daemon=True)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), f"answered before any matching change: {result}"
    row = created(client.post("/api/testtype", {"val": "fan-1"}), "fan-1")
    thread.join(30)
    assert not thread.is_alive(), "the poll with 256 subscriptions was not answered"
    response = result["response"]
    assert response.status == 200, response
    [event] = response.json()["events"]
    assert event["key"] == row["id"] and event["matches"] == [n for n in range(256) if n % 4 == 1]


@pytest.mark.parametrize("limit", ["10001", "1e3", " 5", "5 ", "0x10", "1.0", "99999999999999999999999", "",
                                   "\uff15", "-0"])
def test_limits_out_of_range(client, limit):
    expect_error(client.get(f"/api/testtype?limit={q(limit)}"), 400, "invalid_limit")


def test_timeouts_out_of_range(client, stack):
    for timeout in ["-1", "-0.001", "inf", "-inf", "nan", "abc", "", "1s", "0x"]:
        expect_error(client.get(f"/api/changes?table=testtype&timeout={q(timeout)}"), 400, "invalid_timeout")
    # Too long is capped at --max-poll-timeout, never an overflow: these once trapped a worker.
    workers = sorted(stack.worker_pids())
    for timeout in ["1e20", "1e308", "9223372036854775807", "99999999999"]:
        response = client.get(f"/api/changes?table=testtype&timeout={timeout}", timeout=10)
        assert response.status == 200 and response.json()["events"] == [], response
        response = client.post("/api/changes", json.dumps({"subscriptions": [NEVER], "timeout": float(timeout)}),
                               headers=JSON_TYPE, timeout=10)
        assert response.status == 200, response
    assert sorted(stack.worker_pids()) == workers


# -- what nginx refuses itself: JSON too --------------------------------------------------------

NGINX_REFUSALS = [
    ("a header over 8 KiB", request_bytes(b"GET", b"/api/testtype", headers=[b"X-Big: " + b"a" * 9000]),
     431, "header_too_large"),
    ("a cookie over 8 KiB", request_bytes(b"GET", b"/api/testtype", headers=[b"Cookie: " + b"a=" * 5000]),
     431, "header_too_large"),
    ("headers over 32 KiB", request_bytes(b"GET", b"/api/testtype",
                                          headers=[b"X-H%d: " % n + b"a" * 7000 for n in range(6)]),
     431, "header_too_large"),
    ("thousands of headers", request_bytes(b"GET", b"/api/testtype",
                                           headers=[b"X-H%d: a" % n for n in range(4000)]),
     431, "header_too_large"),
    ("a request line over 8 KiB", request_bytes(b"GET", b"/api/testtype?after=" + b"1" * 9000), 414, "uri_too_long"),
    ("a garbage request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
    ("binary noise", bytes(range(256)) + b"\r\n\r\n", 400, "bad_request"),
    ("a TLS hello on the plain port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, 400, "bad_request"),
    ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request"),
    ("HTTP/3.0", b"GET /api/testtype HTTP/3.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
    ("no Host", b"GET /api/testtype HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    ("two Hosts", request_bytes(b"GET", b"/api/testtype", headers=[b"Host: other"]), 400, "bad_request"),
    ("a lower-case method", request_bytes(b"get", b"/api/testtype"), 400, "bad_request"),
    ("a method with a semicolon", request_bytes(b"DELETE;", b"/api/testtype/1"), 400, "bad_request"),
    ("TRACE", request_bytes(b"TRACE", b"/api/testtype"), 405, "method_not_allowed"),
    ("a header name with a space", request_bytes(b"GET", b"/api/testtype", headers=[b"Bad Name: x"]),
     400, "bad_request"),
    ("a folded header", request_bytes(b"GET", b"/api/testtype", headers=[b"X-A: a", b" folded"]), 400, "bad_request"),
    ("a path above the root", request_bytes(b"GET", b"/api/../../etc/passwd"), 400, "bad_request"),
    ("Content-Length and chunked", request_bytes(
        b"POST", b"/api/testtype", b"0\r\n\r\n",
        [b"Content-Type: application/json", b"Transfer-Encoding: chunked"]), 400, "bad_request"),
    ("two Content-Lengths", request_bytes(b"POST", b"/api/testtype", b"{}",
                                          [b"Content-Length: 3", b"Content-Type: application/json"]),
     400, "bad_request"),
    ("a negative Content-Length", request_bytes(b"POST", b"/api/testtype", headers=[b"Content-Length: -1"],
                                                length=False), 400, "bad_request"),
    ("a huge Content-Length", request_bytes(b"POST", b"/api/testtype",
                                            headers=[b"Content-Length: 99999999999999999999999"], length=False),
     400, "bad_request"),
    ("an unknown transfer coding", request_bytes(b"POST", b"/api/testtype",
                                                 headers=[b"Transfer-Encoding: gzip"], length=False),
     501, "not_implemented"),
    ("a broken chunk", request_bytes(b"POST", b"/api/testtype", b"ZZ\r\nxx\r\n0\r\n\r\n",
                                     [b"Transfer-Encoding: chunked", b"Content-Type: application/json"],
                                     length=False), 400, "bad_request"),
]


@pytest.mark.parametrize("what, data, status, code", NGINX_REFUSALS, ids=[case[0] for case in NGINX_REFUSALS])
def test_what_nginx_refuses_is_answered_as_json(stack, what, data, status, code):
    expect_error(raw(stack.port, data), status, code)


# Every 405 names the methods the resource has (RFC 9110, 15.5.6), nginx's own
# (TRACE, a write to a static file) as well as the API's.
ALLOW_CASES = [
    ("TRACE", "/api/testtype", "GET, HEAD, POST"),
    ("TRACE", "/api/testtype?limit=1", "GET, HEAD, POST"),
    ("TRACE", "/api/testtype/1", "GET, HEAD, PUT, PATCH, DELETE"),
    ("TRACE", "/api/changes", "GET, POST"),
    ("TRACE", "/api/_status", "GET, HEAD"),
    ("TRACE", "/api/openapi.json", "GET, HEAD"),
    ("TRACE", "/", "GET, HEAD"),
    ("POST", "/index.html", "GET, HEAD"),
    ("OPTIONS", "/api/testtype", "GET, HEAD, POST"),
    ("OPTIONS", "/api/testtype/1", "GET, HEAD, PUT, PATCH, DELETE"),
    ("DELETE", "/api/changes", "GET, POST"),
    ("PUT", "/api/testtype", "GET, HEAD, POST"),
]


@pytest.mark.parametrize("method, path, allow", ALLOW_CASES, ids=[f"{m} {p}" for m, p, _ in ALLOW_CASES])
def test_every_405_carries_allow(stack, method, path, allow):
    response = raw(stack.port, request_bytes(method.encode(), path.encode(), b"{}" if method == "PUT" else b"",
                                             [b"Content-Type: application/json"] if method == "PUT" else []))
    expect_error(response, 405, "method_not_allowed")
    assert response.headers.get("allow") == allow, response.headers


# -- bodies over the limit, truncated and pipelined requests ----------------------------------------

def count_rows_with(stack, value: str) -> int:
    return int(stack.psql(f"select count(*) from testtype where val like '{value}%'").strip())


def test_bodies_over_the_limit(stack, client):
    marker = unique("huge")
    big = json.dumps({"val": marker + "x" * (1 << 20)}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                       for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
    cases = [
        # Declared too large: refused before the body is read.
        request_bytes(b"POST", b"/api/testtype", headers=[b"Content-Type: application/json",
                                                          b"Content-Length: 2000000"], length=False),
        request_bytes(b"POST", b"/api/changes", headers=[b"Content-Type: application/json",
                                                         b"Content-Length: 1048577"], length=False),
        request_bytes(b"PUT", b"/api/testtype/1", headers=[b"Content-Type: application/json",
                                                           b"Content-Length: 5000000"], length=False),
        # Chunked, so that only counting the bytes finds out.
        request_bytes(b"POST", b"/api/testtype", chunked, [b"Content-Type: application/json",
                                                           b"Transfer-Encoding: chunked"], length=False),
    ]
    for data in cases:
        expect_error(raw(stack.port, data), 413, "body_too_large")
    # Exactly at the limit is fine.
    value = marker + "y" * ((1 << 20) - len(json.dumps({"val": marker})))
    at_limit = json.dumps({"val": value}).encode()
    assert len(at_limit) == (1 << 20)
    row = created(client.post("/api/testtype", at_limit, headers=JSON_TYPE))
    assert row["val"] == value
    assert count_rows_with(stack, marker) == 1


def test_truncated_requests_write_nothing(stack, client):
    marker = unique("truncated")
    body = json.dumps({"val": marker}).encode()
    partial = [
        request_bytes(b"POST", b"/api/testtype", body, [b"Content-Type: application/json"])[:-3],
        request_bytes(b"POST", b"/api/testtype", body + b" " * 100, [b"Content-Type: application/json"])[:-100],
        request_bytes(b"POST", b"/api/testtype", body, [b"Content-Type: application/json"]).split(b"\r\n\r\n")[0],
        (b"POST /api/testtype HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
         b"Content-Type: application/json\r\n\r\n%x\r\n%s\r\n" % (len(body), body)),  # no last chunk
    ]
    for data in partial:
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        sock.sendall(data)
        time.sleep(0.05)
        sock.close()
    # A truncated request that nginx does pass on (its Content-Length is what was sent) is judged as JSON.
    expect_error(client.post("/api/testtype", body[:-2], headers=JSON_TYPE), 400, "invalid_json")
    time.sleep(0.5)
    assert count_rows_with(stack, marker) == 0
    assert client.get("/api/testtype?limit=1").status == 200


def test_a_fastcgi_body_shorter_than_its_content_length_is_refused_and_writes_nothing(stack, client):
    """Past nginx, straight to the worker's socket: a STDIN stream that ends
    (or a connection that is half-closed) before CONTENT_LENGTH bytes is a
    cut-short body, never a complete one."""
    marker = unique("cut-short")
    for content_type, body in [(FORM_TYPE["Content-Type"], f"val={marker}-and-the-rest-of-the-value".encode()),
                               (JSON_TYPE["Content-Type"], json.dumps({"val": marker + "-and-more"}).encode())]:
        # The first 20 bytes decode as a complete form (`val=cut-short-…`) or as broken JSON.
        sent = body[:20]
        params = fastcgi_client.params_for("POST", "/api/testtype", content_type, content_length=len(body))
        for options in [{"end_stdin": True}, {"end_stdin": False, "half_close": True}]:
            response = fastcgi_client.exchange(stack.fcgi_socket, params, sent, **options)
            assert response.status == 400, (options, response)
            assert response.headers["content-type"].startswith("application/json"), response
            assert response.json()["error"] == "truncated_body", response
    # The whole body, as declared, is still written.
    whole = f"val={marker}-whole".encode()
    params = fastcgi_client.params_for("POST", "/api/testtype", FORM_TYPE["Content-Type"], content_length=len(whole))
    response = fastcgi_client.exchange(stack.fcgi_socket, params, whole)
    assert response.status == 201, response
    created_row = response.json()
    with CREATED_LOCK:
        CREATED[created_row["id"]] = created_row["val"]
    assert count_rows_with(stack, marker) == 1


def test_the_poll_socket_serves_nothing_but_polls(stack, client):
    """Its threads never run SQL: a CRUD request sent there (nginx never
    does) is answered 404 without touching the database."""
    marker = unique("misrouted")
    body = f"val={marker}".encode()
    for method, path, stdin in [("GET", "/api/testtype", b""), ("POST", "/api/testtype", body),
                                ("GET", "/api/_status", b"")]:
        params = fastcgi_client.params_for(method, path, FORM_TYPE["Content-Type"] if stdin else None,
                                           content_length=len(stdin))
        response = fastcgi_client.exchange(stack.fcgi_poll_socket, params, stdin)
        assert response.status == 404 and response.json()["error"] == "not_found", (path, response)
    poll = json.dumps({"subscriptions": [{"table": "testtype"}], "timeout": 0}).encode()
    params = fastcgi_client.params_for("POST", "/api/changes", JSON_TYPE["Content-Type"], content_length=len(poll))
    response = fastcgi_client.exchange(stack.fcgi_poll_socket, params, poll)
    assert response.status == 200 and "cursor" in response.json(), response
    assert count_rows_with(stack, marker) == 0


def test_pipelined_requests_and_garbage(stack):
    keep = b"GET /api/testtype?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for garbage, status, code in [(b"XYZZY /\x01 HTTP/9\r\n\r\n", 400, "bad_request"),
                                  (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
                                   400, "bad_request"),
                                  (b"GET /api/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                   404, "unknown_table")]:
        responses = parse_responses(raw_exchange(stack.port, keep + keep + garbage))
        assert [r.status for r in responses] == [200, 200, status], responses
        assert isinstance(responses[0].json(), list) and isinstance(responses[1].json(), list)
        expect_error(responses[2], status, code)
    # A request hidden in a body is data, never a second request.
    marker = unique("smuggled")
    hidden = f"GET /api/testtype HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    inner = json.dumps({"val": marker, "x": hidden.decode()}).encode()
    response = raw(stack.port, request_bytes(b"POST", b"/api/testtype", inner, [b"Content-Type: application/json"]))
    expect_error(response, 422, "unknown_column")
    assert count_rows_with(stack, marker) == 0


# -- slow clients and floods ------------------------------------------------------------------

def test_slow_clients_sending_a_byte_at_a_time_block_no_one(stack, client):
    """More slow senders than the pool has accepting threads (nginx reads whole
    requests before passing them on): everyone else is served meanwhile, and
    each slow request is answered correctly once complete."""
    accepting_threads = stack.workers * stack.threads
    senders = accepting_threads + 4
    values = [unique(f"slow{n}") for n in range(senders)]
    results: dict[int, RawResponse | Exception] = {}
    progress = {"started": 0, "finished": 0}
    lock = threading.Lock()

    def dribble(n: int):
        body = json.dumps({"val": values[n]}).encode()
        data = request_bytes(b"POST", b"/api/testtype", body, [b"Content-Type: application/json"])
        try:
            sock = socket.create_connection(("127.0.0.1", stack.port), timeout=60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with lock:
                progress["started"] += 1
            for i in range(len(data)):
                sock.send(data[i:i + 1])
                time.sleep(0.015)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            sock.close()
            [results[n]] = parse_responses(received)
        except Exception as error:  # noqa: BLE001 - reported below
            results[n] = error
        finally:
            with lock:
                progress["finished"] += 1

    # Slowloris too: headers that never end, held open for the whole test.
    idle = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=60)
        sock.sendall(b"GET /api/testtype HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: ")
        idle.append(sock)

    threads = [threading.Thread(target=dribble, args=(n,), daemon=True) for n in range(senders)]
    for thread in threads:
        thread.start()
    wait_for(lambda: progress["started"] == senders, 10, "the slow senders to connect")
    served_meanwhile, other = 0, Client(stack.port)
    while progress["finished"] == 0:
        response = other.get("/api/testtype?limit=1", timeout=30)
        assert response.status == 200, response
        if progress["finished"] == 0:
            served_meanwhile += 1
    for thread in threads:
        thread.join(60)
    for sock in idle:
        sock.close()
    assert served_meanwhile >= 5, f"only {served_meanwhile} requests were served while the slow clients sent"
    for n in range(senders):
        response = results[n]
        assert isinstance(response, RawResponse), response
        created(response, values[n])


def test_floods_of_polls_that_connect_and_vanish(stack, client):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    workers = stack.worker_pids()
    fds_before = {pid: fd_count(pid) for pid in workers}
    cursor = caught_up_cursor(client, [NEVER])
    poll = poll_bytes(cursor)
    body_start = poll.index(b"\r\n\r\n") + 4

    # 1. Send a whole poll and close at once, before or after nginx passed it on.
    for _ in range(1500):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        sock.sendall(poll)
        sock.close()
    # 2. Close in the middle of the body; 3. connect and say nothing.
    for n in range(600):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        if n % 2 == 0:
            sock.sendall(poll[:body_start + 10])
        sock.close()
    # 4. Park, then vanish with a reset instead of a close.
    parked = []
    for _ in range(500):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        sock.sendall(poll)
        parked.append(sock)
    wait_for(lambda: status(client)["totals"]["parked_polls"] >= 500, 30, "500 parked polls")
    for sock in parked:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    # The background watcher may hold one poll of its own.
    wait_for(lambda: status(client)["totals"]["parked_polls"] <= 1, 30, "the parked count to return to zero")
    wait_for(lambda: all(fd_count(pid) <= fds_before[pid] + 16 for pid in workers), 30,
             f"the workers' descriptors to return to about {fds_before}")
    assert sorted(stack.worker_pids()) == sorted(workers)
    # And a poll still works end to end.
    response = client.post("/api/changes", {"cursor": cursor, "subscriptions": [NEVER], "timeout": 0.2}, timeout=10)
    assert response.status == 200, response


# -- the operators' endpoints --------------------------------------------------------------------

def test_status_and_metrics_report_each_workers_ring(stack, client):
    report = status(client)
    for entry in [*report["workers"], report["totals"]]:
        assert entry["ring_events"] > 0 and entry["ring_bytes"] > entry["ring_events"] * 100, entry
        assert entry["payloads_refused"] >= 0
    metrics = client.operators.get("/api/_metrics").body.decode()
    for name in ["pbp_ring_events", "pbp_ring_bytes", "pbp_payloads_refused_total"]:
        assert f"# TYPE {name} " in metrics and f"\n{name}{{pid=" in metrics, name


def test_status_and_metrics_are_served_on_the_operators_listener_only(stack, client):
    assert client.operators.get("/api/_status").status == 200
    assert client.operators.get("/api/_metrics").status == 200
    # On the public listener not at all, from any address (127.0.0.2 stands for
    # any other client; 127.0.0.1 for a reverse proxy on this machine).
    for source in ["127.0.0.1", "127.0.0.2"]:
        for path in [b"/api/_status", b"/api/_metrics", b"/api/%5Fstatus", b"/api//_status", b"/api/x/../_metrics",
                     b"/api/_status?format=json"]:
            response = raw(stack.port, request_bytes(b"GET", path), source=source)
            expect_error(response, 404, "not_found")
    response = raw(stack.port, request_bytes(b"GET", b"/api/testtype?limit=1"), source="127.0.0.2")
    assert response.status == 200, "only the status endpoints are kept off it"


def test_the_site_configuration_keeps_the_status_endpoints_off_the_public_server():
    """The rule the test above exercises is the installed one (make install renders the same file)."""
    site = (Path(__file__).resolve().parents[2] / "conf" / "nginx" / "pbp-site.conf.in").read_text()
    public, operators = site.split("listen @STATUS_LISTEN@;")
    assert "location ~ ^/api/(_status|_metrics)$ {" in public and "return 404" in public
    for path in ["/api/_status", "/api/_metrics"]:
        assert f"location = {path} {{" in operators
    assert "allow 127.0.0.1;" in operators and "allow ::1;" in operators and "deny all;" in operators


# -- and nothing else was disturbed ------------------------------------------------------------------

def test_zz_nothing_else_was_disturbed(stack, client, guard):
    background: Background = guard["background"]
    background.finish()
    assert background.failures == [], f"writes failed during the barrage: {background.failures[:5]}"
    assert background.resets == [], f"the watcher was interrupted: {background.resets[:3]}"
    assert len(background.acknowledged) > 20, "the writer hardly ran"
    missing = set(background.acknowledged) - set(background.delivered)
    assert not missing, f"{len(missing)} acknowledged writes were never delivered as events: {sorted(missing)[:10]}"
    for row_id, value in background.acknowledged.items():
        assert background.delivered[row_id] == value

    # Every acknowledged write is in the table; the rows from before are untouched;
    # new rows are exactly those this module asked for.
    rows = rows_of_testtype(stack)
    before = guard["rows"]
    changed = [row_id for row_id, row in before.items() if rows.get(row_id) != row]
    assert not changed, f"rows that nobody asked to change changed: {changed[:10]}"
    new = set(rows) - set(before)
    with CREATED_LOCK:
        expected = dict(CREATED)
    assert new == set(expected), f"unexpected rows {sorted(new - set(expected))[:10]}, " \
                                 f"lost rows {sorted(set(expected) - new)[:10]}"
    values = dict(line.split("|", 1) for line in stack.psql(
        "select id, md5(val) from testtype where id = any('{%s}'::bigint[])" % ",".join(map(str, expected)))
        .splitlines())
    import hashlib
    wrong = [row_id for row_id, value in expected.items()
             if values[str(row_id)] != hashlib.md5(value.encode()).hexdigest()]
    assert not wrong, f"rows hold other values than written: {wrong[:10]}"
    assert database_fingerprint(stack) == guard["fingerprint"]

    # No process crashed or was restarted.
    assert stack.pid("pbp-fcgi") == guard["master"] and stack.processes["pbp-fcgi"].poll() is None
    assert stack.pid("pbp-notifyd") == guard["notifyd"] and stack.processes["pbp-notifyd"].poll() is None
    assert stack.pid("nginx") == guard["nginx"] and stack.processes["nginx"].poll() is None
    assert sorted(stack.worker_pids()) == guard["workers"]
    assert sorted(w["pid"] for w in status(client)["workers"]) == guard["status_workers"]
    with open(stack.root / "pbp-fcgi.log", "rb") as log:
        log.seek(guard["fcgi_log_offset"])
        fcgi_log = log.read().decode(errors="replace")
    assert "killed by signal" not in fcgi_log and "exited" not in fcgi_log, fcgi_log[-2000:]
    with open(stack.nginx_dir / "error.log", "rb") as log:
        log.seek(guard["nginx_log_offset"])
        nginx_log = log.read().decode(errors="replace")
    assert "exited on signal" not in nginx_log, nginx_log[-2000:]
    print(f"during the barrage: {len(background.acknowledged)} background writes, all delivered; "
          f"{len(expected)} rows created in all")
