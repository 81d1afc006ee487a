"""What the wal source's tests share: a private PostgreSQL cluster with PBP's
database and nothing else, and pbp-wal-dump, which reads a logical
replication slot the way pbp-notifyd's wal source does and prints what it
sees as JSON lines."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import REPO
from pbpstack import Stack, free_port

BIN_DIR = Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug"))


@contextlib.contextmanager
def postgres_only(name: str, wal_level: str | None):
    """A private cluster and PBP's database, nothing else; its log is kept in
    test-artifacts/logs-NAME."""
    root = Path(tempfile.mkdtemp(prefix=f"pbp-{name}-"))
    os.chmod(root, 0o755)
    stack = Stack(root, free_port(), BIN_DIR, log=lambda message: None, wal_level=wal_level)
    stack.start_reaper()
    try:
        stack.start_postgres()
        stack.prepare_database()
        yield stack
    finally:
        stack.stop_postgres()
        stack.stop_reaper()
        logs = stack.artifacts_dir / f"logs-{name}"
        logs.mkdir(exist_ok=True)
        shutil.copy(stack.pg_dir / "postgresql.log", logs / "postgresql.log")
        shutil.rmtree(root, ignore_errors=True)


def dump_command(stack, slot: str, *options: str, user: str) -> list[str]:
    return [str(BIN_DIR / "pbp-wal-dump"), "--conninfo", stack.conninfo(user), "--slot", slot, *options]


def parse(output: str) -> dict[str, list]:
    """The dump's lines, grouped by kind: {"event": [...], "status": [...], ...}."""
    lines: dict[str, list] = {}
    for line in output.splitlines():
        [(kind, value)] = json.loads(line).items() if "error" not in line else [("error", json.loads(line))]
        lines.setdefault(kind, []).append(value)
    return lines


def dump(stack, slot: str, *options: str, user: str, expect_failure: bool = False) -> dict[str, list]:
    result = subprocess.run(dump_command(stack, slot, *options, user=user), capture_output=True, text=True, timeout=120)
    lines = parse(result.stdout)
    if expect_failure:
        assert result.returncode == 1, f"the dump did not fail: {result.stdout[-2000:]} {result.stderr[-2000:]}"
        assert "error" in lines, result.stdout
    else:
        assert result.returncode == 0, f"the dump failed: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return lines


def create_slot(stack, slot: str, user: str) -> str:
    """Creates the slot (streaming a moment); returns its confirmed position."""
    lines = dump(stack, slot, "--create-slot", "--seconds", "0.2", user=user)
    assert lines["slot"][0]["created"]
    return lines["slot"][0]["confirmed_flush"]
