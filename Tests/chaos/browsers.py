"""The simulated browsers, from Python: a few Node processes
(browsers.mjs), each running many browsers that execute the page's own
modules (static/), spoken to over their stdin/stdout (one JSON object a line,
see browsers.mjs). A browser is named by the harness and lives in one
process; commands about all of them go to every process and the answers are
merged. PBP_CHAOS_NODE_ARGS passes flags to node (e.g. "--cpu-prof
--cpu-prof-dir=DIR" to see where their time goes)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shlex
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "browsers.mjs"


class BrowserProcessError(RuntimeError):
    """A browsers.mjs process refused a command, or died."""


class _NodeProcess:
    def __init__(self, index: int, base_url: str, phantom_prefix: str, on_event, log):
        self.index = index
        self.base_url = base_url
        self.phantom_prefix = phantom_prefix
        self.on_event = on_event
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)
        self.reader_task: asyncio.Task | None = None
        self.stderr_task: asyncio.Task | None = None
        self.dead: str | None = None

    async def start(self) -> None:
        node = shutil.which("node") or "/usr/bin/node"
        self.process = await asyncio.create_subprocess_exec(
            node, *shlex.split(os.environ.get("PBP_CHAOS_NODE_ARGS", "")), str(SCRIPT), "--base", self.base_url, "--phantom-prefix", self.phantom_prefix,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=1 << 28)
        self.reader_task = asyncio.create_task(self._read())
        self.stderr_task = asyncio.create_task(self._read_stderr())

    async def _read(self) -> None:
        assert self.process and self.process.stdout
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if "event" in message:
                self.on_event(message)
                continue
            future = self.pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                if message.get("ok"):
                    future.set_result(message)
                else:
                    future.set_exception(BrowserProcessError(message.get("error", "refused")))
        code = await self.process.wait()
        self.dead = f"browsers.mjs #{self.index} exited with {code}"
        for future in self.pending.values():
            if not future.done():
                future.set_exception(BrowserProcessError(self.dead))
        self.pending.clear()

    async def _read_stderr(self) -> None:
        assert self.process and self.process.stderr
        while True:
            line = await self.process.stderr.readline()
            if not line:
                return
            self.log(line.decode(errors="replace").rstrip())

    async def call(self, cmd: str, **fields) -> dict:
        if self.dead:
            raise BrowserProcessError(self.dead)
        assert self.process and self.process.stdin
        ident = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        self.process.stdin.write((json.dumps({"id": ident, "cmd": cmd, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        return await future

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        try:
            await asyncio.wait_for(self.call("exit"), 10)
            await asyncio.wait_for(self.process.wait(), 10)
        except (asyncio.TimeoutError, BrowserProcessError, ConnectionError):
            pass
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for task in (self.reader_task, self.stderr_task):
            if task:
                await asyncio.gather(task, return_exceptions=True)


class Browsers:
    """Simulated browsers spread over `processes` Node processes."""

    def __init__(self, base_url: str, processes: int = 2, phantom_prefix: str = "", on_event=None, log=print):
        self.nodes = [_NodeProcess(i, base_url, phantom_prefix, on_event or (lambda m: None), log)
                      for i in range(max(1, processes))]
        self.home: dict[str, _NodeProcess] = {}
        self.opened = 0

    async def start(self) -> None:
        for node in self.nodes:
            await node.start()

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes))

    def dead(self) -> list[str]:
        return [node.dead for node in self.nodes if node.dead]

    async def open(self, name: str, table: str, where: dict | None, kind: str, seed, home_of: str | None = None,
                   after: float = 0, token: str | None = None, rule: dict | None = None) -> None:
        """A browser that loads a page showing a view `after` seconds from now (it exists at once:
        it can go offline before); `home_of`: in the process of that browser (a reopened page).
        `token`: the page is signed in with it, and `rule` (column → value) says which rows
        that identity may see: the comparison expects those only, and any other is a leak."""
        node = self.home[home_of] if home_of else self.nodes[self.opened % len(self.nodes)]
        self.opened += 1
        self.home[name] = node
        view = {"table": table, "where": where, "kind": kind}
        if token:
            view |= {"token": token, "rule": rule}
        await node.call("open", name=name, view=view, seed=str(seed), after_ms=round(after * 1000))

    async def close(self, name: str) -> None:
        await self.home[name].call("close", name=name)

    async def offline(self, names: list[str]) -> None:
        await self._each_home("offline", names)

    async def online(self, names: list[str]) -> None:
        await self._each_home("online", names)

    async def _each_home(self, cmd: str, names: list[str]) -> None:
        by_node: dict[int, list[str]] = {}
        for name in names:
            by_node.setdefault(self.home[name].index, []).append(name)
        await asyncio.gather(*(self.nodes[i].call(cmd, names=group) for i, group in by_node.items()))

    async def _all(self, cmd: str, **fields) -> list[dict]:
        return await asyncio.gather(*(node.call(cmd, **fields) for node in self.nodes))

    async def status(self) -> dict:
        out: dict[str, int] = {}
        for answer in await self._all("status"):
            for k, v in answer.items():
                if isinstance(v, int) and not isinstance(v, bool) and k != "id":
                    out[k] = out.get(k, 0) + v
        return out

    async def set_truth(self, tables: dict[str, list[str]]) -> None:
        await self._all("truth", tables=tables)

    async def pending(self) -> tuple[int, list[str]]:
        answers = await self._all("pending")
        return sum(a["pending"] for a in answers), [n for a in answers for n in a["names"]]

    async def final(self) -> list[dict]:
        return [r for a in await self._all("final") for r in a["replicas"]]

    async def rows(self, name: str) -> dict:
        return await self.home[name].call("rows", name=name)

    async def report(self) -> dict:
        answers = await self._all("report")
        warnings: dict[str, int] = {}
        for a in answers:
            for k, v in a["warnings"].items():
                warnings[k] = warnings.get(k, 0) + v
        return {"browsers": [b for a in answers for b in a["browsers"]], "warnings": warnings,
                "lag": [sample for a in answers for sample in a["lag"]],
                "cpu_seconds": [round(a["cpu_seconds"], 1) for a in answers],
                "process_errors": [e for a in answers for e in a["process_errors"]] + self.dead()}
