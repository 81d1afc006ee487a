"""pbp-notifyd --source wal through every fault (issue 16): a whole stack
whose database sends its changes to the WAL and whose notifyd reads them from
a durable replication slot. Clients long-poll with their cursors while a
writer commits (and rolls back); notifyd is killed with -9 and PostgreSQL is
restarted, and every client must go on from its cursor with no reset,
receiving every committed change exactly once and in commit order. Only a slot
that is lost resets the clients, once. test_notifyd.py has the notify source's
side of the same faults (where a restart resets)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import Client, caught_up_cursor, temporary_stack
from watcher import Watcher
from notifyd_client import NotifydClient

SLOT = "pbp"


@pytest.fixture(scope="module")
def wal_stack():
    with temporary_stack("wal-faults", source="wal", extra_notifyd_args=[
            "--liveness-interval", "1", "--liveness-timeout", "2", "--status-interval", "1"]) as stack:
        yield stack


@pytest.fixture(scope="module")
def wal_client(wal_stack) -> Client:
    return Client(wal_stack.port, wal_stack.status_port)


class Writer(threading.Thread):
    """Commits `tag-N` rows one transaction at a time through psql, rolls
    every fifth one back (`tag-rb-N`), and retries through a PostgreSQL
    restart; `committed` lists the acknowledged rows in commit order."""

    def __init__(self, stack, tag: str):
        super().__init__(daemon=True)
        self.stack = stack
        self.tag = tag
        self.committed: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            rolled_back = n % 5 == 0
            val = f"{self.tag}-rb-{n}" if rolled_back else f"{self.tag}-{n}"
            end = "rollback" if rolled_back else "commit"
            try:
                self.stack.psql(f"begin; insert into testtype (val) values ('{val}'); {end}")
            except Exception:  # the database is restarting: this one did not commit
                time.sleep(0.1)
                continue
            if not rolled_back:
                self.committed.append(val)
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)


def watch_through(stack, client: Client, fault, tag: str, watchers: int = 4) -> list[Watcher]:
    """Watchers parked at a caught-up cursor and a writer, then `fault()`,
    then more writes; returns the watchers once each has every committed row."""
    cursor = caught_up_cursor(client)
    polls = [Watcher(client, cursor) for _ in range(watchers)]
    for poll in polls:
        poll.start()
    writer = Writer(stack, tag)
    writer.start()
    time.sleep(1.5)
    fault()
    time.sleep(1.5)
    writer.stop()
    assert len(writer.committed) >= 20, writer.committed
    deadline = time.monotonic() + 60
    for poll in polls:
        while len([v for v in poll.vals if v.startswith(tag + "-")]) < len(writer.committed):
            assert time.monotonic() < deadline, (
                f"a watcher has {len([v for v in poll.vals if v.startswith(tag)])} of {len(writer.committed)} rows;"
                f" resets {poll.resets}, failures {poll.failures[:5]}")
            time.sleep(0.1)
    time.sleep(0.5)
    for poll in polls:
        poll.stop()
    for poll in polls:
        mine = [v for v in poll.vals if v.startswith(tag + "-")]
        assert poll.resets == 0, f"{poll.resets} resets"
        assert mine == writer.committed, "every committed row exactly once, in commit order, and nothing rolled back"
    return polls


def test_notifyd_killed_under_polls_and_a_writer_resets_nobody(wal_stack, wal_client):
    def kill_and_restart():
        wal_stack.kill("pbp-notifyd")
        time.sleep(0.5)
        wal_stack.start_notifyd()

    watch_through(wal_stack, wal_client, kill_and_restart, "kill")


def test_postgresql_restart_under_polls_and_a_writer_resets_nobody(wal_stack, wal_client):
    notifyd = wal_stack.pid("pbp-notifyd")
    watch_through(wal_stack, wal_client, wal_stack.restart_postgres, "restart")
    assert wal_stack.pid("pbp-notifyd") == notifyd and wal_stack.processes["pbp-notifyd"].poll() is None


def test_a_100000_row_transaction_arrives_whole_and_in_commit_order(wal_stack):
    subscriber = NotifydClient(wal_stack.notifyd_socket)
    epoch, start, _ = subscriber.welcome()
    wal_stack.psql("insert into testtype (val) select 'bulk-' || n from generate_series(1, 100000) n")
    wal_stack.psql("insert into testtype (val) values ('after the bulk')")
    events = subscriber.events(100001, timeout=180, resume=True)
    positions = [position for position, _ in events]
    assert positions == sorted(positions) and len(set(positions)) == 100001
    commits = {major for major, _ in positions[:100000]}
    assert len(commits) == 1, "one transaction, one commit LSN"
    assert [minor for _, minor in positions[:100000]] == list(range(1, 100001)), "indexes in the transaction"
    assert positions[100000][0] > positions[0][0], "the next transaction commits later"
    vals = [json.loads(payload)["new"]["val"] for _, payload in events]
    assert vals == [f"bulk-{n}" for n in range(1, 100001)] + ["after the bulk"]
    subscriber.close()


def test_a_slot_dropped_by_an_administrator_resets_each_client_once_and_recovers(wal_stack, wal_client):
    cursor = caught_up_cursor(wal_client)
    polls = [Watcher(wal_client, cursor) for _ in range(3)]
    for poll in polls:
        poll.start()
    time.sleep(0.5)
    wal_stack.stop_process("pbp-notifyd")
    wal_stack.psql(f"select pg_drop_replication_slot('{SLOT}')")
    wal_stack.psql("insert into testtype (val) values ('lost with the slot')")
    wal_stack.start_notifyd()
    wal_client.get("/api/testtype?limit=1")
    deadline = time.monotonic() + 30
    while any(poll.resets == 0 for poll in polls):
        assert time.monotonic() < deadline, [poll.resets for poll in polls]
        time.sleep(0.1)
    wal_stack.psql("insert into testtype (val) values ('after the new slot')")
    while any("after the new slot" not in poll.vals for poll in polls):
        assert time.monotonic() < deadline, [poll.vals[-3:] for poll in polls]
        time.sleep(0.1)
    for poll in polls:
        poll.stop()
    assert [poll.resets for poll in polls] == [1, 1, 1]
    assert all("lost with the slot" not in poll.vals for poll in polls), "a change the lost slot never saw"
    assert wal_stack.psql(f"select count(*) from pg_replication_slots where slot_name = '{SLOT}'").strip() == "1"


def notifyd_output(stack, *arguments: str, seconds: float = 6) -> str:
    """What a second pbp-notifyd, on a socket of its own, logs in `seconds`."""
    socket_path = stack.run_dir / "second-notifyd.sock"
    process = subprocess.Popen(
        [str(stack.bin_dir / "pbp-notifyd"), "--socket", str(socket_path), *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    return output


def test_a_second_notifyd_on_the_same_slot_says_so_and_leaves_the_first_alone(wal_stack, wal_client):
    output = notifyd_output(wal_stack, "--source", "wal", "--conninfo", wal_stack.conninfo("pbp_wal"))
    assert "another reader (PID" in output and "holds replication slot \"pbp\"" in output, output
    assert output.count("To fix:") == 1, "the advice once, then quieter retries"
    assert "retrying" in output, output
    cursor = caught_up_cursor(wal_client)
    wal_stack.psql("insert into testtype (val) values ('the first notifyd still serves')")
    response = wal_client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})
    assert [e["new"]["val"] for e in response.json()["events"]] == ["the first notifyd still serves"]


def test_a_role_without_replication_is_told_what_to_change(wal_stack):
    output = notifyd_output(wal_stack, "--source", "wal", "--slot", "pbp_other",
                            "--conninfo", wal_stack.conninfo("pbp_notifyd"))
    assert "ALTER ROLE <role> REPLICATION" in output, output


def test_a_database_without_logical_wal_is_told_what_to_change(stack):
    output = notifyd_output(stack, "--source", "wal", "--conninfo", stack.conninfo("pbp_wal"))
    assert "set wal_level = logical in postgresql.conf and restart PostgreSQL" in output, output


def test_a_notify_notifyd_on_a_wal_database_says_so(wal_stack):
    output = notifyd_output(wal_stack, "--conninfo", wal_stack.conninfo("pbp_notifyd"), seconds=3)
    assert "start pbp-notifyd with --source wal" in output, output


def test_a_megabyte_row_arrives_whole_and_a_larger_one_as_its_key(wal_stack, wal_client):
    cursor = caught_up_cursor(wal_client)
    wal_stack.psql("insert into testtype (val) values (repeat('m', 1048576))")
    wal_stack.psql("insert into testtype (val) values (repeat('n', 9000000))")
    events, deadline = [], time.monotonic() + 30
    while len(events) < 2:
        assert time.monotonic() < deadline, events
        response = wal_client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype"}]},
                                   timeout=40)
        assert response.status == 200, response
        events += response.json()["events"]
        cursor = response.json()["cursor"]
    whole, keyed = events
    assert whole["new"]["val"] == "m" * 1048576 and not whole.get("truncated")
    assert keyed["truncated"] is True and "new" not in keyed, "over 8 MiB the wal source sends the key"
    fetched = wal_client.get(f"/api/testtype/{keyed['key']}").json()
    assert fetched["val"] == "n" * 9000000


def test_the_status_and_the_metrics_show_the_slot_and_its_lag(wal_stack, wal_client):
    caught_up_cursor(wal_client)
    status = wal_client.operators.get("/api/_status").json()
    [slot] = [s for s in status["replication_slots"] if s["name"] == SLOT]
    assert slot["active"] is True and slot["wal_status"] in ("reserved", "extended"), slot
    assert slot["lag_bytes"] >= 0 and slot["retained_bytes"] > 0, slot
    assert all(w["cursor"].split(":")[0] == status["notifyd"]["cursor"].split(":")[0] for w in status["workers"])
    metrics = wal_client.operators.get("/api/_metrics").body.decode()
    assert f'pbp_replication_slot_active{{slot="{SLOT}"}} 1' in metrics
    assert f'pbp_replication_slot_lag_bytes{{slot="{SLOT}"}} ' in metrics


def test_a_notify_site_reports_no_slots(stack):
    status = Client(stack.port, stack.status_port).operators.get("/api/_status").json()
    assert status["replication_slots"] == []


def test_a_private_cluster_goes_back_from_wal_to_notify():
    """`make run SOURCE=wal`, then `make run`: PostgreSQL refuses to start
    below wal_level logical while a logical slot exists, so the stack keeps
    logical for that start and drops the slot nobody reads any more."""
    import os
    import shutil
    import tempfile
    from pbpstack import Stack, free_port

    bin_dir = Path(os.environ.get("PBP_BIN_DIR", Path(__file__).resolve().parents[2] / ".build" / "debug"))
    root = Path(tempfile.mkdtemp(prefix="pbp-switch-"))
    os.chmod(root, 0o755)
    wal = Stack(root, free_port(), bin_dir, log=lambda message: None, source="wal")
    wal.start()
    try:
        assert wal.psql("select count(*) from pg_replication_slots").strip() == "1"
    finally:
        wal.stop()
    for _ in range(2):
        notify = Stack(root, free_port(), bin_dir, log=lambda message: None)
        notify.start()
        try:
            assert notify.psql("select count(*) from pg_replication_slots").strip() == "0"
            assert notify.psql("select pbp_change_source()").strip() == "notify"
        finally:
            notify.stop()
    assert notify.postgres_options().count("wal_level") == 0, "the next start is back to PostgreSQL's default"
    shutil.rmtree(root, ignore_errors=True)
