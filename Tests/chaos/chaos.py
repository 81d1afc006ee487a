#!/usr/bin/env python3
"""Convergence harness: many simulated browsers keep live replicas through
faults, and at the end every replica must equal the table, row by row.

It starts a private stack (tools/pbpstack.py: PostgreSQL, pbp-notifyd,
pbp-fcgi, nginx on a free loopback port), then:

  clients  each one a browser tab running the page's own modules (static/
           tabs.js in mode 'single', poller.js, watch.js, replica.js,
           api.js) under Node: browsers.mjs processes, a few hundred
           browsers each, driven from here through browsers.py. Snapshot with
           its cursor, long-poll deltas, reload on reset; some watch a whole
           table, some one row (the page's row view, where {id: N}), some the
           rows of a group (where {grp: G}). All through nginx, each browser
           over keep-alive connections of its own. Some are signed in (a
           token of alice, bob or carol) on `notes`, a table with a row rule
           (owner = the token's sub): each must hold exactly its user's
           notes, and any row of another user it receives, new or old, is a
           leak that fails the run.
  writers  API calls through nginx (POST JSON and form, PUT, PATCH, DELETE,
           the original's form PUT/DELETE) and direct SQL on connections of
           their own: single statements, multi-row transactions, insert +
           update + delete of one row in one transaction, bulk updates, key
           changes, 100 KB rows and rows near NOTIFY's 8000-byte limit,
           savepoints rolled back, rolled-back and failed transactions (their
           rows are marked and must never reach a client), TRUNCATE; and on
           `notes`, users' API writes with their tokens (and refused ones:
           another's note, a note in another's name) and SQL that moves
           notes between users, changes key and owner at once, with bodies
           too large for a NOTIFY.
  faults   PostgreSQL restart, pbp-notifyd kill -9 and restart, a worker
           kill -9, SIGHUP to pbp-fcgi (graceful reload), nginx reload,
           clients whose network drops mid-poll (every connection cut; they
           resume with the same cursor once 'online' fires) and clients that
           close the page ('pagehide') and open it again.

The schedule (fault times and choices, client views, truncates) comes from
--seed and is printed, so that a failing run can be replayed. After the last
write the faults have stopped; the harness reads the tables with SQL (rows
rendered by row_to_json, as the API renders them) and waits until every
replica equals them. Then one canary transaction touches every row, to prove
that every client is still live. It reports writes by kind, events
delivered, resets by the fault that preceded them, the time each replica took
to converge after the last write (p50/p99/max) and the drift (rows that
differ), which must be zero. The JSON report goes to test-artifacts/chaos/.

  python Tests/chaos/chaos.py --bin-dir "$(swift build --show-bin-path)" \\
      --clients 500 --duration 240 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tools"))

from browsers import Browsers, BrowserProcessError  # noqa: E402
from pbpstack import Stack, free_port  # noqa: E402
import mint_token  # noqa: E402
from wire import HttpAgent, NetError, PgConnection, PgConnectionLost  # noqa: E402

FAULT_KINDS = ["pg_restart", "notifyd_kill", "worker_kill", "fcgi_hup", "nginx_reload",
               "client_drop", "client_restart"]
TABLES = ["testtype", "chaos_items", "notes"]
# The users whose tokens the clients on `notes` (sql/30-notes.sql, a row rule:
# owner = the token's sub) hold; each must see exactly the notes it owns.
USERS = ["alice", "bob", "carol"]
ROLLBACK_MARK = "rb-"           # values written only by transactions that never commit
LARGE_BYTES = 100_000
CLIENTS_PER_NODE_PROCESS = 125


def now_ms() -> float:
    """CLOCK_MONOTONIC in ms: the clock browsers.mjs stamps its replicas' changes and failures with."""
    return time.monotonic() * 1000.0


def parse_json(text):
    return json.loads(text, parse_float=Decimal)

SETUP_SQL = """
create table if not exists chaos_items (
  id bigserial primary key,
  val text not null,
  grp integer not null default 0,
  n bigint,
  amount numeric(14,2),
  flag boolean,
  doc jsonb,
  big text,
  mtime timestamptz not null default clock_timestamp()
);
select pbp_watch('chaos_items');
grant select, insert, update, delete on chaos_items to pbp_anon;
grant usage on sequence chaos_items_id_seq to pbp_anon;  -- its own only: never notes_id_seq
"""


# --- configuration and schedule ----------------------------------------------------------


@dataclass
class Config:
    bin_dir: Path
    clients: int = 500
    duration: float = 240.0
    seed: int = 1
    faults: list[str] = field(default_factory=lambda: list(FAULT_KINDS))
    fault_interval: float = 8.0
    write_rate: float = 10.0
    converge_timeout: float = 30.0
    workers: int = 2
    threads: int = 4
    worker_ring: int | None = 1024
    # The change source: "notify" (a restart of notifyd or PostgreSQL starts a
    # new epoch: clients reset) or "wal" (cursors survive both).
    source: str = "notify"
    report: Path | None = None
    ramp: float = 4.0
    keep: bool = False
    quiet: bool = False
    node_processes: int | None = None   # browsers.mjs processes (default: one per 125 clients, 1–4)

    def browser_processes(self) -> int:
        return self.node_processes or max(1, min(4, round(self.clients / CLIENTS_PER_NODE_PROCESS)))

    def replay_command(self) -> str:
        return (f"python Tests/chaos/chaos.py --bin-dir {self.bin_dir} --seed {self.seed} "
                f"--clients {self.clients} --duration {self.duration:g} --faults {','.join(self.faults)} "
                f"--fault-interval {self.fault_interval:g} --write-rate {self.write_rate:g} "
                f"--workers {self.workers} --threads {self.threads} --worker-ring {self.worker_ring or 0}"
                f" --source {self.source}")


@dataclass
class View:
    table: str
    where: dict | None
    kind: str            # 'table', 'row', 'group'
    user: str | None = None   # signed in as this user (a token), seeing only the rows it owns


@dataclass
class Planned:
    at: float            # seconds after the writers start
    kind: str
    seed: int
    note: str = ""


def make_schedule(config: Config) -> list[Planned]:
    """Faults between 8% and 80% of the run (then the writers go on alone),
    every chosen kind at least once, the rest drawn at random; truncates too."""
    rng = random.Random(f"schedule-{config.seed}")
    kinds = [k for k in config.faults if k]
    plan: list[Planned] = []
    if kinds:
        start, end = 0.08 * config.duration, 0.80 * config.duration
        count = max(len(kinds), int((end - start) / config.fault_interval))
        chosen = rng.sample(kinds, len(kinds)) + [rng.choice(kinds) for _ in range(count - len(kinds))]
        rng.shuffle(chosen)
        step = (end - start) / count
        for i, kind in enumerate(chosen):
            at = start + step * (i + rng.uniform(0.3, 0.7))
            plan.append(Planned(round(at, 2), kind, rng.randrange(1 << 30)))
    truncates = max(1, int(config.duration // 150))
    for i in range(truncates):
        at = config.duration * (0.3 + 0.5 * (i + rng.random()) / truncates)
        plan.append(Planned(round(at, 2), "sql_truncate", rng.randrange(1 << 30)))
    bursts = max(2, int(config.duration // 40))
    for i in range(bursts):
        at = config.duration * (0.1 + 0.7 * (i + rng.random()) / bursts)
        plan.append(Planned(round(at, 2), "sql_burst", rng.randrange(1 << 30)))
    return sorted(plan, key=lambda p: p.at)


def make_views(config: Config, ids: dict[str, list[int]], rng: random.Random) -> list[View]:
    views = []
    for i in range(config.clients):
        r = rng.random()
        if r < 0.25:
            views.append(View("testtype", None, "table"))
        elif r < 0.52:
            views.append(View("chaos_items", None, "table"))
        elif r < 0.80:
            table = "chaos_items" if rng.random() < 0.7 else "testtype"
            existing = ids[table]
            top = max(existing) if existing else 1
            s = rng.random()
            if s < 0.7 and existing:
                key = rng.choice(existing)           # a row that exists now
            elif s < 0.9:
                key = top + rng.randint(1, 150)      # a row that writers may insert later
            else:
                key = rng.randint(1, top)            # anything, maybe deleted already
            views.append(View(table, {"id": key}, "row"))
        elif r < 0.88:
            views.append(View("chaos_items", {"grp": rng.randrange(8)}, "group"))
        elif r < 0.96 or not ids["notes"]:
            views.append(View("notes", None, "table", user=rng.choice(USERS)))
        else:
            # Anyone's note: while another user owns it, this one's row view is empty.
            views.append(View("notes", {"id": rng.choice(ids["notes"])}, "row", user=rng.choice(USERS)))
    return views


# --- the harness ---------------------------------------------------------------------


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    index = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[index]


class Harness:
    def __init__(self, config: Config):
        self.config = config
        self.rng = random.Random(f"harness-{config.seed}")
        self.stack: Stack | None = None
        self.browsers: Browsers | None = None
        self.clients: list[str] = []               # the open browsers (compared at the end)
        self.retired: list[str] = []               # closed by a restart
        self.views: dict[str, View] = {}
        self.writes: dict[str, Counter] = defaultdict(Counter)
        self.write_times: list[float] = []
        self.last_write_ms = 0.0
        self.ids: dict[str, set[int]] = {t: set() for t in TABLES}
        self.large: set[int] = set()
        self.fault_log: list[dict] = []
        self.killed_pids: set[int] = set()
        self.phantoms: list[dict] = []
        self.leaks: list[dict] = []                  # rows of another user a signed-in client received
        self.tokens: dict[str, str] = {}              # user → its bearer token
        self.note_owner: dict[int, str] = {}          # what the writers last made each note's owner
        self.notes: list[str] = []
        self.t0 = 0.0
        self.writing = False
        self.dropped = 0
        self.restarted = 0
        self.lag: list[tuple[float, float]] = []   # (now_ms, ms the event loop ran late)
        self.deaths: list[str] = []                   # daemons found dead that the harness did not kill
        self.side_tasks: set[asyncio.Task] = set()     # clients coming back online
        self.last_replicas: list[dict] = []            # the browsers' last comparison (converge)
        self.browser_lag: list[tuple[float, float, float]] = []  # (now_ms, ms a browsers.mjs loop ran late, busy 0–1)

    def say(self, message: str) -> None:
        if not self.config.quiet:
            print(f"[chaos {self.rel():7.2f}s] {message}", flush=True)

    def rel(self, ms: float | None = None) -> float:
        return ((ms if ms is not None else now_ms()) - self.t0) / 1000 if self.t0 else 0.0

    # -- stack --------------------------------------------------------------------------

    def start_stack(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="pbp-chaos-"))
        os.chmod(root, 0o755)
        self.stack = Stack(root, free_port(), self.config.bin_dir, log=lambda m: None,
                           workers=self.config.workers, threads=self.config.threads, source=self.config.source,
                           extra_fcgi_args=["--tables", ",".join(TABLES)] + (
                               ["--ring-size", str(self.config.worker_ring)] if self.config.worker_ring else []))
        self.stack.start()
        self.stack.psql(SETUP_SQL)
        secret = mint_token.read_secret(self.stack.jwt_key_path)
        # Valid for the whole run and its convergence waits, however long.
        ttl = int(self.config.duration + self.config.converge_timeout * 2 + 600)
        self.tokens = {user: mint_token.mint(secret, sub=user, role="pbp_user", ttl=ttl) for user in USERS}

    def stop_stack(self, artifacts: Path) -> None:
        stack = self.stack
        if stack is None:
            return
        stack.stop()
        logs = artifacts / f"logs-seed{self.config.seed}"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        for log in list(stack.root.glob("*.log")) + [stack.pg_dir / "postgresql.log"]:
            if log.exists():
                shutil.copy(log, logs / log.name)
        for log in (stack.root / "nginx").glob("*.log"):
            if log.name == "access.log":
                lines = log.read_bytes().splitlines()[-5000:]
                (logs / "nginx-access.tail.log").write_bytes(b"\n".join(lines) + b"\n")
            else:
                shutil.copy(log, logs / f"nginx-{log.name}")
        if not self.config.keep:
            shutil.rmtree(stack.root, ignore_errors=True)
        self.logs_dir = logs

    # -- SQL ------------------------------------------------------------------------------

    async def pg(self) -> PgConnection:
        connection = PgConnection(str(self.stack.pg_dir))
        for attempt in range(200):
            try:
                await connection.connect()
                return connection
            except (OSError, PgConnectionLost, TimeoutError, asyncio.IncompleteReadError, Exception) as error:
                connection.close()
                if attempt == 199:
                    raise RuntimeError(f"cannot connect to PostgreSQL: {error}") from error
                await asyncio.sleep(0.25)
        raise AssertionError

    async def read_truth(self) -> dict[str, list[str]]:
        """Every row of every table as row_to_json renders it (as the API does), in key order."""
        for attempt in range(100):
            connection = await self.pg()
            try:
                truth = {}
                for table in TABLES:
                    result = await connection.query(f"select row_to_json(t)::text from {table} t order by id")
                    if result.error:
                        raise RuntimeError(f"reading {table}: {result.error}")
                    truth[table] = [r[0] for r in result.rows]
                return truth
            except PgConnectionLost:
                await asyncio.sleep(0.2)
            finally:
                connection.close()
        raise RuntimeError("cannot read the tables")

    async def seed_rows(self) -> None:
        connection = await self.pg()
        rng = random.Random(f"seed-rows-{self.config.seed}")
        try:
            values = ",".join(f"({q(text_value(rng))})" for _ in range(180))
            result = await connection.query(f"insert into testtype (val) values {values} returning id")
            self.ids["testtype"] |= {int(r[0]) for r in result.rows}
            values = ",".join(chaos_values(rng, large=(i < 3)) for i in range(220))
            result = await connection.query(
                f"insert into chaos_items (val, grp, n, amount, flag, doc, big) values {values} returning id, big is not null")
            for r in result.rows:
                self.ids["chaos_items"].add(int(r[0]))
                if r[1] == "t":
                    self.large.add(int(r[0]))
            values = ",".join(note_values(rng, rng.choice(USERS)) for _ in range(60))
            result = await connection.query(f"insert into notes (owner, body) values {values} returning id, owner")
            for r in result.rows:
                self.ids["notes"].add(int(r[0]))
                self.note_owner[int(r[0])] = r[1]
        finally:
            connection.close()

    # -- clients --------------------------------------------------------------------------

    async def start_browsers(self) -> None:
        self.browsers = Browsers(f"http://127.0.0.1:{self.stack.port}", processes=self.config.browser_processes(),
                                 phantom_prefix=ROLLBACK_MARK, on_event=self.on_browser_event,
                                 log=lambda line: self.say(line))
        await self.browsers.start()

    async def open_client(self, name: str, view: View, seed, home_of: str | None = None, after: float = 0) -> None:
        self.views[name] = view
        signed_in = {"token": self.tokens[view.user], "rule": {"owner": view.user}} if view.user else {}
        await self.browsers.open(name, view.table, view.where, view.kind, seed, home_of=home_of, after=after,
                                 **signed_in)

    def on_browser_event(self, message: dict) -> None:
        if message.get("event") == "phantom":
            self.phantoms.append({"client": message["client"], "event": message["ev"], "at": self.rel()})
        elif message.get("event") == "leak":
            self.leaks.append({"client": message["client"], "event": message["ev"], "at": self.rel()})

    async def start_clients(self, views: list[View]) -> None:
        gap = self.config.ramp / max(1, len(views))
        for i, view in enumerate(views):
            name = f"c{i:04d}"
            self.clients.append(name)
            await self.open_client(name, view, f"client-{self.config.seed}-{i}")
            await asyncio.sleep(gap)
        deadline = time.monotonic() + 60
        status = await self.browsers.status()
        while time.monotonic() < deadline and status["ready"] < len(self.clients):
            await asyncio.sleep(0.2)
            status = await self.browsers.status()
        self.say(f"{status['ready']}/{len(self.clients)} clients loaded their snapshot and poll")

    # -- writers --------------------------------------------------------------------------

    def record(self, kind: str, outcome: str) -> None:
        self.writes[kind][outcome] += 1
        if outcome in ("ok", "unknown"):
            self.last_write_ms = max(self.last_write_ms, now_ms())

    def pick(self, rng: random.Random, table: str, small: bool = False) -> int | None:
        pool = self.ids[table] - self.large if small else self.ids[table]
        if not pool:
            return None
        return rng.choice(sorted(pool))

    async def api_writer(self, index: int, stop_at: float) -> None:
        rng = random.Random(f"api-writer-{self.config.seed}-{index}")
        agent = HttpAgent("127.0.0.1", self.stack.port)
        rate = self.config.write_rate * 0.55 / 3
        try:
            while now_ms() < stop_at:
                await asyncio.sleep(rng.expovariate(rate))
                if now_ms() >= stop_at:
                    break
                await self.api_write(agent, rng)
        finally:
            agent.close_all()

    async def api_call(self, agent: HttpAgent, kind: str, method: str, path: str, body=None, form=None,
                       ok=(200, 201, 204), tolerated=(404,), headers=None):
        headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, ensure_ascii=False).encode()
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urllib.parse.urlencode(form).encode()
        try:
            response = await agent.request(method, path, data, headers, timeout=30)
        except NetError as error:
            # Sent, maybe done: the table is the truth at the end.
            self.record(kind, "unknown")
            return None
        if response.status in ok:
            self.record(kind, "ok")
            try:
                return parse_json(response.body) if response.body else {}
            except ValueError:
                self.notes.append(f"{kind}: {method} {path} answered {response.status} with no JSON: {response.body[:200]!r}")
                return None
        outcome = "not_found" if response.status in tolerated else f"failed_{response.status}"
        self.record(kind, outcome)
        if response.status not in tolerated and response.status < 500 and response.status != 409:
            self.notes.append(f"{kind}: {method} {path} → {response.status} {response.body[:200]!r}")
        return None

    async def api_write(self, agent: HttpAgent, rng: random.Random) -> None:
        table = "chaos_items" if rng.random() < 0.6 else "testtype"
        count = len(self.ids[table])
        grow = count < 120
        shrink = count > 320
        r = rng.random()
        if (r < 0.3 and not shrink) or grow:
            if table == "testtype" and rng.random() < 0.3:
                row = await self.api_call(agent, "api_post_form", "POST", f"/api/{table}",
                                          form={"val": text_value(rng)})
            else:
                big = table == "chaos_items" and len(self.large) < 3 and rng.random() < 0.05
                row = await self.api_call(agent, "api_post_large" if big else "api_post_json", "POST", f"/api/{table}",
                                          body=fields_for(table, rng, big=big))
                if row and big:
                    self.large.add(int(row["id"]))
            if row:
                self.ids[table].add(int(row["id"]))
        elif r < 0.55 or (shrink and r < 0.75):
            key = self.pick(rng, table)
            if key is None:
                return
            if rng.random() < 0.25:
                await self.api_call(agent, "api_form_delete", "DELETE", f"/api/{table}", form={"id": key})
            else:
                await self.api_call(agent, "api_delete", "DELETE", f"/api/{table}/{key}")
            self.ids[table].discard(key)
            self.large.discard(key)
        elif r < 0.75:
            key = self.pick(rng, table)
            if key is None:
                return
            if table == "testtype" and rng.random() < 0.3:
                await self.api_call(agent, "api_form_put", "PUT", f"/api/{table}",
                                    form={"id": key, "val": text_value(rng)})
            else:
                await self.api_call(agent, "api_put", "PUT", f"/api/{table}/{key}", body=fields_for(table, rng))
                self.large.discard(key)
        else:
            key = self.pick(rng, table)
            if key is None:
                return
            if table == "testtype":
                body = {"val": text_value(rng)}
            else:
                choice = rng.choice(["val", "n", "doc", "grp", "flag", "amount"])
                body = {choice: fields_for(table, rng)[choice]}
                if rng.random() < 0.3:
                    body["id"] = key + 1000     # maintained: ignored in bodies
                    body["mtime"] = "2000-01-01T00:00:00+00:00"
            await self.api_call(agent, "api_patch", "PATCH", f"/api/{table}/{key}", body=body)

    async def sql_writer(self, index: int, stop_at: float) -> None:
        rng = random.Random(f"sql-writer-{self.config.seed}-{index}")
        rate = self.config.write_rate * 0.45 / 2
        connection: PgConnection | None = None
        failures = 0
        while now_ms() < stop_at:
            await asyncio.sleep(rng.expovariate(rate))
            if now_ms() >= stop_at:
                break
            if connection is None or not connection.connected:
                connection = PgConnection(str(self.stack.pg_dir))
                try:
                    await connection.connect()
                    failures = 0
                except Exception:
                    connection.close()
                    connection = None
                    failures += 1
                    await asyncio.sleep(min(2.0, 0.1 * 2 ** failures))
                    continue
            await self.sql_write(connection, rng)
        if connection is not None:
            connection.close()

    async def sql_tx(self, connection: PgConnection, kind: str, statements: list[str], commit: bool = True):
        """BEGIN, the statements one by one, then COMMIT (or ROLLBACK).
        Returns the rows of each statement, or None if it did not commit."""
        results = []
        stage = "begin"
        try:
            await connection.query("begin")
            stage = "statements"
            for sql in statements:
                result = await connection.query(sql)
                if result.error:
                    await connection.query("rollback")
                    self.record(kind, "failed_" + (result.error.sqlstate or "error"))
                    if not kind.endswith("error"):
                        self.notes.append(f"{kind}: {result.error} in {sql[:160]}")
                    return None
                results.append(result.rows)
            stage = "commit"
            result = await connection.query("commit" if commit else "rollback")
            if result.error:
                self.record(kind, "failed_" + (result.error.sqlstate or "error"))
                return None
            self.record(kind, "ok" if commit else "rolled_back")
            return results
        except PgConnectionLost:
            self.record(kind, "unknown" if stage == "commit" else "failed_connection")
            return None

    async def sql_write(self, c: PgConnection, rng: random.Random) -> None:
        table = "chaos_items" if rng.random() < 0.65 else "testtype"
        count = len(self.ids[table])
        shrink = count > 320
        grow = count < 120
        kinds = ["insert", "update", "delete", "multi", "same_row", "update_delete", "bulk", "large", "medium",
                 "rollback", "savepoint", "error", "keychange", "noop"]
        weights = [14, 14, 10, 10, 6, 4, 3, 4, 4, 5, 4, 3, 3, 3]
        kind = rng.choices(kinds, weights)[0]
        if grow and kind in ("delete", "update_delete"):
            kind = "insert"
        if shrink and kind in ("insert", "multi", "same_row"):
            kind = "delete"
        if table == "testtype" and kind in ("bulk", "large", "medium"):
            kind = "update" if kind != "medium" else "medium"
        seq = f"{table}_id_seq"
        if kind == "insert":
            rows = await self.sql_tx(c, "sql_insert", [insert_sql(table, rng)])
            if rows:
                self.ids[table].add(int(rows[0][0][0]))
        elif kind == "update":
            key = self.pick(rng, table)
            if key is not None:
                await self.sql_tx(c, "sql_update", [update_sql(table, rng, key)])
        elif kind == "delete":
            keys = [self.pick(rng, table) for _ in range(rng.randint(1, 3))]
            keys = [k for k in keys if k is not None]
            if keys:
                await self.sql_tx(c, "sql_delete", [f"delete from {table} where id in ({','.join(map(str, keys))})"])
                self.ids[table] -= set(keys)
                self.large -= set(keys)
        elif kind == "multi":
            statements = [insert_sql(table, rng) for _ in range(rng.randint(2, 4))]
            updates = [self.pick(rng, table) for _ in range(rng.randint(1, 3))]
            statements += [update_sql(table, rng, k) for k in updates if k is not None]
            doomed = self.pick(rng, table) if rng.random() < 0.6 else None
            if doomed is not None:
                statements.append(f"delete from {table} where id = {doomed}")
            rows = await self.sql_tx(c, "sql_multi_row_tx", statements)
            if rows:
                for r in rows:
                    if r and r[0] and r[0][0] is not None and r[0][0].isdigit():
                        self.ids[table].add(int(r[0][0]))
                if doomed is not None:
                    self.ids[table].discard(doomed)
                    self.large.discard(doomed)
        elif kind == "same_row":
            result = await safe_query(c, f"select nextval('{seq}')")
            if result is None:
                self.record("sql_insert_update_delete_same_row", "failed_connection")
                return
            key = int(result.rows[0][0])
            keep = rng.random() < 0.4
            statements = [insert_sql(table, rng, key=key), update_sql(table, rng, key), update_sql(table, rng, key)]
            if not keep:
                statements.append(f"delete from {table} where id = {key}")
            rows = await self.sql_tx(c, "sql_insert_update_keep_same_row" if keep else "sql_insert_update_delete_same_row",
                                     statements)
            if rows and keep:
                self.ids[table].add(key)
        elif kind == "update_delete":
            key = self.pick(rng, table)
            if key is not None:
                await self.sql_tx(c, "sql_update_delete_same_row",
                                  [update_sql(table, rng, key), update_sql(table, rng, key),
                                   f"delete from {table} where id = {key}"])
                self.ids[table].discard(key)
                self.large.discard(key)
        elif kind == "bulk":
            g = rng.randrange(8)
            await self.sql_tx(c, "sql_bulk_update",
                              [f"update chaos_items set n = case when n > 0 then n - 1 else coalesce(n, 0) + 1 end, val = {q(text_value(rng))} where grp = {g}",
                               f"update chaos_items set grp = {rng.randrange(8)} where id in (select id from chaos_items where grp = {g} order by random() limit 5)"])
        elif kind == "large":
            if len(self.large) >= 3:
                key = rng.choice(sorted(self.large))
                if rng.random() < 0.5:
                    await self.sql_tx(c, "sql_large_shrink", [f"update chaos_items set big = null, val = {q(text_value(rng))} where id = {key}"])
                else:
                    await self.sql_tx(c, "sql_large_delete", [f"delete from chaos_items where id = {key}"])
                    self.ids["chaos_items"].discard(key)
                self.large.discard(key)
            elif rng.random() < 0.5:
                rows = await self.sql_tx(c, "sql_large_insert", [insert_sql("chaos_items", rng, large=True)])
                if rows:
                    key = int(rows[0][0][0])
                    self.ids["chaos_items"].add(key)
                    self.large.add(key)
            else:
                key = self.pick(rng, "chaos_items", small=True)
                if key is not None:
                    rows = await self.sql_tx(c, "sql_large_update",
                                             [f"update chaos_items set big = {q(large_text(rng))} where id = {key}"])
                    if rows is not None:
                        self.large.add(key)
        elif kind == "medium":
            # Rows near NOTIFY's limit: an insert fits (the new row only),
            # an update of it may not (new and old rows): truncated events.
            key = self.pick(rng, table, small=True)
            if key is not None:
                size = rng.randint(3300, 4400)
                await self.sql_tx(c, "sql_row_near_notify_limit",
                                  [f"update {table} set val = {q(text_value(rng, size))} where id = {key}"])
        elif kind == "rollback":
            key = self.pick(rng, table)
            statements = [insert_sql(table, rng, val=ROLLBACK_MARK + text_value(rng))]
            if key is not None:
                statements.append(f"update {table} set val = {q(ROLLBACK_MARK + 'u')} where id = {key}")
                statements.append(f"delete from {table} where id = {key}")
            if rng.random() < 0.2:
                statements.append(f"truncate {table}")
            await self.sql_tx(c, "sql_rolled_back_tx", statements, commit=False)
        elif kind == "savepoint":
            key = self.pick(rng, table)
            statements = [insert_sql(table, rng), "savepoint s1", insert_sql(table, rng, val=ROLLBACK_MARK + "sp")]
            if key is not None:
                statements.append(f"update {table} set val = {q(ROLLBACK_MARK + 'sp')} where id = {key}")
            statements += ["rollback to savepoint s1", insert_sql(table, rng)]
            rows = await self.sql_tx(c, "sql_savepoint_rolled_back", statements)
            if rows:
                for r in (rows[0], rows[-1]):
                    self.ids[table].add(int(r[0][0]))
        elif kind == "error":
            statements = [insert_sql(table, rng, val=ROLLBACK_MARK + "err"),
                          f"insert into {table} (val) values (null)"]
            await self.sql_tx(c, "sql_failed_tx_error", statements)
        elif kind == "keychange":
            # Sometimes of a row too large for NOTIFY (a truncated event).
            key = self.pick(rng, table) if rng.random() < 0.5 else (
                rng.choice(sorted(self.large)) if self.large and table == "chaos_items" else self.pick(rng, table))
            if key is not None:
                large = key in self.large
                rows = await self.sql_tx(c, "sql_key_change_large_row" if large else "sql_key_change",
                                         [f"update {table} set id = nextval('{seq}') where id = {key} returning id"])
                if rows and rows[0]:
                    self.ids[table].discard(key)
                    self.large.discard(key)
                    self.ids[table].add(int(rows[0][0][0]))
                    if large:
                        self.large.add(int(rows[0][0][0]))
        elif kind == "noop":
            key = self.pick(rng, table)
            if key is not None:
                await self.sql_tx(c, "sql_update_same_values", [f"update {table} set val = val where id = {key}"])

    # -- notes: a row rule, clients signed in ------------------------------------------------

    async def notes_writer(self, stop_at: float) -> None:
        """Writes to `notes`: as its users through the API (their tokens), and
        as the database's owner in SQL, moving notes between users, changing
        keys and owners at once, with bodies too large for a NOTIFY (key-only
        events judged by the owner they carry) and rolled-back transactions."""
        rng = random.Random(f"notes-writer-{self.config.seed}")
        agent = HttpAgent("127.0.0.1", self.stack.port)
        rate = self.config.write_rate * 0.3
        connection: PgConnection | None = None
        try:
            while now_ms() < stop_at:
                await asyncio.sleep(rng.expovariate(rate))
                if now_ms() >= stop_at:
                    break
                if rng.random() < 0.4:
                    await self.notes_api_write(agent, rng)
                    continue
                if connection is None or not connection.connected:
                    connection = PgConnection(str(self.stack.pg_dir))
                    try:
                        await connection.connect()
                    except Exception:
                        connection.close()
                        connection = None
                        await asyncio.sleep(0.2)
                        continue
                await self.notes_sql_write(connection, rng)
        finally:
            agent.close_all()
            if connection is not None:
                connection.close()

    def own_note(self, rng: random.Random, user: str) -> int | None:
        mine = sorted(k for k in self.ids["notes"] if self.note_owner.get(k) == user)
        return rng.choice(mine) if mine else None

    async def notes_api_write(self, agent: HttpAgent, rng: random.Random) -> None:
        user = rng.choice(USERS)
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        r = rng.random()
        if r < 0.35 or len(self.ids["notes"]) < 20:
            row = await self.api_call(agent, "api_notes_post", "POST", "/api/notes", body={"body": text_value(rng)},
                                      headers=headers)
            if row:
                self.ids["notes"].add(int(row["id"]))
                self.note_owner[int(row["id"])] = row["owner"]
        elif r < 0.60:
            key = self.own_note(rng, user)
            if key is not None:
                await self.api_call(agent, "api_notes_patch", "PATCH", f"/api/notes/{key}",
                                    body={"body": text_value(rng)}, headers=headers)
        elif r < 0.75:
            key = self.own_note(rng, user)
            if key is not None:
                await self.api_call(agent, "api_notes_delete", "DELETE", f"/api/notes/{key}", headers=headers)
                self.ids["notes"].discard(key)
        elif r < 0.88:
            # Someone else's note, as far as the writers know (a move they did not see
            # commit may have made it this user's): as if it were absent, and untouched.
            others = sorted(k for k in self.ids["notes"] if self.note_owner.get(k) not in (None, user))
            if others:
                await self.api_call(agent, "api_notes_patch_not_own", "PATCH", f"/api/notes/{rng.choice(others)}",
                                    body={"body": text_value(rng)}, headers=headers, ok=(404,), tolerated=(200,))
        else:
            other = rng.choice([u for u in USERS if u != user])
            await self.api_call(agent, "api_notes_post_for_another", "POST", "/api/notes",
                                body={"body": ROLLBACK_MARK + "forged", "owner": other}, headers=headers, ok=(403,),
                                tolerated=())

    async def notes_sql_write(self, c: PgConnection, rng: random.Random) -> None:
        kinds = ["insert", "update", "move", "move_rekey", "rekey", "large", "delete", "multi", "rollback"]
        kind = rng.choices(kinds, [12, 14, 12, 5, 3, 5, 8, 5, 5])[0]
        key = rng.choice(sorted(self.ids["notes"])) if self.ids["notes"] else None
        if len(self.ids["notes"]) > 160 and kind in ("insert", "multi"):
            kind = "delete"
        if key is None and kind != "rollback":
            kind = "insert"
        owner = rng.choice(USERS)
        if kind == "insert":
            rows = await self.sql_tx(c, "sql_notes_insert",
                                     [f"insert into notes (owner, body) values {note_values(rng, owner)} returning id"])
            if rows:
                self.ids["notes"].add(int(rows[0][0][0]))
                self.note_owner[int(rows[0][0][0])] = owner
        elif kind == "update":
            await self.sql_tx(c, "sql_notes_update", [f"update notes set body = {q(text_value(rng))} where id = {key}"])
        elif kind == "move":
            rows = await self.sql_tx(c, "sql_notes_move_to_another_user",
                                     [f"update notes set owner = {q(owner)}, body = {q(text_value(rng))} where id = {key}"])
            if rows is not None:
                self.note_owner[key] = owner
        elif kind in ("move_rekey", "rekey"):
            sets = f"id = nextval('notes_id_seq'), owner = {q(owner)}" if kind == "move_rekey" else "id = nextval('notes_id_seq')"
            big = rng.random() < 0.3   # sometimes key-only: a body too large for a NOTIFY
            body = q(large_text(rng)[:9000]) if big else q(text_value(rng))
            rows = await self.sql_tx(c, f"sql_notes_{kind}{'_large' if big else ''}",
                                     [f"update notes set {sets}, body = {body} where id = {key} returning id, owner"])
            if rows and rows[0]:
                self.ids["notes"].discard(key)
                self.note_owner.pop(key, None)
                self.ids["notes"].add(int(rows[0][0][0]))
                self.note_owner[int(rows[0][0][0])] = rows[0][0][1]
        elif kind == "large":
            if rng.random() < 0.5:
                await self.sql_tx(c, "sql_notes_large_update",
                                  [f"update notes set body = {q(large_text(rng)[:9000])} where id = {key}"])
            else:
                rows = await self.sql_tx(c, "sql_notes_large_move",
                                         [f"update notes set owner = {q(owner)}, body = {q(large_text(rng)[:9000])} where id = {key}"])
                if rows is not None:
                    self.note_owner[key] = owner
        elif kind == "delete":
            await self.sql_tx(c, "sql_notes_delete", [f"delete from notes where id = {key}"])
            self.ids["notes"].discard(key)
            self.note_owner.pop(key, None)
        elif kind == "multi":
            statements = [f"insert into notes (owner, body) values {note_values(rng, u)} returning id, owner"
                          for u in rng.sample(USERS, 2)]
            statements.append(f"update notes set owner = {q(owner)} where id = {key}")
            rows = await self.sql_tx(c, "sql_notes_multi_user_tx", statements)
            if rows:
                for r in rows[:2]:
                    self.ids["notes"].add(int(r[0][0]))
                    self.note_owner[int(r[0][0])] = r[0][1]
                self.note_owner[key] = owner
        else:
            statements = [f"insert into notes (owner, body) values {note_values(rng, owner, ROLLBACK_MARK)} returning id"]
            if key is not None:
                statements.append(f"update notes set owner = {q(owner)}, body = {q(ROLLBACK_MARK + 'moved')} where id = {key}")
            await self.sql_tx(c, "sql_notes_rolled_back_tx", statements, commit=False)

    async def sql_truncate(self, seed: int) -> None:
        rng = random.Random(seed)
        connection = await self.pg()
        try:
            values = ",".join(chaos_values(rng) for _ in range(rng.randint(100, 160)))
            statements = ["truncate chaos_items",
                          f"insert into chaos_items (val, grp, n, amount, flag, doc, big) values {values} returning id"]
            rows = await self.sql_tx(connection, "sql_truncate_and_refill", statements)
            if rows is not None:
                self.ids["chaos_items"] = {int(r[0]) for r in rows[1]}
                self.large.clear()
            notes = ",".join(note_values(rng, rng.choice(USERS)) for _ in range(rng.randint(20, 40)))
            rows = await self.sql_tx(connection, "sql_truncate_and_refill_notes",
                                     ["truncate notes", f"insert into notes (owner, body) values {notes} returning id, owner"])
            if rows is not None:
                self.ids["notes"] = {int(r[0]) for r in rows[1]}
                self.note_owner = {int(r[0]): r[1] for r in rows[1]}
        finally:
            connection.close()

    async def sql_burst(self, seed: int) -> str:
        """One transaction of many events: every row of both tables updated,
        twice; more than a worker's ring when --worker-ring is small, so that
        clients offline or backing off meanwhile must reset, never skip."""
        rng = random.Random(seed)
        connection = await self.pg()
        try:
            val = q(text_value(rng))
            statements = [f"update testtype set val = {val}",
                          "update chaos_items set amount = coalesce(amount, 0) + 1",
                          "update chaos_items set flag = not coalesce(flag, false)",
                          # Every note changes hands: a removal for one user, an arrival for the next.
                          "update notes set owner = case owner when 'alice' then 'bob' when 'bob' then 'carol' else 'alice' end"]
            rows = await self.sql_tx(connection, "sql_burst_all_rows", statements)
            if rows is not None:
                after = {"alice": "bob", "bob": "carol", "carol": "alice"}
                self.note_owner = {key: after.get(owner, "alice") for key, owner in self.note_owner.items()}
            return "committed" if rows is not None else "not committed"
        finally:
            connection.close()

    # -- faults ---------------------------------------------------------------------------

    async def run_fault(self, planned: Planned) -> None:
        rng = random.Random(planned.seed)
        kind = planned.kind
        started = now_ms()
        detail = ""
        stack = self.stack
        for name in ("pbp-notifyd", "pbp-fcgi", "nginx"):
            process = stack.processes.get(name)
            if process is not None and process.poll() is not None:
                self.deaths.append(f"{name} exited with {process.returncode} before +{self.rel(started):.1f}s")
        try:
            if kind == "pg_restart":
                await asyncio.to_thread(stack.restart_postgres)
            elif kind == "notifyd_kill":
                down = rng.uniform(0.1, 2.5)
                pid = stack.pid("pbp-notifyd")
                await asyncio.to_thread(stack.kill, "pbp-notifyd")
                await asyncio.sleep(down)
                await asyncio.to_thread(stack.start_notifyd)
                detail = f"pid {pid} killed, down {down:.2f}s"
            elif kind == "worker_kill":
                pids = sorted(stack.worker_pids())
                if pids:
                    pid = rng.choice(pids)
                    self.killed_pids.add(pid)
                    os.kill(pid, signal.SIGKILL)
                    detail = f"worker {pid} of {pids}"
            elif kind == "fcgi_hup":
                os.kill(stack.pid("pbp-fcgi"), signal.SIGHUP)
            elif kind == "nginx_reload":
                os.kill(stack.pid("nginx"), signal.SIGHUP)
            elif kind == "client_drop":
                count = max(1, len(self.clients) // 15)
                victims = [self.clients[i] for i in rng.sample(range(len(self.clients)), count)]
                await self.browsers.offline(victims)
                for name in victims:
                    self.background(self.back_online(name, rng.uniform(0.2, 6.0)))
                self.dropped += count
                detail = f"{count} clients offline 0.2–6 s"
            elif kind == "client_restart":
                count = max(1, len(self.clients) // 30)
                victims = rng.sample(range(len(self.clients)), count)
                for i in victims:
                    old = self.clients[i]
                    await self.browsers.close(old)
                    self.retired.append(old)
                    new = f"{old.split('.')[0]}.r{self.restarted}"
                    self.clients[i] = new
                    self.restarted += 1
                    await self.open_client(new, self.views[old], f"{planned.seed}-{i}", home_of=old,
                                           after=rng.uniform(0, 2.0))
                detail = f"{count} clients reopened the page"
            elif kind == "sql_truncate":
                await self.sql_truncate(planned.seed)
            elif kind == "sql_burst":
                detail = await self.sql_burst(planned.seed)
        except Exception as error:
            detail = f"FAILED: {type(error).__name__}: {error}"
            self.notes.append(f"fault {kind} at {self.rel(started):.1f}s failed: {error}")
        entry = {"kind": kind, "at": round(self.rel(started), 3), "took": round((now_ms() - started) / 1000, 3),
                 "detail": detail, "start_ms": started}
        self.fault_log.append(entry)
        self.say(f"fault {kind} ({entry['took']:.2f}s) {detail}")

    def background(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    async def back_online(self, name: str, after: float) -> None:
        await asyncio.sleep(after)
        await self.browsers.online([name])

    async def run_schedule(self, schedule: list[Planned], writers_start: float) -> None:
        for planned in schedule:
            delay = writers_start + planned.at * 1000 - now_ms()
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            await self.run_fault(planned)

    # -- comparing ------------------------------------------------------------------------

    async def converge(self, since_ms: float, label: str) -> dict:
        """Wait until every replica equals the tables (and still does two
        seconds later); the time each took, counted from `since_ms`. The
        browsers' processes compare (compare.mjs): the tables are sent to them."""
        deadline = now_ms() + self.config.converge_timeout * 1000
        truth = await self.read_truth()
        await self.browsers.set_truth(truth)
        truth_read = now_ms()
        stable_since = None
        while True:
            if now_ms() - truth_read > 1000:
                fresh = await self.read_truth()
                truth_read = now_ms()
                if fresh != truth:
                    self.notes.append(f"{label}: the tables changed during the convergence wait (a late write)")
                    truth = fresh
                    await self.browsers.set_truth(truth)
                    since_ms = now_ms()
            pending, _ = await self.browsers.pending()
            if pending == 0:
                if stable_since is None:
                    stable_since = now_ms()
                elif now_ms() - stable_since >= 2000:
                    break
            else:
                stable_since = None
            if now_ms() > deadline:
                break
            await asyncio.sleep(0.25)
        truth = await self.read_truth()
        await self.browsers.set_truth(truth)
        replicas = await self.browsers.final()
        times, never, drift_rows, drift_replicas, examples = [], [], 0, 0, []
        for r in replicas:
            view = self.views[r["name"]]
            if r["drift"] or not r["loaded"]:
                drift_rows += r["drift"]
                drift_replicas += 1
                never.append(r["name"])
                if len(examples) < 10:
                    examples.append({"client": r["name"], "view": view.__dict__, "rows_differing": r["drift"],
                                     "loaded": r["loaded"], "state": r["state"], "cursor": r["cursor"],
                                     "diffs": r["diffs"],
                                     "log": [(round(self.rel(t), 3), w, d) for t, w, d in r["log"]]})
            else:
                times.append(max(0.0, r["lastChange"] - since_ms) / 1000)
        self.last_replicas = replicas
        changed = sum(1 for r in replicas if r["lastChange"] > since_ms)
        return {"label": label, "replicas": len(replicas), "converged": len(times),
                "changed_after": changed,
                "never_converged": never, "seconds": summary(times),
                "drift_rows": drift_rows, "drift_replicas": drift_replicas, "drift_examples": examples,
                "table_rows": {t: len(truth[t]) for t in TABLES}}

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> dict:
        config = self.config
        schedule = make_schedule(config)
        self.say(f"seed {config.seed}: {config.clients} clients, {config.duration:g}s of writes "
                 f"(~{config.write_rate:g}/s), faults {','.join(config.faults) or 'none'}")
        self.say("schedule (seconds after the writers start):")
        for p in schedule:
            self.say(f"   +{p.at:7.2f}s  {p.kind}  (seed {p.seed})")
        self.say(f"replay: {config.replay_command()}")
        await self.seed_rows()
        views = make_views(config, {t: sorted(v) for t, v in self.ids.items()}, random.Random(f"views-{config.seed}"))
        self.t0 = now_ms()
        lag_task = asyncio.create_task(self.watch_lag())
        await self.start_browsers()
        await self.start_clients(views)
        writers_start = now_ms()
        stop_at = writers_start + config.duration * 1000
        self.say(f"writers start; stack on 127.0.0.1:{self.stack.port}, logs in {self.stack.root}")
        tasks = [asyncio.create_task(self.api_writer(i, stop_at)) for i in range(3)]
        tasks += [asyncio.create_task(self.sql_writer(i, stop_at)) for i in range(2)]
        tasks.append(asyncio.create_task(self.notes_writer(stop_at)))
        schedule_task = asyncio.create_task(self.run_schedule(schedule, writers_start))
        progress = asyncio.create_task(self.progress(stop_at))
        await asyncio.gather(*tasks, schedule_task)
        progress.cancel()
        writes_end = now_ms()
        self.say(f"writers stopped; last write at +{self.rel(self.last_write_ms):.2f}s")
        # Every client dropped offline is back by now (at most 6 s); wait for
        # the stragglers of the last fault all the same.
        main = await self.converge(self.last_write_ms, "after the last write")
        main_end = now_ms()
        main["harness_loop_lag_seconds"] = self.lag_between(self.last_write_ms, main_end)
        self.say(f"converged: {main['converged']}/{main['replicas']}, drift {main['drift_rows']} rows")
        # The canary: one transaction that touches every row of both tables.
        connection = await self.pg()
        # A replica may apply the canary's events before its commit is
        # acknowledged here: a change since the canary was sent proves it live.
        canary_sent = now_ms()
        try:
            await self.sql_tx(connection, "canary_update_all_rows",
                              ["update testtype set val = val", "update chaos_items set n = case when n > 0 then n - 1 else coalesce(n, 0) + 1 end",
                               "update notes set body = body"])
        finally:
            connection.close()
        canary_at = self.last_write_ms
        canary = await self.converge(canary_at, "canary (every row updated after the run)")
        canary_end = now_ms()
        canary["harness_loop_lag_seconds"] = self.lag_between(canary_at, canary_end)
        lag_task.cancel()
        self.say(f"canary: {canary['converged']}/{canary['replicas']}, drift {canary['drift_rows']} rows")
        not_live = [r["name"] for r in self.last_replicas if r["size"] and r["lastChange"] < canary_sent]
        browsers = await self.browsers.report()
        await self.browsers.stop()
        self.browser_lag = [tuple(sample) for sample in browsers["lag"]]
        for block, start, end in ((main, self.last_write_ms, main_end), (canary, canary_at, canary_end)):
            block["browsers_loop_lag_seconds"] = self.lag_between(start, end, self.browser_lag)
        errors = [{"client": b["name"], "error": e} for b in browsers["browsers"] for e in b["errors"]]
        errors += [{"client": "browsers.mjs", "error": e} for e in browsers["process_errors"]]
        report = self.build_report(schedule, main, canary, not_live, errors, writers_start, writes_end, browsers)
        report["harness_loop_lag_seconds"] = self.lag_between(writers_start, writes_end)
        report["browsers_loop_lag_seconds"] = self.lag_between(writers_start, writes_end, self.browser_lag)
        report["cpu_seconds"] = {"harness": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
                                 "browsers": browsers["cpu_seconds"]}
        return report

    async def watch_lag(self) -> None:
        """How late the harness's own event loop runs: when it is busy, the
        convergence times it measures include its own delay."""
        while True:
            before = now_ms()
            await asyncio.sleep(0.05)
            self.lag.append((now_ms(), max(0.0, now_ms() - before - 50)))

    def lag_between(self, start_ms: float, end_ms: float, samples=None) -> dict:
        window = [s for s in (self.lag if samples is None else samples) if start_ms <= s[0] <= end_ms]
        values = [s[1] / 1000 for s in window]
        lag = {"p50": round(percentile(values, 50) or 0, 3), "p99": round(percentile(values, 99) or 0, 3),
               "max": round(max(values, default=0), 3)}
        busy = [s[2] for s in window if len(s) > 2]
        if busy:   # the browsers' loops: how much of the time they were running something
            lag["busy_mean"] = round(statistics.fmean(busy), 3)
            lag["busy_p99"] = round(percentile(busy, 99), 3)
        return lag

    async def progress(self, stop_at: float) -> None:
        while True:
            await asyncio.sleep(10)
            try:
                status = await self.browsers.status()
            except BrowserProcessError as error:
                self.say(f"browsers: {error}")
                continue
            writes = sum(sum(v.values()) for v in self.writes.values())
            self.say(f"{writes} writes, {status['applied']} events applied, {status['resets']} resets, "
                     f"{status['live']}/{status['browsers']} live")

    def build_report(self, schedule, main, canary, not_live, errors, writers_start, writes_end, browsers) -> dict:
        everyone = browsers["browsers"]   # open and closed ones
        totals = Counter()
        for client in everyone:
            totals.update(client["stats"])
        faults = sorted(self.fault_log, key=lambda f: f["start_ms"])

        epoch_enders = {"notifyd_kill", "pg_restart"}

        def cause(t_ms, epoch_changed=None):
            """The fault a failure or reset follows: for a reset to a new epoch
            the last fault that ends one, for a reset within the epoch the last
            other one; else simply the last fault (within 30 s)."""
            last = None
            for f in faults:
                if f["start_ms"] > t_ms:
                    break
                if epoch_changed is True and f["kind"] not in epoch_enders:
                    continue
                if epoch_changed is False and f["kind"] in epoch_enders:
                    continue
                last = f
            if last is None or (epoch_changed is None and t_ms - last["start_ms"] > 30_000):
                return "epoch change, no fault" if epoch_changed else "no fault"
            return last["kind"]

        resets_by_fault, transient_by_fault, reloads_by_fault = Counter(), Counter(), Counter()
        reset_codes, transient_codes = Counter(), Counter()
        reset_log = []
        per_fault_clients = defaultdict(set)
        for client in everyone:
            for t, what, detail in client["log"]:
                if what == "reset":
                    blamed = cause(t, epoch_changed="new epoch" in detail)
                    resets_by_fault[blamed] += 1
                    reset_codes[" ".join(detail.split()[:3])] += 1
                    per_fault_clients[blamed].add(client["name"])
                    reset_log.append([round(self.rel(t), 3), client["name"], self.views[client["name"]].kind, blamed, detail])
                elif what == "reload":
                    reloads_by_fault[cause(t)] += 1
                    reset_codes[detail.split(":")[0]] += 1
                elif what in ("transient", "load_failure"):
                    transient_by_fault[cause(t)] += 1
                    transient_codes[detail] += 1
        fault_counts = Counter(f["kind"] for f in faults)
        writes = {k: dict(v) for k, v in sorted(self.writes.items())}
        write_totals = Counter()
        for v in self.writes.values():
            write_totals.update(v)
        health = self.stack_health()
        views = Counter(self.views[name].kind for name in self.clients)
        report = {
            "seed": self.config.seed,
            "replay": self.config.replay_command(),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.config.__dict__.items()},
            "clients": {"total": len(self.clients), "views": dict(views),
                        "signed_in": sum(1 for name in self.clients if self.views[name].user),
                        "dropped": self.dropped,
                        "restarted": self.restarted},
            "schedule": [p.__dict__ for p in schedule],
            "faults": [{k: v for k, v in f.items() if k != "start_ms"} for f in faults],
            "fault_counts": dict(fault_counts),
            "writes": writes,
            "write_totals": dict(write_totals),
            "writes_per_second": round(sum(write_totals[k] for k in ("ok",)) / max(1e-9, (writes_end - writers_start) / 1000), 2),
            "events": {"delivered": totals["events_applied"], "received": totals["events_received"],
                       "polls": totals["polls"], "answered_polls": totals["batches"], "probes": totals["probes"],
                       "truncated_fetched": totals["truncated_fetched"], "snapshots": totals["loads"]},
            "resets": {"total": totals["resets"], "by_fault": dict(resets_by_fault),
                       "clients_reset_by_fault": {k: len(v) for k, v in per_fault_clients.items()},
                       "codes": dict(reset_codes), "other_reloads_by_fault": dict(reloads_by_fault),
                       "log": sorted(reset_log)[:5000]},
            "transient_failures": {"total": totals["transient"] + totals["load_failures"],
                                   "by_fault": dict(transient_by_fault), "codes": dict(transient_codes)},
            "convergence": main,
            "canary": canary,
            "not_live": not_live,
            "phantom_events": self.phantoms[:20],
            "phantom_count": len(self.phantoms),
            "leaked_events": self.leaks[:20],
            "leak_count": len(self.leaks),
            "client_errors": errors,
            "stack_health": health,
            "notes": self.notes[:50],
            "page_warnings": browsers["warnings"],
        }
        report["ok"] = (main["drift_rows"] == 0 and not main["never_converged"] and canary["drift_rows"] == 0
                        and not canary["never_converged"] and not not_live and not self.phantoms and not self.leaks and not errors
                        and not health["problems"])
        return report

    def stack_health(self) -> dict:
        problems = list(self.deaths)
        stack = self.stack
        for name in ("pbp-notifyd", "pbp-fcgi", "nginx"):
            process = stack.processes.get(name)
            if process is None or process.poll() is not None:
                problems.append(f"{name} is not running at the end")
        unexpected = []
        log = stack.root / "pbp-fcgi.log"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                # A worker that dies, other than by the harness's kill -9 or (when
                # drained after a reload) by exiting with 0, is a crash.
                m = re.search(r"worker (\d+) (killed by signal \d+|exited with \d+)", line)
                if not m or int(m.group(1)) in self.killed_pids:
                    continue
                if "old worker" in line and m.group(2) == "exited with 0":
                    continue
                unexpected.append(line.strip())
            unexpected += [line.strip() for line in log.read_text(errors="replace").splitlines()
                           if "did not stop in time" in line]
        if unexpected:
            problems.append(f"{len(unexpected)} workers died that the harness did not kill")
        return {"problems": problems, "unexpected_worker_exits": unexpected[:20]}


# --- values ----------------------------------------------------------------------------

SPICE = ['"', "\\", "\n", "\t", "é", "ü", "中文", "😀", "\u2028", "<script>", "&amp;", "'", "/", "%", "+", "=", "?"]


def text_value(rng: random.Random, size: int | None = None) -> str:
    size = size or rng.randint(1, 48)
    parts = ["v"]
    while sum(len(p) for p in parts) < size:
        parts.append(rng.choice(SPICE) if rng.random() < 0.2 else rng.choice("abcdefghij klmnopqrstuvwxyz0123456789"))
    return "".join(parts)[:size] if size > 1 else "v"


def large_text(rng: random.Random) -> str:
    chunk = text_value(rng, 64)
    return (chunk * (LARGE_BYTES // len(chunk) + 1))[:LARGE_BYTES]


def q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def doc_value(rng: random.Random):
    return {"k": rng.randint(-5, 5000), "s": text_value(rng), "ü": [1, 2.5, None, True, {"x": text_value(rng, 5)}],
            "deep": {"a": {"b": rng.random() < 0.5}}}


def bigint_value(rng: random.Random):
    return rng.choice([rng.randint(-1000, 1000), 9007199254740993, -9223372036854775808, 9223372036854775807,
                       rng.randint(-(1 << 62), 1 << 62), None])


def fields_for(table: str, rng: random.Random, big: bool = False) -> dict:
    if table == "testtype":
        return {"val": text_value(rng)}
    fields = {"val": text_value(rng), "grp": rng.randrange(8), "n": bigint_value(rng),
              "amount": round(rng.uniform(-1e6, 1e6), 2), "flag": rng.choice([True, False, None]),
              "doc": doc_value(rng) if rng.random() < 0.8 else None}
    if big:
        fields["big"] = large_text(rng)
    return fields


def sql_literal(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        return q(json.dumps(value, ensure_ascii=False)) + "::jsonb"
    return q(str(value))


def chaos_values(rng: random.Random, large: bool = False, val: str | None = None) -> str:
    f = fields_for("chaos_items", rng)
    if val is not None:
        f["val"] = val
    big = large_text(rng) if large else None
    return "(" + ", ".join(sql_literal(f[c]) for c in ("val", "grp", "n", "amount", "flag", "doc")) + f", {sql_literal(big)})"


def insert_sql(table: str, rng: random.Random, key: int | None = None, large: bool = False,
               val: str | None = None) -> str:
    if table == "testtype":
        value = val if val is not None else text_value(rng)
        if key is None:
            return f"insert into testtype (val) values ({q(value)}) returning id"
        return f"insert into testtype (id, val) values ({key}, {q(value)}) returning id"
    values = chaos_values(rng, large=large, val=val)
    if key is None:
        return f"insert into chaos_items (val, grp, n, amount, flag, doc, big) values {values} returning id"
    return f"insert into chaos_items (id, val, grp, n, amount, flag, doc, big) values ({key}, {values[1:]} returning id"


def note_values(rng: random.Random, owner: str, mark: str = "") -> str:
    return f"({q(owner)}, {q(mark + text_value(rng))})"


def update_sql(table: str, rng: random.Random, key: int) -> str:
    if table == "testtype":
        return f"update testtype set val = {q(text_value(rng))} where id = {key}"
    f = fields_for("chaos_items", rng)
    columns = rng.sample(["val", "grp", "n", "amount", "flag", "doc"], rng.randint(1, 3))
    sets = ", ".join(f"{c} = {sql_literal(f[c])}" for c in columns)
    return f"update chaos_items set {sets} where id = {key}"


async def safe_query(connection: PgConnection, sql: str):
    try:
        result = await connection.query(sql)
        return None if result.error else result
    except PgConnectionLost:
        return None


def summary(values):
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {"count": len(values), "p50": round(percentile(values, 50), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3)}


# --- the summary ---------------------------------------------------------------------


def print_summary(report: dict) -> None:
    def line(text=""):
        print(text, flush=True)

    main, canary = report["convergence"], report["canary"]
    line()
    line("=" * 78)
    line(f"PBP convergence harness: seed {report['seed']}  —  {'OK' if report['ok'] else 'FAILED'}")
    line("=" * 78)
    c = report["clients"]
    line(f"clients      {c['total']} ({', '.join(f'{v} {k}' for k, v in sorted(c['views'].items()))}); "
         f"{c['dropped']} network drops, {c['restarted']} page reopened")
    wt = report["write_totals"]
    line(f"writes       {sum(wt.values())} attempted: " + ", ".join(f"{v} {k}" for k, v in sorted(wt.items()))
         + f" (~{report['writes_per_second']}/s committed)")
    for kind, outcomes in report["writes"].items():
        line(f"   {kind:38s} " + ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items())))
    e = report["events"]
    line(f"events       {e['delivered']} delivered to replicas ({e['received']} received in {e['answered_polls']} "
         f"answered polls of {e['polls']}; {e['truncated_fetched']} truncated rows fetched; {e['snapshots']} snapshots)")
    counts = sorted(report["fault_counts"].items())
    line("faults       " + ", ".join(f"{v}× {k}" for k, v in counts if not k.startswith("sql_")))
    line("scheduled    " + ", ".join(f"{v}× {k}" for k, v in counts if k.startswith("sql_"))
         + " (transactions of many events; resets after a burst: cursors older than a worker's ring)")
    r = report["resets"]
    line(f"resets       {r['total']} (409): " + ", ".join(
        f"{v} after {k} ({r['clients_reset_by_fault'].get(k, 0)} clients)" for k, v in sorted(r["by_fault"].items())))
    if r["other_reloads_by_fault"]:
        line("   other reloads: " + ", ".join(f"{v} after {k}" for k, v in r["other_reloads_by_fault"].items())
             + f"  codes {r['codes']}")
    t = report["transient_failures"]
    line(f"transient    {t['total']} failed requests retried: "
         + ", ".join(f"{v} after {k}" for k, v in sorted(t["by_fault"].items())))
    for block in (main, canary):
        s = block["seconds"]
        line(f"converged    {block['label']}: {block['converged']}/{block['replicas']} replicas "
             f"({block['changed_after']} changed after it); p50 {s['p50']}s p99 {s['p99']}s max {s['max']}s")
        lag = block.get("harness_loop_lag_seconds", {})
        node_lag = block.get("browsers_loop_lag_seconds", {})
        line(f"               (event loops ran late meanwhile: the harness's by up to {lag.get('max')}s, p99 {lag.get('p99')}s; "
             f"the browsers' by up to {node_lag.get('max')}s, p99 {node_lag.get('p99')}s; the browsers' loops busy "
             f"{round(100 * node_lag.get('busy_mean', 0))}% of the time, p99 {round(100 * node_lag.get('busy_p99', 0))}% of 50 ms)")
    cpu = report.get("cpu_seconds", {})
    line(f"cpu          {cpu.get('harness')}s in the harness, {sum(cpu.get('browsers', []))}s in the browsers' "
         f"{len(cpu.get('browsers', []))} Node processes {cpu.get('browsers')} over {report.get('wall_seconds')}s")
    line(f"drift        {main['drift_rows']} rows in {main['drift_replicas']} replicas after the run; "
         f"{canary['drift_rows']} after the canary")
    if main["never_converged"] or canary["never_converged"]:
        line(f"NEVER CONVERGED: {sorted(set(main['never_converged']) | set(canary['never_converged']))[:30]}")
        for ex in (main["drift_examples"] or canary["drift_examples"])[:3]:
            line(f"   {json.dumps(ex, default=str)[:1500]}")
    if report["not_live"]:
        line(f"NOT LIVE (missed the canary): {report['not_live'][:30]}")
    if report["phantom_count"]:
        line(f"PHANTOM EVENTS from rolled-back transactions: {report['phantom_count']}: {report['phantom_events'][:3]}")
    if report["leak_count"]:
        line(f"LEAKED ROWS of another user: {report['leak_count']}: {report['leaked_events'][:3]}")
    if report["client_errors"]:
        line(f"CLIENT ERRORS: {report['client_errors'][:5]}")
    if report["stack_health"]["problems"]:
        line(f"STACK: {report['stack_health']}")
    for note in report["notes"][:10]:
        line(f"note: {note}")
    line(f"report       {report.get('report_path')}")
    line(f"replay       {report['replay']}")
    line("=" * 78)


async def main_async(config: Config) -> dict:
    harness = Harness(config)
    artifacts = REPO / "test-artifacts" / "chaos"
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    harness.start_stack()
    bound = config.ramp + config.duration + 2 * config.converge_timeout + 180
    try:
        report = await asyncio.wait_for(harness.run(), bound)
    finally:
        if harness.browsers is not None:
            await harness.browsers.stop()
        await asyncio.to_thread(harness.stop_stack, artifacts)
    return write_report(report, harness, started, config.report or artifacts / f"report-seed{config.seed}.json")


def write_report(report: dict, harness, started: float, path: Path) -> dict:
    """The run's wall time, its logs and the report's own path added, as JSON at `path`."""
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    report["logs"] = str(getattr(harness, "logs_dir", ""))
    report["report_path"] = str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def faults_and_seed(parser: argparse.ArgumentParser, args, known: list[str]) -> tuple[list[str], int]:
    """--faults as a list of known kinds (the parser's error otherwise), and
    --seed or a fresh random one."""
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in known]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {known}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    return faults, seed


def raise_open_file_limit() -> None:
    """Hundreds of clients, each with a connection or two, need more than the default 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 16384):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))


def run(config: Config) -> dict:
    raise_open_file_limit()
    report = asyncio.run(main_async(config))
    if not config.quiet:
        print_summary(report)
    return report


def parse_args(argv=None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, default=Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug")),
                        help="where pbp-notifyd and pbp-fcgi are (default: $PBP_BIN_DIR or .build/debug)")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of writes (faults in 8–80%% of it)")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help=f"comma-separated, from {','.join(FAULT_KINDS)} (empty: none)")
    parser.add_argument("--fault-interval", type=float, default=8.0, help="mean seconds between faults")
    parser.add_argument("--write-rate", type=float, default=10.0, help="writes per second, all writers together")
    parser.add_argument("--converge-timeout", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--source", choices=["notify", "wal"], default=os.environ.get("SOURCE") or "notify",
                        help="the change source (wal: no fault may reset a client)")
    parser.add_argument("--worker-ring", type=int, default=1024,
                        help="pbp-fcgi --ring-size (small: bursts overflow it; 0: pbp-fcgi's default)")
    parser.add_argument("--report", type=Path, default=None, help="JSON report (default test-artifacts/chaos/report-seedN.json)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder")
    parser.add_argument("--node-processes", type=int, default=None,
                        help=f"browsers.mjs processes (default: one per {CLIENTS_PER_NODE_PROCESS} clients, 1 to 4)")
    args = parser.parse_args(argv)
    faults, seed = faults_and_seed(parser, args, FAULT_KINDS)
    return Config(bin_dir=args.bin_dir, clients=args.clients, duration=args.duration, seed=seed, faults=faults,
                  fault_interval=args.fault_interval, write_rate=args.write_rate,
                  converge_timeout=args.converge_timeout, workers=args.workers, threads=args.threads,
                  worker_ring=args.worker_ring or None, source=args.source,
                  report=args.report, keep=args.keep, node_processes=args.node_processes)


def main(argv=None) -> int:
    report = run(parse_args(argv))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
