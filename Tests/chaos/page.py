"""The page's replica algorithm, ported line by line from static/ so that the
harness exercises exactly what a browser tab does:

  api.js      request(), listRows(), rowWithCursor(), getRow(), pollChanges()
  replica.js  Replica (replaceAll, applyEvents: upsert never moves a row back
              to an older mtime, delete by key, truncate empties), rowPasses,
              mtimeMicros
  poller.js   Poller._loop (probe after a failure, 409 → reset with a backoff
              from the second in a row, transient → same cursor after a
              jittered exponential backoff, other 4xx → reload), _resolve
              (truncated events fetched; 404 → delete), retrying(), backoffDelay
  tabs.js     TabSync as one tab alone (mode 'single'): _load (snapshot, again
              while a reset happened during it), _join/_plan/_onBatch/_deliver
              (events after the member's cursor only), _reset/_onResync

Each simulated browser is one PageClient: one view (a whole table, or the
rows matching a `where`, as the page's row view `{id: N}`), one HttpAgent of
keep-alive connections. If static/ changes its algorithm, change this file
with it (the comments name the functions)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from datetime import datetime
from decimal import Decimal

from wire import HttpAgent, NetError

# --- api.js ------------------------------------------------------------------------

API_ROOT = "/api"


def now_ms() -> float:
    """Date.now(), with more precision (the harness compares times it made itself)."""
    return time.monotonic() * 1000.0


def js_string(value) -> str:
    """String(value) for the JSON values a row holds."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return "[object Object]" if isinstance(value, dict) else ",".join(js_string(v) for v in value)
    return str(value)


def parse_json(text: str):
    return json.loads(text, parse_float=Decimal)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status == 408 or self.status == 429 or self.status >= 500


def seg(value) -> str:
    """encodeURIComponent(String(value))."""
    return urllib.parse.quote(js_string(value), safe="-_.!~*'()")


class Api:
    """api.js over one HttpAgent."""

    def __init__(self, agent: HttpAgent):
        self.agent = agent

    async def request(self, method: str, path: str, body=None, timeout_ms: float = 15000):
        headers = {"Accept": "application/json"}
        data_bytes = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data_bytes = json.dumps(body, default=str).encode()
        try:
            response = await self.agent.request(method, API_ROOT + path, data_bytes, headers, timeout=timeout_ms / 1000)
        except NetError as error:
            code = "timeout" if str(error) == "timeout" else "network"
            raise ApiError(0, code, f"{method} {API_ROOT}{path}: {error}") from None
        text = response.body.decode("utf-8", errors="replace")
        data = None
        if text:
            try:
                data = parse_json(text)
            except ValueError:
                data = None
        if not 200 <= response.status < 300:
            code = data["error"] if isinstance(data, dict) and isinstance(data.get("error"), str) else f"http_{response.status}"
            message = data.get("message") if isinstance(data, dict) and data.get("message") else f"{method} {path} failed: {response.status}"
            raise ApiError(response.status, code, message, data)
        if text and data is None:
            raise ApiError(response.status, "bad_response", f"not JSON ({method} {API_ROOT}{path}): {text[:200]!r}")
        return response.status, response.headers, data

    async def list_rows(self, table: str, key_field: str = "id", page_size: int = 1000):
        async def read_page(after):
            query = f"?limit={page_size}" + ("" if after is None else f"&after={seg(after)}")
            _, headers, data = await self.request("GET", f"/{seg(table)}{query}", timeout_ms=20000)
            if not isinstance(data, list):
                raise ApiError(200, "bad_response", f"GET /api/{table} did not return an array.")
            return data, headers

        page, first_headers = await read_page(None)
        rows = list(page)
        while len(page) == page_size:
            last = page[-1].get(key_field) if isinstance(page[-1], dict) else None
            if last is None:
                raise ApiError(200, "bad_response", f"GET /api/{table} sent a row without its {key_field}.")
            page, _ = await read_page(last)
            rows.extend(page)
        return rows, self._cursor_header(first_headers, table)

    async def row_with_cursor(self, table: str, key):
        _, headers, _ = await self.request("GET", f"/{seg(table)}?limit=1")
        cursor = self._cursor_header(headers, table)
        row = await self.get_row(table, key)
        return row, cursor

    @staticmethod
    def _cursor_header(headers, table):
        cursor = headers.get("pbp-cursor")
        if not cursor:
            raise ApiError(200, "bad_response", f"GET /api/{table} sent no PBP-Cursor header.")
        return cursor

    async def get_row(self, table: str, key):
        try:
            return (await self.request("GET", f"/{seg(table)}/{seg(key)}"))[2]
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def poll_changes(self, cursor, subscriptions, timeout_ms: float = 45000):
        body = {"subscriptions": subscriptions}
        if cursor is not None:
            body["cursor"] = cursor
        _, _, data = await self.request("POST", "/changes", body, timeout_ms=timeout_ms)
        if not isinstance(data, dict) or data.get("cursor") is None or not isinstance(data.get("events"), list):
            raise ApiError(200, "bad_response", "POST /api/changes answered something unexpected.")
        return data


# --- replica.js ----------------------------------------------------------------------

MTIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$", re.I)


def mtime_micros(s):
    if not isinstance(s, str):
        return None
    m = MTIME_RE.match(s.strip())
    if not m:
        return None
    zone = m.group(4) or "Z"
    if re.fullmatch(r"[+-]\d{2}", zone):
        zone += ":00"
    elif re.fullmatch(r"[+-]\d{4}", zone):
        zone = f"{zone[:3]}:{zone[3:]}"
    if zone.upper() == "Z":
        zone = "+00:00"
    try:
        moment = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{zone}")
    except ValueError:
        return None
    micros = int(((m.group(3) or "") + "000000")[:6])
    return int(moment.timestamp()) * 1_000_000 + micros


def key_of(k) -> str:
    return js_string(k)


def row_passes(row, where) -> bool:
    if not where:
        return True
    if not isinstance(row, dict):
        return False
    return all(row.get(col) is not None and js_string(row[col]) == js_string(v) for col, v in where.items())


class Replica:
    def __init__(self, table: str, key_field: str = "id", where=None):
        self.table = table
        self.key_field = key_field
        self.where = where
        self.rows: dict[str, dict] = {}
        self.loaded = False
        self.deleted_here: set[str] = set()
        self.last_change = 0.0          # now_ms() of the last call that changed a row (harness only)
        self.changes = 0

    def _notify(self, changed):
        if changed:
            self.last_change = now_ms()
            self.changes += 1

    def replace_all(self, rows):
        nxt = {}
        for row in rows:
            if isinstance(row, dict) and row.get(self.key_field) is not None and row_passes(row, self.where):
                nxt[key_of(row[self.key_field])] = row
        changed = {k for k, row in nxt.items() if self.rows.get(k) != row}
        changed |= {k for k in self.rows if k not in nxt}
        self.rows = nxt
        self.deleted_here.clear()
        self.loaded = True
        self._notify(changed)
        return changed

    def apply_events(self, events):
        changed = set()
        for ev in events:
            if not isinstance(ev, dict) or ev.get("table") != self.table:
                continue
            if ev.get("truncated"):
                continue   # "unresolved truncated event ignored" (console.warn)
            op = ev.get("op")
            if op == "truncate":
                for k in list(self.rows):
                    if self._remove(k):
                        changed.add(k)
                self.deleted_here.clear()
            elif op == "delete":
                key = ev.get("key")
                if key is None:
                    key = (ev.get("old") or {}).get(self.key_field)
                if key is None:
                    continue
                self.deleted_here.discard(key_of(key))
                if self._remove(key):
                    changed.add(key_of(key))
            elif op in ("insert", "update"):
                new = ev.get("new")
                if not new:
                    continue
                old = ev.get("old") or {}
                old_key = old.get(self.key_field) if isinstance(old, dict) else None
                new_key = new.get(self.key_field)
                if old_key is not None and key_of(old_key) != key_of(new_key) and self._remove(old_key):
                    changed.add(key_of(old_key))
                if not row_passes(new, self.where):
                    if self._remove(new_key):
                        changed.add(key_of(new_key))
                elif self._upsert(new):
                    changed.add(key_of(new_key))
        self._notify(changed)
        return changed

    def _upsert(self, row) -> bool:
        raw = row.get(self.key_field)
        if raw is None:
            return False
        k = key_of(raw)
        if k in self.deleted_here:
            return False
        old = self.rows.get(k)
        if old is not None:
            if old == row:
                return False
            a = mtime_micros(old.get("mtime"))
            b = mtime_micros(row.get("mtime"))
            if a is not None and b is not None and b < a:
                return False   # stale replay
        self.rows[k] = row
        return True

    def _remove(self, key) -> bool:
        return self.rows.pop(key_of(key), None) is not None


# --- poller.js -----------------------------------------------------------------------

BACKOFF_BASE_MS = 250
RESEND_SETTLE_MS = 50
BACKOFF_CAP_MS = 10000


def backoff_delay(attempt: int, random, base=BACKOFF_BASE_MS, cap=BACKOFF_CAP_MS) -> float:
    d = min(cap, base * 2 ** max(0, attempt - 1))
    return min(cap, round(d * (0.5 + random())))


# --- tabs.js (cursors) -------------------------------------------------------------------

CURSOR_RE = re.compile(r"^([0-9a-f]{16}):(0|[1-9]\d*)$")


def compare_cursors(a, b):
    if a is None or b is None:
        return None
    if a == b:
        return 0
    ma, mb = CURSOR_RE.match(a), CURSOR_RE.match(b)
    if not ma or not mb or ma.group(1) != mb.group(1):
        return None
    sa, sb = int(ma.group(2)), int(mb.group(2))
    return -1 if sa < sb else 1 if sa > sb else 0


def later_cursor(a, b):
    return a if compare_cursors(a, b) == 1 else b


def after(ev_cursor, cursor) -> bool:
    """compareCursors(ev.cursor, cursor) !== -1 && !== 0: deliver (unorderable counts as after)."""
    c = compare_cursors(ev_cursor, cursor)
    return c != -1 and c != 0


class _Abort(Exception):
    """fetch() rejected with an AbortError."""


# --- one browser tab ------------------------------------------------------------------


class PageClient:
    """One tab alone (TabSync in mode 'single' with its Poller), showing one view."""

    def __init__(self, name: str, table: str, where, agent: HttpAgent, random, on_apply=None):
        self.name = name
        self.table = table
        self.where = where
        self.subscriptions = [{"table": table, "where": where}] if where else [{"table": table}]
        self.keys = [json.dumps(s, sort_keys=True) for s in self.subscriptions]
        self.row_view = bool(where) and list(where) == ["id"]
        self.replica = Replica(table, where=where)
        self.agent = agent
        self.api = Api(agent)
        self.random = random
        self.on_apply = on_apply
        # TabSync
        self.reset_at = 0.0
        self.entry = None            # the registry's entry for our member: {cursor, at}
        self.cursor = None           # member.cursor
        self.ready = False
        self.at = 0.0
        self.loading = None
        self.down = False
        self._load_task: asyncio.Task | None = None
        # Poller
        self.running = False
        self.current = None
        self._loop_task: asyncio.Task | None = None
        self._request_task: asyncio.Task | None = None
        self._idle: asyncio.Event | None = None
        self._replanned = False
        self.state = "connecting"
        # What the harness counts.
        self.stats = {"loads": 0, "load_failures": 0, "polls": 0, "probes": 0, "batches": 0,
                      "events_received": 0, "events_applied": 0, "truncated_fetched": 0,
                      "resets": 0, "reloads_other": 0, "transient": 0}
        self.log: list[tuple[float, str, str]] = []   # (now_ms, what, detail): resets, failures
        self.error: BaseException | None = None

    # -- TabSync --------------------------------------------------------------------------

    def start(self) -> None:
        self._spawn_load("connecting")

    def shutdown(self) -> None:
        """The tab closes: nothing more is sent; its connections go away."""
        self.down = True
        if self._load_task:
            self._load_task.cancel()
        self.stop_poller()
        self.agent.close_all()

    def _spawn_load(self, reason: str) -> None:
        if self._load_task and not self._load_task.done():
            self._load_task.cancel()     # member.abort?.abort()
        self._load_task = asyncio.create_task(self._load(reason))
        self._load_task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None and self.error is None:
            self.error = task.exception()

    async def _member_load(self):
        """app.js member.load(): the snapshot into the replica; resolves to its cursor."""
        if self.row_view:
            row, cursor = await self.api.row_with_cursor(self.table, self.where["id"])
            self.replica.replace_all([row] if row else [])
        else:
            rows, cursor = await self.api.list_rows(self.table)
            if len(rows) >= 1000:
                self.log.append((now_ms(), "warning", f"snapshot of {len(rows)} rows: the page reads only the first 1000"))
            self.replica.replace_all(rows)
        self.stats["loads"] += 1
        return cursor

    async def _retrying(self):
        failures = 1
        while True:
            try:
                return await self._member_load()
            except ApiError as error:
                self.stats["load_failures"] += 1
                self.log.append((now_ms(), "load_failure", f"{error.status} {error.code}"))
                self.loading = "reconnecting"
                await asyncio.sleep(backoff_delay(failures, self.random) / 1000)
                failures += 1

    async def _load(self, reason: str) -> None:
        self.ready = False
        self.loading = reason
        self._forget()
        while True:
            at = now_ms()
            cursor = await self._retrying()
            if not self.reset_at > at:
                break
        if self.down:
            return
        self.cursor = cursor
        self.at = at
        self.ready = True
        self.loading = None
        self._register(cursor, at)
        if not self.running:
            self._start_poller()           # _elect() → _lead(), alone

    def _forget(self) -> None:
        if self.entry is not None:
            self.entry = None
            self._replan_if_needed()

    def _register(self, cursor, at) -> None:
        if at < self.reset_at:
            return
        self.entry = {"cursor": cursor, "at": at}
        self._replan_if_needed()

    def _plan(self):
        e = self.entry
        if e is None or e["cursor"] is None or e["at"] < self.reset_at:
            return None
        return {"cursor": e["cursor"], "subscriptions": self.subscriptions, "keys": sorted(self.keys)}

    def _replan_if_needed(self) -> None:
        if not self.running:
            return
        nxt = self._plan()
        if nxt is None:
            return
        if self.current is None:
            self.replan()
            return
        missing = any(k not in set(self.current["keys"]) for k in nxt["keys"])
        order = compare_cursors(nxt["cursor"], self.current["cursor"])
        if missing or order == -1 or order is None:
            self.replan()

    def _on_batch(self, plan, cursor, events) -> None:
        index = {k: i for i, k in enumerate(plan["keys"])}
        covered = None
        e = self.entry
        if e is not None and e["cursor"] is not None and e["at"] >= self.reset_at:
            order = compare_cursors(e["cursor"], plan["cursor"])
            if order is not None and order >= 0 and all(k in index for k in self.keys):
                covered = [index[k] for k in self.keys]
        out = []
        for ev in events:
            matches = ev.get("matches") if isinstance(ev.get("matches"), list) else []
            if ev.get("resolved"):
                def keeps(i):
                    where = (plan["subscriptions"][i] if i < len(plan["subscriptions"]) else {}).get("where")
                    return not where or "id" not in where or row_passes({"id": ev.get("key")}, {"id": where["id"]})
                matches = [i for i in matches if keeps(i)]
            if covered is not None and any(i in matches for i in covered) and after(ev.get("cursor"), e["cursor"]):
                out.append(ev)
        if covered is not None:
            e["cursor"] = later_cursor(e["cursor"], cursor)
            if self.ready:
                self._deliver(out, cursor)

    def _deliver(self, events, cursor) -> None:
        fresh = [ev for ev in events if after(ev.get("cursor"), self.cursor)]
        self.stats["events_applied"] += len(fresh)
        if fresh:
            if self.on_apply:
                self.on_apply(self, fresh)
            self.replica.apply_events(fresh)
        self.cursor = later_cursor(self.cursor, cursor)

    def _reset(self) -> None:
        at = now_ms()
        self.reset_at = max(self.reset_at, at)
        if self.entry is not None and self.entry["at"] < at:
            self.entry = None
        if self.ready and self.at < at or (not self.ready and not self.loading):
            self._spawn_load("resyncing")

    # -- Poller ---------------------------------------------------------------------------

    def _start_poller(self) -> None:
        self.running = True
        self._loop_task = asyncio.create_task(self._poll_loop())
        self._loop_task.add_done_callback(self._task_done)

    def stop_poller(self) -> None:
        self.running = False
        if self._request_task:
            self._request_task.cancel()
        if self._idle:
            self._idle.set()
        if self._loop_task:
            self._loop_task.cancel()

    def replan(self) -> None:
        if not self.running:
            return
        self._replanned = True
        if self._request_task:
            self._request_task.cancel()
        if self._idle:
            self._idle.set()

    def online(self) -> None:
        """The 'online' event: a wait (backoff) ends at once."""
        if self._idle:
            self._idle.set()

    async def _wait(self, ms) -> None:
        self._idle = asyncio.Event()
        try:
            if ms is None:
                await self._idle.wait()
            else:
                try:
                    await asyncio.wait_for(self._idle.wait(), ms / 1000)
                except TimeoutError:
                    pass
        finally:
            self._idle = None

    async def _abortable(self, coro):
        """Run one request so that replan() can abort it (fetch's AbortController)."""
        self._request_task = asyncio.ensure_future(coro)
        try:
            await asyncio.wait({self._request_task})
        finally:
            if not self._request_task.done():
                self._request_task.cancel()
        task, self._request_task = self._request_task, None
        if task.cancelled():
            raise _Abort()
        return task.result()

    async def _poll_loop(self) -> None:
        failures = 0
        resets = 0
        need_probe = False
        while self.running:
            self._replanned = False
            plan = self._plan()
            if plan is None:
                self.current = None
                await self._wait(None)
                continue
            try:
                if need_probe:
                    self.stats["probes"] += 1
                    await self._abortable(self.api.poll_changes(None, plan["subscriptions"], timeout_ms=15000))
                    need_probe = False
                self.current = plan
                self.stats["polls"] += 1
                res = await self._abortable(self.api.poll_changes(plan["cursor"], plan["subscriptions"], timeout_ms=55000))
                events = await self._abortable(self._resolve(res["events"]))
                if not self.running:
                    return
                self.stats["batches"] += 1
                self.stats["events_received"] += len(res["events"])
                self._on_batch(plan, res["cursor"], events)
                failures = 0
                resets = 0
                self.state = "live"
            except _Abort:
                self.current = None
                if not self.running:
                    return
                if self._replanned:
                    await asyncio.sleep(RESEND_SETTLE_MS / 1000)
                continue
            except ApiError as err:
                self.current = None
                if not self.running:
                    return
                if err.status == 409:
                    resets += 1
                    self.stats["resets"] += 1
                    code = err.body.get("error") if isinstance(err.body, dict) else err.code
                    told = err.body.get("cursor") if isinstance(err.body, dict) else None
                    same = str(told).split(":")[0] == str(plan["cursor"]).split(":")[0]
                    self.log.append((now_ms(), "reset", f"{code} {'same epoch' if same else 'new epoch'} "
                                                        f"sent {plan['cursor']} told {told}"))
                    self.state = "resyncing"
                    self._reset()
                    if resets > 1:
                        await self._wait(backoff_delay(resets - 1, self.random))
                elif err.transient:
                    failures += 1
                    need_probe = True
                    self.stats["transient"] += 1
                    self.log.append((now_ms(), "transient", f"{err.status} {err.code}"))
                    self.state = "reconnecting"
                    await self._wait(backoff_delay(failures, self.random))
                else:
                    failures += 1
                    self.stats["reloads_other"] += 1
                    self.log.append((now_ms(), "reload", f"{err.status} {err.code}: {err}"))
                    self.state = "resyncing"
                    self._reset()
                    await self._wait(backoff_delay(failures, self.random))

    async def _resolve(self, events):
        out = []
        fetched = {}
        for ev in events:
            if not isinstance(ev, dict) or not ev.get("truncated"):
                out.append(ev)
                continue
            if ev.get("op") == "delete":
                out.append({**ev, "truncated": False, "resolved": True})
                continue
            k = (ev.get("table"), key_of(ev.get("key")))
            if k not in fetched:
                self.stats["truncated_fetched"] += 1
                fetched[k] = await self.api.get_row(ev.get("table"), ev.get("key"))
            row = fetched[k]
            if row:
                out.append({**ev, "new": row, "truncated": False, "resolved": True})
            else:
                out.append({**ev, "op": "delete", "new": None, "truncated": False, "resolved": True})
        return out
