#!/usr/bin/env python3
"""notifyd intake: how fast pbp-notifyd takes in and relays the notifications
of one 100,000-row transaction. Starts its own stack (release binaries) on
loopback, commits the transaction with psql, and times from the commit's
return to the last event at a subscriber speaking notifyd's protocol."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))

from notifyd_client import NotifydClient  # noqa: E402
from pbpstack import Stack, free_port  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pbp-bench-"))
    os.chmod(root, 0o755)
    stack = Stack(root, free_port(), args.bin_dir, log=lambda message: None)
    stack.start()
    rates = []
    try:
        for round_number in range(args.rounds):
            subscriber = NotifydClient(stack.notifyd_socket)
            subscriber.welcome()
            began = time.monotonic()
            stack.psql(f"insert into testtype (val) select 'bench-' || n from generate_series(1, {args.rows}) n")
            committed = time.monotonic()
            events = subscriber.events(args.rows, timeout=300, resume=True)
            finished = time.monotonic()
            assert len(events) == args.rows
            rate = args.rows / (finished - committed)
            rates.append(rate)
            print(f"round {round_number + 1}: transaction {committed - began:.2f} s; "
                  f"{args.rows} events delivered {finished - committed:.3f} s after commit "
                  f"= {rate:,.0f} events/s ({subscriber.reconnects} resumes)", flush=True)
            subscriber.close()
            stack.psql("truncate testtype")
    finally:
        stack.stop()
    rates.sort()
    print(f"notifyd intake, median of {len(rates)}: {rates[len(rates) // 2]:,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
