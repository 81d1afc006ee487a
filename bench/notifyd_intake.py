#!/usr/bin/env python3
"""notifyd intake: how fast pbp-notifyd takes in and relays the notifications
of one 100,000-row transaction. Starts its own stack (release binaries) on
loopback, commits the transaction with psql, and times from the commit's
return to the last event at a subscriber speaking notifyd's protocol."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))

from notifyd_client import NotifydClient  # noqa: E402
from pbpstack import Stack  # noqa: E402
from standalone import on_a_stack_of_its_own, printed  # noqa: E402


def measure(stack: Stack, rows: int = 100_000, rounds: int = 3, log=print) -> list[dict]:
    """Runs the rounds on a started stack; each empties testtype afterwards.
    Returns one dict per round (transaction_s, delivery_s, events_per_s)."""
    results = []
    for round_number in range(rounds):
        subscriber = NotifydClient(stack.notifyd_socket)
        subscriber.welcome()
        began = time.monotonic()
        stack.psql(f"insert into testtype (val) select 'bench-' || n from generate_series(1, {rows}) n")
        committed = time.monotonic()
        events = subscriber.events(rows, timeout=300, resume=True)
        finished = time.monotonic()
        assert len(events) == rows, f"{len(events)} events for {rows} rows"
        rate = rows / (finished - committed)
        results.append({"transaction_s": committed - began, "delivery_s": finished - committed,
                        "events_per_s": rate, "resumes": subscriber.reconnects})
        log(f"round {round_number + 1}: transaction {committed - began:.2f} s; "
            f"{rows} events delivered {finished - committed:.3f} s after commit "
            f"= {rate:,.0f} events/s ({subscriber.reconnects} resumes)")
        subscriber.close()
        stack.psql("truncate testtype")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    results = on_a_stack_of_its_own(args.bin_dir, lambda stack: measure(stack, args.rows, args.rounds, log=printed))
    rates = sorted(result["events_per_s"] for result in results)
    print(f"notifyd intake, median of {len(rates)}: {rates[len(rates) // 2]:,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
