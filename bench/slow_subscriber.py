#!/usr/bin/env python3
"""notifyd with a slow subscriber: pbp-notifyd's memory (RSS) while events
flow to a stream client that reads at a bounded rate, keeping up most of the
time and falling behind during each burst (a transaction of many rows).

Events flow in transactions of `batch` rows of `row_bytes` each; the
subscriber reads at most `read_mib_s` MiB/s, through a small receive buffer,
and, when cut off for falling behind (--subscriber-buffer-limit), resumes from
its cursor as a worker does. RSS is sampled every 50 ms. At the end notifyd's
own account of its ring is read from the status line it logs on SIGHUP
(events and MiB; builds before the byte budget do not report it), and the RSS
that the held events cost is given per event."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))

from notifyd_client import EVENT, HELLO, VERSION, WELCOME  # noqa: E402
from pbpstack import Stack  # noqa: E402
from standalone import on_a_stack_of_its_own, printed  # noqa: E402

MIB = 1 << 20


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


class SlowSubscriber(threading.Thread):
    """Reads notifyd's stream at `bytes_per_s` at most until it has seen event
    `last_seq` (set once the writes are done); counts the cut-offs."""

    def __init__(self, path: Path, bytes_per_s: float, receive_buffer: int = 64 * 1024):
        super().__init__(daemon=True)
        self.path = path
        self.bytes_per_s = bytes_per_s
        self.receive_buffer = receive_buffer
        self.epoch = None
        self.seq = None
        self.last_seq = None
        self.cutoffs = 0
        self.resets = 0
        self.error: BaseException | None = None
        self.welcomed = threading.Event()

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.connect(str(self.path))
        # The notify source's positions: sequence numbers, minor 0.
        body = (struct.pack(">BHB", HELLO, VERSION, 0) if self.epoch is None
                else struct.pack(">BHBQQI", HELLO, VERSION, 1, self.epoch, self.seq, 0))
        sock.sendall(struct.pack(">I", len(body)) + body)
        return sock

    def run(self) -> None:
        try:
            self.follow()
        except BaseException as error:  # reported by the caller
            self.error = error

    def follow(self) -> None:
        sock = self.connect()
        buffer = bytearray()
        began = time.monotonic()
        taken = 0
        while self.last_seq is None or self.seq is None or self.seq < self.last_seq:
            sock.settimeout(30)
            chunk = sock.recv(64 * 1024)
            if not chunk:
                self.cutoffs += 1
                sock.close()
                sock = self.connect()
                buffer.clear()
                continue
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= 4:
                (length,) = struct.unpack_from(">I", buffer, offset)
                if len(buffer) - offset < 4 + length:
                    break
                kind = buffer[offset + 4]
                if kind == WELCOME:
                    _, self.epoch, self.seq, _, resumed = struct.unpack_from(">HQQIB", buffer, offset + 5)
                    self.resets += self.cutoffs > 0 and not resumed
                    self.welcomed.set()
                elif kind == EVENT:
                    (self.seq,) = struct.unpack_from(">Q", buffer, offset + 5)
                offset += 4 + length
            del buffer[:offset]
            # The rate limit; a reader that found less than a full chunk has
            # caught up, and earns no credit while the stream is quiet.
            taken += len(chunk)
            ahead = began + taken / self.bytes_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            if len(chunk) < 64 * 1024:
                began, taken = time.monotonic(), 0
        sock.close()


def ring_status(stack: Stack) -> tuple[int, float] | None:
    """(events, MiB) from the status line notifyd logs on SIGHUP, if it reports its ring."""
    log_path = stack.root / "pbp-notifyd.log"
    before = log_path.read_text(errors="replace").count("SIGHUP")
    os.kill(stack.pid("pbp-notifyd"), signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if "SIGHUP" in line]
        if len(lines) > before:
            match = re.search(r"ring (\d+) events, ([0-9.]+) of", lines[-1])
            return (int(match.group(1)), float(match.group(2))) if match else None
        time.sleep(0.05)
    return None


def measure(stack: Stack, rows: int = 300_000, batch: int = 5_000, row_bytes: int = 1_000,
            read_mib_s: float = 20.0, log=print) -> dict:
    """Runs on a started stack, on a notifyd started afresh so that its RSS and
    ring hold only these events, and empties testtype afterwards."""
    stack.stop_process("pbp-notifyd")
    stack.start_notifyd()
    pid = stack.pid("pbp-notifyd")
    subscriber = SlowSubscriber(stack.notifyd_socket, read_mib_s * MIB)
    subscriber.start()
    assert subscriber.welcomed.wait(10), "no welcome from notifyd"
    first_seq = subscriber.seq
    rss_start = rss_kib(pid)
    samples: list[int] = []
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            samples.append(rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        stack.psql(f"insert into testtype (val) select repeat('s', {row_bytes}) from generate_series(1, {count})")
    written = time.monotonic()
    subscriber.last_seq = first_seq + rows
    subscriber.join(600)
    finished = time.monotonic()
    sampling.set()
    sampler.join()
    if subscriber.error is not None:
        raise subscriber.error
    if subscriber.is_alive():
        raise TimeoutError(f"the slow subscriber is at {subscriber.seq} of {subscriber.last_seq}")
    rss_end = rss_kib(pid)
    ring = ring_status(stack)
    held = ring[0] if ring else min(rows, 1_048_576)
    result = {
        "rows": rows, "batch": batch, "row_bytes": row_bytes, "read_mib_s": read_mib_s,
        "write_s": round(written - began, 2), "delivery_s": round(finished - began, 2),
        "cutoffs": subscriber.cutoffs, "resets": subscriber.resets,
        "rss_start_mib": round(rss_start / 1024, 1), "rss_peak_mib": round(max(samples) / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "ring_events": ring[0] if ring else None, "ring_mib": ring[1] if ring else None,
        "ring_bytes_per_event": round(ring[1] * MIB / ring[0]) if ring and ring[0] else None,
        "rss_bytes_per_held_event": round((rss_end - rss_start) * 1024 / held) if held else None,
    }
    log(f"slow subscriber: {rows:,} events of {row_bytes} B in transactions of {batch:,} over "
        f"{result['write_s']} s, read at {read_mib_s} MiB/s ({subscriber.cutoffs} cut-offs, "
        f"{subscriber.resets} resets), delivered after {result['delivery_s']} s; notifyd RSS {result['rss_start_mib']} -> peak "
        f"{result['rss_peak_mib']} MiB, end {result['rss_end_mib']} MiB")
    if ring:
        log(f"notifyd ring: {ring[0]:,} events in {ring[1]} MiB = {result['ring_bytes_per_event']} bytes per event "
            f"(its own account); RSS per held event {result['rss_bytes_per_held_event']} bytes")
    else:
        log(f"notifyd ring: not reported by this build; RSS per held event ({held:,} held) "
            f"{result['rss_bytes_per_held_event']} bytes")
    stack.psql("truncate testtype")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--row-bytes", type=int, default=1_000)
    parser.add_argument("--read-mib-s", type=float, default=20.0)
    args = parser.parse_args()

    on_a_stack_of_its_own(
        args.bin_dir, lambda stack: measure(stack, args.rows, args.batch, args.row_bytes, args.read_mib_s, log=printed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
