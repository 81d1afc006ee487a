"""The real stack for the integration tests: a PostgreSQL cluster, pbp-notifyd,
pbp-fcgi and nginx, started once per test session in a temporary folder on a
free port, so that a test run and `make run` can share a machine."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from pbpstack import Stack, free_port  # noqa: E402


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class Client:
    """A real HTTP/1.1 client to nginx, one connection per request.
    `status_port`: the stack's operators' listener (/api/_status, /api/_metrics).
    `host`: the address nginx listens on (an app host's own, in test_cluster.py)."""

    def __init__(self, port: int, status_port: int | None = None, host: str = "127.0.0.1"):
        self.port = port
        self.status_port = status_port
        self.host = host

    @property
    def operators(self) -> "Client":
        """A client of the operators' listener, the only one that serves the status endpoints."""
        assert self.status_port is not None, "this client was made without the stack's status port"
        return Client(self.status_port)

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30) -> Response:
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> Response:
        return self.request("POST", path, body=body, **kwargs)

    def put(self, path: str, body=None, **kwargs) -> Response:
        return self.request("PUT", path, body=body, **kwargs)

    def patch(self, path: str, body=None, **kwargs) -> Response:
        return self.request("PATCH", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs) -> Response:
        return self.request("DELETE", path, **kwargs)


def wait_for(predicate, seconds: float, what: str):
    """The first truthy value of `predicate`, polled every 50 ms; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def caught_up_cursor(client: Client, subscriptions=None, seconds: float = 60) -> str:
    """A cursor past every change made so far, on every worker.

    A snapshot's cursor may lag a change committed just before it (the event
    is then delivered again, harmlessly), and workers may briefly stand at
    different positions. Tests that need a poll to *wait* take a cursor that
    two empty polls in a row (which may reach different workers) agree on.
    A client that knows the operators' listener first waits until every
    worker has what notifyd has: two empty polls alone can both fall in a
    lull of a long burst (a 100,000-row transaction reaches the workers of a
    debug build over many seconds)."""
    import time
    subscriptions = subscriptions or [{"table": "testtype"}]
    deadline = time.monotonic() + seconds
    cursor, quiet = None, 0
    if client.status_port is not None:
        while True:
            assert time.monotonic() < deadline, "the workers did not catch up with notifyd"
            status = client.operators.get("/api/_status", timeout=10).json()
            newest = status["notifyd"]["cursor"]
            if newest and status["workers"] and all(w["cursor"] == newest for w in status["workers"]):
                break
            time.sleep(0.1)
    while quiet < 2:
        assert time.monotonic() < deadline, "the stream did not settle"
        if cursor is None:
            snapshot = client.get("/api/testtype?limit=1", timeout=10)
            if snapshot.status != 200:
                time.sleep(0.1)
                continue
            cursor = snapshot.headers["pbp-cursor"]
        response = client.post("/api/changes", {"cursor": cursor, "subscriptions": subscriptions, "timeout": 0.2},
                               timeout=10)
        if response.status == 200:
            body = response.json()
            quiet = quiet + 1 if not body["events"] else 0
            cursor = body["cursor"]
        else:
            cursor, quiet = None, 0
    return cursor


class WaitingPoll:
    """A long-poll sent from a thread, so that the test can act while it waits."""

    def __init__(self, client: Client, body: dict, timeout: float = 90):
        self.response = None
        self.thread = threading.Thread(target=self._run, args=(client, body, timeout), daemon=True)
        self.thread.start()

    def _run(self, client, body, timeout):
        self.response = client.post("/api/changes", body, timeout=timeout)

    def assert_waiting(self, seconds=0.5):
        self.thread.join(seconds)
        assert self.thread.is_alive(), f"the poll was answered before any change: {self.response}"

    def result(self, seconds=10):
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the poll was not answered"
        return self.response


@contextlib.contextmanager
def temporary_stack(name: str, **options):
    """A whole stack in a temporary folder on a free port; its logs are kept
    in test-artifacts/logs-NAME."""
    bin_dir = Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug"))
    root = Path(tempfile.mkdtemp(prefix=f"pbp-{name}-"))
    # The postgres user runs the cluster inside it.
    os.chmod(root, 0o755)
    instance = Stack(root, free_port(), bin_dir, log=lambda message: None, **options)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
        logs = instance.artifacts_dir / f"logs-{name}"
        logs.mkdir(exist_ok=True)
        for log in root.glob("*.log"):
            shutil.copy(log, logs / log.name)
        for log in (root / "nginx").glob("*.log"):
            shutil.copy(log, logs / f"nginx-{log.name}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack():
    with temporary_stack("main") as instance:
        yield instance


@pytest.fixture(scope="session")
def client(stack) -> Client:
    return Client(stack.port, stack.status_port)
