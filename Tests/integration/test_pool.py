"""pbp-fcgi's pool through nginx: thousands of parked polls in one worker,
graceful reload under load, a database outage, and the status endpoints.
These tests signal and stop things, so they get a stack of their own."""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import Client, caught_up_cursor, temporary_stack, wait_for


@pytest.fixture(scope="module")
def pool_stack():
    with temporary_stack("pool", workers=1, extra_fcgi_args=["--statement-timeout", "1"]) as stack:
        yield stack


@pytest.fixture(scope="module")
def pool_client(pool_stack) -> Client:
    return Client(pool_stack.port)


def status(client: Client) -> dict:
    response = client.get("/api/_status")
    assert response.status == 200, response
    return response.json()


class RawPolls:
    """Many long-polls over raw sockets, without a thread each."""

    def __init__(self, port: int, count: int, cursor: str):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < count + 256:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
        body = json.dumps({"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 50}).encode()
        request = (f"POST /api/changes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request)
            self.sockets.append(sock)

    def responses(self, seconds: float) -> list[bytes]:
        selector = selectors.DefaultSelector()
        buffers = {}
        for sock in self.sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            buffers[sock] = b""
        done = []
        deadline = time.monotonic() + seconds
        while len(done) < len(self.sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                chunk = key.fileobj.recv(65536)
                if chunk:
                    buffers[key.fileobj] += chunk
                else:
                    selector.unregister(key.fileobj)
                    done.append(buffers[key.fileobj])
        selector.close()
        return done

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_2000_parked_polls_in_one_worker_answered_by_one_insert(pool_stack, pool_client):
    assert status(pool_client)["totals"]["workers"] == 1
    cursor = caught_up_cursor(pool_client)
    polls = RawPolls(pool_stack.port, 2000, cursor)
    try:
        wait_for(lambda: status(pool_client)["totals"]["parked_polls"] == 2000, 30, "2000 parked polls")
        threads = {t.name for t in threading.enumerate()}
        row_id = int(pool_stack.psql("insert into testtype (val) values ('fan-out') returning id").split()[0])
        answers = polls.responses(60)
    finally:
        polls.close()
    assert len(answers) == 2000
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        events = json.loads(body)["events"]
        assert [(e["key"], e["op"]) for e in events] == [(row_id, "insert")]
    assert status(pool_client)["totals"]["parked_polls"] == 0
    assert threads == {t.name for t in threading.enumerate()}


def test_parked_polls_whose_clients_leave_are_freed(pool_stack, pool_client):
    cursor = caught_up_cursor(pool_client)
    polls = RawPolls(pool_stack.port, 2000, cursor)
    wait_for(lambda: status(pool_client)["totals"]["parked_polls"] == 2000, 30, "2000 parked polls")
    polls.close()
    wait_for(lambda: status(pool_client)["totals"]["parked_polls"] == 0, 10, "the parked count to return to zero")


def test_sighup_under_a_steady_stream_of_requests_fails_none(pool_stack, pool_client):
    row_id = pool_client.post("/api/testtype", {"val": "reload"}).json()["id"]
    before = set(pool_stack.worker_pids())
    stop = threading.Event()
    failures, counts = [], {"requests": 0}
    lock = threading.Lock()

    def hammer(kind: int):
        client = Client(pool_stack.port)
        while not stop.is_set():
            try:
                if kind == 0:
                    response = client.get(f"/api/testtype/{row_id}", timeout=30)
                elif kind == 1:
                    response = client.post("/api/testtype", {"val": "during reload"}, timeout=30)
                elif kind == 2:
                    response = client.get("/api/testtype?limit=10", timeout=30)
                else:
                    response = client.post("/api/changes", {"subscriptions": [{"table": "testtype"}]}, timeout=30)
                ok = response.status in (200, 201)
            except OSError as error:
                ok, response = False, error
            with lock:
                counts["requests"] += 1
                if not ok:
                    failures.append(response)

    threads = [threading.Thread(target=hammer, args=(i % 4,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    for _ in range(2):
        os.kill(pool_stack.pid("pbp-fcgi"), signal.SIGHUP)
        time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(60)
    after = set(pool_stack.worker_pids())
    assert counts["requests"] > 100
    assert failures == [], f"{len(failures)} of {counts['requests']} failed: {failures[:3]}"
    assert not (before & after), "SIGHUP replaced the workers"
    print(f"SIGHUP twice under load: {counts['requests']} requests, none failed")


def test_workers_started_by_a_reload_serve_cursors_their_predecessors_handed_out(pool_stack, pool_client):
    """A new worker joins with recent history from notifyd, so a client whose
    cursor is a few events old gets those events from it, not a reset."""
    cursor = caught_up_cursor(pool_client)
    for n in range(3):
        assert pool_client.post("/api/testtype", {"val": f"before-reload-{n}"}).status == 201
    wait_for(lambda: status(pool_client)["notifyd"]["cursor"] != cursor, 10, "the worker to see the inserts")
    before = set(pool_stack.worker_pids())
    os.kill(pool_stack.pid("pbp-fcgi"), signal.SIGHUP)
    wait_for(lambda: not (set(pool_stack.worker_pids()) & before), 20, "the old workers to leave")
    wait_for(lambda: pool_client.get("/api/testtype?limit=1").status == 200, 10, "the new worker to serve")
    for _ in range(5):
        response = pool_client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})
        assert response.status == 200, response
        assert [e["new"]["val"] for e in response.json()["events"]] == [f"before-reload-{n}" for n in range(3)]
    log = (pool_stack.root / "pbp-fcgi.log").read_text()
    assert "still waiting in accept" not in log, "a draining worker's idle threads left promptly"


def test_database_outage_answers_503_quickly_and_recovers_without_restart(pool_stack, pool_client):
    fcgi = pool_stack.pid("pbp-fcgi")
    pool_stack.stop_postgres()
    try:
        for path, body in [("/api/testtype/1", None), ("/api/testtype", {"val": "down"})]:
            started = time.monotonic()
            response = pool_client.request("GET" if body is None else "POST", path, body=body, timeout=30)
            elapsed = time.monotonic() - started
            assert response.status == 503, response
            assert response.json()["error"] == "database_unavailable"
            assert elapsed < 5, f"an outage answer took {elapsed:.1f} s"
    finally:
        pool_stack.start_postgres()
    wait_for(lambda: pool_client.post("/api/testtype", {"val": "back"}).status == 201, 20, "CRUD after the outage")
    assert pool_client.get("/api/testtype?limit=1").status == 200
    assert pool_stack.pid("pbp-fcgi") == fcgi


def test_a_statement_stuck_on_a_lock_ends_in_503(pool_stack, pool_client):
    created = pool_client.post("/api/testtype", {"val": "locked"})
    assert created.status == 201, created
    row_id = created.json()["id"]
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-c", "begin; lock table testtype in access exclusive mode; select pg_sleep(4); commit;"],
        env=pool_stack.pg_env(), stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: pool_stack.psql(
            "select count(*) from pg_locks where relation = 'testtype'::regclass and mode = 'AccessExclusiveLock'"
        ).strip() == "1", 10, "the lock")
        started = time.monotonic()
        response = pool_client.get(f"/api/testtype/{row_id}", timeout=30)
        elapsed = time.monotonic() - started
        assert response.status == 503 and response.json()["error"] == "database_unavailable", response
        assert elapsed < 3, f"took {elapsed:.1f} s with a 1 s statement timeout"
    finally:
        holder.wait(30)
    assert pool_client.get(f"/api/testtype/{row_id}").status == 200


def test_status_and_metrics(pool_client):
    report = status(pool_client)
    assert report["totals"]["workers"] == len(report["workers"]) >= 1
    worker = report["workers"][0]
    assert worker["pid"] > 0 and worker["cursor"] and worker["requests"] > 0
    assert report["totals"]["database_connections"] >= 1
    assert report["notifyd"]["cursor"]
    metrics = pool_client.get("/api/_metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.body.decode()
    for name in ("pbp_workers", "pbp_parked_polls", "pbp_busy_threads", "pbp_events_delivered_total",
                 "pbp_database_connections", "pbp_requests_total"):
        assert f"\n{name}" in "\n" + text, name
    assert pool_client.post("/api/_status", {}).status == 405
