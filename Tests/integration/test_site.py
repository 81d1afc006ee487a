"""The nginx site as installed (conf/nginx/pbp-site.conf.in with the
installed per-client limits, conf/nginx/pbp-limits.conf): it answers only its
server names, passes Authorization through to the workers, limits writes per
client address, and serves the status endpoints only on the operators'
listener, never on the public one, whatever the client or its headers claim."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import uuid
from pathlib import Path

import pytest

from conftest import Client, temporary_stack
from test_hostile import expect_error, raw, request_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import mint_token  # noqa: E402


@pytest.fixture(scope="module")
def site():
    with temporary_stack("site", write_limits=True) as instance:
        yield instance


@pytest.fixture(scope="module")
def public(site) -> Client:
    return Client(site.port)


def bearer(site, sub: str) -> dict[str, str]:
    token = mint_token.mint(mint_token.read_secret(site.jwt_key_path), sub=sub)
    return {"Authorization": f"Bearer {token}"}


def host_request(site, host: bytes, method: bytes = b"GET", target: bytes = b"/api/testtype?limit=1",
                 source: str | None = None):
    data = method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    return raw(site.port, data, source=source)


# -- server names ------------------------------------------------------------------

@pytest.mark.parametrize("host", [b"evil.example", b"attacker.test:80", b"localhost.evil.example", b"127.0.0.2"])
@pytest.mark.parametrize("target", [b"/", b"/index.html", b"/api/testtype?limit=1", b"/api/changes"])
def test_another_host_name_gets_421_json(site, host, target):
    expect_error(host_request(site, host, target=target), 421, "misdirected_request")


@pytest.mark.parametrize("host", [b"localhost", b"127.0.0.1", b"LOCALHOST", b"localhost:8080"])
def test_the_server_names_are_served(site, host):
    assert host_request(site, host).status == 200


def test_a_misdirected_write_reaches_no_worker(site):
    before = site.psql("select count(*) from testtype").strip()
    body = b'{"val":"misdirected"}'
    data = (b"POST /api/testtype HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    expect_error(raw(site.port, data), 421, "misdirected_request")
    assert site.psql("select count(*) from testtype").strip() == before


# -- Authorization --------------------------------------------------------------------

def test_authorization_reaches_the_worker(site, public):
    refused = public.get("/api/testtype?limit=1", headers={"Authorization": "Bearer not.a.token"})
    expect_error(refused, 401, "invalid_token")
    assert "invalid_token" in refused.headers["www-authenticate"]
    alice, bob = bearer(site, "alice"), bearer(site, "bob")
    tag = uuid.uuid4().hex[:8]
    assert public.post("/api/notes", {"body": f"alice {tag}"}, headers=alice).status == 201
    assert public.post("/api/notes", {"body": f"bob {tag}"}, headers=bob).status == 201
    mine = [note["body"] for note in public.get("/api/notes", headers=alice).json()]
    his = [note["body"] for note in public.get("/api/notes", headers=bob).json()]
    assert f"alice {tag}" in mine and f"bob {tag}" not in mine
    assert f"bob {tag}" in his and f"alice {tag}" not in his


# -- the write limit ------------------------------------------------------------------

def burst(site, method: bytes, target: bytes, body: bytes, count: int, source: str) -> list:
    headers = [b"Content-Type: application/json"] if body else []
    data = request_bytes(method, target, body, headers)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda _: raw(site.port, data, source=source), range(count)))


def test_writes_over_the_limit_get_429_json_with_retry_after(site):
    # Invalid bodies: the workers answer 400 without touching a row; the limit counts requests.
    answers = burst(site, b"POST", b"/api/testtype", b"{not json", 200, source="127.0.0.11")
    limited = [a for a in answers if a.status == 429]
    assert len(limited) >= 50, [a.status for a in answers]
    assert sum(1 for a in answers if a.status == 400) >= 50, "the burst of 50 passes at once"
    for answer in limited[:5]:
        expect_error(answer, 429, "too_many_requests")
        assert answer.headers["retry-after"] == "1"
    # Another address has a budget of its own.
    assert raw(site.port, request_bytes(b"POST", b"/api/testtype", b"{not json", [b"Content-Type: application/json"]),
               source="127.0.0.12").status == 400


@pytest.mark.parametrize("method", [b"PUT", b"PATCH", b"DELETE"])
def test_every_write_method_is_limited(site, method):
    source = {b"PUT": "127.0.0.13", b"PATCH": "127.0.0.14", b"DELETE": "127.0.0.15"}[method]
    body = b"" if method == b"DELETE" else b"{not json"
    answers = burst(site, method, b"/api/testtype/999999999", body, 200, source=source)
    assert any(a.status == 429 for a in answers), [a.status for a in answers]


def test_reads_and_polls_are_not_limited(site):
    reads = burst(site, b"GET", b"/api/testtype?limit=1", b"", 300, source="127.0.0.16")
    assert {a.status for a in reads} == {200}
    polls = burst(site, b"POST", b"/api/changes", json.dumps({"subscriptions": [{"table": "testtype"}]}).encode(),
                  200, source="127.0.0.17")
    assert {a.status for a in polls} == {200}, "a cursor-less poll answers at once, never 429"


# -- the status endpoints ---------------------------------------------------------------

STATUS_TARGETS = [b"/api/_status", b"/api/_metrics", b"/api/%5Fstatus", b"/api//_status", b"/api/x/../_metrics",
                  b"/api/_status?format=json", b"/api/_metrics/"]
FORWARDED = [[], [b"X-Forwarded-For: 127.0.0.1"], [b"X-Real-IP: 127.0.0.1"], [b"Forwarded: for=127.0.0.1"]]


@pytest.mark.parametrize("target", STATUS_TARGETS)
@pytest.mark.parametrize("headers", FORWARDED)
def test_the_status_endpoints_are_not_served_on_the_public_listener(site, target, headers):
    # From loopback, as a reverse proxy on this machine would connect: still not served.
    response = raw(site.port, request_bytes(b"GET", target, headers=headers))
    assert response.status == 404, response
    assert b"ring_events" not in response.body and b"pbp_workers" not in response.body


def test_the_operators_listener_serves_them(site):
    operators = Client(site.status_port)
    status = operators.get("/api/_status")
    assert status.status == 200 and status.json()["totals"]["workers"] >= 1
    metrics = operators.get("/api/_metrics")
    assert metrics.status == 200 and "pbp_workers" in metrics.body.decode()
    assert operators.get("/api/testtype?limit=1").status == 404, "and nothing else"
    assert operators.get("/").status == 404
