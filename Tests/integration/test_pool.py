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

from conftest import Client, WaitingPoll, caught_up_cursor, temporary_stack, wait_for


@pytest.fixture(scope="module")
def pool_stack():
    with temporary_stack("pool", workers=1, extra_fcgi_args=["--statement-timeout", "1"]) as stack:
        yield stack


@pytest.fixture(scope="module")
def pool_client(pool_stack) -> Client:
    return Client(pool_stack.port, pool_stack.status_port)


def status(client: Client) -> dict:
    response = client.operators.get("/api/_status")
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


class Hammer:
    """Threads sending short requests (reads, writes, and polls unless told
    not to) until stopped; every answer that is not a success is kept."""

    def __init__(self, stack, row_id: int, threads: int = 6, polls: bool = True):
        self.stack, self.row_id, self.polls = stack, row_id, polls
        self.stop_event = threading.Event()
        self.failures, self.count = [], 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self, index: int):
        client = Client(self.stack.port)
        kinds = 4 if self.polls else 3
        while not self.stop_event.is_set():
            kind = index % kinds
            try:
                if kind == 0:
                    response = client.get(f"/api/testtype/{self.row_id}", timeout=30)
                elif kind == 1:
                    response = client.post("/api/testtype", {"val": "during reload"}, timeout=30)
                elif kind == 2:
                    response = client.get("/api/testtype?limit=10", timeout=30)
                else:
                    response = client.post("/api/changes", {"subscriptions": [{"table": "testtype"}]}, timeout=30)
                ok = response.status in (200, 201)
            except OSError as error:
                ok, response = False, error
            with self.lock:
                self.count += 1
                if not ok:
                    self.failures.append(response)

    def finish(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(60)
        assert self.count > 20, f"only {self.count} requests were sent"
        assert self.failures == [], f"{len(self.failures)} of {self.count} failed: {self.failures[:3]}"


def test_sighup_under_a_steady_stream_of_requests_fails_none(pool_stack, pool_client):
    row_id = pool_client.post("/api/testtype", {"val": "reload"}).json()["id"]
    before = set(pool_stack.worker_pids())
    hammer = Hammer(pool_stack, row_id, threads=8)
    time.sleep(1)
    for _ in range(2):
        os.kill(pool_stack.pid("pbp-fcgi"), signal.SIGHUP)
        time.sleep(1.5)
    hammer.finish()
    after = set(pool_stack.worker_pids())
    assert hammer.count > 100
    assert not (before & after), "SIGHUP replaced the workers"
    print(f"SIGHUP twice under load: {hammer.count} requests, none failed")


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


def test_requests_survive_their_sessions_being_terminated(pool_stack, pool_client):
    """An administrator (or a restart) ends the pool's sessions between
    requests: a read meets its closed session and is tried again on a new
    one; a write looks first (it is not retried). No request fails."""
    terminate = ("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                 "where usename = 'pbp_app' and pid <> pg_backend_pid()")
    for kind in ("read", "write"):
        for n in range(40):  # every thread's connection in use
            assert pool_client.get("/api/testtype?limit=1").status == 200
        assert int(pool_stack.psql(terminate).strip()) > 0
        time.sleep(0.3)  # the sessions' FATAL has reached their sockets
        for n in range(40):
            response = (pool_client.get(f"/api/testtype?limit={n + 1}") if kind == "read"
                        else pool_client.post("/api/testtype", {"val": f"after-terminate-{n}"}))
            assert response.status == (200 if kind == "read" else 201), (kind, n, response)


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
    metrics = pool_client.operators.get("/api/_metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.body.decode()
    for name in ("pbp_workers", "pbp_parked_polls", "pbp_busy_threads", "pbp_events_delivered_total",
                 "pbp_database_connections", "pbp_requests_total"):
        assert f"\n{name}" in "\n" + text, name
    assert pool_client.operators.post("/api/_status", {}).status == 405


# -- reloads that cannot take the API down -------------------------------------------------------

GOOD_CONFIG = "# the reload tests' pbp-fcgi settings\nmax-subscriptions = 256\n"


@pytest.fixture(scope="module")
def reload_stack(tmp_path_factory):
    config = tmp_path_factory.mktemp("pbp-fcgi-config") / "pbp-fcgi.conf"
    config.write_text(GOOD_CONFIG)
    with temporary_stack("reload", workers=2, threads=2, extra_fcgi_args=["--config", str(config)]) as stack:
        stack.fcgi_config = config
        yield stack
    config.write_text(GOOD_CONFIG)


def hangup(stack) -> None:
    os.kill(stack.pid("pbp-fcgi"), signal.SIGHUP)


def fcgi_log(stack) -> str:
    return (stack.root / "pbp-fcgi.log").read_text(errors="replace")


def settled_pool(stack, seconds: float = 30) -> set[int]:
    """The workers once the master has as many as configured and no more (none draining)."""
    return set(wait_for(lambda: (lambda pids: pids if len(pids) == stack.workers else None)(
        set(stack.worker_pids())), seconds, f"a pool of exactly {stack.workers} workers"))


@pytest.mark.parametrize("broken", ["max-subscriptions = 0", "this line has no equals sign", "workers = many"])
def test_a_reload_with_a_broken_config_is_refused_and_the_old_workers_keep_serving(reload_stack, broken):
    stack = reload_stack
    client = Client(stack.port)
    row_id = client.post("/api/testtype", {"val": "refused reload"}).json()["id"]
    before = settled_pool(stack)
    stack.fcgi_config.write_text(GOOD_CONFIG + broken + "\n")
    try:
        # What `systemctl reload` runs first: the same parsing, which fails.
        check = subprocess.run([str(stack.bin_dir / "pbp-fcgi"), "--config", str(stack.fcgi_config),
                                "--check-config"], capture_output=True, text=True, timeout=60)
        assert check.returncode != 0, check
        assert str(stack.fcgi_config) in check.stderr or "--" in check.stderr, check.stderr
        log_before = len(fcgi_log(stack))
        hammer = Hammer(stack, row_id, threads=4)
        hangup(stack)
        wait_for(lambda: "reload refused" in fcgi_log(stack)[log_before:], 10, "the master to refuse the reload")
        time.sleep(4)  # past the time an accepted reload would have drained the old workers
        hammer.finish()
        assert set(stack.worker_pids()) == before, "a refused reload left the workers alone"
    finally:
        stack.fcgi_config.write_text(GOOD_CONFIG)
    check = subprocess.run([str(stack.bin_dir / "pbp-fcgi"), "--config", str(stack.fcgi_config), "--check-config"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check
    # With the file mended, a reload goes through.
    hangup(stack)
    wait_for(lambda: not (set(stack.worker_pids()) & before), 30, "the reload to replace the workers")
    assert len(settled_pool(stack)) == stack.workers


class StoppedNotifyd:
    """pbp-notifyd stopped (SIGSTOP): a new worker then waits two seconds for
    the stream before it accepts, which gives a test time to act while a
    reload's new generation is still coming up. The old workers keep serving
    CRUD meanwhile."""

    def __init__(self, stack):
        self.pid = stack.pid("pbp-notifyd")

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


def test_a_reload_whose_new_workers_die_at_start_keeps_the_old_generation(reload_stack):
    stack = reload_stack
    client = Client(stack.port)
    row_id = client.post("/api/testtype", {"val": "doomed reload"}).json()["id"]
    before = settled_pool(stack)
    log_before = len(fcgi_log(stack))
    hammer = Hammer(stack, row_id, threads=4, polls=False)
    killed = set()
    with StoppedNotifyd(stack):
        hangup(stack)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for pid in set(stack.worker_pids()) - before - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.005)
    hammer.finish()
    assert killed, "the reload started no new worker"
    assert "reload abandoned" in fcgi_log(stack)[log_before:]
    assert settled_pool(stack) == before, "the old generation stays when the new one dies"
    assert client.get(f"/api/testtype/{row_id}").status == 200


def test_two_reloads_back_to_back_under_load_fail_no_request_and_end_with_the_full_pool(reload_stack):
    stack = reload_stack
    client = Client(stack.port)
    row_id = client.post("/api/testtype", {"val": "double reload"}).json()["id"]
    before = settled_pool(stack)
    hammer = Hammer(stack, row_id, threads=4, polls=False)
    with StoppedNotifyd(stack):
        hangup(stack)
        time.sleep(0.3)
        hangup(stack)
        time.sleep(1)
        # Neither new generation accepts yet: the serving one must still be whole.
        assert before <= set(stack.worker_pids()), "the second reload drained workers before their successors accept"
    after = wait_for(lambda: (lambda pids: pids if len(pids) == stack.workers and not (pids & before) else None)(
        set(stack.worker_pids())), 30, "a full pool of new workers")
    hammer.finish()
    assert len(after) == stack.workers
    # And with polls in the mix, at full speed.
    hammer = Hammer(stack, row_id, threads=6)
    hangup(stack)
    time.sleep(0.1)
    hangup(stack)
    wait_for(lambda: (lambda pids: pids if len(pids) == stack.workers and not (pids & after) else None)(
        set(stack.worker_pids())), 30, "a full pool of new workers again")
    hammer.finish()


def test_a_pool_that_would_not_fit_max_connections_refuses_to_start(pool_stack, tmp_path):
    """The test cluster allows 300 connections (3 reserved): 2 workers × 80
    threads, doubled during a reload, would need 320."""
    allowed = int(pool_stack.psql("select current_setting('max_connections')::int"
                                  " - current_setting('superuser_reserved_connections')::int").strip())
    threads = allowed // 4 + 5
    command = [str(pool_stack.bin_dir / "pbp-fcgi"), "--conninfo", pool_stack.conninfo("pbp_app"),
               "--socket", str(tmp_path / "fcgi.sock"), "--notifyd-socket", str(pool_stack.notifyd_socket),
               "--workers", "2", "--threads", str(threads)]
    check = subprocess.run(command + ["--check-config"], capture_output=True, text=True, timeout=60)
    assert check.returncode != 0, check
    assert "max_connections" in check.stderr, check.stderr
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.communicate(timeout=30)
        raise AssertionError("pbp-fcgi started a pool that max_connections cannot hold")
    assert process.returncode != 0
    assert f"need up to {2 * (threads + 1) * 2} database connections" in output, output
    assert f"allows {allowed}" in output and "max_connections" in output, output
    assert not (tmp_path / "fcgi.sock").exists(), "it refused before it listened"
    fits = subprocess.run(command[:-1] + ["4", "--check-config"], capture_output=True, text=True, timeout=60)
    assert fits.returncode == 0 and "configuration ok" in fits.stdout, fits


def test_a_poll_is_answered_while_every_crud_thread_waits_on_a_lock(reload_stack):
    """Every accepting thread of every worker is held in an UPDATE that waits
    for a row a test transaction locked; a long-poll sent meanwhile still
    parks and receives the next event, before the lock is released."""
    stack = reload_stack
    client = Client(stack.port)
    settled_pool(stack)
    row_id = client.post("/api/testtype", {"val": "locked for the blockade"}).json()["id"]
    cursor = caught_up_cursor(client)
    crud_threads = stack.workers * stack.threads
    holder = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], env=stack.pg_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    blocked = []
    try:
        holder.stdin.write(f"begin; select id from testtype where id = {row_id} for update;\n")
        holder.stdin.flush()
        wait_for(lambda: stack.psql("select count(*) from pg_stat_activity"
                                    " where state = 'idle in transaction' and usename = 'postgres'").strip() == "1",
                 10, "the test transaction to hold the row")
        for n in range(crud_threads + 2):
            writer = threading.Thread(target=lambda n=n: client.patch(f"/api/testtype/{row_id}", {"val": f"w{n}"},
                                                                       timeout=60), daemon=True)
            writer.start()
            blocked.append(writer)
        wait_for(lambda: int(stack.psql("select count(*) from pg_stat_activity where usename = 'pbp_app'"
                                        " and wait_event_type = 'Lock'").strip()) >= crud_threads,
                 10, f"all {crud_threads} CRUD threads to wait on the lock")
        poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 30})
        time.sleep(0.5)
        inserted = int(stack.psql("insert into testtype (val) values ('during the blockade') returning id")
                       .split()[0])
        poll.thread.join(6)
        still_blocked = sum(writer.is_alive() for writer in blocked)
        assert not poll.thread.is_alive(), "the poll waited behind the blocked CRUD threads"
        assert still_blocked == len(blocked), "the poll was answered only once the writers gave up"
        response = poll.response
        assert response.status == 200, response
        assert inserted in [event["key"] for event in response.json()["events"]], response
    finally:
        holder.stdin.write("commit;\n")
        holder.stdin.close()
        holder.wait(30)
        for writer in blocked:
            writer.join(60)
    assert client.get(f"/api/testtype/{row_id}").status == 200
