"""`make test`'s share of the convergence harness (chaos.py): a short run with
every fault at least once, that must end with zero drift and every replica
converged, plus two edge cases the harness led to, each on a small stack of
its own with simulated browsers that run the page's own modules under Node
(browsers.py, browsers.mjs).

PBP_CHAOS_SEED, PBP_CHAOS_CLIENTS and PBP_CHAOS_DURATION change the short run
(a failing run prints its seed and the command that replays it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tools"))

import chaos  # noqa: E402
from browsers import Browsers  # noqa: E402
from pbpstack import Stack, free_port  # noqa: E402
from wire import PgConnection  # noqa: E402

BIN_DIR = Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug"))


def short_run(clients: int = 200, **options) -> tuple[dict, str]:
    config = chaos.Config(
        bin_dir=BIN_DIR,
        clients=int(os.environ.get("PBP_CHAOS_CLIENTS", clients)),
        duration=float(os.environ.get("PBP_CHAOS_DURATION", "45")),
        seed=int(os.environ.get("PBP_CHAOS_SEED", "20251123")),
        fault_interval=4.5,
        write_rate=10,
        converge_timeout=45,
        **options,
    )
    report = chaos.run(config)
    context = f"seed {config.seed}; report {report['report_path']}; replay: {report['replay']}"
    happened = {f["kind"] for f in report["faults"]}
    assert set(chaos.FAULT_KINDS) <= happened, f"faults that never struck: {set(chaos.FAULT_KINDS) - happened}"
    failed = [f for f in report["faults"] if f["detail"].startswith("FAILED")]
    assert not failed, f"faults the harness could not inflict: {failed}"
    assert not report["client_errors"], f"the harness's clients crashed: {report['client_errors'][:3]}; {context}"
    # Resets are allowed (the client reloads); drift is not.
    for block in (report["convergence"], report["canary"]):
        assert block["drift_rows"] == 0, f"{block['label']}: drift {block['drift_examples'][:2]}; {context}"
        assert not block["never_converged"], f"{block['label']}: never converged {block['never_converged'][:20]}; {context}"
    assert not report["not_live"], f"replicas that missed the canary: {report['not_live'][:20]}; {context}"
    assert report["phantom_count"] == 0, f"events of rolled-back writes: {report['phantom_events'][:3]}; {context}"
    assert report["leak_count"] == 0, f"another user's rows reached a client: {report['leaked_events'][:3]}; {context}"
    assert not report["stack_health"]["problems"], f"{report['stack_health']}; {context}"
    assert report["events"]["delivered"] > 0 and report["write_totals"].get("ok", 0) > 100
    # Signed-in clients on the row-rule table took part, and notes changed hands under them.
    assert report["clients"]["signed_in"] >= 10, report["clients"]
    assert report["writes"].get("sql_notes_move_to_another_user", {}).get("ok", 0) > 0, report["writes"]
    assert report["writes"].get("api_notes_post", {}).get("ok", 0) > 0, report["writes"]
    assert report["convergence"]["table_rows"]["notes"] > 0
    return report, context


def test_replicas_converge_with_zero_drift_through_every_fault():
    short_run()


def test_with_the_wal_source_no_fault_resets_a_client():
    """The same run on the wal source, with the workers' own ring (the
    notify run's ring of 1,024 events makes bursts reset clients on purpose):
    PostgreSQL restarts and notifyd kills included, no client resets."""
    report, context = short_run(clients=120, source="wal", worker_ring=None)
    resets = report["resets"]
    assert resets["total"] == 0, f"resets {resets['by_fault']}, first {resets['log'][:3]}; {context}"
    struck = {f["kind"] for f in report["faults"]}
    assert {"pg_restart", "notifyd_kill"} <= struck


# --- edge cases, on a small stack -------------------------------------------------------


@pytest.fixture(scope="module")
def small_stack():
    root = Path(tempfile.mkdtemp(prefix="pbp-chaos-edge-"))
    os.chmod(root, 0o755)
    stack = Stack(root, free_port(), BIN_DIR, log=lambda m: None, workers=1, threads=4)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        logs = REPO / "test-artifacts" / "chaos" / "logs-edge"
        logs.mkdir(parents=True, exist_ok=True)
        for log in root.glob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(root, ignore_errors=True)


class Tab:
    """One simulated browser of page_clients: its replica's rows and counts, as the page holds them."""

    def __init__(self, browsers: Browsers, name: str):
        self.browsers = browsers
        self.name = name

    async def state(self) -> dict:
        return await self.browsers.rows(self.name)

    async def rows(self) -> dict:
        return (await self.state())["rows"] or {}


@contextlib.asynccontextmanager
async def page_clients(stack, views):
    browsers = Browsers(f"http://127.0.0.1:{stack.port}", processes=1, log=lambda line: print(line))
    await browsers.start()
    try:
        tabs = []
        for i, (table, where) in enumerate(views):
            kind = "table" if where is None else "row" if list(where) == ["id"] else "group"
            await browsers.open(f"t{i}", table, where, kind, seed=i)
            tabs.append(Tab(browsers, f"t{i}"))
        for _ in range(400):
            if (await browsers.status())["ready"] == len(tabs):
                break
            await asyncio.sleep(0.05)
        assert (await browsers.status())["ready"] == len(tabs), "the clients did not load their snapshots"
        yield tabs
        report = await browsers.report()
        errors = [e for b in report["browsers"] for e in b["errors"]] + report["process_errors"]
        assert not errors, errors
    finally:
        await browsers.stop()


async def sql(pg: PgConnection, text: str) -> list[list[str | None]]:
    result = await pg.query(text)
    assert result.error is None, f"{text}: {result.error}"
    return result.rows


def parse(text: str) -> dict:
    return json.loads(text)


async def table_ids(pg: PgConnection, table: str) -> list[str]:
    return [r[0] for r in await sql(pg, f"select id::text from {table} order by id")]


async def until(predicate, seconds=10.0):
    """Awaits predicate() (a coroutine function) until it is true."""
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return await predicate()


def test_key_change_of_a_row_too_large_for_notify_leaves_no_row_behind(small_stack):
    """A truncated event names only the key after the update: before sql/'s
    fix every replica, and every row view of the old key, kept the row under
    its old key for good."""

    async def scenario():
        pg = PgConnection(str(small_stack.pg_dir))
        await pg.connect()
        try:
            key = int((await sql(pg, "insert into testtype (val) values (repeat('x', 9000)) returning id"))[0][0])
            async with page_clients(small_stack, [("testtype", None), ("testtype", {"id": key})]) as (whole, row):
                assert str(key) in await whole.rows() and str(key) in await row.rows()
                moved = (await sql(pg, f"update testtype set id = nextval('testtype_id_seq') where id = {key} returning id"))[0][0]
                ids = await table_ids(pg, "testtype")

                async def whole_has_ids():
                    return sorted(await whole.rows(), key=int) == ids

                async def row_view_empty():
                    return not await row.rows()

                assert await until(whole_has_ids), f"whole table: replica {sorted(await whole.rows(), key=int)} vs table {ids}"
                assert await until(row_view_empty), f"row view of {key} still holds {list(await row.rows())}"
                assert (await whole.rows())[moved]["val"] == "x" * 9000
                assert (await whole.state())["stats"]["resets"] == 0 and (await row.state())["stats"]["resets"] == 0
        finally:
            await sql(pg, "delete from testtype")
            pg.close()

    asyncio.run(scenario())


def test_a_table_of_more_than_1000_rows_is_replicated_whole(small_stack):
    async def scenario():
        pg = PgConnection(str(small_stack.pg_dir))
        await pg.connect()
        try:
            await sql(pg, "insert into testtype (val) select 'row ' || g from generate_series(1, 2500) g")
            ids = await table_ids(pg, "testtype")
            await asyncio.sleep(2)   # the stream moves past the inserts (a snapshot's cursor would replay them)
            async with page_clients(small_stack, [("testtype", None)]) as (whole,):
                await asyncio.sleep(0.5)
                missing = len(set(ids) - set(await whole.rows()))
                assert missing == 0, f"the replica lacks {missing} of {len(ids)} rows"
        finally:
            await sql(pg, "delete from testtype")
            pg.close()

    asyncio.run(scenario())


def test_the_comparison_sees_a_missing_an_extra_and_a_changed_row(small_stack):
    """The harness's judge (compare.mjs, through browsers.py) must report drift
    when a replica and the tables differ, or every run would pass."""

    async def scenario():
        pg = PgConnection(str(small_stack.pg_dir))
        await pg.connect()
        try:
            await sql(pg, "insert into testtype (val) select 'row ' || g from generate_series(1, 5) g")
            async with page_clients(small_stack, [("testtype", None), ("testtype", {"val": "row 2"})]) as (whole, group):
                texts = [r[0] for r in await sql(pg, "select row_to_json(t)::text from testtype t order by id")]
                assert len(await whole.rows()) == 5 and len(await group.rows()) == 1
                browsers = whole.browsers
                await browsers.set_truth({"testtype": texts})
                assert await browsers.pending() == (0, [])
                assert [r["drift"] for r in await browsers.final()] == [0, 0]

                first, second = (parse(t) for t in texts[:2])
                changed = json.dumps({**first, "val": "not what the replica holds"})
                invented = json.dumps({**first, "id": 999999})
                await browsers.set_truth({"testtype": [changed, invented] + texts[2:]})
                pending, names = await browsers.pending()
                assert pending == 2 and sorted(names) == ["t0", "t1"]
                final = {r["name"]: r for r in await browsers.final()}
                problems = sorted((d["key"], d["problem"]) for d in final["t0"]["diffs"])
                assert problems == [(str(first["id"]), "differs"), (str(second["id"]), "extra"), ("999999", "missing")]
                # The group view (val = 'row 2') lost its one row from the truth.
                assert [(d["key"], d["problem"]) for d in final["t1"]["diffs"]] == [(str(second["id"]), "extra")]
        finally:
            await sql(pg, "delete from testtype")
            pg.close()

    asyncio.run(scenario())
