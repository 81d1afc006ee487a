"""PBP deployed as docs/deploy.md says, from its Debian package, under a real
systemd (PID 1 of a Debian 12 container), checked through nginx. The tests
run in this order and share one container: the checks of the running
install (the notify change source), the switch to the wal change source
with docs/deploy.md's own blocks and restarts under it, then a newer package
installed under load (still on wal), the switch back to notify, a stop,
`apt remove` and `apt purge`.

`make test-deploy` runs them (as root). See container.py for the container.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import doc_blocks, run_doc_block
from container import SUMMARY, Container

CLIENT = Path(__file__).with_name("netns_client.py")
SERVICES = ["pbp-notifyd.service", "pbp-fcgi.service"]
UNIT_DIR = "/lib/systemd/system"
# What a removal must take away, and what only a purge may.
CONFIGURATION = ["/etc/pbp/pbp-fcgi.conf", "/etc/pbp/pbp-notifyd.conf", "/etc/pbp/jwt.key",
                 "/etc/nginx/sites-available/pbp", "/etc/nginx/pbp-site.d/limits.conf"]


# -- helpers ------------------------------------------------------------------

def client(container: Container, *args: str, timeout: float = 120) -> dict:
    process = container.net([sys.executable, str(CLIENT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"client {args} failed: {err}"
    return json.loads(out)


def background(container: Container, *args: str) -> subprocess.Popen:
    return container.net([sys.executable, str(CLIENT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)


def finish(process: subprocess.Popen, timeout: float = 90) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"client failed: {err}"
    return json.loads(out)


def get(container, path, *headers):
    return client(container, "request", "GET", path, "-", *headers)


def post(container, path, document):
    return client(container, "request", "POST", path, json.dumps(document))


def body(answer: dict):
    return json.loads(answer["body"])


def poll_in_background(container, cursor: str, timeout: float = 50) -> subprocess.Popen:
    document = {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": timeout}
    return background(container, "request", "POST", "/api/changes", json.dumps(document))


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def parked(container) -> int:
    return body(get(container, "/api/_status"))["totals"]["parked_polls"]


def show(container, unit: str, prop: str) -> str:
    return container.run(f"systemctl show -P {prop} {unit}").stdout.strip()


def pbp_processes(container) -> list[tuple[int, str]]:
    return [(pid, exe) for pid, exe in container.processes() if Path(exe.split(" ")[0]).name.startswith("pbp-")]


def installed_version(container) -> str:
    return container.run("dpkg-query -W -f='${db:Status-Abbrev} ${Version}' pbp", check=False).stdout.strip()


def apt(container, arguments: str) -> str:
    result = container.run(f"DEBIAN_FRONTEND=noninteractive apt-get {arguments} -y -q </dev/null", timeout=300)
    return result.stdout


def all_values(container) -> set[str]:
    """Every testtype row's val, page by page."""
    values, after = set(), None
    while True:
        page = body(get(container, "/api/testtype?limit=10000" + (f"&after={after}" if after is not None else "")))
        values.update(row["val"] for row in page)
        if len(page) < 10000:
            return values
        after = page[-1]["id"]


# -- the package ----------------------------------------------------------------

def test_package_installs_debian_paths_man_pages_and_conffiles(deployed):
    assert installed_version(deployed).startswith("ii ")
    files = deployed.run("dpkg -L pbp").stdout.split()
    for path in ["/usr/sbin/pbp-notifyd", "/usr/sbin/pbp-fcgi", "/usr/sbin/pbp-setup-db",
                 f"{UNIT_DIR}/pbp-notifyd.service", f"{UNIT_DIR}/pbp-fcgi.service", f"{UNIT_DIR}/pbp-fcgi.socket",
                 "/usr/lib/sysusers.d/pbp.conf", "/usr/lib/tmpfiles.d/pbp.conf", "/usr/share/pbp/sql/01-pbp.sql",
                 "/usr/share/pbp/static/index.html", "/usr/share/doc/pbp/copyright",
                 "/usr/share/doc/pbp/deploy.md",
                 "/usr/share/doc/pbp/changelog.Debian.gz", "/usr/share/man/man8/pbp-notifyd.8.gz",
                 "/usr/share/man/man8/pbp-fcgi.8.gz", "/usr/share/man/man8/pbp-setup-db.8.gz"]:
        assert path in files, path
    conffiles = deployed.run("cat /var/lib/dpkg/info/pbp.conffiles").stdout.split()
    assert sorted(conffiles) == sorted(c for c in CONFIGURATION if c != "/etc/pbp/jwt.key")
    manual = deployed.run("zcat /usr/share/man/man8/pbp-setup-db.8.gz").stdout
    assert "\\-\\-print\\-sql" in manual, manual[:2000]
    key = deployed.run("stat -c '%U:%G %a %s' /etc/pbp/jwt.key").stdout.split()
    assert key[:2] == ["root:pbp", "640"] and int(key[2]) >= 32, key
    for unit in [*SERVICES, "pbp-fcgi.socket"]:
        assert show(deployed, unit, "UnitFileState") == "enabled", unit
        # Documentation= names a file the package has.
        assert show(deployed, unit, "Documentation") == "file:/usr/share/doc/pbp/deploy.md", unit


def test_pbp_setup_db_again_keeps_every_row(deployed):
    value = f"kept {uuid.uuid4().hex[:8]}"
    assert post(deployed, "/api/testtype", {"val": value})["status"] == 201
    again = deployed.run("pbp-setup-db")
    assert "is ready" in again.stdout
    assert value in all_values(deployed)
    assert get(deployed, "/api/testtype")["status"] == 200


def test_pbp_setup_db_prints_sql_that_sets_up_a_database_elsewhere(deployed):
    deployed.run("pbp-setup-db --print-sql --dbname pbp_printed > /root/printed.sql")
    # Read by root: the postgres user cannot enter /root.
    deployed.run("cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres -f - < /root/printed.sql")
    tables = deployed.run("cd / && runuser -u postgres -- psql -X -At -d pbp_printed -c "
                          "\"select string_agg(tablename, ',' order by tablename) from pg_tables"
                          " where schemaname = 'public'\"").stdout.strip()
    assert {"notes", "testtype", "todo"} <= set(tables.split(",")), tables
    deployed.run("cd / && runuser -u postgres -- psql -X -q -c 'drop database pbp_printed'")


# -- the units ------------------------------------------------------------------

def test_units_verify_and_score_ok_in_systemd_analyze_security(deployed):
    units = " ".join(f"{UNIT_DIR}/{unit}" for unit in [*SERVICES, "pbp-fcgi.socket"])
    result = deployed.run(f"systemd-analyze verify {units}", check=False)
    assert result.returncode == 0 and result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr
    for unit in SERVICES:
        report = deployed.run(f"systemd-analyze security --no-pager {unit}").stdout
        score = float(re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", report).group(1))
        SUMMARY.append(f"{unit}: systemd-analyze security exposure {score}")
        assert score <= 2.0, report


def test_services_run_as_their_users_with_the_socket_from_systemd(deployed):
    for unit, user in (("pbp-notifyd.service", "pbp_notifyd"), ("pbp-fcgi.service", "pbp_app")):
        assert show(deployed, unit, "ActiveState") == "active"
        pid = show(deployed, unit, "MainPID")
        owner = deployed.run(f"stat -c %U /proc/{pid}").stdout.strip()
        assert owner == user, f"{unit} runs as {owner}"
    assert show(deployed, "pbp-fcgi.socket", "ActiveState") == "active"
    listing = deployed.run(
        "stat -c '%n %U:%G %a' /run/pbp /run/pbp/fcgi.sock /run/pbp/fcgi-poll.sock /run/pbp/notifyd"
        " /run/pbp/notifyd/notifyd.sock").stdout
    assert "/run/pbp root:root 755" in listing, listing
    assert "/run/pbp/fcgi.sock root:www-data 660" in listing, listing
    assert "/run/pbp/fcgi-poll.sock root:www-data 660" in listing, listing
    assert "/run/pbp/notifyd pbp_notifyd:pbp 750" in listing, listing
    assert "/run/pbp/notifyd/notifyd.sock pbp_notifyd:pbp 660" in listing, listing
    journal = deployed.run("journalctl -u pbp-fcgi.service -o cat --no-pager").stdout
    assert "using the socket systemd passed for the API" in journal
    assert "using the socket systemd passed for polls" in journal


def test_no_service_user_can_touch_a_socket_that_is_not_its_own(deployed):
    fcgi_socket = deployed.run("stat -c %i /run/pbp/fcgi.sock").stdout.strip()
    for user in ("pbp_notifyd", "pbp_app"):
        for attempt in ("touch /run/pbp/planted",
                        "ln -s /tmp/elsewhere /run/pbp/planted && mv -f /run/pbp/planted /run/pbp/fcgi.sock",
                        "rm -f /run/pbp/fcgi.sock"):
            result = deployed.run(f"runuser -u {user} -- sh -c '{attempt}'", check=False)
            assert result.returncode != 0, f"{user} could: {attempt}"
    assert sorted(deployed.run("ls -A /run/pbp").stdout.split()) == ["fcgi-poll.sock", "fcgi.sock", "notifyd"]
    assert deployed.run("stat -c %i /run/pbp/fcgi.sock").stdout.strip() == fcgi_socket
    # Each service reaches what it must: pbp-fcgi notifyd's socket (a cursor of
    # notifyd's epoch), nginx the FastCGI socket (any API answer).
    assert get(deployed, "/api/testtype")["status"] == 200
    replace = deployed.run("runuser -u pbp_app -- sh -c 'touch /run/pbp/notifyd/planted'", check=False)
    assert replace.returncode != 0, "pbp_app may enter notifyd's directory, not write in it"


def test_memory_limits_fit_the_ring_budgets_and_are_in_effect(deployed):
    mib = 1 << 20
    limits = {"pbp-notifyd.service": (320 * mib, 512 * mib), "pbp-fcgi.service": (768 * mib, 1024 * mib)}
    for unit, (high, maximum) in limits.items():
        assert show(deployed, unit, "MemoryHigh") == str(high), unit
        assert show(deployed, unit, "MemoryMax") == str(maximum), unit
        cgroup = show(deployed, unit, "ControlGroup")
        # The limits as the kernel applies them, where the container's cgroup tree has the memory controller.
        controllers = deployed.run(f"cat /sys/fs/cgroup{cgroup}/cgroup.controllers 2>/dev/null || true").stdout
        files = deployed.run(f"cat /sys/fs/cgroup{cgroup}/memory.high /sys/fs/cgroup{cgroup}/memory.max",
                             check=False)
        if files.returncode == 0:
            assert files.stdout.split() == [str(high), str(maximum)], (unit, files.stdout)
        SUMMARY.append(f"{unit}: MemoryHigh {high // mib}M MemoryMax {maximum // mib}M "
                       f"(cgroup files {'checked' if files.returncode == 0 else 'absent'}; controllers {controllers.strip()!r})")
    notifyd = show(deployed, "pbp-notifyd.service", "StatusText")
    assert re.search(r"ring \d+ events, [0-9.]+ of 128\.0 MiB", notifyd), notifyd


def test_nginx_site_passes_nginx_t_with_room_for_long_polls(deployed):
    result = deployed.run("nginx -t", check=False)
    assert result.returncode == 0, result.stderr
    config = deployed.run("nginx -T 2>/dev/null").stdout
    assert re.search(r"^\s*worker_connections 4096;", config, re.M)
    assert "limit_conn pbp_per_client" in config
    workers = deployed.run("pgrep -f 'nginx: worker process'").stdout.split()
    assert workers
    limits = deployed.run(f"cat /proc/{workers[0]}/limits").stdout
    assert re.search(r"Max open files\s+16384\s+16384", limits), limits


# -- through nginx --------------------------------------------------------------

def test_page_with_security_headers_caching_and_gzip(deployed):
    page = get(deployed, "/")
    assert page["status"] == 200 and "<html" in page["body"].lower()
    headers = page["headers"]
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "max-age=300"
    script = get(deployed, "/app.js", "Accept-Encoding:gzip")
    assert script["status"] == 200
    assert script["headers"].get("content-encoding") == "gzip"
    assert script["headers"].get("vary") == "Accept-Encoding"


def test_api_reads_and_writes_through_nginx(deployed):
    listing = get(deployed, "/api/testtype")
    assert listing["status"] == 200 and isinstance(body(listing), list)
    assert re.fullmatch(r"[0-9a-f]+:[0-9]+", listing["headers"]["pbp-cursor"])
    value = f"deploy {uuid.uuid4().hex[:8]}"
    created = post(deployed, "/api/testtype", {"val": value})
    assert created["status"] == 201, created
    row = body(get(deployed, created["headers"]["location"]))
    assert row["val"] == value
    too_large = client(deployed, "request", "POST", "/api/testtype", f"@{2 << 20}")
    assert too_large["status"] == 413 and body(too_large)["error"] == "body_too_large"


def test_long_poll_is_answered_by_a_write(deployed):
    cursor = get(deployed, "/api/testtype")["headers"]["pbp-cursor"]
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    value = f"poll {uuid.uuid4().hex[:8]}"
    assert post(deployed, "/api/testtype", {"val": value})["status"] == 201
    answer = finish(poll)
    assert answer["status"] == 200, answer
    assert [e["new"]["val"] for e in body(answer)["events"]] == [value]


def poll_like_a_browser(container, value: str, attempts: int = 4) -> int:
    """What the page does: read the rows (a cursor), poll from that cursor,
    and on a reset read again. A write of `value` must then arrive as an event.
    Returns how many resets it took on the way."""
    resets = 0
    for _ in range(attempts):
        cursor = get(container, "/api/testtype")["headers"]["pbp-cursor"]
        poll = poll_in_background(container, cursor)
        wait_for(lambda: poll.poll() is not None or parked(container) >= 1, 10, "the poll to park or answer")
        if poll.poll() is None:
            assert post(container, "/api/testtype", {"val": value})["status"] == 201
        answer = finish(poll)
        if answer["status"] == 409 and body(answer)["error"] == "reset":
            resets += 1
            continue
        assert answer["status"] == 200, answer
        assert value in [e["new"]["val"] for e in body(answer)["events"]]
        return resets
    pytest.fail(f"no delivery after {attempts} resets in a row")


KNOWN = {}
NOTIFY_CURSOR = r"[0-9a-f]{16}:[0-9]+"
# EPOCH:COMMITLSN.INDEX, the boundary before a transaction without the index.
WAL_CURSOR = r"[0-9a-f]{16}:[0-9]+(\.[0-9]+)?"


def epoch(cursor: str) -> str:
    return cursor.split(":")[0]


def caught_up_cursor(container, seconds: float = 60) -> str:
    """A cursor past every change so far, on every worker: once each worker
    stands where notifyd does, one that two short polls in a row agree on (so
    that a poll from it waits)."""
    deadline = time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, "the workers did not catch up with notifyd"
        status = body(get(container, "/api/_status"))
        newest = status["notifyd"]["cursor"]
        if newest and status["workers"] and all(w["cursor"] == newest for w in status["workers"]):
            break
        time.sleep(0.1)
    cursor, quiet = None, 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the stream did not settle"
        if cursor is None:
            snapshot = get(container, "/api/testtype?limit=1")
            if snapshot["status"] != 200:
                time.sleep(0.1)
                continue
            cursor = snapshot["headers"]["pbp-cursor"]
        document = {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 0.2}
        answer = client(container, "request", "POST", "/api/changes", json.dumps(document))
        if answer["status"] == 200:
            quiet = quiet + 1 if not body(answer)["events"] else 0
            cursor = body(answer)["cursor"]
        else:
            cursor, quiet = None, 0
    return cursor


def write_when_the_database_is_back(container, value: str, seconds: float = 30) -> None:
    """A POST, again while it is answered 503: after a PostgreSQL restart each
    of pbp-fcgi's threads finds its connection broken once (nothing committed)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = post(container, "/api/testtype", {"val": value})
        if answer["status"] == 201:
            return
        assert answer["status"] == 503 and time.monotonic() < deadline, answer
        time.sleep(0.2)


def change_source(container) -> str:
    return container.run("cd / && runuser -u postgres -- psql -X -At -d pbp -c 'select pbp_change_source()'"
                         ).stdout.strip()


def journal_since(container, unit: str, cursor_file: str) -> str:
    return container.run(f"journalctl -u {unit} -o cat --no-pager --cursor-file={cursor_file}").stdout


def test_notifyd_restart_resets_a_waiting_poll_and_delivery_goes_on(deployed):
    before = show(deployed, "pbp-notifyd.service", "MainPID")
    cursor = get(deployed, "/api/testtype")["headers"]["pbp-cursor"]
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    deployed.run("systemctl restart pbp-notifyd.service")
    assert show(deployed, "pbp-notifyd.service", "MainPID") != before
    answer = finish(poll, timeout=30)
    assert answer["status"] == 409, answer
    reset = body(answer)
    assert reset["error"] == "reset"
    assert reset["cursor"].split(":")[0] != cursor.split(":")[0], "a new epoch"
    # The client reloads its rows, then polls from the new cursor: delivery goes on.
    KNOWN["extra resets after a notifyd restart"] = poll_like_a_browser(deployed, f"after restart {uuid.uuid4().hex[:8]}")


def test_after_a_notifyd_restart_one_reset_is_enough(deployed):
    assert KNOWN.get("extra resets after a notifyd restart") == 0, KNOWN


def test_notifyd_is_restarted_after_a_crash(deployed):
    before = show(deployed, "pbp-notifyd.service", "MainPID")
    deployed.run("systemctl kill --signal=SIGKILL pbp-notifyd.service")
    wait_for(lambda: show(deployed, "pbp-notifyd.service", "MainPID") not in ("0", before)
             and show(deployed, "pbp-notifyd.service", "ActiveState") == "active", 15, "Restart=on-failure")
    assert show(deployed, "pbp-notifyd.service", "NRestarts") == "1"
    wait_for(lambda: get(deployed, "/api/testtype")["status"] == 200, 10, "the API")


def test_reload_under_a_stream_of_requests_fails_none(deployed):
    master = show(deployed, "pbp-fcgi.service", "MainPID")
    workers_before = set(deployed.run(f"cat /proc/{master}/task/{master}/children").stdout.split())
    stream = background(deployed, "stream", "9", "6")
    time.sleep(2)
    deployed.run("systemctl reload pbp-fcgi.service")
    time.sleep(3)
    deployed.run("systemctl reload pbp-fcgi.service")
    result = finish(stream, timeout=60)
    SUMMARY.append(f"requests during two reloads: {result['counts']}, resets {len(result['resets'])}")
    KNOWN["resets in reloads"] = result["resets"]
    assert result["failures"] == [], result
    assert result["counts"].get("read", 0) > 50 and result["counts"].get("write", 0) > 10, result
    assert show(deployed, "pbp-fcgi.service", "MainPID") == master
    assert show(deployed, "pbp-fcgi.service", "ActiveState") == "active"
    current = set(deployed.run(f"cat /proc/{master}/task/{master}/children").stdout.split())
    assert current and not (current & workers_before), "the workers were replaced"
    journal = deployed.run("journalctl -u pbp-fcgi.service -o cat --no-pager").stdout
    assert journal.count("Reloaded pbp-fcgi.service") >= 2


def test_a_reload_with_a_broken_configuration_fails_and_changes_nothing(deployed):
    master = show(deployed, "pbp-fcgi.service", "MainPID")
    workers_before = deployed.run(f"cat /proc/{master}/task/{master}/children").stdout.split()
    deployed.run("cp /etc/pbp/pbp-fcgi.conf /root/pbp-fcgi.conf.good && echo 'threads = 0' >> /etc/pbp/pbp-fcgi.conf")
    try:
        reload = deployed.run("systemctl reload pbp-fcgi.service", check=False)
        assert reload.returncode != 0, "systemctl reload reported success for a broken configuration"
    finally:
        deployed.run("cp /root/pbp-fcgi.conf.good /etc/pbp/pbp-fcgi.conf")
    assert show(deployed, "pbp-fcgi.service", "ActiveState") == "active"
    assert deployed.run(f"cat /proc/{master}/task/{master}/children").stdout.split() == workers_before
    assert get(deployed, "/api/testtype")["status"] == 200


def test_a_reload_resets_no_poll(deployed):
    assert KNOWN.get("resets in reloads") == [], KNOWN


def test_connection_limit_per_client_answers_429(deployed):
    limit = int(re.search(r"limit_conn pbp_per_client (\d+);",
                          deployed.run("cat /etc/nginx/pbp-site.d/limits.conf").stdout).group(1))
    cursor = get(deployed, "/api/testtype")["headers"]["pbp-cursor"]
    statuses = client(deployed, "connections", str(limit + 3), cursor, "3")["statuses"]
    assert statuses.count(429) == 3 and statuses.count(200) == limit, sorted(set(statuses))


def test_journal_shows_readiness_and_watchdog(deployed):
    journal = deployed.run("journalctl -u pbp-notifyd.service -o cat --no-pager").stdout
    assert re.search(r"LISTEN in place; epoch [0-9a-f]+:0", journal), journal
    assert show(deployed, "pbp-notifyd.service", "WatchdogUSec") == "20s"
    # Pings arrive every 10 s (WatchdogSec/2); the earlier tests took longer than that.
    first = int(show(deployed, "pbp-notifyd.service", "WatchdogTimestampMonotonic"))
    started = int(show(deployed, "pbp-notifyd.service", "ExecMainStartTimestampMonotonic"))
    wait_for(lambda: int(show(deployed, "pbp-notifyd.service", "WatchdogTimestampMonotonic")) > max(first, started),
             15, "a watchdog ping")


# -- the wal change source (docs/deploy.md, "Change source: wal") ---------------
# After every notify-source check above (they expect a restart to reset), and
# before the upgrade, which then runs on the wal source.

def test_wal_preparation_restarts_postgresql_with_logical_decoding_and_maps_the_role(deployed):
    blocks = doc_blocks("wal-prepare")
    assert blocks, "docs/deploy.md has no `sh wal-prepare` block"
    for block in blocks:
        run_doc_block(deployed, block)
    settings = deployed.run("cd / && runuser -u postgres -- psql -X -At -d pbp -c "
                            "\"select string_agg(name || '=' || setting, ' ' order by name) from pg_settings"
                            " where name in ('wal_level', 'max_slot_wal_keep_size')\"").stdout.strip()
    assert settings == "max_slot_wal_keep_size=4096 wal_level=logical", settings
    # notifyd's service user reaches PostgreSQL as pbp_wal, on a replication connection.
    who = deployed.run("cd / && runuser -u pbp_notifyd -- psql -X -At"
                       " 'dbname=pbp user=pbp_wal replication=database' -c 'IDENTIFY_SYSTEM'", check=False)
    assert who.returncode == 0 and re.match(r"^\d+\|1\|", who.stdout), who.stderr
    # The notify source went on through the restart (with its one reset).
    wait_for(lambda: get(deployed, "/api/testtype")["status"] == 200, 30, "the API after PostgreSQL's restart")
    poll_like_a_browser(deployed, f"after preparing {uuid.uuid4().hex[:8]}")


def test_switch_to_wal_resets_a_waiting_poll_once_and_replays_the_slot_from_the_switch(deployed):
    blocks = doc_blocks("wal-switch")
    assert len(blocks) == 3, f"docs/deploy.md has {len(blocks)} `sh wal-switch` blocks (slot, source, notifyd)"
    assert "pg_create_logical_replication_slot" in blocks[0]
    assert "pbp_set_change_source('wal')" in blocks[1]
    assert "systemctl restart pbp-notifyd" in blocks[2]
    cursor = caught_up_cursor(deployed)
    assert re.fullmatch(NOTIFY_CURSOR, cursor), cursor
    before = show(deployed, "pbp-notifyd.service", "MainPID")
    deployed.run("journalctl -u pbp-notifyd.service -n 0 --cursor-file=/root/wal-switch.journal")
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    run_doc_block(deployed, blocks[0])
    run_doc_block(deployed, blocks[1])
    assert change_source(deployed) == "wal"
    # The site keeps writing between the switch and notifyd's restart; no
    # NOTIFY carries these, the slot does.
    window = [f"switching {n} {uuid.uuid4().hex[:8]}" for n in range(3)]
    for value in window:
        assert post(deployed, "/api/testtype", {"val": value})["status"] == 201
    time.sleep(1)
    assert poll.poll() is None, "the notify source saw a write made after the switch"
    run_doc_block(deployed, blocks[2])
    assert show(deployed, "pbp-notifyd.service", "MainPID") != before
    answer = finish(poll, timeout=30)
    assert answer["status"] == 409 and body(answer)["error"] == "reset", answer
    reset = body(answer)["cursor"]
    assert re.fullmatch(WAL_CURSOR, reset) and epoch(reset) != epoch(cursor), reset
    # The new notifyd read the slot from where it was made: its ring starts
    # with the window's writes, none else.
    status = show(deployed, "pbp-notifyd.service", "StatusText")
    assert re.search(rf"ring {len(window)} events,", status), status
    assert set(window) <= all_values(deployed)
    journal = journal_since(deployed, "pbp-notifyd.service", "/root/wal-switch.journal")
    assert "the database's triggers send to" not in journal, journal
    KNOWN["extra resets after the switch to wal"] = poll_like_a_browser(deployed, f"on wal {uuid.uuid4().hex[:8]}")
    assert KNOWN["extra resets after the switch to wal"] == 0, KNOWN


def test_on_wal_a_notifyd_restart_resets_no_waiting_poll(deployed):
    cursor = caught_up_cursor(deployed)
    assert re.fullmatch(WAL_CURSOR, cursor), cursor
    before = show(deployed, "pbp-notifyd.service", "MainPID")
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    deployed.run("systemctl restart pbp-notifyd.service")
    assert show(deployed, "pbp-notifyd.service", "MainPID") != before
    # The workers follow the new notifyd from their cursors (a reset would
    # answer the poll as soon as one reconnects): the poll waits on.
    time.sleep(3)
    assert poll.poll() is None, f"answered by the restart: {finish(poll)}"
    value = f"after a wal restart {uuid.uuid4().hex[:8]}"
    assert post(deployed, "/api/testtype", {"val": value})["status"] == 201
    answer = finish(poll, timeout=30)
    assert answer["status"] == 200, answer
    assert [e["new"]["val"] for e in body(answer)["events"]] == [value]
    assert epoch(body(answer)["cursor"]) == epoch(cursor), "the same epoch"


def test_on_wal_a_postgresql_restart_resets_no_waiting_poll(deployed):
    cursor = caught_up_cursor(deployed)
    notifyd = show(deployed, "pbp-notifyd.service", "MainPID")
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    deployed.run("systemctl restart postgresql.service", timeout=120)
    value = f"after a postgresql restart {uuid.uuid4().hex[:8]}"
    write_when_the_database_is_back(deployed, value)
    answer = finish(poll, timeout=60)
    assert answer["status"] == 200, answer
    assert [e["new"]["val"] for e in body(answer)["events"]] == [value]
    assert epoch(body(answer)["cursor"]) == epoch(cursor), "the same epoch"
    assert show(deployed, "pbp-notifyd.service", "MainPID") == notifyd, "notifyd reconnected, not restarted"


def test_on_wal_status_and_journal_show_the_slot_streamed(deployed):
    blocks = doc_blocks("wal-check")
    assert blocks, "docs/deploy.md has no `sh wal-check` block"
    output = "".join(run_doc_block(deployed, block).stdout for block in blocks)
    assert re.search(r"slot pbp: confirmed [0-9A-F]+/[0-9A-F]+, [0-9.]+ MiB behind the WAL", output), output
    assert "streaming slot pbp from" in output, output
    assert re.search(r"^ *pbp *\| *t *\| *reserved *\|", output, re.M), output
    journal = deployed.run("journalctl -u pbp-notifyd.service -o cat --no-pager").stdout
    assert re.search(r"streaming slot pbp from [0-9A-F]+/[0-9A-F]+ again; the history goes on", journal), \
        "no reconnect after PostgreSQL's restart in the journal"
    # The slot follows notifyd's confirmations: idle, it is no further behind than the ring needs.
    slot = deployed.run("cd / && runuser -u postgres -- psql -X -At -d pbp -c \"select active_pid is not null,"
                        " confirmed_flush_lsn is not null from pg_replication_slots where slot_name = 'pbp'\"")
    assert slot.stdout.strip() == "t|t", slot.stdout


def test_upgrade_under_a_stream_of_requests_fails_none_loses_no_write_and_keeps_the_edited_conffile(
        deployed, upgrade_package):
    version, path = upgrade_package
    deployed.run("echo '# edited before the upgrade (Tests/deploy)' >> /etc/pbp/pbp-fcgi.conf")
    edited = deployed.run("sha256sum /etc/pbp/pbp-fcgi.conf").stdout
    before = {unit: show(deployed, unit, "MainPID") for unit in SERVICES}
    socket_since = show(deployed, "pbp-fcgi.socket", "ActiveEnterTimestampMonotonic")
    (deployed.root / "root" / "upgrade").mkdir(exist_ok=True)
    shutil.copy(path, deployed.root / "root" / "upgrade")
    stream = background(deployed, "stream", "24", "6")
    time.sleep(4)
    started = time.monotonic()
    output = apt(deployed, f"install /root/upgrade/{path.name}")
    took = time.monotonic() - started
    result = finish(stream, timeout=120)
    source = change_source(deployed)
    SUMMARY.append(f"upgrade to {version} ({source} source) in {took:.1f} s under {result['counts']},"
                   f" resets {len(result['resets'])}")
    assert result["failures"] == [], result["failures"]
    if source == "wal":
        # docs/deploy.md: notifyd's restart resets no poll on the wal source.
        assert result["resets"] == [], result["resets"]
    assert result["counts"].get("write", 0) > 20 and result["counts"].get("poll", 0) > 3, result["counts"]
    assert installed_version(deployed) == f"ii  {version}", output
    for unit in SERVICES:
        assert show(deployed, unit, "ActiveState") == "active", unit
        assert show(deployed, unit, "MainPID") != before[unit], f"{unit} was not restarted"
    assert show(deployed, "pbp-fcgi.socket", "ActiveEnterTimestampMonotonic") == socket_since, \
        "the socket was restarted (connections refused meanwhile)"
    missing = set(result["written"]) - all_values(deployed)
    assert missing == set(), f"{len(missing)} acknowledged writes lost"
    assert deployed.run("sha256sum /etc/pbp/pbp-fcgi.conf").stdout == edited
    assert deployed.run("ls /etc/pbp").stdout.split() == ["jwt.key", "pbp-fcgi.conf", "pbp-notifyd.conf"]


def test_switch_back_to_notify_resets_a_waiting_poll_once_and_retires_the_slot(deployed):
    blocks = doc_blocks("wal-back")
    assert blocks, "docs/deploy.md has no `sh wal-back` block"
    cursor = caught_up_cursor(deployed)
    assert re.fullmatch(WAL_CURSOR, cursor), cursor
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    deployed.run("journalctl -u pbp-notifyd.service -n 0 --cursor-file=/root/wal-back.journal")
    for block in blocks:
        run_doc_block(deployed, block)
    answer = finish(poll, timeout=30)
    assert answer["status"] == 409 and body(answer)["error"] == "reset", answer
    assert re.fullmatch(NOTIFY_CURSOR, body(answer)["cursor"]), body(answer)
    assert "LISTEN in place" in journal_since(deployed, "pbp-notifyd.service", "/root/wal-back.journal")
    assert change_source(deployed) == "notify"
    slots = deployed.run("cd / && runuser -u postgres -- psql -X -At -d pbp -c 'select count(*) from pg_replication_slots'")
    assert slots.stdout.strip() == "0", "the slot is left, holding WAL"
    assert poll_like_a_browser(deployed, f"back on notify {uuid.uuid4().hex[:8]}") == 0


def test_stop_leaves_no_process_behind(deployed):
    assert pbp_processes(deployed), "PBP runs before the stop"
    cursor = get(deployed, "/api/testtype")["headers"]["pbp-cursor"]
    poll = poll_in_background(deployed, cursor)
    wait_for(lambda: parked(deployed) >= 1, 10, "the poll to park")
    started = time.monotonic()
    deployed.run("systemctl stop pbp-fcgi.socket pbp-fcgi.service pbp-notifyd.service", timeout=60)
    SUMMARY.append(f"systemctl stop took {time.monotonic() - started:.1f} s")
    answer = finish(poll, timeout=30)
    assert answer["status"] == 200, "a stop answers parked polls at once"
    assert pbp_processes(deployed) == []
    for unit in ["pbp-notifyd.service", "pbp-fcgi.service", "pbp-fcgi.socket"]:
        assert show(deployed, unit, "ActiveState") == "inactive"
        # "success": each stopped on SIGTERM, within TimeoutStopSec, without a SIGKILL.
        assert show(deployed, unit, "Result") == "success", unit
    assert deployed.run("ls -A /run/pbp").stdout.strip() == ""
    down = get(deployed, "/api/testtype")
    assert down["status"] == 503 and body(down)["error"] == "service_unavailable"


def test_apt_remove_stops_the_services_and_keeps_the_configuration(deployed):
    deployed.run("systemctl start pbp-fcgi.socket pbp-notifyd.service pbp-fcgi.service", timeout=90)
    assert get(deployed, "/api/testtype")["status"] == 200
    configuration = deployed.run(f"sha256sum {' '.join(CONFIGURATION)}").stdout
    apt(deployed, "remove pbp")
    assert installed_version(deployed).startswith("rc "), installed_version(deployed)
    assert pbp_processes(deployed) == []
    for unit in [*SERVICES, "pbp-fcgi.socket"]:
        assert show(deployed, unit, "ActiveState") == "inactive", unit
        assert show(deployed, unit, "LoadState") == "not-found", unit
    assert deployed.run("ls /usr/sbin/pbp-fcgi /usr/share/pbp", check=False).returncode != 0
    assert deployed.run(f"sha256sum {' '.join(CONFIGURATION)}").stdout == configuration


def test_apt_purge_removes_the_configuration_and_leaves_nginx_startable(deployed):
    apt(deployed, "purge pbp")
    assert installed_version(deployed) == ""
    for path in ["/etc/pbp", "/etc/nginx/sites-available/pbp", "/etc/nginx/pbp-site.d", "/etc/nginx/sites-enabled/pbp"]:
        assert deployed.run(f"test -e {path} || test -L {path}", check=False).returncode != 0, f"{path} is left"
    nginx = deployed.run("nginx -t", check=False)
    assert nginx.returncode == 0, nginx.stderr
