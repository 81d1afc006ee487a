#!/usr/bin/env python3
"""hostile polls: what one long-poll costs a worker at worst (issue 14's
target: no single poll over 10 ms of worker CPU, whatever its cursor and
subscriptions), and what the worker's ring holds per event.

Fills the workers' rings (70,000 events from one INSERT), then sends polls
one at a time, each with a cursor 65,000 events old and `timeout: 1`, in
several hostile shapes, and measures the CPU that the pbp-fcgi worker
processes used for each: the sum over their threads of
/proc/PID/task/TID/schedstat's time on CPU (nanoseconds; utime + stime in
clock ticks are 10 ms coarse, and are printed as a cross-check over all
polls). Polls run one after another, so a poll's CPU is the difference
before and after it (the workers' idle threads add some microseconds)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from pbpstack import Stack  # noqa: E402
from standalone import on_a_stack_of_its_own, printed  # noqa: E402

TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def shapes() -> dict[str, list[dict]]:
    """The hostile subscription sets: none of them matches any event."""
    return {
        # The measurement: 256 subscriptions on the table, each one filter that matches nothing.
        "256 non-matching filters": [{"table": "testtype", "where": {"val": f"nope-{k}"}} for k in range(256)],
        # 256 subscriptions of 16 filters each, every one on other columns: 256 filter shapes.
        "256 x 16 filters, 256 shapes": [
            {"table": "testtype", "where": {f"c{k}-{n}": f"v{n}" for n in range(16)}} for k in range(256)],
        # One subscription on the right column and value, but a second filter no row passes.
        "256 near misses (2 filters)": [
            {"table": "testtype", "where": {"val": "hay", "id": f"-{k}"}} for k in range(256)],
        # The most filters allowed: 16 per subscription, 1,024 and 32 KiB in all.
        "64 x 16 filters": [
            {"table": "testtype", "where": {f"c{n}": f"v{k}" for n in range(16)}} for k in range(64)],
        # The old worst case that no limit stopped: one subscription with 20,000 filters.
        "20,000 filters in one subscription": [
            {"table": "testtype", "where": {f"col{n}": n for n in range(20_000)}}],
    }


def worker_cpu_ns(pids: list[int]) -> tuple[float, float]:
    """(schedstat ns, utime+stime ns) summed over the workers' threads."""
    precise = ticks = 0.0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                precise += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += (int(fields[11]) + int(fields[12])) * TICK_NS
    return precise, ticks


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def request(port: int, method: str, path: str, body: dict | None = None, timeout: float = 60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_workers_reach(stack: Stack, seq: int, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        status, body = request(stack.status_port, "GET", "/api/_status")
        report = json.loads(body)
        workers = report["workers"]
        positions = [int(w["cursor"].split(":")[1]) if w.get("cursor") else -1 for w in workers]
        if status == 200 and workers and min(positions) >= seq:
            return report
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not reach seq {seq}: {positions}")
        time.sleep(0.2)


def measure(stack: Stack, rows: int = 70_000, behind: int = 65_000, polls: int = 10, log=print) -> dict:
    """Runs on a started stack; removes its rows afterwards. Returns the figures."""
    _, body = request(stack.port, "POST", "/api/changes", {"subscriptions": [{"table": "testtype"}]})
    epoch, start = json.loads(body)["cursor"].split(":")
    # RSS growth per event held cross-checks the ring's own count (and measures builds that report none).
    rss_before = {pid: rss_bytes(pid) for pid in stack.worker_pids()}
    stack.psql(f"insert into testtype (val) select 'hay' from generate_series(1, {rows})")
    newest = int(start) + rows
    report = wait_until_workers_reach(stack, newest)
    # The stream may hold more than our rows (a start taken from a worker behind, or other writes).
    newest = min(int(w["cursor"].split(":")[1]) for w in report["workers"])
    ring = [{"pid": w["pid"], "events": w.get("ring_events"), "bytes": w.get("ring_bytes"),
             "rss_growth": rss_bytes(w["pid"]) - rss_before.get(w["pid"], 0)} for w in report["workers"]]
    for entry in ring:
        held = entry["events"] or min(rows, 65_536)
        entry["rss_growth_per_event"] = entry["rss_growth"] / held
        log(f"worker {entry['pid']}: RSS grew {entry['rss_growth']:,} bytes = "
            f"{entry['rss_growth_per_event']:,.0f} bytes per event held ({held:,})")
        per_event = entry["bytes"] / entry["events"] if entry["events"] and entry["bytes"] is not None else None
        entry["bytes_per_event"] = per_event
        log(f"worker {entry['pid']}: ring {entry['events']} events, {entry['bytes']} bytes"
            + (f" = {per_event:,.0f} bytes per event" if per_event else " (not reported by this build)"))
    cursor = f"{epoch}:{newest - behind}"
    pids = stack.worker_pids()
    results = {"rows": rows, "behind": behind, "ring": ring, "shapes": {}}
    # Every shape must be answered from the ring (200), not told to reset (409): that is what costs.
    total_precise = total_ticks = 0.0
    for name, subscriptions in shapes().items():
        costs, statuses, walls, errors = [], [], [], []
        for _ in range(polls):
            before = worker_cpu_ns(pids)
            began = time.monotonic()
            status, answer = request(stack.port, "POST", "/api/changes",
                                     {"cursor": cursor, "subscriptions": subscriptions, "timeout": 1})
            if status != 200 and not errors:
                errors.append(answer[:200].decode(errors="replace"))
            walls.append(time.monotonic() - began)
            # The answer is written before the worker's thread finishes its bookkeeping.
            time.sleep(0.02)
            after = worker_cpu_ns(pids)
            costs.append((after[0] - before[0]) / 1e6)
            total_precise += after[0] - before[0]
            total_ticks += after[1] - before[1]
            statuses.append(status)
        results["shapes"][name] = {
            "worst_ms": max(costs), "median_ms": statistics.median(costs), "statuses": sorted(set(statuses)),
            "median_wall_s": statistics.median(walls), "first_error": errors[0] if errors else None}
        log(f"{name}: worker CPU per poll worst {max(costs):.2f} ms, median {statistics.median(costs):.2f} ms "
            f"(answers {sorted(set(statuses))}, median {statistics.median(walls):.3f} s to answer)"
            + (f"; {errors[0]}" if errors else ""))
    results["worst_ms"] = max(shape["worst_ms"] for shape in results["shapes"].values())
    results["cross_check"] = {"schedstat_ms": total_precise / 1e6, "utime_stime_ms": total_ticks / 1e6}
    log(f"all polls: {total_precise / 1e6:,.0f} ms by schedstat, {total_ticks / 1e6:,.0f} ms by utime+stime")
    stack.psql("delete from testtype where val = 'hay'")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=70_000)
    parser.add_argument("--behind", type=int, default=65_000)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    results = on_a_stack_of_its_own(
        args.bin_dir, lambda stack: measure(stack, args.rows, args.behind, args.polls, log=printed), workers=args.workers)
    print(f"hostile polls: worst {results['worst_ms']:.2f} ms of worker CPU per poll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
