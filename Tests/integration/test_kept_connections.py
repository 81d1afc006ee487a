"""FastCGI connections that nginx keeps (`fastcgi_keep_conn on`): a kept
connection serves request after request, survives a poll's timeout, is freed
when nginx closes it while idle, and is closed at once when its worker drains.
A stack of its own with one worker and one nginx worker, so that every kept
connection lands in the same two processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

from conftest import Client, temporary_stack, wait_for
from fastcgi_client import (BEGIN_REQUEST, END_REQUEST, PARAMS, RESPONDER, STDERR, STDIN, name_value, params_for, read_response,
                            record)

FCGI_KEEP_CONN = 1


@pytest.fixture(scope="module")
def kept_stack():
    with temporary_stack("kept", workers=1, threads=2, nginx_worker_processes=1) as stack:
        yield stack


def kept_request(params: dict[str, str], body: bytes = b"") -> bytes:
    """A whole request that asks the worker to keep the connection, as nginx does."""
    encoded = b"".join(name_value(k.encode(), v.encode()) for k, v in params.items())
    data = (record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, FCGI_KEEP_CONN))
            + record(PARAMS, encoded) + record(PARAMS, b""))
    if body:
        data += record(STDIN, body)
    return data + record(STDIN, b"")


def sockets_of(pid: int) -> set[str]:
    """The socket inodes among a process's descriptors."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def upstream_connections(stack, pid: int) -> set[str]:
    """The worker's connections from nginx (or a test): connected sockets
    accepted on the FastCGI sockets, which carry the listening path in
    /proc/net/unix; listening ones are in state 01, connected ones 03."""
    paths = {str(stack.fcgi_socket), str(stack.fcgi_poll_socket)}
    accepted = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] in paths and fields[5] == "03":
            accepted.add(fields[6])
    return sockets_of(pid) & accepted


def worker(stack) -> int:
    pids = stack.worker_pids()
    assert len(pids) == 1, pids
    return pids[0]


def test_a_kept_connection_serves_request_after_request(kept_stack):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(kept_stack.fcgi_socket))
        for _ in range(3):
            sock.sendall(kept_request(params_for("GET", "/api/testtype", query="limit=1")))
            response = read_response(sock)
            assert response.status == 200, response


def test_a_kept_connection_survives_a_poll_timeout(kept_stack):
    body = b'{"subscriptions":[{"table":"testtype"}],"timeout":0.3}'
    poll = params_for("POST", "/api/changes", content_type="application/json", content_length=len(body))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(kept_stack.fcgi_poll_socket))
        # A fresh poll is answered at once with the newest cursor; one with it parks until its timeout.
        sock.sendall(kept_request(poll, body))
        first = read_response(sock)
        assert first.status == 200, first
        cursor = first.json()["cursor"]
        parked = f'{{"cursor":"{cursor}","subscriptions":[{{"table":"testtype"}}],"timeout":0.3}}'.encode()
        parked_params = params_for("POST", "/api/changes", content_type="application/json",
                                   content_length=len(parked))
        for _ in range(2):
            sock.sendall(kept_request(parked_params, parked))
            answer = read_response(sock)
            assert answer.status == 200 and answer.json()["events"] == [], answer


def parked_polls(stack) -> int:
    response = Client(stack.port, stack.status_port).operators.get("/api/_status")
    assert response.status == 200, response
    return response.json()["totals"]["parked_polls"]


def test_a_poll_parked_again_on_a_kept_connection_is_freed_when_the_connection_goes(kept_stack):
    """A poll answered by a delivery leaves its connection watched for a
    hang-up but quiet; the next poll on that connection re-arms the watch
    under its own id, so its client vanishing frees it at once, not at its
    timeout."""
    def poll(cursor: str | None) -> tuple[dict[str, str], bytes]:
        fields = {"subscriptions": [{"table": "testtype"}], "timeout": 50} | ({"cursor": cursor} if cursor else {})
        body = json.dumps(fields).encode()
        return params_for("POST", "/api/changes", content_type="application/json", content_length=len(body)), body

    client = Client(kept_stack.port)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(kept_stack.fcgi_poll_socket))
        sock.sendall(kept_request(*poll(None)))
        cursor = read_response(sock).json()["cursor"]
        for n in range(2):
            sock.sendall(kept_request(*poll(cursor)))
            wait_for(lambda: parked_polls(kept_stack) == 1, 10, "the poll to park")
            assert client.post("/api/testtype", {"val": f"kept re-park {n}"}).status == 201
            answer = read_response(sock)
            assert answer.status == 200 and len(answer.json()["events"]) == 1, answer
            cursor = answer.json()["cursor"]
        sock.sendall(kept_request(*poll(cursor)))
        wait_for(lambda: parked_polls(kept_stack) == 1, 10, "the third poll to park")
    wait_for(lambda: parked_polls(kept_stack) == 0, 5, "the vanished poll to be freed")
    # And the watch of a freed connection is gone with it: the next polls park and leave as well.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(kept_stack.fcgi_poll_socket))
        sock.sendall(kept_request(*poll(cursor)))
        wait_for(lambda: parked_polls(kept_stack) == 1, 10, "a poll on a new connection to park")
    wait_for(lambda: parked_polls(kept_stack) == 0, 5, "that one to be freed too")


def test_nginx_reuses_kept_connections_and_frees_them_when_it_closes_them(kept_stack):
    client = Client(kept_stack.port)
    pid = worker(kept_stack)
    baseline = len(os.listdir(f"/proc/{pid}/fd"))
    for _ in range(20):
        assert client.get("/api/testtype?limit=1").status == 200
    assert client.post("/api/changes", {"subscriptions": [{"table": "testtype"}], "timeout": 0.2}).status == 200
    kept = upstream_connections(kept_stack, pid)
    assert kept, "nginx kept no connection to the worker"
    assert len(kept) <= 3, f"twenty requests one after the other used {len(kept)} connections"
    for _ in range(20):
        assert client.get("/api/testtype?limit=1").status == 200
    assert upstream_connections(kept_stack, pid) == kept, "the next requests came on the kept connections"
    # A reload of nginx ends its old workers, which close their kept connections.
    os.kill(kept_stack.pid("nginx"), signal.SIGHUP)
    wait_for(lambda: not (sockets_of(pid) & kept), 15, "the worker to free the connections nginx closed")
    assert len(os.listdir(f"/proc/{pid}/fd")) <= baseline, "the worker's descriptors returned to their count"
    assert client.get("/api/testtype?limit=1").status == 200


def test_a_draining_worker_closes_its_idle_kept_connections_at_once(kept_stack):
    client = Client(kept_stack.port)
    for _ in range(5):
        assert client.get("/api/testtype?limit=1").status == 200
    pid = worker(kept_stack)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        idle = upstream_connections(kept_stack, pid)
        assert idle, "no kept connection is idle in the worker"
        busy.connect(str(kept_stack.fcgi_socket))
        # A request that never ends holds one thread, so the draining worker stays up while it waits.
        busy.sendall(record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, FCGI_KEEP_CONN)))
        holding = wait_for(lambda: upstream_connections(kept_stack, pid) - idle, 10,
                           "the worker to take the unfinished request")
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not (sockets_of(pid) & idle), 5, "the draining worker to close its idle connections")
        assert sockets_of(pid) & holding, "the worker was still up, held by the unfinished request"
    wait_for(lambda: pid not in kept_stack.worker_pids() and len(kept_stack.worker_pids()) == 1, 30,
             "the master to replace the drained worker")
    wait_for(lambda: client.get("/api/testtype?limit=1").status == 200, 30, "the new worker to serve")


def test_a_reload_under_a_stream_of_requests_on_kept_connections_fails_none(kept_stack):
    from test_pool import Hammer
    client = Client(kept_stack.port)
    row_id = client.post("/api/testtype", {"val": "kept reload"}).json()["id"]
    hammer = Hammer(kept_stack, row_id, threads=8)
    try:
        wait_for(lambda: upstream_connections(kept_stack, worker(kept_stack)), 10, "kept connections under load")
        for _ in range(2):
            before = set(kept_stack.worker_pids())
            os.kill(kept_stack.pid("pbp-fcgi"), signal.SIGHUP)
            wait_for(lambda: not (set(kept_stack.worker_pids()) & before) and kept_stack.worker_pids(), 30,
                     "the reload to replace the worker")
            time.sleep(0.5)
    finally:
        hammer.finish()
    assert hammer.count > 100, hammer.count


def test_worker_drains_under_a_stream_of_posts_on_kept_connections_fail_none():
    """Drains race nginx's choice of a kept connection: a worker that closes an
    idle connection just as nginx sends a POST on it fails that POST (nginx
    retries no POST it has sent). Many drains, POSTs on every thread."""
    from test_pool import Hammer
    with temporary_stack("kept-drains", workers=2, threads=2, nginx_worker_processes=1) as stack:
        client = Client(stack.port)
        row_id = client.post("/api/testtype", {"val": "kept drains"}).json()["id"]
        hammer = Hammer(stack, row_id, threads=12)
        try:
            time.sleep(1)
            for _ in range(8):
                before = set(stack.worker_pids())
                os.kill(stack.pid("pbp-fcgi"), signal.SIGHUP)
                wait_for(lambda: not (set(stack.worker_pids()) & before) and len(stack.worker_pids()) == 2, 30,
                         "the reload to replace the workers")
                time.sleep(0.3)
        finally:
            hammer.finish()


def records_after_answer(sock: socket.socket) -> list[tuple[int, int]]:
    """(type, length) of the records that follow a request's END_REQUEST,
    read until the socket is quiet for half a second or closed ("EOF")."""
    data, answered, after = b"", False, []
    sock.settimeout(10)
    while True:
        while len(data) >= 8:
            _, kind, _, length, padding, _ = struct.unpack(">BBHHBB", data[:8])
            if len(data) < 8 + length + padding:
                break
            data = data[8 + length + padding:]
            if answered:
                after.append((kind, length))
            answered = answered or kind == END_REQUEST
            sock.settimeout(0.5 if answered else 10)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return after
        if not chunk:
            return after + [("EOF", 0)]
        data += chunk


def test_a_connection_over_the_idle_limit_is_released_not_closed():
    """nginx thinks it kept every connection it asked to keep, and may be
    sending the next request on one as the worker's idle set is full: a
    worker that closed it there would fail that request (a POST nginx does not
    retry). It releases it instead, as a draining worker does: an empty
    FCGI_STDERR record nginx reads as a reason to close it, and a request
    nginx had sent already is served."""
    with temporary_stack("kept-limit", workers=1, threads=2, nginx_worker_processes=1,
                         extra_fcgi_args=["--max-idle-connections", "1"]) as stack:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as first, \
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as second:
            request = kept_request(params_for("GET", "/api/testtype", query="limit=1"))
            for sock in (first, second):
                sock.settimeout(10)
                sock.connect(str(stack.fcgi_socket))
            first.sendall(request)
            assert read_response(first).status == 200
            second.sendall(request)
            assert records_after_answer(second) == [(STDERR, 0)], "the connection over the limit is released"
            second.sendall(request)
            assert read_response(second).status == 200, "a request sent on it anyway is served"
            first.sendall(request)
            assert read_response(first).status == 200, "the one within the limit stays kept"
