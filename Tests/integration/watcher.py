"""A browser's long-poll loop on testtype, in a thread of its own: what the
tests that fault the change stream under parked polls (the wal source,
several hosts) count."""

from __future__ import annotations

import threading
import time

from conftest import Client


class Watcher(threading.Thread):
    """Polls from `cursor` until stopped: every event's val in the order
    received, every reset, and the failures it retried. `name` is sent as
    X-Chaos-Client, for the balancer's log of which host served it."""

    def __init__(self, client: Client, cursor: str, name: str | None = None):
        super().__init__(daemon=True)
        self.client, self.cursor, self.name = client, cursor, name
        self.vals: list[str] = []
        self.resets = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        headers = {"X-Chaos-Client": self.name} if self.name else None
        while not self.stopping.is_set():
            try:
                response = self.client.post(
                    "/api/changes", {"cursor": self.cursor, "subscriptions": [{"table": "testtype"}], "timeout": 2},
                    headers=headers, timeout=40)
            except OSError as error:
                self.failures.append(str(error))
                time.sleep(0.1)
                continue
            if response.status == 200:
                body = response.json()
                self.vals += [event["new"]["val"] for event in body["events"] if event["new"]]
                self.cursor = body["cursor"]
            elif response.status == 409 and response.json().get("error") == "reset":
                self.resets += 1
                self.cursor = response.json()["cursor"]
            else:
                self.failures.append(f"{response.status} {response.body[:200]!r}")
                time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
