"""pbp-notifyd's stream through every fault: resume without loss, bulk
transactions, slow subscribers, PostgreSQL restarts, kill -9 of notifyd and of
a worker. These tests break things, so they get a stack of their own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import Client, WaitingPoll, caught_up_cursor, temporary_stack
from listen_race_proxy import ListenRaceProxy
from notifyd_client import EVENT, NEW_EPOCH, NotifydClient


@pytest.fixture(scope="module")
def fault_stack():
    with temporary_stack("faults", extra_notifyd_args=[
            "--subscriber-buffer-limit", "1048576", "--liveness-interval", "1", "--liveness-timeout", "1"]) as stack:
        yield stack


@pytest.fixture(scope="module")
def fault_client(fault_stack) -> Client:
    return Client(fault_stack.port, fault_stack.status_port)


def insert(stack, values_sql: str) -> None:
    stack.psql(f"insert into testtype (val) {values_sql}")


def test_a_subscriber_that_reconnects_gets_exactly_what_it_missed(fault_stack):
    first = NotifydClient(fault_stack.notifyd_socket)
    epoch, seq, resumed = first.welcome()
    assert not resumed
    insert(fault_stack, "values ('before')")
    [(seen, _)] = first.events(1)
    assert seen == seq + 1
    first.close()

    insert(fault_stack, "values ('missed-1'), ('missed-2'), ('missed-3')")
    again = NotifydClient(fault_stack.notifyd_socket, cursor=(epoch, seen))
    assert again.welcome() == (epoch, seen, True), "the stream continues from the subscriber's own position"
    missed = again.events(3)
    assert [s for s, _ in missed] == [seen + 1, seen + 2, seen + 3]
    assert [json.loads(p)["new"]["val"] for _, p in missed] == ["missed-1", "missed-2", "missed-3"]
    with pytest.raises(TimeoutError):
        again.frame(timeout=0.5)
    again.close()


def test_a_cursor_of_another_epoch_or_older_than_the_ring_is_not_resumed(fault_stack):
    probe = NotifydClient(fault_stack.notifyd_socket)
    epoch, seq, _ = probe.welcome()
    probe.close()
    other = NotifydClient(fault_stack.notifyd_socket, cursor=(epoch ^ 1, seq))
    assert other.welcome() == (epoch, seq, False)
    other.close()
    future = NotifydClient(fault_stack.notifyd_socket, cursor=(epoch, seq + 10))
    assert future.welcome()[2] is False
    future.close()


def test_a_subscriber_without_a_position_may_ask_for_recent_history(fault_stack):
    probe = NotifydClient(fault_stack.notifyd_socket)
    epoch, newest, _ = probe.welcome()
    insert(fault_stack, "values ('h-1'), ('h-2'), ('h-3')")
    assert [s for s, _ in probe.events(3)] == [newest + 1, newest + 2, newest + 3]
    probe.close()

    joining = NotifydClient(fault_stack.notifyd_socket, history=2)
    assert joining.welcome() == (epoch, newest + 1, False), "two events back from the newest"
    history = joining.events(2)
    assert [json.loads(p)["new"]["val"] for _, p in history] == ["h-2", "h-3"]
    insert(fault_stack, "values ('h-4')")
    [(seq, payload)] = joining.events(1)
    assert seq == newest + 4 and json.loads(payload)["new"]["val"] == "h-4"
    joining.close()

    # A cursor of an ended epoch is not resumed, but history is still given.
    stale = NotifydClient(fault_stack.notifyd_socket, cursor=(epoch ^ 1, 5), history=1)
    assert stale.welcome() == (epoch, newest + 3, False)
    assert [s for s, _ in stale.events(1)] == [newest + 4]
    stale.close()


def test_a_100000_row_transaction_arrives_whole_and_in_order(fault_stack):
    subscriber = NotifydClient(fault_stack.notifyd_socket)
    _, seq, _ = subscriber.welcome()
    started = time.monotonic()
    insert(fault_stack, "select 'bulk-' || n from generate_series(1, 100000) n")
    # This Python subscriber may be slower than notifyd and be cut off for it
    # (the buffer limit here is 1 MiB); it then resumes from the ring, as a worker does.
    events = subscriber.events(100000, timeout=120, resume=True)
    elapsed = time.monotonic() - started
    assert [s for s, _ in events] == list(range(seq + 1, seq + 100001))
    payloads = [json.loads(p) for _, p in events]
    assert [p["new"]["val"] for p in payloads] == [f"bulk-{n}" for n in range(1, 100001)]
    keys = [p["key"] for p in payloads]
    assert keys == sorted(keys) and len(set(keys)) == 100000
    with pytest.raises(TimeoutError):
        subscriber.frame(timeout=0.5)
    subscriber.close()
    print(f"100,000-row transaction: insert + delivery to one subscriber in {elapsed:.2f} s, "
          f"{subscriber.reconnects} resumes")


def test_a_subscriber_that_stops_reading_is_cut_off_and_the_others_keep_receiving(fault_stack):
    stuck = NotifydClient(fault_stack.notifyd_socket, read_buffer=4096)
    stuck.welcome()
    reader = NotifydClient(fault_stack.notifyd_socket)
    reader.welcome()
    # 400 rows of 7 kB: about 2.8 MB of frames, well over the 1 MiB buffer limit.
    insert(fault_stack, "select repeat('s', 7000) from generate_series(1, 400)")
    mine = 0
    while mine < 400:
        [(_, payload)] = reader.events(1, resume=True)
        mine += json.loads(payload)["new"]["val"] == "s" * 7000
    received = 0
    last_seq = stuck.last_seq
    while True:
        frame = stuck.frame(timeout=10)
        if frame is None:
            break
        kind, fields = frame
        if kind == EVENT:
            last_seq = fields[0]
            received += json.loads(fields[1])["new"]["val"] == "s" * 7000
    assert received < 400, "the stuck subscriber was never cut off"
    stuck.close()
    # Reconnecting from where it was cut off, it catches up from the ring
    # (more than the buffer limit, paced by its reading) and misses nothing.
    resumed = NotifydClient(fault_stack.notifyd_socket, cursor=(stuck.epoch, last_seq))
    assert resumed.welcome()[2] is True
    rest = resumed.events(400 - received)
    assert [s for s, _ in rest] == list(range(last_seq + 1, last_seq + 1 + 400 - received))
    assert all(json.loads(p)["new"]["val"] == "s" * 7000 for _, p in rest)
    resumed.close()
    # notifyd is still serving everyone else.
    insert(fault_stack, "values ('after the cut')")
    [(_, payload)] = reader.events(1, resume=True)
    assert json.loads(payload)["new"]["val"] == "after the cut"
    reader.close()


def poll_all(client: Client, cursor: str) -> WaitingPoll:
    return WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})


def assert_delivery_continues(stack, client: Client) -> None:
    cursor = caught_up_cursor(client)
    poll = poll_all(client, cursor)
    time.sleep(0.3)
    insert(stack, "values ('after the fault')")
    body = poll.result(15).json()
    assert [e["new"]["val"] for e in body["events"]] == ["after the fault"]


def test_postgresql_restart_under_a_waiting_poll(fault_stack, fault_client):
    notifyd = fault_stack.pid("pbp-notifyd")
    cursor = caught_up_cursor(fault_client)
    poll = poll_all(fault_client, cursor)
    time.sleep(0.3)
    fault_stack.restart_postgres()
    response = poll.result(30)
    assert response.status == 409 and response.json()["error"] == "reset", response
    assert response.json()["cursor"].split(":")[0] != cursor.split(":")[0], "a restart starts a new epoch"
    assert_delivery_continues(fault_stack, fault_client)
    assert fault_stack.pid("pbp-notifyd") == notifyd and fault_stack.processes["pbp-notifyd"].poll() is None


def test_crud_after_a_postgresql_restart_needs_no_service_restart(fault_stack, fault_client):
    fault_stack.restart_postgres()
    # Every worker thread's connection broke; each recovers on its next request.
    for attempt in range(20):
        response = fault_client.post("/api/testtype", {"val": f"after-restart-{attempt}"})
        assert response.status in (201, 503), response
    deadline = time.monotonic() + 10
    while fault_client.post("/api/testtype", {"val": "surely"}).status != 201:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert all(fault_client.get("/api/testtype?limit=1").status == 200 for _ in range(20))


def test_notifyd_killed_and_started_again(fault_stack, fault_client):
    cursor = caught_up_cursor(fault_client)
    poll = poll_all(fault_client, cursor)
    time.sleep(0.3)
    fault_stack.kill("pbp-notifyd")
    time.sleep(0.5)
    assert poll.thread.is_alive(), "a poll must wait while notifyd is away, not fail"
    fault_stack.start_notifyd()
    # A snapshot read right away waits for its worker to follow the new
    # notifyd, rather than hand out a cursor of the epoch that just ended
    # (which would send the client through a second reset).
    snapshot = fault_client.get("/api/testtype?limit=1")
    response = poll.result(15)
    assert response.status == 409 and response.json()["error"] == "reset", response
    new_epoch = response.json()["cursor"].split(":")[0]
    assert new_epoch != cursor.split(":")[0]
    assert snapshot.status == 200 and snapshot.headers["pbp-cursor"].split(":")[0] == new_epoch, snapshot.headers
    assert_delivery_continues(fault_stack, fault_client)


def test_a_killed_worker_is_replaced(fault_stack, fault_client):
    before = fault_stack.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        now = fault_stack.worker_pids()
        if len(now) == len(before) and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"workers {now} after killing {before[0]}"
        time.sleep(0.05)
    for _ in range(20):
        assert fault_client.get("/api/testtype?limit=1").status == 200
    assert_delivery_continues(fault_stack, fault_client)


def test_a_frozen_database_connection_is_noticed_and_replaced(fault_stack):
    """A server that stops answering without closing the socket (a hung host)
    is found by the liveness probe; notifyd reconnects and starts a new epoch."""
    subscriber = NotifydClient(fault_stack.notifyd_socket)
    epoch, _, _ = subscriber.welcome()
    backend = int(fault_stack.psql(
        "select pid from pg_stat_activity where usename = 'pbp_notifyd' and backend_type = 'client backend'").split()[0])
    os.kill(backend, signal.SIGSTOP)
    try:
        kind, fields = subscriber.frame(timeout=10)
    finally:
        os.kill(backend, signal.SIGCONT)
    assert kind == NEW_EPOCH and fields[0] != epoch
    insert(fault_stack, "values ('after the freeze')")
    [(_, payload)] = subscriber.events(1)
    assert json.loads(payload)["new"]["val"] == "after the freeze"
    subscriber.close()


# -- a notifyd of the test's own, on the fault stack's database -------------------

@contextlib.contextmanager
def own_notifyd(stack, conninfo: str, *args: str, nofile: int | None = None):
    """Yields (process, socket path, log path) of a pbp-notifyd started on `conninfo`,
    optionally under a descriptor limit (RLIMIT_NOFILE, by prlimit)."""
    directory = Path(tempfile.mkdtemp(prefix="notifyd-", dir=stack.root))
    path = directory / "notifyd.sock"
    command = [str(stack.bin_dir / "pbp-notifyd"), "--conninfo", conninfo, "--socket", str(path),
               "--socket-mode", "0600", *args]
    if nofile is not None:
        command = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *command]
    log = open(directory / "notifyd.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert process.poll() is None and time.monotonic() < deadline, (directory / "notifyd.log").read_text()
            time.sleep(0.02)
        yield process, path, directory / "notifyd.log"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_notification_that_comes_with_the_answer_to_listen_is_delivered_at_once(fault_stack):
    """The race, staged by a proxy: the trigger's NOTIFY commits the moment
    the LISTEN is in place, and its notification reaches notifyd's socket
    together with the LISTEN's answer. It must be relayed then, not when the
    next liveness probe (30 s here) happens to make the socket readable."""
    proxy_dir = Path(tempfile.mkdtemp(prefix="pgproxy-", dir=fault_stack.root))
    committed = threading.Event()

    def commit_a_write():
        insert(fault_stack, "values ('with the LISTEN')")
        committed.set()

    proxy = ListenRaceProxy(proxy_dir, fault_stack.pg_dir / ".s.PGSQL.5432", commit_a_write, b"with the LISTEN")
    conninfo = f"host={proxy_dir} dbname=pbp user=pbp_notifyd connect_timeout=3"
    try:
        with own_notifyd(fault_stack, conninfo, "--liveness-interval", "30") as (_, path, _):
            # Asking for history: the event is the epoch's first, whether it
            # enters the ring before or after this subscriber is greeted.
            subscriber = NotifydClient(path, history=10)
            assert subscriber.welcome()[1] == 0
            assert proxy.race_staged.wait(10) and committed.is_set(), "the proxy staged the race"
            [(seq, payload)] = subscriber.events(1, timeout=10)
            assert seq == 1 and json.loads(payload)["new"]["val"] == "with the LISTEN"
            subscriber.close()
    finally:
        proxy.close()


def test_out_of_descriptors_notifyd_neither_spins_nor_stops_serving(fault_stack):
    """At EMFILE the waiting connection stays in the backlog and the
    listening socket stays readable: notifyd must not busy-loop on it, must
    go on serving the subscribers it has, and must accept again once a
    descriptor is free."""
    limit = 32
    with own_notifyd(fault_stack, fault_stack.conninfo("pbp_notifyd"), nofile=limit) as (process, path, _):
        first = NotifydClient(path)
        first.welcome()
        subscribers = [first]
        # More subscribers than descriptors: the last ones wait in the backlog.
        for _ in range(limit + 4):
            subscribers.append(NotifydClient(path))
        welcomed = []
        for subscriber in subscribers[1:]:
            try:
                subscriber.welcome()
                welcomed.append(subscriber)
            except TimeoutError:
                break
        waiting = subscribers[1 + len(welcomed):]
        assert waiting and len(welcomed) < limit, f"{len(welcomed)} welcomed under a limit of {limit}"

        window = 3.0
        before = cpu_seconds(process.pid)
        time.sleep(window)
        used = cpu_seconds(process.pid) - before
        # A resource check, deliberately generous: a spinning loop uses the whole window.
        assert used < window / 4, f"notifyd used {used:.2f} s of CPU in {window} s out of descriptors"

        insert(fault_stack, "values ('while out of descriptors')")
        [(_, payload)] = first.events(1, timeout=10)
        assert json.loads(payload)["new"]["val"] == "while out of descriptors"

        for subscriber in welcomed[:len(waiting) + 2]:
            subscriber.close()
        for subscriber in waiting:
            subscriber.welcome()
        insert(fault_stack, "values ('after descriptors were freed')")
        for subscriber in [first, *waiting]:
            [(_, payload)] = subscriber.events(1, timeout=10)
            assert json.loads(payload)["new"]["val"] == "after descriptors were freed"
        for subscriber in subscribers:
            subscriber.close()


def ring_usage(process, log_path: Path) -> tuple[int, float, float]:
    """(events, MiB, budget MiB) from the status line notifyd logs on SIGHUP."""
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in log_path.read_text().splitlines() if "SIGHUP" in line and "ring " in line]
        if lines:
            match = re.search(r"ring (\d+) events, ([0-9.]+) of ([0-9.]+) MiB", lines[-1])
            return int(match.group(1)), float(match.group(2)), float(match.group(3))
        time.sleep(0.05)
    raise AssertionError(f"no status line in {log_path.read_text()}")


def test_the_ring_keeps_a_byte_budget_and_resuming_from_it_stays_exact(fault_stack):
    with own_notifyd(fault_stack, fault_stack.conninfo("pbp_notifyd"), "--ring-bytes", "1048576") as (
            process, path, log_path):
        subscriber = NotifydClient(path)
        epoch, start, _ = subscriber.welcome()
        # 400 rows of 7 kB: about 2.8 MB of frames, and room for some 140 of them.
        insert(fault_stack, "select repeat('b', 7000) from generate_series(1, 400)")
        newest = subscriber.events(400)[-1][0]
        subscriber.close()
        held, mebibytes, budget = ring_usage(process, log_path)
        assert budget == 1.0 and mebibytes <= 1.0, (held, mebibytes)
        assert 100 < held < 150, f"{held} events of 7 kB in 1 MiB"

        oldest_covered = newest - held
        resumed = NotifydClient(path, cursor=(epoch, oldest_covered))
        assert resumed.welcome() == (epoch, oldest_covered, True)
        assert [s for s, _ in resumed.events(held)] == list(range(oldest_covered + 1, newest + 1))
        resumed.close()
        too_old = NotifydClient(path, cursor=(epoch, oldest_covered - 1), history=1000)
        assert too_old.welcome() == (epoch, oldest_covered, False), "reset to all the ring holds"
        too_old.close()
