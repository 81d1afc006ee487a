"""Several app hosts on one PostgreSQL (issue 19): tools/pbpcluster.py starts
three hosts, each with nginx, pbp-fcgi and pbp-notifyd --source wal on a slot
of its own (pbp_a, pbp_b, pbp_c), each in a network namespace of its own with
its own address, and a balancer nginx in front with no stickiness. Cursors
are the database's, not a host's: a client moves between hosts with no reset
and no gap; only a host whose ring does not reach back to a cursor resets it.
Killing every process of a host under polls and a writer loses nothing, and
the host comes back from its slot. Every host's status shows every slot, and
the slot of a host gone for good stays visible (inactive, its lag growing)
until an operator drops it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Client, caught_up_cursor, wait_for
from watcher import Watcher

sys.path.insert(0, str(REPO / "tools"))
from pbpcluster import HOST_PORT, Cluster  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

SUBSCRIPTIONS = [{"table": "testtype"}]


@pytest.fixture(scope="module")
def cluster():
    """Hosts a and b; c starts later (test_a_host_started_later...)."""
    bin_dir = Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug"))
    root = Path(tempfile.mkdtemp(prefix="pbp-cluster-"))
    instance = Cluster(root, bin_dir, hosts=3, log=lambda message: None, workers=1, threads=2)
    instance.start(hosts=["a", "b"])
    try:
        yield instance
    finally:
        instance.stop()
        logs = REPO / "test-artifacts" / "logs-cluster"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        for log in list(root.glob("*/*.log")) + list(root.glob("*/nginx/*.log")) + [root / "db/pg/postgresql.log"]:
            if log.exists():
                shutil.copy(log, logs / f"{log.parent.name}-{log.name}")
        shutil.rmtree(root, ignore_errors=True)


def host(cluster: Cluster, name: str) -> Client:
    """A client of one host directly, at its own address (over the bridge)."""
    return Client(HOST_PORT, host=cluster.address(name))


def balancer(cluster: Cluster) -> Client:
    return Client(cluster.port)


def ensure_up(cluster: Cluster, name: str) -> None:
    if name in cluster.down:
        cluster.start_host(name)


def insert(cluster: Cluster, *vals: str) -> None:
    cluster.psql("; ".join(f"insert into testtype (val) values ('{val}')" for val in vals))


def poll(client: Client, cursor: str, timeout: float = 5) -> dict:
    response = client.post("/api/changes", {"cursor": cursor, "subscriptions": SUBSCRIPTIONS, "timeout": timeout},
                           timeout=timeout + 30)
    assert response.status == 200, response
    return response.json()


def vals_until(client: Client, cursor: str, last: str) -> tuple[list[tuple[str, str]], str]:
    """(val, cursor) of every event from `cursor` until the one whose val is `last`."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 30
    while not seen or seen[-1][0] != last:
        assert time.monotonic() < deadline, f"{last} did not arrive: {seen}"
        body = poll(client, cursor)
        seen += [(event["new"]["val"], event["cursor"]) for event in body["events"] if event["new"]]
        cursor = body["cursor"]
    return seen, cursor


def slots(cluster: Cluster, name: str) -> dict[str, dict]:
    return {slot["name"]: slot for slot in json.loads(cluster.status(name))["replication_slots"]}


def test_a_cursor_from_one_host_continues_on_the_other_with_no_reset_and_no_gap(cluster):
    a, b = host(cluster, "a"), host(cluster, "b")
    # Before its first event a host hands out where its own slot began, which
    # the other, started later, cannot vouch for (it would reset the client):
    # one event first, in both rings.
    insert(cluster, "warm-up")
    start = caught_up_cursor(a, SUBSCRIPTIONS)
    insert(cluster, "moves-1", "moves-2")
    on_a, after_2 = vals_until(a, start, "moves-2")
    on_b, _ = vals_until(b, start, "moves-2")
    assert on_a == on_b, "the same events with the same cursors on both hosts"
    assert [val for val, _ in on_a] == ["moves-1", "moves-2"]
    # One client, each poll on the other host, each from the cursor the other gave.
    insert(cluster, "moves-3")
    on_b, after_3 = vals_until(b, after_2, "moves-3")
    insert(cluster, "moves-4")
    on_a, after_4 = vals_until(a, after_3, "moves-4")
    assert [val for val, _ in on_b + on_a] == ["moves-3", "moves-4"]
    # Through the balancer, which takes turns: the same again.
    insert(cluster, "moves-5", "moves-6")
    through, _ = vals_until(balancer(cluster), after_4, "moves-6")
    assert [val for val, _ in through] == ["moves-5", "moves-6"]


def test_a_host_started_later_resets_only_a_cursor_older_than_its_slot(cluster):
    a = host(cluster, "a")
    before = caught_up_cursor(a, SUBSCRIPTIONS)
    insert(cluster, "before-c")
    assert "c" in cluster.down, "c is started here, after the others"
    cluster.start_host("c")
    c = host(cluster, "c")
    answer = c.post("/api/changes", {"cursor": before, "subscriptions": SUBSCRIPTIONS, "timeout": 5}, timeout=30)
    assert answer.status == 409 and answer.json()["error"] == "reset", "c's ring begins after this cursor"
    # A cursor a handed out for an event c has seen too continues on c.
    insert(cluster, "c-follows")
    since = caught_up_cursor(a, SUBSCRIPTIONS)
    insert(cluster, "after-c")
    on_c, _ = vals_until(c, since, "after-c")
    on_a, _ = vals_until(a, since, "after-c")
    assert on_c == on_a and [val for val, _ in on_c] == ["after-c"]


class Writer(threading.Thread):
    """Commits `tag-N` rows one at a time; `committed` in commit order."""

    def __init__(self, cluster: Cluster, tag: str):
        super().__init__(daemon=True)
        self.cluster, self.tag = cluster, tag
        self.committed: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            insert(self.cluster, f"{self.tag}-{n}")
            self.committed.append(f"{self.tag}-{n}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)


def test_killing_every_process_of_a_host_loses_nothing_and_it_comes_back_from_its_slot(cluster):
    ensure_up(cluster, "c")
    through = balancer(cluster)
    cursor = caught_up_cursor(through, SUBSCRIPTIONS)
    log_start = len(cluster.upstreams())
    watchers = [Watcher(through, cursor, f"w{i}") for i in range(4)]
    for watcher in watchers:
        watcher.start()
    writer = Writer(cluster, "hostkill")
    writer.start()
    wait_for(lambda: len(writer.committed) >= 20, 30, "writes before the kill")
    killed = cluster.kill_host("b")
    assert len(killed) >= 4, f"nginx (master, worker), pbp-fcgi (master, worker) and notifyd: {killed}"
    count = len(writer.committed)
    wait_for(lambda: len(writer.committed) >= count + 20, 30, "writes after the kill")
    writer.stop()
    for watcher in watchers:
        wait_for(lambda: len(watcher.vals) >= len(writer.committed), 60,
                 f"{watcher.name} to receive every row ({len(watcher.vals)} of {len(writer.committed)};"
                 f" resets {watcher.resets}, failures {watcher.failures[:3]})")
    for watcher in watchers:
        watcher.stop()
        assert watcher.resets == 0
        assert watcher.vals == writer.committed, "every committed row exactly once, in commit order"
    polls = [entry for entry in cluster.upstreams()[log_start:] if entry["uri"] == "/api/changes"]
    served = {h for entry in polls for h in entry["hosts"][-1:]}
    assert served == {"a", "b", "c"}, f"the balancer used every host before the kill: {served}"

    # b comes back: its notifyd goes on from its slot, and it serves the
    # cursors the others handed out meanwhile.
    final = watchers[0].cursor
    cluster.restart_host("b")
    insert(cluster, "b-is-back")
    on_b, _ = vals_until(host(cluster, "b"), final, "b-is-back")
    assert [val for val, _ in on_b] == ["b-is-back"]
    assert wait_for(lambda: slots(cluster, "b")["pbp_b"]["active"], 30, "b's slot to be read again")


def test_a_host_whose_notifyd_is_away_keeps_the_cursors_the_others_handed_out(cluster):
    # While b's notifyd is down the others move on, and polls the balancer
    # sends to b carry cursors b has not reached: b must hand them back, not
    # reset them, until it catches up from its slot.
    for name in ("a", "b", "c"):
        ensure_up(cluster, name)
    through = balancer(cluster)
    cursor = caught_up_cursor(through, SUBSCRIPTIONS)
    watchers = [Watcher(through, cursor, f"n{i}") for i in range(4)]
    for watcher in watchers:
        watcher.start()
    writer = Writer(cluster, "notifydkill")
    writer.start()
    wait_for(lambda: len(writer.committed) >= 10, 30, "writes before the kill")
    cluster.kill_notifyd("b")
    count = len(writer.committed)
    # Long enough for polls at b to outlast its grace for cursors ahead (1 s).
    wait_for(lambda: len(writer.committed) >= count + 60, 60, "writes while b's notifyd is away")
    cluster.start_notifyd("b")
    count = len(writer.committed)
    wait_for(lambda: len(writer.committed) >= count + 10, 30, "writes after")
    writer.stop()
    for watcher in watchers:
        wait_for(lambda: len(watcher.vals) >= len(writer.committed) or watcher.resets, 60,
                 f"{watcher.name} to receive every row")
    for watcher in watchers:
        watcher.stop()
        assert watcher.resets == 0
        assert watcher.vals == writer.committed, "every committed row exactly once, in commit order"


def test_every_host_shows_every_slot_and_its_lag(cluster):
    for name in ("a", "b", "c"):
        ensure_up(cluster, name)
    insert(cluster, "for-the-lag")
    for name in ("a", "b", "c"):
        shown = wait_for(lambda: (s := slots(cluster, name)) and all(x["active"] for x in s.values()) and s,
                         30, f"every slot active on {name}")
        assert set(shown) == {"pbp_a", "pbp_b", "pbp_c"}, shown
        for slot in shown.values():
            assert isinstance(slot["lag_bytes"], int) and slot["lag_bytes"] >= 0, slot
            assert isinstance(slot["retained_bytes"], int) and slot["retained_bytes"] >= slot["lag_bytes"], slot
        metrics = cluster.status(name, "_metrics")
        for slot in ("pbp_a", "pbp_b", "pbp_c"):
            assert f'pbp_replication_slot_lag_bytes{{slot="{slot}"}} ' in metrics


def test_the_slot_of_a_host_gone_for_good_is_reported_until_it_is_dropped(cluster):
    ensure_up(cluster, "c")
    assert slots(cluster, "a")["pbp_c"]["safe_wal_bytes"] is None, "no max_slot_wal_keep_size: no bound"
    cluster.psql("alter system set max_slot_wal_keep_size = '1GB'")
    cluster.psql("select pg_reload_conf()")
    cluster.kill_host("c")
    wait_for(lambda: not slots(cluster, "a")["pbp_c"]["active"], 30, "c's slot to be inactive")
    insert(cluster, "while-c-is-gone-1")
    first = slots(cluster, "a")["pbp_c"]
    cluster.psql("insert into testtype (val) select 'while-c-is-gone-' || n from generate_series(2, 200) n")
    for name in ("a", "b"):
        later = slots(cluster, name)["pbp_c"]
        assert later["active"] is False
        assert later["lag_bytes"] > first["lag_bytes"], "its lag grows with every write"
        assert later["retained_bytes"] >= later["lag_bytes"]
        assert 0 < later["safe_wal_bytes"] < first["safe_wal_bytes"], "and its time before it is lost shrinks"
        assert slots(cluster, name)["pbp_a"]["active"], "the live hosts' slots stay active"
    metrics = cluster.status("a", "_metrics")
    assert 'pbp_replication_slot_active{slot="pbp_c"} 0' in metrics
    assert 'pbp_replication_slot_safe_wal_bytes{slot="pbp_c"} ' in metrics
    # Retired (docs/deploy.md): the slot goes, and so does it from every status.
    cluster.psql("select pg_drop_replication_slot('pbp_c')")
    cluster.psql("alter system reset max_slot_wal_keep_size")
    cluster.psql("select pg_reload_conf()")
    for name in ("a", "b"):
        assert set(slots(cluster, name)) == {"pbp_a", "pbp_b"}


def test_a_pool_that_fits_alone_but_not_beside_what_others_hold_refuses_to_start(cluster, tmp_path):
    """The database allows 300 connections (3 reserved). 40 sessions are held
    open elsewhere (other hosts' pools, say): a host whose pool, doubled
    during a reload, would fit an empty server but not beside them refuses to
    start, and says so; `--check-config` (run while a pool is up, which
    would count its own connections) checks the pool alone."""
    import subprocess
    allowed = int(cluster.psql("select current_setting('max_connections')::int"
                               " - current_setting('superuser_reserved_connections')::int").strip())
    threads = (allowed - 21) // 2 - 1     # 1 worker: 2 × (threads + 1) + 1 is about allowed - 20
    held = [subprocess.Popen(["psql", "-X", "-q", "-c", "select pg_sleep(120)"], env=cluster.db.pg_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(40)]
    try:
        wait_for(lambda: int(cluster.psql("select count(*) from pg_stat_activity where query like 'select pg_sleep(120)%'")
                             .strip()) >= 40, 30, "the 40 sessions")
        command = [str(cluster.bin_dir / "pbp-fcgi"), "--conninfo", cluster.conninfo("pbp_app"),
                   "--socket", str(tmp_path / "fcgi.sock"), "--notifyd-socket", str(cluster.hosts["a"].notifyd_socket),
                   "--workers", "1", "--threads", str(threads)]
        alone = subprocess.run(command + ["--check-config"], capture_output=True, text=True, timeout=60)
        assert alone.returncode == 0 and "configuration ok" in alone.stdout, alone
        start = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert start.returncode != 0, start
        output = start.stdout + start.stderr
        assert f"need up to {2 * (threads + 1)} database connections" in output, output
        assert "held now by other sessions" in output and f"allows {allowed}" in output, output
        assert not (tmp_path / "fcgi.sock").exists(), "it refused before it listened"
    finally:
        for session in held:
            session.kill()
            session.wait()
