"""The development and test stack (tools/pbpstack.py) does not outlive its
owner: a run killed before it could stop its stack (kill -9, a timeout) leaves
nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import REPO, temporary_stack, wait_for
from pbpstack import processes_under

OWNER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pbpstack import Stack, free_port
stack = Stack(Path(sys.argv[2]), free_port(), Path(sys.argv[3]), log=lambda message: None)
stack.start()
print("serving", flush=True)
time.sleep(600)
"""


def running_under(root: Path) -> list[str]:
    """The stack's processes still running, readable in an assertion message."""
    return [str(pid) + " " + cmdline.replace(b"\0", b" ").decode(errors="replace")[:120]
            for pid, cmdline in processes_under(root)]


def test_a_killed_owner_leaves_no_stack_behind():
    bin_dir = os.environ.get("PBP_BIN_DIR", str(REPO / ".build" / "debug"))
    root = Path(tempfile.mkdtemp(prefix="pbp-reaper-"))
    os.chmod(root, 0o755)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(REPO / "tools"), str(root), bin_dir],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "serving"
        running = running_under(root)
        assert any("pbp-notifyd" in line for line in running) and any("nginx" in line for line in running), running
        assert (root / "pg" / "data" / "postmaster.pid").exists()
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for(lambda: not running_under(root), 30, f"the stack's processes to stop: {running_under(root)}")
        wait_for(lambda: not (root / "pg" / "data" / "postmaster.pid").exists(), 30, "PostgreSQL to stop")
        assert "its owner died" in (root / "reaper.log").read_text()
    finally:
        if owner.poll() is None:
            owner.kill()
        subprocess.run(["pkill", "-f", str(root) + "/"], check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_stopped_stack_sends_its_reaper_away_without_a_kill():
    with temporary_stack("reaper-stop") as stack:
        reaper = stack.reaper
        assert reaper is not None and reaper.poll() is None
    assert reaper.returncode == 0, "the reaper stopped the stack itself"
    assert not running_under(stack.root)
